package check

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/socsync/socsync/internal/emulator"
	"github.com/socsync/socsync/internal/incident"
	"github.com/socsync/socsync/internal/reconcile"
	"github.com/socsync/socsync/internal/store"
)

// hubIncident is one hub incident with everything the checkers look at.
type hubIncident struct {
	store.StoredIncident
	Links    []store.Link
	Comments []incident.Comment
}

// snapshot is the hub's state.
type snapshot struct {
	incidents []hubIncident
	byID      map[string]*hubIncident // tenant/id
	byRemote  map[string][]string     // tenant/kind/external id → hub ids holding that link
}

func remoteKey(tenant string, kind store.LinkKind, external string) string {
	return strings.ToLower(tenant) + "/" + string(kind) + "/" + external
}

func hubKey(tenant, id string) string { return strings.ToLower(tenant) + "/" + id }

func takeSnapshot(ctx context.Context, st *store.Store) (*snapshot, error) {
	list, err := st.ListIncidents(ctx, store.AllTenants(), store.ListFilter{}, store.ListPage{}, 1_000_000)
	if err != nil {
		return nil, fmt.Errorf("list hub incidents: %w", err)
	}
	s := &snapshot{byID: map[string]*hubIncident{}, byRemote: map[string][]string{}}
	s.incidents = make([]hubIncident, len(list))
	for i, si := range list {
		hi := &s.incidents[i]
		hi.StoredIncident = si
		if hi.Links, err = st.Links(ctx, si.TenantID, si.ID); err != nil {
			return nil, err
		}
		if hi.Comments, err = st.Comments(ctx, si.TenantID, si.ID); err != nil {
			return nil, err
		}
		s.byID[hubKey(si.TenantID, si.ID)] = hi
		for _, l := range hi.Links {
			k := remoteKey(l.TenantID, l.Kind, l.ExternalID)
			s.byRemote[k] = append(s.byRemote[k], si.ID)
		}
	}
	return s, nil
}

// remoteIncident is one remote incident as the emulator created it.
type remoteIncident struct {
	tenant, graphID, sentinelID string
}

func (r remoteIncident) id() string {
	if r.graphID != "" {
		return r.graphID
	}
	return r.sentinelID
}

func (r remoteIncident) String() string {
	return fmt.Sprintf("tenant %s graph %q sentinel %q", r.tenant, r.graphID, r.sentinelID)
}

func remoteIncidents(h []emulator.HistoryEntry) []remoteIncident {
	var out []remoteIncident
	for _, e := range h {
		if e.Field == "created" && e.AlertID == "" {
			out = append(out, remoteIncident{tenant: e.Tenant, graphID: e.GraphID, sentinelID: e.SentinelID})
		}
	}
	return out
}

// historyOf returns the emulator's records of one remote incident.
func historyOf(h []emulator.HistoryEntry, r remoteIncident) []string {
	var out []string
	for _, e := range h {
		if e.Tenant == r.tenant && ((r.graphID != "" && e.GraphID == r.graphID) || (r.sentinelID != "" && e.SentinelID == r.sentinelID)) {
			out = append(out, fmtHistory(e))
		}
	}
	return out
}

func fmtHistory(e emulator.HistoryEntry) string {
	what := e.Field
	if e.AlertID != "" {
		what = "alert " + e.AlertID + " " + e.Field
	}
	return fmt.Sprintf("emulator #%d %s v%d %s by %s/%s: %s %q → %q", e.Seq, e.Time.Format("15:04:05.000000"), e.Version,
		strings.TrimSpace(e.GraphID+" "+e.SentinelID), e.Source, e.Actor, what, clip(e.Old), clip(e.New))
}

func clip(s string) string {
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}

// hubHistory returns the hub's audit of one incident, formatted.
func hubHistory(ctx context.Context, st *store.Store, tenant, id string) []string {
	entries, err := st.History(ctx, tenant, id)
	if err != nil {
		return []string{"hub audit unreadable: " + err.Error()}
	}
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		out = append(out, fmt.Sprintf("hub audit %s %s %s %s %s %q → %q %s %s", e.At.Format("15:04:05.000000"), e.Actor, e.Action, e.Link, e.Field,
			clip(e.Before), clip(e.After), e.Result, clip(e.Detail)))
	}
	return out
}

func describeLinks(ls []store.Link) string {
	var parts []string
	for _, l := range ls {
		parts = append(parts, fmt.Sprintf("%s %s %s (%s%s)", l.Kind, l.SourceID, l.ExternalID, l.SyncState, strings.TrimSpace(" "+l.LastError)))
	}
	return strings.Join(parts, "; ")
}

// Collected checks I1 inbound: every remote incident the emulator created is in the hub, in
// exactly one hub incident of its own tenant (a mirrored pair: one hub incident with both
// links), and every comment a remote analyst wrote is among that incident's comments.
func Collected(ctx context.Context, r Run) *Violation {
	snap, err := takeSnapshot(ctx, r.Store)
	if err != nil {
		return violation("I1", err.Error())
	}
	hist := r.Emulator.History()
	for _, ri := range remoteIncidents(hist) {
		var holders []string
		if ri.graphID != "" {
			holders = snap.byRemote[remoteKey(ri.tenant, store.LinkGraph, ri.graphID)]
		} else {
			holders = snap.byRemote[remoteKey(ri.tenant, store.LinkSentinel, ri.sentinelID)]
		}
		if len(holders) != 1 {
			return violation("I1", fmt.Sprintf("remote incident %s is in %d hub incidents, want 1 (%v)", ri, len(holders), holders), historyOf(hist, ri)...)
		}
		if ri.graphID != "" && ri.sentinelID != "" {
			if s := snap.byRemote[remoteKey(ri.tenant, store.LinkSentinel, ri.sentinelID)]; len(s) > 0 && (len(s) != 1 || s[0] != holders[0]) {
				return violation("I1", fmt.Sprintf("mirrored incident %s: its Sentinel view is in hub incidents %v, its Defender view in %v", ri, s, holders), historyOf(hist, ri)...)
			}
		}
	}
	// Remote analysts' comments (no socsync marker) are in the hub.
	for _, e := range hist {
		if e.Field != "comment" || e.Source == "graph" || e.Source == "sentinel" {
			continue // socsync writes through the APIs; analysts through the admin API or the scenario
		}
		if _, ours := incident.CommentRefOf(e.New); ours {
			continue
		}
		ri := remoteIncident{tenant: e.Tenant, graphID: e.GraphID, sentinelID: e.SentinelID}
		var holders []string
		if ri.graphID != "" {
			holders = snap.byRemote[remoteKey(ri.tenant, store.LinkGraph, ri.graphID)]
		}
		if len(holders) == 0 && ri.sentinelID != "" {
			holders = snap.byRemote[remoteKey(ri.tenant, store.LinkSentinel, ri.sentinelID)]
		}
		if len(holders) != 1 {
			continue // reported above
		}
		hi := snap.byID[hubKey(ri.tenant, holders[0])]
		found := false
		for _, c := range hi.Comments {
			if incident.EqualText(c.Text, e.New) {
				found = true
			}
		}
		if !found {
			h := append(historyOf(hist, ri), hubHistory(ctx, r.Store, hi.TenantID, hi.ID)...)
			for _, c := range hi.Comments {
				h = append(h, fmt.Sprintf("hub comment %s %s/%s: %q", c.ID, c.Origin, c.Author, clip(c.Text)))
			}
			for _, l := range hi.Links {
				h = append(h, fmt.Sprintf("hub link %s %s flags %q observed %s", l.Kind, l.ExternalID, l.Flags, clip(string(l.Observed))))
			}
			return violation("I1", fmt.Sprintf("remote comment %q on %s is not in hub incident %s", clip(e.New), ri, hi.ID), h...)
		}
	}
	return nil
}

// Converged checks I3 (and I1 outbound): every hub incident with remote links is in sync with
// each of them, and agrees with the emulator's copy on every synced field — status, severity,
// owner, classification, determination (Defender) and tags — read through the mapping tables
// of internal/incident. With failedOK a link shown as failed may disagree (the hub shows it). A
// merged incident is left out: socsync never writes to it again (R16 checks that).
func Converged(ctx context.Context, r Run, failedOK bool) *Violation {
	snap, err := takeSnapshot(ctx, r.Store)
	if err != nil {
		return violation("I3", err.Error())
	}
	hist := r.Emulator.History()
	for _, hi := range snap.incidents {
		if hi.Status == incident.StatusMerged {
			continue // never written again: its copies show whatever remote analysts did after the merge
		}
		for _, l := range hi.Links {
			if l.Kind == store.LinkWebhook {
				continue
			}
			ri := remoteIncident{tenant: l.TenantID}
			if l.Kind == store.LinkGraph {
				ri.graphID = l.ExternalID
			} else {
				ri.sentinelID = l.ExternalID
			}
			if l.SyncState == "failed" && failedOK {
				continue
			}
			why := ""
			if l.SyncState != "in_sync" {
				why = fmt.Sprintf("link %s %s is %s (%s)", l.Kind, l.ExternalID, l.SyncState, l.LastError)
			} else {
				why = disagreement(r.Emulator, hi, l)
			}
			if why != "" {
				h := append(historyOf(hist, ri), hubHistory(ctx, r.Store, hi.TenantID, hi.ID)...)
				h = append(h, fmt.Sprintf("hub incident %s v%d: status %s severity %s owner %q classification %s determination %s tags %v; links: %s",
					hi.ID, hi.Version, hi.Status, hi.Severity, hi.Owner, hi.Classification, hi.Determination, hi.Tags, describeLinks(hi.Links)))
				return violation("I3", fmt.Sprintf("hub incident %s (%q, tenant %s): %s", hi.ID, hi.Title, hi.TenantID, why), h...)
			}
		}
	}
	return nil
}

// graphView and sentinelView are the parts of the emulator's views the checkers compare.
type graphView struct {
	Status         string   `json:"status"`
	Severity       string   `json:"severity"`
	AssignedTo     string   `json:"assignedTo"`
	Classification string   `json:"classification"`
	Determination  string   `json:"determination"`
	CustomTags     []string `json:"customTags"`
	Comments       []struct {
		Comment string `json:"comment"`
	} `json:"comments"`
}

type sentinelView struct {
	Properties struct {
		Status               string `json:"status"`
		Severity             string `json:"severity"`
		Classification       string `json:"classification"`
		ClassificationReason string `json:"classificationReason"`
		Owner                struct {
			ObjectID          string `json:"objectId"`
			UserPrincipalName string `json:"userPrincipalName"`
		} `json:"owner"`
		Labels       []incident.Label `json:"labels"`
		ProviderName string           `json:"providerName"`
	} `json:"properties"`
}

func views(e *emulator.Emulator, tenant, id string) (g *graphView, s *sentinelView, err error) {
	v, err := e.IncidentViews(tenant, id)
	if err != nil {
		return nil, nil, err
	}
	if gv, ok := v["graph"]; ok {
		b, _ := json.Marshal(gv)
		g = &graphView{}
		if err := json.Unmarshal(b, g); err != nil {
			return nil, nil, err
		}
	}
	if sv, ok := v["sentinel"]; ok {
		b, _ := json.Marshal(sv)
		s = &sentinelView{}
		if err := json.Unmarshal(b, s); err != nil {
			return nil, nil, err
		}
	}
	return g, s, nil
}

// disagreement returns how the hub incident and the remote copy behind link l differ, or "".
func disagreement(e *emulator.Emulator, hi hubIncident, l store.Link) string {
	g, s, err := views(e, l.TenantID, l.ExternalID)
	if err != nil {
		return fmt.Sprintf("the emulator has no incident %s: %v", l.ExternalID, err)
	}
	var diffs []string
	diff := func(field string, hub, remote any) {
		diffs = append(diffs, fmt.Sprintf("%s: hub %v, %s %v", field, hub, l.Kind, remote))
	}
	switch l.Kind {
	case store.LinkGraph:
		if g == nil {
			return "the emulator shows no Graph view"
		}
		st, _ := incident.GraphStatus.FromRemote(g.Status)
		if !incident.GraphStatus.Equivalent(hi.Status, st) {
			diff("status", hi.Status, g.Status)
		}
		if hi.Status == incident.StatusMerged {
			break // a merged incident is never written again; only its status matters
		}
		if sev, _ := incident.GraphSeverity.FromRemote(g.Severity); !incident.GraphSeverity.Equivalent(hi.Severity, sev) {
			diff("severity", hi.Severity, g.Severity)
		}
		if _, foreign := strings.CutPrefix(hi.Owner, "sentinel:"); !foreign && !strings.EqualFold(strings.TrimSpace(hi.Owner), strings.TrimSpace(g.AssignedTo)) {
			diff("owner", hi.Owner, g.AssignedTo)
		}
		if c, _ := incident.GraphClassification.FromRemote(g.Classification); !sameClassification(hi.Classification, c) {
			diff("classification", hi.Classification, g.Classification)
		}
		if d, _ := incident.GraphDetermination.FromRemote(g.Determination); !sameDetermination(hi.Determination, d) {
			diff("determination", hi.Determination, g.Determination)
		}
		if !incident.EqualTags(hi.Tags, g.CustomTags) {
			diff("tags", hi.Tags, g.CustomTags)
		}
	case store.LinkSentinel:
		if s == nil {
			return "the emulator shows no Sentinel view"
		}
		p := s.Properties
		st, _ := incident.StatusFromSentinel(p.Status, p.Labels)
		if !incident.SentinelStatus.Equivalent(hi.Status, st) && !(hi.Status == incident.StatusMerged && st == incident.StatusMerged) {
			diff("status", hi.Status, p.Status)
		}
		if hi.Status == incident.StatusMerged || l.ProviderIncidentID != "" {
			break // a mirror of a Defender incident is written through Graph (checked there)
		}
		if sev, _ := incident.SentinelSeverity.FromRemote(p.Severity); !incident.SentinelSeverity.Equivalent(hi.Severity, sev) {
			diff("severity", hi.Severity, p.Severity)
		}
		if oid, foreign := strings.CutPrefix(hi.Owner, "sentinel:"); foreign {
			if !strings.EqualFold(oid, p.Owner.ObjectID) {
				diff("owner", hi.Owner, p.Owner.ObjectID)
			}
		} else if !strings.EqualFold(strings.TrimSpace(hi.Owner), strings.TrimSpace(p.Owner.UserPrincipalName)) {
			diff("owner", hi.Owner, p.Owner.UserPrincipalName)
		}
		if c, _ := incident.SentinelClassification.FromRemote(p.Classification); !sameClassification(hi.Classification, c) {
			diff("classification", hi.Classification, p.Classification)
		}
		if tags := incident.TagsFromLabels(p.Labels); !incident.EqualTags(hi.Tags, tags) {
			diff("tags", hi.Tags, tags)
		}
	}
	return strings.Join(diffs, "; ")
}

func sameClassification(a, b incident.Classification) bool {
	norm := func(c incident.Classification) incident.Classification {
		if c == "" {
			return incident.ClassificationUndetermined
		}
		return c
	}
	return norm(a) == norm(b)
}

func sameDetermination(a, b incident.Determination) bool {
	norm := func(d incident.Determination) incident.Determination {
		if d == "" {
			return incident.DeterminationUnknown
		}
		return d
	}
	return norm(a) == norm(b)
}

// Conflicts checks I5 over the hub's audit: every conflict was decided by its field's policy —
// hub_wins always for the hub, remote_wins always for a remote, latest_wins for either — and
// the same conflict (link, field, both values, rule) was never decided two ways except under
// latest_wins, where the change times decide (and follows_classification, which follows such a
// decision). The planner's determinism itself (same inputs, same plan) is tested by
// reconcile's TestPlan_DeterministicOverRandomRuns and FuzzPlan.
func Conflicts(ctx context.Context, r Run) *Violation {
	snap, err := takeSnapshot(ctx, r.Store)
	if err != nil {
		return violation("I5", err.Error())
	}
	for _, hi := range snap.incidents {
		entries, err := r.Store.History(ctx, hi.TenantID, hi.ID)
		if err != nil {
			return violation("I5", err.Error())
		}
		decided := map[string]string{}
		for _, e := range entries {
			if e.Action != "conflict" {
				continue
			}
			winner := strings.TrimPrefix(e.Result, "won by ")
			rule := reconcile.Rule(e.Detail)
			bad := ""
			switch {
			case rule == reconcile.HubWins && winner != "hub":
				bad = "hub_wins decided for " + winner
			case rule == reconcile.RemoteWins && winner == "hub":
				bad = "remote_wins decided for the hub"
			case winner == "":
				bad = "no winner"
			}
			k := strings.Join([]string{e.Link, e.Field, e.Before, e.After, e.Detail}, "\x00")
			// Under latest_wins the change times decide; a refinement that followed its
			// classification was decided by that conflict, which is checked itself.
			byTimes := rule == reconcile.LatestWins || rule == reconcile.FollowsClassification
			if prev, ok := decided[k]; ok && prev != winner && !byTimes {
				bad = fmt.Sprintf("the same conflict was won by %s before and by %s now", prev, winner)
			}
			decided[k] = winner
			if bad != "" {
				return violation("I5", fmt.Sprintf("incident %s field %s: %s", hi.ID, e.Field, bad), hubHistory(ctx, r.Store, hi.TenantID, hi.ID)...)
			}
		}
	}
	return nil
}

// CommentsOnce checks I6: every hub comment is on every remote copy of its incident that
// socsync writes to exactly once (counted by its [socsync:<ref>] marker in the emulator's
// history of comments), and no comment socsync wrote appears twice anywhere.
func CommentsOnce(ctx context.Context, r Run) *Violation {
	snap, err := takeSnapshot(ctx, r.Store)
	if err != nil {
		return violation("I6", err.Error())
	}
	hist := r.Emulator.History()
	written := map[string][]emulator.HistoryEntry{} // tenant/remote id/ref → the comment writes
	for _, e := range hist {
		if e.Field != "comment" {
			continue
		}
		ref, ok := incident.CommentRefOf(e.New)
		if !ok {
			continue
		}
		id := e.GraphID
		if id == "" {
			id = e.SentinelID
		}
		k := e.Tenant + "/" + id + "/" + ref
		written[k] = append(written[k], e)
	}
	keys := make([]string, 0, len(written))
	for k := range written {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if es := written[k]; len(es) > 1 {
			var h []string
			for _, e := range es {
				h = append(h, fmtHistory(e))
			}
			return violation("I6", fmt.Sprintf("comment %s was written %d times", k, len(es)), h...)
		}
	}
	for _, hi := range snap.incidents {
		if hi.Status == incident.StatusMerged {
			continue
		}
		mirrored := false
		for _, l := range hi.Links {
			if l.Kind == store.LinkGraph {
				mirrored = true
			}
		}
		for _, c := range hi.Comments {
			if c.Origin != incident.OriginHub {
				continue
			}
			for _, l := range hi.Links {
				if l.Kind == store.LinkWebhook || (l.Kind == store.LinkSentinel && mirrored) || l.SyncState == "failed" {
					continue // a mirror gets the comment through its Defender incident
				}
				id := l.ExternalID
				if n := len(written[l.TenantID+"/"+id+"/"+incident.CommentRef(c.ID)]); n != 1 {
					return violation("I6", fmt.Sprintf("hub comment %s (%q) of incident %s is on %s %s %d times, want 1", c.ID, clip(c.Text), hi.ID, l.Kind, id, n),
						hubHistory(ctx, r.Store, hi.TenantID, hi.ID)...)
				}
			}
		}
	}
	return nil
}
