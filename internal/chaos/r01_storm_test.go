package chaos

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/socsync/socsync/internal/chaos/check"
	"github.com/socsync/socsync/internal/emulator"
	"github.com/socsync/socsync/internal/hub"
	"github.com/socsync/socsync/internal/hub/hubtest"
	"github.com/socsync/socsync/internal/store"
)

// TestR1_GraphStormOnSomeTenants_NoCallBeforeRetryAfterNothingLostOthersUnaffected (R1): 30 % of
// the Graph calls of two of four tenants get 429 with Retry-After 1–3 s (1–30 s with
// SOCSYNC_CHAOS_LONG=1) while incidents are created and edited remotely and in the hub, and
// comments written. No call comes before its Retry-After; the calm tenants' sources keep polling
// and are never throttled (structural: their throttle counters stay 0, their polls go on); after
// the storm every checker passes (everything collected, converged, one comment per intent, one
// sink row per version), and I1's time bound holds: every remote change was stored in the hub
// within the idle poll interval plus 5 s of slack (calm tenants), or plus four of the longest
// Retry-Afters besides (storm tenants, whose polls wait them out).
func TestR1_GraphStormOnSomeTenants_NoCallBeforeRetryAfterNothingLostOthersUnaffected(t *testing.T) {
	t.Parallel()
	arrivals := check.NewArrivals()
	f := startRun(t, hubtest.Options{Tenants: 4}, nil, hub.Options{Observed: arrivals.Observed})
	storm, calm := []int{0, 1}, []string{f.tenant(2).TenantID, f.tenant(3).TenantID}
	ra := pick([]int{1, 3}, []int{1, 30})
	var rules []emulator.FaultRule
	for _, i := range storm {
		rules = append(rules, emulator.FaultRule{API: "graph", Tenant: f.tenant(i).TenantID, Rate429: 0.3, RetryAfter: ra})
	}
	f.faults(rules...)

	rounds := pick(6, 30)
	var ids []string // hub ids of Defender incidents of the storm tenants
	var tenants []string
	start := time.Now()
	for round := range rounds {
		for i := range 4 {
			ti := f.tenant(i)
			c := f.create(ti.TenantID, emulator.NewIncident{Title: fmt.Sprintf("r1-%d-%d", i, round), Alerts: []emulator.NewAlert{{Title: "a"}}})
			if round > 0 {
				f.env.Emulator.PatchIncident(ti.TenantID, c.GraphID, []byte(`{"severity":"high","comment":"remote analyst note"}`))
			}
			if i < 2 && round%2 == 0 {
				ids, tenants = append(ids, f.hubID(ti.TenantID, c.GraphID)), append(tenants, ti.TenantID)
			}
		}
		for j, id := range ids {
			if j%3 == round%3 {
				f.edit(id, fmt.Sprintf(`{"status":"active","owner":%q,"tags":["r1-%d"]}`, userOf(f, tenants[j], round), round))
			}
		}
		if len(ids) > 0 {
			f.comment(ids[round%len(ids)], fmt.Sprintf("hub note %d", round))
		}
		time.Sleep(pick(300*time.Millisecond, 2*time.Second))
	}
	calmPolls := map[string]int64{}
	srcs, _ := f.store().Sources(context.Background(), store.Tenants(calm...))
	for _, s := range srcs {
		calmPolls[s.ID] = s.Polls
	}
	// The calm tenants keep polling during the storm.
	f.polled(3, calm...)
	recs := f.requests()
	injected := count(recs, func(r emulator.RequestRecord) bool { return r.Fault == "429" })
	if injected < 5 {
		t.Fatalf("the storm injected %d 429s; the test did not test a storm", injected)
	}
	stormed := time.Since(start)
	f.faults()
	f.collected(4 * rounds)
	quiet := f.settle()
	idle := f.env.Config.Polling.Idle.D()
	isCalm := func(tenant string) bool {
		return strings.EqualFold(tenant, calm[0]) || strings.EqualFold(tenant, calm[1])
	}
	within := func(tenant string) time.Duration {
		if isCalm(tenant) {
			return idle + 5*time.Second
		}
		return idle + 4*time.Duration(ra[1])*time.Second + 5*time.Second
	}
	f.checkAll(check.Options{Arrivals: arrivals, Within: within})
	var calmHist, stormHist []emulator.HistoryEntry
	for _, e := range f.env.Emulator.History() {
		if isCalm(e.Tenant) {
			calmHist = append(calmHist, e)
		} else {
			stormHist = append(stormHist, e)
		}
	}
	_, calmLag := check.Timely(calmHist, arrivals, within, time.Time{})
	_, stormLag := check.Timely(stormHist, arrivals, within, time.Time{})
	if calmLag.Checked == 0 || stormLag.Checked == 0 {
		t.Errorf("I1's time bound checked %d calm and %d storm changes: the test did not test it", calmLag.Checked, stormLag.Checked)
	}

	srcs, _ = f.store().Sources(context.Background(), store.Tenants(calm...))
	for _, s := range srcs {
		if s.Throttled != 0 {
			t.Errorf("calm source %s was throttled %d times", s.ID, s.Throttled)
		}
		if s.Polls <= calmPolls[s.ID] {
			t.Errorf("calm source %s stopped polling during the storm", s.ID)
		}
	}
	recs = f.requests()
	for _, r := range recs {
		if r.Status == 429 && (r.Tenant == calm[0] || r.Tenant == calm[1]) {
			t.Errorf("a calm tenant got a 429: %+v", r)
			break
		}
	}
	if v := check.NoEcho(recs, 1<<30, quiet); v != nil {
		t.Error(v)
	}
	var stormPolls, calmPollsAll int64
	all, _ := f.store().Sources(context.Background(), store.AllTenants())
	for _, s := range all {
		if s.TenantID == calm[0] || s.TenantID == calm[1] {
			calmPollsAll += s.Polls
		} else {
			stormPolls += s.Polls
		}
	}
	t.Logf("R1 figures: %d injected 429s over %s of storm (Retry-After %v s), %d requests; polls: storm tenants %d, calm tenants %d; %d incidents, %d hub edits; "+
		"I1 time bound: %d calm changes stored within %s (bound %s), %d storm changes within %s (bound %s)",
		injected, stormed.Round(time.Second), ra, len(recs), stormPolls, calmPollsAll, 4*rounds, rounds*len(ids)/3,
		calmLag.Checked, calmLag.Worst.Round(time.Millisecond), within(calm[0]), stormLag.Checked, stormLag.Worst.Round(time.Millisecond), within(f.tenant(0).TenantID))
}

// userOf returns a user of the tenant, chosen by n.
func userOf(f *faultRun, tenant string, n int) string {
	for _, ti := range f.env.Info.Tenants {
		if ti.TenantID == tenant {
			return ti.Users[n%len(ti.Users)].UPN
		}
	}
	f.t.Fatalf("no tenant %s", tenant)
	return ""
}
