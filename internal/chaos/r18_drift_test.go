package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
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

// TestR18_SilentDrift_RepairedByTheBudgetPacedFullResync (R18): remote incidents change
// without a newer change time — the emulator's silent change (PATCH …/drift), as the real
// services sometimes make one — on a Defender-only, a mirrored and a Sentinel-only incident,
// among 120 Defender and 60 Sentinel incidents (several pages each). With the full resync
// pushed out (polling.resync 1 h), three incremental polls of every source later the hub still
// has the old values and the convergence checker reports the drift. The hub is then restarted
// with a resync every 5 s: the full re-read repairs all three, and its calls — with every other
// call since the restart — stay within the configured budgets (Graph: a burst of 2, then 1 per
// second per tenant; ARM reads: 3, then 2 per second per subscription), replayed against token
// buckets from the emulator's arrival times; no call needed a 429. In the end every checker
// passes. (The lower-level version: TestHub_FullResyncRepairsSilentDrift.)
func TestR18_SilentDrift_RepairedByTheBudgetPacedFullResync(t *testing.T) {
	t.Parallel()
	const graphBurst, graphRate, armBurst, armRate = 2, 1.0, 3, 2.0
	limits := emulator.DefaultLimits()
	limits.SentinelReadsPer5Min = 6000
	f := startRun(t, hubtest.Options{Tenants: 3, Overlap: "1s", Resync: "1h", Emulator: emulator.Options{Limits: &limits},
		Extra: fmt.Sprintf("budgets:\n  graph: {burst: %d, per_second: %g}\n  arm-read: {burst: %d, per_second: %g}\n  sentinel-read: {burst: 50, per_second: 10}\n",
			graphBurst, graphRate, armBurst, armRate)}, nil, hub.Options{})
	t0, t1, t2 := f.tenant(0), f.tenant(1), f.tenant(2)
	const nGraph, nSentinel = 120, 60
	// The incidents that will drift first; the others more than the overlap later, so that the
	// cursors move past the drifting ones and incremental polls no longer re-read them.
	d := f.create(t0.TenantID, emulator.NewIncident{Title: "r18-defender", Severity: "low"})
	m := f.create(t1.TenantID, emulator.NewIncident{Title: "r18-mirrored", Severity: "low", Where: "defender+sentinel"})
	s := f.create(t2.TenantID, emulator.NewIncident{Title: "r18-sentinel", Severity: "Low", Where: "sentinel", Workspace: t2.Sentinel[1].Workspace})
	time.Sleep(2 * time.Second)
	for i := range nGraph - 1 {
		f.create(t0.TenantID, emulator.NewIncident{Title: fmt.Sprintf("r18-g-%d", i), Severity: "low"})
	}
	f.create(t1.TenantID, emulator.NewIncident{Title: "r18-later", Where: "defender+sentinel"})
	for i := range nSentinel - 1 {
		f.create(t2.TenantID, emulator.NewIncident{Title: fmt.Sprintf("r18-s-%d", i), Severity: "Low", Where: "sentinel", Workspace: t2.Sentinel[1].Workspace})
	}
	f.collected(nGraph + 2 + nSentinel)
	f.settle()
	dID, mID, sID := f.hubID(t0.TenantID, d.GraphID), f.hubID(t1.TenantID, m.GraphID), f.hubID(t2.TenantID, s.SentinelID)
	drifts := []struct {
		tenant, remote, hub, body, source string
		repaired                          func(store.StoredIncident) bool
	}{
		{t0.TenantID, d.GraphID, dID, `{"severity":"high"}`, store.SourceID(t0.TenantID, store.KindDefender, ""),
			func(si store.StoredIncident) bool { return si.Severity == "high" }},
		{t1.TenantID, m.GraphID, mID, `{"severity":"medium"}`, store.SourceID(t1.TenantID, store.KindDefender, ""),
			func(si store.StoredIncident) bool { return si.Severity == "medium" }},
		{t2.TenantID, s.SentinelID, sID, `{"labels":["drifted"]}`, store.SourceID(t2.TenantID, store.KindSentinel, t2.Sentinel[1].SubscriptionID+"/"+t2.Sentinel[1].ResourceGroup+"/"+t2.Sentinel[1].Workspace),
			func(si store.StoredIncident) bool { return slices.Contains(si.Tags, "drifted") }},
	}
	resynced := func() map[string]time.Time {
		srcs, err := f.store().Sources(context.Background(), store.AllTenants())
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]time.Time{}
		for _, src := range srcs {
			var c struct {
				R time.Time `json:"r"`
			}
			json.Unmarshal([]byte(src.Cursor), &c)
			out[src.ID] = c.R
		}
		return out
	}
	before := resynced()
	for _, dr := range drifts {
		if err := f.env.Emulator.DriftIncident(dr.tenant, dr.remote, []byte(dr.body)); err != nil {
			t.Fatal(err)
		}
	}
	f.polled(3)
	for _, dr := range drifts {
		if si, _ := f.store().Incident(context.Background(), dr.tenant, dr.hub); dr.repaired(si) {
			t.Errorf("an incremental poll collected the silent change of %s (%s): the test does not test the full resync", dr.remote, dr.body)
		}
	}
	v := check.Converged(context.Background(), f.run, false)
	if v == nil || !(strings.Contains(v.Message, dID) || strings.Contains(v.Message, mID) || strings.Contains(v.Message, sID)) {
		t.Errorf("the convergence checker did not report the drift: %v", v)
	}
	for id, r := range resynced() {
		if !r.Equal(before[id]) {
			t.Errorf("source %s ran a full resync with polling.resync 1h", id)
		}
	}

	// The same database, a hub with a full resync every 5 s.
	mark := len(f.requests())
	f.env.Config.Polling.Resync = config.Duration(5 * time.Second)
	f = f.restart(hub.Options{})
	restarted := time.Now()
	hubtest.Eventually(t, "the full resync repairs every silent change", func() bool {
		for _, dr := range drifts {
			if si, _ := f.store().Incident(context.Background(), dr.tenant, dr.hub); !dr.repaired(si) {
				return false
			}
		}
		return true
	})
	repairedIn := time.Since(restarted)
	after := resynced()
	for _, dr := range drifts {
		if r, ok := after[dr.source]; !ok || !r.After(before[dr.source]) {
			t.Errorf("source %s repaired a silent change without a full resync (resynced %s, before %s)", dr.source, r, before[dr.source])
		}
	}
	f.settle()
	f.checkAll(check.Options{})
	recs := f.requests()[mark:]
	for _, ti := range []emulator.TenantInfo{t0, t1, t2} {
		graphOf := func(r emulator.RequestRecord) bool {
			return r.API == "graph" && strings.EqualFold(r.Tenant, ti.TenantID)
		}
		if v := check.WithinBudget(recs, graphOf, graphBurst, graphRate); v != nil {
			t.Errorf("tenant %s's Graph calls: %v", ti.Name, v)
		}
	}
	subs := map[string]bool{}
	for _, ti := range []emulator.TenantInfo{t1, t2} {
		for _, ws := range ti.Sentinel {
			subs[ws.SubscriptionID] = true
		}
	}
	for sub := range subs {
		armReadOf := func(r emulator.RequestRecord) bool {
			return r.API == "arm" && r.Method == http.MethodGet && r.Subscription == sub && !strings.HasSuffix(r.Route, "/comments")
		}
		if v := check.WithinBudget(recs, armReadOf, armBurst, armRate); v != nil {
			t.Errorf("subscription %s's ARM reads: %v", sub, v)
		}
	}
	if v := check.NoLimit429(recs); v != nil {
		t.Error(v)
	}
	graphPages := count(recs, func(r emulator.RequestRecord) bool {
		return r.API == "graph" && strings.EqualFold(r.Tenant, t0.TenantID) && r.Route == "/v1.0/security/incidents"
	})
	sentinelPages := count(recs, func(r emulator.RequestRecord) bool {
		return r.API == "arm" && r.Method == http.MethodGet && strings.HasSuffix(r.Route, "SecurityInsights/incidents")
	})
	if graphPages < (nGraph+49)/50 {
		t.Errorf("%d Graph list pages of tenant %s since the restart: fewer than one full read of %d incidents", graphPages, t0.Name, nGraph)
	}
	t.Logf("R18 figures: 3 silent changes (Defender, mirrored, Sentinel-only) among %d Defender and %d Sentinel-only incidents, missed by 3 incremental polls and reported by the convergence checker; "+
		"repaired %s after a restart with a 5 s resync; %d calls since the restart (%d Graph list pages of the 120-incident tenant, %d Sentinel list pages) within Graph %d then %g/s and ARM reads %d then %g/s, no 429",
		nGraph+2, nSentinel, repairedIn.Round(100*time.Millisecond), len(recs), graphPages, sentinelPages, graphBurst, graphRate, armBurst, armRate)
}
