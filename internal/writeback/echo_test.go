package writeback_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/socsync/socsync/internal/emulator"
	"github.com/socsync/socsync/internal/hub"
	"github.com/socsync/socsync/internal/hub/hubtest"
	"github.com/socsync/socsync/internal/incident"
)

// TestEcho_RandomEditsFromEverySideConvergeWithNoMoreWritesThanEdits makes 1,000 random edits
// — in the hub, in Defender, and in the Sentinel mirror of Defender incidents: severity, owner,
// tags, reopening, and closing with a classification and its refinement — on two tenants, then
// checks that every copy (hub, Defender, Sentinel mirror) agrees on every synced field and that
// socsync sent no more writes than there were edits.
func TestEcho_RandomEditsFromEverySideConvergeWithNoMoreWritesThanEdits(t *testing.T) {
	const edits, perTenant = 1000, 8
	env := hubtest.New(t, hubtest.Options{Tenants: 3})
	r := env.Start(t, hub.Options{})
	f := &fixture{env: env, hub: r, token: r.Token(t, "admin", "admin")}
	type target struct {
		tenant, graphID, sentinelID, hubID string
		users                              []string
	}
	var targets []target
	for _, ti := range env.Info.Tenants[1:3] { // both mirror Defender into Sentinel
		var users []string
		for _, u := range ti.Users {
			users = append(users, u.UPN)
		}
		for i := range perTenant {
			title := fmt.Sprintf("echo-%s-%d", ti.Name, i)
			c, err := env.Emulator.CreateIncident(ti.TenantID, emulator.NewIncident{Title: title, Where: "defender+sentinel"})
			if err != nil {
				t.Fatal(err)
			}
			targets = append(targets, target{tenant: ti.TenantID, graphID: c.GraphID, sentinelID: c.SentinelID, users: users})
		}
	}
	// Map remote ids to hub ids through the links.
	var list struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	// A mirrored incident collected by its Sentinel source first has no Graph link yet: wait
	// until every one has both.
	byGraph := map[string]string{} // tenant/graph id → hub id (Graph ids repeat across tenants)
	hubtest.Eventually(t, "all echo incidents are collected with their Graph links", func() bool {
		r.API(t, f.token, "GET", "/api/v1/incidents?limit=500&q=echo-", "", &list)
		if len(list.Items) != len(targets) {
			return false
		}
		clear(byGraph)
		for _, it := range list.Items {
			d := f.get(t, it.ID)
			for _, l := range d.Links {
				if l.Kind == "graph" {
					byGraph[d.TenantID+"/"+l.ExternalID] = it.ID
				}
			}
		}
		return len(byGraph) == len(targets)
	})
	for i := range targets {
		targets[i].hubID = byGraph[targets[i].tenant+"/"+targets[i].graphID]
	}
	before := env.Writes()

	rnd := rand.New(rand.NewPCG(7, 11))
	sevs := []string{"low", "medium", "high"}
	tags := [][]string{{}, {"a"}, {"a", "b"}, {"c"}}
	// Closings, as each side spells them: hub classification and determination, Graph
	// classification and determination, Sentinel classification and reason.
	hubClose := [][2]string{{"true_positive", "malware"}, {"benign_positive", "security_testing"},
		{"false_positive", "not_enough_data_to_validate"}, {"false_positive", "not_malicious"}}
	graphClose := [][2]string{{"truePositive", "phishing"}, {"informationalExpectedActivity", "lineOfBusinessApplication"},
		{"falsePositive", "notMalicious"}, {"falsePositive", "notEnoughDataToValidate"}}
	sentinelClose := [][2]string{{"TruePositive", "SuspiciousActivity"}, {"BenignPositive", "SuspiciousButExpected"},
		{"FalsePositive", "IncorrectAlertLogic"}, {"FalsePositive", "InaccurateData"}}
	for n := range edits {
		tg := targets[rnd.IntN(len(targets))]
		user := tg.users[rnd.IntN(len(tg.users))]
		switch rnd.IntN(3) {
		case 0: // an analyst in the hub
			body := fmt.Sprintf(`{"severity":%q,"owner":%q,"tags":%s}`, sevs[rnd.IntN(3)], user, jsonList(tags[rnd.IntN(4)]))
			switch rnd.IntN(8) {
			case 0, 1:
				body = `{"status":"active"}`
			case 2:
				c := hubClose[rnd.IntN(len(hubClose))]
				body = fmt.Sprintf(`{"status":"resolved","classification":%q,"determination":%q}`, c[0], c[1])
			}
			var answer any
			if code := r.API(t, f.token, "PATCH", "/api/v1/incidents/"+tg.hubID, body, &answer); code != 200 {
				t.Fatalf("edit %d: PATCH %s: %d %v", n, body, code, answer)
			}
		case 1: // an analyst in Defender
			body := fmt.Sprintf(`{"severity":%q,"assignedTo":%q,"customTags":%s}`, sevs[rnd.IntN(3)], user, jsonList(tags[rnd.IntN(4)]))
			switch rnd.IntN(8) {
			case 0, 1:
				body = `{"status":"inProgress"}`
			case 2:
				c := graphClose[rnd.IntN(len(graphClose))]
				body = fmt.Sprintf(`{"status":"resolved","classification":%q,"determination":%q}`, c[0], c[1])
			}
			if err := env.Emulator.PatchIncident(tg.tenant, tg.graphID, []byte(body)); err != nil {
				t.Fatalf("edit %d: %v", n, err)
			}
		case 2: // an analyst in the Sentinel mirror; the connector carries it to Defender
			body := fmt.Sprintf(`{"view":"sentinel","severity":%q}`, map[string]string{"low": "Low", "medium": "Medium", "high": "High"}[sevs[rnd.IntN(3)]])
			switch rnd.IntN(8) {
			case 0:
				body = `{"view":"sentinel","status":"Active"}` // reopening clears the classification
			case 1:
				c := sentinelClose[rnd.IntN(len(sentinelClose))]
				body = fmt.Sprintf(`{"view":"sentinel","status":"Closed","classification":%q,"classificationReason":%q}`, c[0], c[1])
			case 2:
				body = fmt.Sprintf(`{"view":"sentinel","owner":%q}`, user)
			case 3:
				body = fmt.Sprintf(`{"view":"sentinel","labels":%s}`, jsonList(tags[rnd.IntN(4)]))
			}
			if err := env.Emulator.PatchIncident(tg.tenant, tg.sentinelID, []byte(body)); err != nil {
				t.Fatalf("edit %d: %v", n, err)
			}
		}
		time.Sleep(4 * time.Millisecond) // let polls and writes interleave with the edits
	}

	// Converged: every hub incident in sync and equal, field by field, to its Defender copy
	// and to the connector's Sentinel mirror.
	disagree := func() string {
		for _, tg := range targets {
			d := f.get(t, tg.hubID)
			if d.SyncState != "in_sync" {
				return fmt.Sprintf("hub incident %s is %s", d.ID, d.SyncState)
			}
			if s := f.copiesDisagree(t, d, tg.tenant, tg.graphID); s != "" {
				return s
			}
		}
		return ""
	}
	defer func() {
		if t.Failed() {
			t.Log(disagree())
		}
	}()
	hubtest.Eventually(t, "every copy agrees", func() bool { return disagree() == "" })
	f.settle(t)
	var writes int
	for _, n := range diff(env.Writes(), before) {
		writes += n
	}
	t.Logf("%d edits, %d writes by socsync", edits, writes)
	if writes > edits {
		t.Errorf("socsync sent %d writes for %d real edits", writes, edits)
	}
	// Quiet now: another round of polls writes nothing.
	quiet := env.Writes()
	f.settle(t)
	if w := diff(env.Writes(), quiet); len(w) != 0 {
		t.Errorf("writes after convergence (echoes): %v", w)
	}
}

func jsonList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ",") + "]"
}

// copiesDisagree compares every synced field (status, severity, owner, classification,
// determination, tags) of a hub incident with the emulator's Graph view of its remote incident
// and, when it has one, with the Sentinel view, each read through the mapping tables in the
// remote's own vocabulary. Sentinel has no determination: its classification reason must be the
// one the tables give for the hub's classification and determination. It returns "" when every
// copy agrees, else what differs.
func (f *fixture) copiesDisagree(t *testing.T, d hubIncident, tenant, remoteID string) string {
	t.Helper()
	var users map[string]string
	for _, ti := range f.env.Info.Tenants {
		if ti.TenantID == tenant {
			users = map[string]string{}
			for _, u := range ti.Users {
				users[u.UPN] = u.ObjectID
			}
		}
	}
	owners, err := incident.NewOwners(users)
	if err != nil {
		t.Fatal(err)
	}
	unclassified := func(c incident.Classification) bool { return c == "" || c == incident.ClassificationUndetermined }
	sameClass := func(a, b incident.Classification) bool { return a == b || unclassified(a) && unclassified(b) }
	hubStatus, hubClass := incident.Status(d.Status), incident.Classification(d.Classification)
	hubDet := incident.Determination(d.Determination)
	var bad []string
	views := f.env.Views(t, tenant, remoteID)
	if g := views["graph"]; g != nil {
		str := func(k string) string { s, _ := g[k].(string); return s }
		st, _ := incident.GraphStatus.FromRemote(str("status"))
		sev, _ := incident.GraphSeverity.FromRemote(str("severity"))
		class, _ := incident.GraphClassification.FromRemote(str("classification"))
		det, _ := incident.GraphDetermination.FromRemote(str("determination"))
		var tags []string
		for _, tg := range g["customTags"].([]any) {
			tags = append(tags, tg.(string))
		}
		if !incident.GraphStatus.Equivalent(hubStatus, st) {
			bad = append(bad, fmt.Sprintf("status: hub %s, Graph %s", d.Status, str("status")))
		}
		if !incident.GraphSeverity.Equivalent(incident.Severity(d.Severity), sev) {
			bad = append(bad, fmt.Sprintf("severity: hub %s, Graph %s", d.Severity, str("severity")))
		}
		if incident.NormalizeOwner(d.Owner) != incident.OwnerFromGraph(str("assignedTo")) {
			bad = append(bad, fmt.Sprintf("owner: hub %q, Graph %q", d.Owner, str("assignedTo")))
		}
		if !sameClass(hubClass, class) {
			bad = append(bad, fmt.Sprintf("classification: hub %q, Graph %q", d.Classification, str("classification")))
		}
		if hubDet != det && !(hubDet == "" && det == incident.DeterminationUnknown) && !(hubDet == incident.DeterminationUnknown && det == "") {
			bad = append(bad, fmt.Sprintf("determination: hub %q, Graph %q", d.Determination, str("determination")))
		}
		if !incident.EqualTags(d.Tags, tags) {
			bad = append(bad, fmt.Sprintf("tags: hub %v, Graph %v", d.Tags, tags))
		}
	}
	if sv := views["sentinel"]; sv != nil {
		p := sv["properties"].(map[string]any)
		str := func(k string) string { s, _ := p[k].(string); return s }
		var labels []incident.Label
		for _, l := range p["labels"].([]any) {
			lm := l.(map[string]any)
			labels = append(labels, incident.Label{Name: fmt.Sprint(lm["labelName"]), Type: fmt.Sprint(lm["labelType"])})
		}
		o, _ := p["owner"].(map[string]any)
		ostr := func(k string) string { s, _ := o[k].(string); return s }
		st, _ := incident.StatusFromSentinel(str("status"), labels)
		sev, _ := incident.SentinelSeverity.FromRemote(str("severity"))
		class, _ := incident.SentinelClassification.FromRemote(str("classification"))
		owner := incident.OwnerFromSentinel(ostr("userPrincipalName"), ostr("email"), ostr("objectId"), owners)
		if !incident.SentinelStatus.Equivalent(hubStatus, st) {
			bad = append(bad, fmt.Sprintf("status: hub %s, Sentinel %s", d.Status, str("status")))
		}
		if !incident.SentinelSeverity.Equivalent(incident.Severity(d.Severity), sev) {
			bad = append(bad, fmt.Sprintf("severity: hub %s, Sentinel %s", d.Severity, str("severity")))
		}
		if incident.NormalizeOwner(d.Owner) != owner {
			bad = append(bad, fmt.Sprintf("owner: hub %q, Sentinel %q", d.Owner, owner))
		}
		if !sameClass(hubClass, class) {
			bad = append(bad, fmt.Sprintf("classification: hub %q, Sentinel %q", d.Classification, str("classification")))
		}
		wantReason := ""
		if !unclassified(hubClass) {
			r, _ := incident.SentinelReason.ToRemote(incident.ReasonFor(hubClass, hubDet))
			wantReason = r
		}
		if str("classificationReason") != wantReason {
			bad = append(bad, fmt.Sprintf("determination: hub %q/%q, Sentinel reason %q, want %q", d.Classification, d.Determination, str("classificationReason"), wantReason))
		}
		if tags := incident.TagsFromLabels(labels); !incident.EqualTags(d.Tags, tags) {
			bad = append(bad, fmt.Sprintf("tags: hub %v, Sentinel %v", d.Tags, tags))
		}
	}
	if len(bad) == 0 {
		return ""
	}
	return fmt.Sprintf("hub incident %s (%s/%s): %s", d.ID, tenant, remoteID, strings.Join(bad, "; "))
}
