package check

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/socsync/socsync/internal/emulator"
	"github.com/socsync/socsync/internal/incident"
	"github.com/socsync/socsync/internal/store"
)

// The checkers of I1, I2, I3, I5 and I6 must fire: each is shown a small run that keeps its
// invariant (newFixture asserts that every checker passes on it), then the same run with one
// violation made on purpose, and must report that violation with the records that show it.

// hubLink returns the hub's link of the given kind of a fixture incident.
func (f *fixture) hubLink(t *testing.T, r remoteRef, kind store.LinkKind) store.Link {
	t.Helper()
	links, err := f.st.Links(context.Background(), r.tenant, r.hub)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if l.Kind == kind {
			return l
		}
	}
	t.Fatalf("hub incident %s has no %s link: %+v", r.hub, kind, links)
	return store.Link{}
}

func TestCollected_FlagsARemoteCommentAndARemoteIncidentTheHubNeverGot(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	// With the time bound asked for, All checks it: no arrival was recorded for this run.
	wantViolation(t, All(ctx, f.run, Options{Arrivals: NewArrivals(), Within: func(string) time.Duration { return time.Minute }}),
		"I1", "never reached the hub (bound 1m0s)", "created")
	// A remote analyst's comment made after the hub stopped.
	if err := f.env.Emulator.PatchIncident(f.mirrored.tenant, f.mirrored.remote, []byte(`{"comment":"fx note the hub never read"}`)); err != nil {
		t.Fatal(err)
	}
	wantViolation(t, Collected(ctx, f.run), "I1", `remote comment "fx note the hub never read"`,
		`comment "" → "fx note the hub never read"`, // the emulator's record of it
		`hub comment`, `"fx remote note"`) // the hub's comments, which lack it
	// A remote incident made after the hub stopped: reported first (incidents before comments).
	c, err := f.env.Emulator.CreateIncident(f.defender.tenant, emulator.NewIncident{Title: "fx-never-collected"})
	if err != nil {
		t.Fatal(err)
	}
	wantViolation(t, Collected(ctx, f.run), "I1", `graph "`+c.GraphID+`" sentinel "" is in 0 hub incidents, want 1`, " "+c.GraphID+" by admin/", "created")
}

func TestCollected_FlagsAMirroredIncidentSplitOverTwoHubIncidents(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	// Move the mirrored incident's Sentinel link to another hub incident of its tenant.
	var other string
	l := f.hubLink(t, f.mirrored, store.LinkSentinel)
	err := f.st.InTx(ctx, func(tx *store.Tx) error {
		inc := &incident.Incident{TenantID: f.mirrored.tenant, Title: "fx-other", Fields: incident.Fields{Status: incident.StatusNew, Severity: incident.SeverityLow}}
		if _, err := tx.CreateIncident(ctx, inc, "fx-other", store.Change{Summary: "test"}); err != nil {
			return err
		}
		other = inc.ID
		l.IncidentID = other
		_, err := tx.UpsertLink(ctx, &l)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	wantViolation(t, Collected(ctx, f.run), "I1", "its Sentinel view is in hub incidents ["+other+"], its Defender view in ["+f.mirrored.hub+"]",
		"fx-mirrored")
}

func TestSinkOnce_FlagsAMissingVersionAnUnknownIncidentARepeatBeyondItsAllowanceAndADifferentRepeat(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	stream := f.run.stream()
	rows := f.env.Emulator.Ingested(stream)
	if len(rows) == 0 {
		t.Fatal("the fixture sent no sink rows")
	}
	// A hub version the forwarder never sent (the hub is stopped).
	si, err := f.st.Incident(ctx, f.defender.tenant, f.defender.hub)
	if err != nil {
		t.Fatal(err)
	}
	err = f.st.InTx(ctx, func(tx *store.Tx) error {
		si.Severity = incident.SeverityLow
		return tx.UpdateIncident(ctx, &si.Incident, store.Change{Summary: "fx: severity high → low", Actor: "fx"})
	})
	if err != nil {
		t.Fatal(err)
	}
	si, _ = f.st.Incident(ctx, f.defender.tenant, f.defender.hub)
	wantViolation(t, SinkOnce(ctx, f.run, 0), "I2", "never reached the sink", "hub audit")
	// Its row arrives: the run keeps I2 again.
	var last json.RawMessage
	for _, b := range rows {
		var r sinkRow
		json.Unmarshal(b, &r)
		if r.IncidentKey == si.ID {
			last = b
		}
	}
	row := map[string]any{}
	json.Unmarshal(last, &row)
	row["Version"] = si.Version
	b, _ := json.Marshal(row)
	f.ingest(t, b)
	if v := SinkOnce(ctx, f.run, 0); v != nil {
		t.Fatalf("flagged a sink with every version once: %v", v)
	}
	// The same row again: one repeat; allowed only when repeats are.
	f.ingest(t, b)
	wantViolation(t, SinkOnce(ctx, f.run, 0), "I2", "1 rows repeat an earlier row, at most 0 allowed")
	for _, allowed := range []int{1, -1} {
		if v := SinkOnce(ctx, f.run, allowed); v != nil {
			t.Fatalf("flagged one identical repeat with %d allowed: %v", allowed, v)
		}
	}
	// A row of an incident the hub does not have.
	row["IncidentKey"] = "fx-no-such-incident"
	b2, _ := json.Marshal(row)
	f.ingest(t, b2)
	wantViolation(t, SinkOnce(ctx, f.run, -1), "I2", "the sink has rows of incident fx-no-such-incident, which the hub does not have")
	// The same (incident, version) again with other contents.
	row["IncidentKey"], row["Title"] = si.ID, "fx-changed-title"
	b3, _ := json.Marshal(row)
	f.ingest(t, b3)
	wantViolation(t, SinkOnce(ctx, f.run, -1), "I2", "was sent twice with different contents", "first: ", "again: ", "fx-changed-title")
}

func TestConverged_FlagsAFailedLinkUnlessAllowedAndARemoteValueTheHubLacks(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	l := f.hubLink(t, f.sentinelOnly, store.LinkSentinel)
	err := f.st.InTx(ctx, func(tx *store.Tx) error {
		return tx.SetLinkSync(ctx, f.sentinelOnly.tenant, l.ID, nil, "failed", "fx: refused by Sentinel")
	})
	if err != nil {
		t.Fatal(err)
	}
	wantViolation(t, Converged(ctx, f.run, false), "I3", "is failed (fx: refused by Sentinel)", "hub incident "+f.sentinelOnly.hub)
	if v := Converged(ctx, f.run, true); v != nil {
		t.Fatalf("flagged a failed link with failed links allowed: %v", v)
	}
	// A remote analyst's change the hub never read.
	if err := f.env.Emulator.PatchIncident(f.defender.tenant, f.defender.remote, []byte(`{"severity":"low"}`)); err != nil {
		t.Fatal(err)
	}
	wantViolation(t, Converged(ctx, f.run, true), "I3", "severity: hub high, graph low", `severity "high" → "low"`, "hub incident "+f.defender.hub)
}

func TestCommentsOnce_FlagsAHubCommentNeverWrittenAndOneWrittenTwice(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	// A hub comment the (stopped) hub never wrote.
	err := f.st.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.AddComment(ctx, f.mirrored.tenant, &incident.Comment{IncidentID: f.mirrored.hub, Origin: incident.OriginHub, Author: "fx", Text: "fx never written"}, "")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	wantViolation(t, CommentsOnce(ctx, f.run), "I6", `("fx never written") of incident `+f.mirrored.hub+" is on graph "+f.mirrored.remote+" 0 times, want 1", "hub audit")
	// A hub comment written a second time (its marker twice in the remote's history).
	comments, _ := f.st.Comments(ctx, f.defender.tenant, f.defender.hub)
	var ref string
	for _, c := range comments {
		if c.Origin == incident.OriginHub {
			ref = incident.CommentRef(c.ID)
		}
	}
	if ref == "" {
		t.Fatal("the fixture has no hub comment")
	}
	if err := f.env.Emulator.PatchIncident(f.defender.tenant, f.defender.remote, []byte(`{"comment":"fx hub note again [socsync:`+ref+`]"}`)); err != nil {
		t.Fatal(err)
	}
	wantViolation(t, CommentsOnce(ctx, f.run), "I6", "/"+f.defender.remote+"/"+ref+" was written 2 times", "fx hub note again", "by graph/")
}

// conflictStore is a store with one incident and the given audit entries.
func conflictStore(t *testing.T, entries ...store.AuditEntry) (Run, string) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+t.TempDir()+"/c.db", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.SyncTenants(ctx, []store.Tenant{{ID: "t1", Name: "t1"}}, []store.Source{{TenantID: "t1", Kind: store.KindDefender}}); err != nil {
		t.Fatal(err)
	}
	inc := &incident.Incident{TenantID: "t1", Title: "c", Fields: incident.Fields{Status: incident.StatusNew, Severity: incident.SeverityLow}}
	err = st.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.CreateIncident(ctx, inc, "c", store.Change{Summary: "test"}); err != nil {
			return err
		}
		for _, e := range entries {
			e.TenantID, e.IncidentID, e.Actor, e.Action = "t1", inc.ID, "socsync", "conflict"
			if err := tx.Audit(ctx, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return Run{Store: st}, inc.ID
}

func TestConflicts_FlagsADecisionAgainstItsRuleOrTheSameConflictDecidedTwoWays(t *testing.T) {
	t.Parallel()
	c := func(link, field, hub, remote, winner, rule string) store.AuditEntry {
		return store.AuditEntry{Link: link, Field: field, Before: hub, After: remote, Result: "won by " + winner, Detail: rule}
	}
	ctx := context.Background()
	good := []store.AuditEntry{
		c("graph:1", "severity", "high", "low", "hub", "hub_wins"),
		c("graph:1", "owner", "a", "b", "graph:1", "remote_wins"),
		c("graph:1", "status", "active", "resolved", "hub", "latest_wins"),
		c("graph:1", "status", "active", "resolved", "graph:1", "latest_wins"), // latest wins: the times decide
		// A refinement follows whoever won its classification's conflict, either way round.
		c("graph:1", "determination", "malware", "other", "hub", "follows_classification"),
		c("graph:1", "determination", "malware", "other", "graph:1", "follows_classification"),
	}
	if v := Conflicts(ctx, mustRun(conflictStore(t, good...))); v != nil {
		t.Fatalf("flagged conflicts decided by their rules: %v", v)
	}
	for _, tc := range []struct {
		name  string
		extra store.AuditEntry
		want  string
	}{
		{"hub_wins for a remote", c("graph:1", "tags", "[a]", "[b]", "graph:1", "hub_wins"), "field tags: hub_wins decided for graph:1"},
		{"remote_wins for the hub", c("sentinel:2", "owner", "a", "b", "hub", "remote_wins"), "field owner: remote_wins decided for the hub"},
		{"no winner", store.AuditEntry{Link: "graph:1", Field: "severity", Before: "high", After: "low", Detail: "latest_wins"}, "field severity: no winner"},
		{"two ways", c("graph:1", "owner", "a", "b", "sentinel:2", "remote_wins"), "field owner: the same conflict was won by graph:1 before and by sentinel:2 now"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run, id := conflictStore(t, append(append([]store.AuditEntry(nil), good...), tc.extra)...)
			wantViolation(t, Conflicts(ctx, run), "I5", "incident "+id+" "+tc.want, "hub audit", "conflict "+tc.extra.Link+" "+tc.extra.Field)
		})
	}
}

func mustRun(r Run, _ string) Run { return r }

func TestTimely_FlagsARemoteChangeThatReachedTheHubLateOrNever(t *testing.T) {
	t.Parallel()
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	h := func(seq int, d time.Duration, version int, field, source string) emulator.HistoryEntry {
		return emulator.HistoryEntry{Seq: seq, Time: at(d), Tenant: "A", GraphID: "7", SentinelID: "s-7", Source: source, Actor: "x", Field: field, Version: version}
	}
	hist := []emulator.HistoryEntry{
		h(1, 0, 1, "created", "admin"),
		h(2, time.Second, 2, "severity", "admin"),
		h(3, time.Second, 2, "status", "admin"), // the same write: one change time
		{Seq: 4, Time: at(1500 * time.Millisecond), Tenant: "A", GraphID: "7", AlertID: "al", Field: "alert.status", Version: 2},
		h(5, 2*time.Second, 3, "severity", "drift"), // silent: its change time did not move
		h(6, 5*time.Second, 4, "owner", "admin"),
	}
	obs := func(id string, updated time.Duration) incident.Observation {
		return incident.Observation{ExternalID: id, UpdatedAt: at(updated)}
	}
	a := NewArrivals()
	a.Observed("a", obs("7", 0), at(300*time.Millisecond))
	a.Observed("a", obs("7", 0), at(600*time.Millisecond)) // a re-read: not newer
	a.Observed("a", obs("s-7", time.Second), at(1500*time.Millisecond))
	a.Observed("a", obs("7", time.Second), at(1800*time.Millisecond)) // the mirror was first
	within := func(d time.Duration) func(string) time.Duration { return func(string) time.Duration { return d } }

	// v4 never arrived.
	wantViolation(t, func() *Violation { v, _ := Timely(hist, a, within(time.Second), time.Time{}); return v }(),
		"I1", "at 12:00:05.000 (version 4) never reached the hub", "owner")
	// Unless the run ended before its time was up.
	if v, res := Timely(hist, a, within(time.Second), at(4*time.Second)); v != nil || res.Checked != 2 || res.Worst != 500*time.Millisecond {
		t.Fatalf("%v, %+v; want no violation, 2 changes checked (not the alert's, the second field's or the silent one), worst 500ms", v, res)
	}
	a.Observed("a", obs("7", 5*time.Second), at(5800*time.Millisecond))
	if v, res := Timely(hist, a, within(time.Second), time.Time{}); v != nil || res.Checked != 3 || res.Worst != 800*time.Millisecond {
		t.Fatalf("%v, %+v; want no violation, 3 changes checked, worst 800ms", v, res)
	}
	wantViolation(t, func() *Violation { v, _ := Timely(hist, a, within(700*time.Millisecond), time.Time{}); return v }(),
		"I1", "reached the hub 800ms later, bound 700ms", "owner", "hub stored it at 12:00:05.800")
}
