package chaos

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/socsync/socsync/internal/chaos/check"
	"github.com/socsync/socsync/internal/config"
	"github.com/socsync/socsync/internal/emulator"
	"github.com/socsync/socsync/internal/hub"
	"github.com/socsync/socsync/internal/hub/hubtest"
	"github.com/socsync/socsync/internal/store"
)

// TestR2_SentinelWriteBudget_NeverExceededBacklogDrainsPendingShown (R2): the Sentinel write
// budget scaled down to a burst of 2 and 2 per second (the documented minimum is 75 per 5
// minutes), and many hub edits and comments of Sentinel-only incidents at once. socsync's
// writes never go above the budget (replayed against a token bucket from the emulator's
// arrival times), the emulator never has to refuse one for its limit, the incidents show
// "pending" while the backlog drains, and in the end every change is there once. (Sentinel's
// read limit — comments and alerts, 100 per 5 minutes — is raised, in the emulator and in
// socsync's budget: at its documented pace the alert reads of the new incidents alone take two
// minutes, and this run is about writes.)
func TestR2_SentinelWriteBudget_NeverExceededBacklogDrainsPendingShown(t *testing.T) {
	t.Parallel()
	const burst, rate = 2, 2.0
	limits := emulator.DefaultLimits()
	limits.SentinelReadsPer5Min = 6000
	f := startRun(t, hubtest.Options{Tenants: 3, Emulator: emulator.Options{Limits: &limits},
		Extra: fmt.Sprintf("budgets:\n  sentinel-write: {burst: %d, per_second: %g}\n  sentinel-read: {burst: 50, per_second: 10}\n", burst, rate)}, nil, hub.Options{})
	ti := f.tenant(2) // two workspaces with Sentinel-only Defender for Cloud incidents
	n := pick(16, 60)
	var ids []string
	for i := range n {
		c := f.create(ti.TenantID, emulator.NewIncident{Title: fmt.Sprintf("r2-%d", i), Where: "sentinel", Workspace: ti.Sentinel[i%2].Workspace,
			Alerts: []emulator.NewAlert{{Title: "a", ServiceSource: "microsoftDefenderForCloud"}}})
		ids = append(ids, f.hubID(ti.TenantID, c.SentinelID))
	}
	f.settle()
	mark := len(f.requests())
	for i, id := range ids {
		body := fmt.Sprintf(`{"severity":"high","owner":%q}`, ti.Users[i%len(ti.Users)].UPN)
		if i%2 == 1 {
			body = `{"status":"resolved","classification":"true_positive"}`
		}
		f.edit(id, body)
		f.comment(id, fmt.Sprintf("r2 note %d", i))
	}
	var list struct {
		Items []struct {
			SyncState string `json:"sync_state"`
		} `json:"items"`
	}
	f.hub.API(t, f.token, "GET", "/api/v1/incidents?limit=500&q=r2-", "", &list)
	pending := 0
	for _, it := range list.Items {
		if it.SyncState == "pending" {
			pending++
		}
	}
	if pending == 0 {
		t.Error("no incident showed pending while the write backlog drained")
	}
	f.settle()
	recs := f.requests()
	sentinelWrite := func(r emulator.RequestRecord) bool {
		return r.API == "arm" && r.Method == http.MethodPut && r.Seq > uint64(recs[mark].Seq)-1
	}
	if v := check.WithinBudget(recs, sentinelWrite, burst, rate); v != nil {
		t.Error(v)
	}
	if v := check.NoLimit429(recs); v != nil {
		t.Error(v)
	}
	f.checkAll(check.Options{})
	writes := count(recs, sentinelWrite)
	if writes < 2*n {
		t.Errorf("%d Sentinel writes for %d edits and %d comments", writes, n, n)
	}
	t.Logf("R2 figures: %d Sentinel writes (edits and comments of %d incidents) within %d then %g/s; %d of them pending right after the edits; %d requests; sink rows %d",
		writes, n, burst, rate, pending, len(recs), f.env.Emulator.IngestedTotal("Custom-SocsyncIncidents"))
}

// TestR3_ServerErrorBursts_EndStateAsIfAppliedOnceOneCommentPerIntent (R3): 30 % of the Graph
// and ARM calls of two tenants fail with 5xx, and 15 % of their writes are applied but their
// answer is cut off (the write happened; socsync cannot know), 20 % of the uploads to the sink
// fail with 5xx, while incidents are edited and commented in the hub and remotely. The end
// state is as if every change was applied once: converged, one comment per intent on each
// remote, one sink row per version.
func TestR3_ServerErrorBursts_EndStateAsIfAppliedOnceOneCommentPerIntent(t *testing.T) {
	t.Parallel()
	f := startRun(t, hubtest.Options{Tenants: 3}, nil, hub.Options{})
	t1, t2 := f.tenant(1), f.tenant(2)
	type target struct{ tenant, remote, hub string }
	var targets []target
	n := pick(6, 20)
	for i := range n {
		m := f.create(t1.TenantID, emulator.NewIncident{Title: fmt.Sprintf("r3-m-%d", i), Where: "defender+sentinel", Alerts: []emulator.NewAlert{{Title: "a"}}})
		s := f.create(t2.TenantID, emulator.NewIncident{Title: fmt.Sprintf("r3-s-%d", i), Where: "sentinel", Workspace: t2.Sentinel[1].Workspace,
			Alerts: []emulator.NewAlert{{Title: "a", ServiceSource: "microsoftDefenderForCloud"}}})
		targets = append(targets, target{t1.TenantID, m.GraphID, f.hubID(t1.TenantID, m.GraphID)}, target{t2.TenantID, s.SentinelID, f.hubID(t2.TenantID, s.SentinelID)})
	}
	var rules []emulator.FaultRule
	for _, ten := range []string{t1.TenantID, t2.TenantID} {
		rules = append(rules,
			emulator.FaultRule{API: "graph", Tenant: ten, Method: "PATCH", Rate5xx: 0.3, RateTruncate: 0.15},
			emulator.FaultRule{API: "graph", Tenant: ten, Method: "POST", Rate5xx: 0.3, RateTruncate: 0.15},
			emulator.FaultRule{API: "arm", Tenant: ten, Method: "PUT", Rate5xx: 0.3, RateTruncate: 0.15},
			emulator.FaultRule{API: "graph", Tenant: ten, Rate5xx: 0.3},
			emulator.FaultRule{API: "arm", Tenant: ten, Rate5xx: 0.3})
	}
	rules = append(rules, emulator.FaultRule{API: "ingestion", Rate5xx: 0.2})
	f.faults(rules...)
	intents := 0
	for round := range pick(4, 12) {
		for i, tg := range targets {
			if (i+round)%2 == 0 {
				f.edit(tg.hub, fmt.Sprintf(`{"severity":%q,"tags":["r3-%d"]}`, []string{"low", "medium", "high"}[round%3], round))
				intents++
			}
			if (i+round)%3 == 0 {
				f.comment(tg.hub, fmt.Sprintf("r3 hub note %d/%d", round, i))
				intents++
			}
			if (i+round)%4 == 1 {
				body := `{"assignedTo":"` + userOf(f, tg.tenant, round) + `","comment":"remote note"}`
				if tg.tenant == t2.TenantID {
					body = `{"severity":"Medium","comment":"remote note"}`
				}
				if err := f.env.Emulator.PatchIncident(tg.tenant, tg.remote, []byte(body)); err != nil {
					t.Fatal(err)
				}
			}
		}
		time.Sleep(pick(500*time.Millisecond, 2*time.Second))
	}
	// Let the faults bite the backlog for a while, then stop them.
	f.polled(3)
	recs := f.requests()
	fiveXX := count(recs, func(r emulator.RequestRecord) bool { return r.Fault == "5xx" })
	truncated := count(recs, func(r emulator.RequestRecord) bool { return r.Fault == "truncate" })
	if fiveXX < 10 || truncated == 0 {
		t.Fatalf("%d 5xx and %d truncated answers injected; the test did not test bursts", fiveXX, truncated)
	}
	f.faults()
	f.settle()
	f.checkAll(check.Options{})
	recs = f.requests()
	t.Logf("R3 figures: %d 5xx and %d cut-off write answers injected over %d requests; %d hub intents (edits and comments) → %d writes taken by the remotes",
		fiveXX, truncated, len(recs), intents, check.Writes(recs))
}

// TestR4_HungTenant_DeadlinesKeepTheOthersGoing (R4): every Graph call of one tenant hangs
// (the emulator holds it until the client gives up) while that tenant's incidents are edited in
// the hub. Its polls end at their deadline (polling.timeout) and fail; the other tenants keep
// polling, and their hub edits reach their remotes while the hung tenant still hangs; once it
// answers again, its backlog drains and every checker passes.
func TestR4_HungTenant_DeadlinesKeepTheOthersGoing(t *testing.T) {
	t.Parallel()
	f := startRun(t, hubtest.Options{Tenants: 3}, func(env *hubtest.Env) {
		env.Config.Polling.Timeout = config.Duration(3 * time.Second)
	}, hub.Options{})
	hung, t1 := f.tenant(0), f.tenant(1)
	var hungIDs, otherIDs []string
	for i := range 12 {
		c := f.create(hung.TenantID, emulator.NewIncident{Title: fmt.Sprintf("r4-hung-%d", i)})
		hungIDs = append(hungIDs, f.hubID(hung.TenantID, c.GraphID))
	}
	for i := range 4 {
		c := f.create(t1.TenantID, emulator.NewIncident{Title: fmt.Sprintf("r4-other-%d", i), Where: "defender+sentinel"})
		otherIDs = append(otherIDs, f.hubID(t1.TenantID, c.GraphID))
	}
	f.settle()
	f.faults(emulator.FaultRule{API: "graph", Tenant: hung.TenantID, RateHang: 1})
	for _, id := range hungIDs { // more than the reconciler has workers
		f.edit(id, `{"severity":"high"}`)
	}
	f.polled(3, t1.TenantID, f.tenant(2).TenantID)
	for _, id := range otherIDs {
		f.edit(id, `{"severity":"high","status":"active"}`)
	}
	hubtest.Eventually(t, "the other tenant's edits reach Defender while one tenant hangs", func() bool {
		for _, id := range otherIDs {
			si, err := f.store().Incident(context.Background(), t1.TenantID, id)
			if err != nil || si.SyncState != "in_sync" {
				return false
			}
		}
		return true
	})
	hubtest.Eventually(t, "the hung source's poll ends at its deadline", func() bool {
		src, err := f.store().Source(context.Background(), hung.TenantID, store.SourceID(hung.TenantID, store.KindDefender, ""))
		return err == nil && strings.Contains(src.LastError, "polling.timeout")
	})
	hangs := count(f.requests(), func(r emulator.RequestRecord) bool { return r.Fault == "hang" })
	f.faults()
	f.settle()
	f.checkAll(check.Options{})
	t.Logf("R4 figures: %d hung requests ended by socsync's deadlines; %d hub edits of the hung tenant drained after it answered; %d requests",
		hangs, len(hungIDs), len(f.requests()))
}

// TestR5_TruncatedAndResetPages_RetriedCursorNeverPastUnstoredData (R5): the list pages of a
// Defender source with more than 50 incidents (several pages) and of a Sentinel workspace are
// cut off halfway (status and headers sent, half the body, then the connection aborted) or
// reset 40 % of the time, and uploads to the sink too. Pages are retried, the cursor never moves
// back nor past data that was not stored (every incident ends up in the hub, complete, once),
// and every checker passes; repeated sink rows (an upload stored but its answer lost) are the
// same rows.
func TestR5_TruncatedAndResetPages_RetriedCursorNeverPastUnstoredData(t *testing.T) {
	t.Parallel()
	f := startRun(t, hubtest.Options{Tenants: 3}, nil, hub.Options{})
	t0, t2 := f.tenant(0), f.tenant(2)
	f.faults(
		emulator.FaultRule{API: "graph", Route: "/v1.0/security/incidents", RateTruncate: 0.2, RateReset: 0.2},
		emulator.FaultRule{API: "arm", Tenant: t2.TenantID, Method: "GET", RateTruncate: 0.2, RateReset: 0.2},
		emulator.FaultRule{API: "ingestion", RateTruncate: 0.1, RateReset: 0.1},
	)
	n := pick(130, 400)
	for i := range n {
		f.create(t0.TenantID, emulator.NewIncident{Title: fmt.Sprintf("r5-g-%d", i), Description: strings.Repeat("d", 500),
			Alerts: []emulator.NewAlert{{Title: "a"}, {Title: "b"}}})
		if i%3 == 0 {
			f.create(t2.TenantID, emulator.NewIncident{Title: fmt.Sprintf("r5-s-%d", i), Where: "sentinel", Workspace: t2.Sentinel[1].Workspace,
				Alerts: []emulator.NewAlert{{Title: "a", ServiceSource: "microsoftDefenderForCloud"}}})
		}
	}
	want := n + (n+2)/3
	f.collected(want)
	// Change some while the faults go on: later pages, same cursor rules.
	for i := 0; i < n; i += 7 {
		list, _ := f.store().ListIncidents(context.Background(), store.Tenants(t0.TenantID), store.ListFilter{Text: fmt.Sprintf("r5-g-%d", i)}, store.ListPage{}, 1)
		if len(list) == 1 {
			f.edit(list[0].ID, `{"severity":"low"}`)
		}
	}
	f.polled(3)
	recs := f.requests()
	cut := count(recs, func(r emulator.RequestRecord) bool { return r.Fault == "truncate" || r.Fault == "reset" })
	if cut < 5 {
		t.Fatalf("only %d answers cut off", cut)
	}
	f.faults()
	f.settle()
	f.checkAll(check.Options{RepeatedRows: -1})
	list, _ := f.store().ListIncidents(context.Background(), store.AllTenants(), store.ListFilter{}, store.ListPage{}, 100000)
	for _, si := range list {
		wantAlerts := 1
		if strings.HasPrefix(si.Title, "r5-g-") {
			wantAlerts = 2
			if len(si.Description) != 500 {
				t.Errorf("%s: description of %d characters, want 500 (a partial row)", si.Title, len(si.Description))
			}
		}
		if si.AlertCount != wantAlerts {
			t.Errorf("%s: %d alerts, want %d (a partial row)", si.Title, si.AlertCount, wantAlerts)
		}
	}
	rows := f.env.Emulator.IngestedTotal("Custom-SocsyncIncidents")
	t.Logf("R5 figures: %d answers cut off or reset over %d requests; %d incidents collected complete; %d sink rows received", cut, len(recs), len(list), rows)
}
