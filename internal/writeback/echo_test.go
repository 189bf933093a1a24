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
// — in the hub, in Defender, and in the Sentinel mirror of Defender incidents — on two tenants,
// then checks that every copy agrees and that socsync sent no more writes than there were edits.
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
	for n := range edits {
		tg := targets[rnd.IntN(len(targets))]
		switch rnd.IntN(3) {
		case 0: // an analyst in the hub
			body := fmt.Sprintf(`{"severity":%q,"owner":%q,"tags":%s}`, sevs[rnd.IntN(3)], tg.users[rnd.IntN(len(tg.users))], jsonList(tags[rnd.IntN(4)]))
			if rnd.IntN(4) == 0 {
				body = `{"status":"active"}`
			}
			if code := r.API(t, f.token, "PATCH", "/api/v1/incidents/"+tg.hubID, body, nil); code != 200 {
				t.Fatalf("edit %d: PATCH %d", n, code)
			}
		case 1: // an analyst in Defender
			body := fmt.Sprintf(`{"severity":%q,"assignedTo":%q,"customTags":%s}`, sevs[rnd.IntN(3)], tg.users[rnd.IntN(len(tg.users))], jsonList(tags[rnd.IntN(4)]))
			if rnd.IntN(4) == 0 {
				body = `{"status":"inProgress"}`
			}
			if err := env.Emulator.PatchIncident(tg.tenant, tg.graphID, []byte(body)); err != nil {
				t.Fatalf("edit %d: %v", n, err)
			}
		case 2: // an analyst in the Sentinel mirror; the connector carries it to Defender
			body := fmt.Sprintf(`{"view":"sentinel","severity":%q}`, map[string]string{"low": "Low", "medium": "Medium", "high": "High"}[sevs[rnd.IntN(3)]])
			if err := env.Emulator.PatchIncident(tg.tenant, tg.sentinelID, []byte(body)); err != nil {
				t.Fatalf("edit %d: %v", n, err)
			}
		}
		time.Sleep(4 * time.Millisecond) // let polls and writes interleave with the edits
	}

	// Converged: every hub incident in sync and equal to its Defender copy (and the mirror).
	disagree := func() string {
		for _, tg := range targets {
			d := f.get(t, tg.hubID)
			g := env.Views(t, tg.tenant, tg.graphID)["graph"]
			sev, _ := incident.GraphSeverity.FromRemote(fmt.Sprint(g["severity"]))
			st, _ := incident.GraphStatus.FromRemote(fmt.Sprint(g["status"]))
			if d.SyncState != "in_sync" || string(sev) != d.Severity || !incident.GraphStatus.Equivalent(incident.Status(d.Status), st) ||
				!strings.EqualFold(fmt.Sprint(g["assignedTo"]), d.Owner) {
				return fmt.Sprintf("hub %+v\ngraph severity %v status %v owner %v", d, g["severity"], g["status"], g["assignedTo"])
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
