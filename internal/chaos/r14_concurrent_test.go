package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socsync/socsync/internal/chaos/check"
	"github.com/socsync/socsync/internal/config"
	"github.com/socsync/socsync/internal/emulator"
	"github.com/socsync/socsync/internal/hub"
	"github.com/socsync/socsync/internal/hub/hubtest"
	"github.com/socsync/socsync/internal/incident"
	"github.com/socsync/socsync/internal/sentinel"
	"github.com/socsync/socsync/internal/writeback"
)

// racingRemotes lets a remote analyst change a Sentinel incident between socsync's GET of it
// and its PUT, at random (half the GETs while racing is on): the PUT then carries a stale etag
// and Sentinel answers 409.
type racingRemotes struct {
	writeback.Remotes
	on    atomic.Bool
	mu    sync.Mutex
	rnd   *rand.Rand
	race  func(tenant, name string, n int) // the remote analyst's change (n: a random number)
	races int
}

func (r *racingRemotes) Sentinel(sourceID string) (writeback.SentinelWriter, error) {
	s, err := r.Remotes.Sentinel(sourceID)
	if err != nil {
		return s, err
	}
	tenant, _, _ := strings.Cut(sourceID, "/")
	return racingSentinel{s, r, tenant}, nil
}

type racingSentinel struct {
	writeback.SentinelWriter
	r      *racingRemotes
	tenant string
}

func (s racingSentinel) Get(ctx context.Context, name string) (incident.Observation, sentinel.Incident, error) {
	obs, inc, err := s.SentinelWriter.Get(ctx, name)
	if err == nil && s.r.on.Load() {
		s.r.mu.Lock()
		race, n := s.r.rnd.IntN(2) == 0, s.r.rnd.IntN(1000)
		if race {
			s.r.races++
		}
		s.r.mu.Unlock()
		if race {
			s.r.race(s.tenant, name, n)
		}
	}
	return obs, inc, err
}

// TestR14_ConcurrentEditsAndSentinelEtagRaces_PolicyHonouredNothingLostConverges (R14, in the
// chaos harness): analysts edit the same incidents on both sides at once — Defender-only
// incidents through Graph, Sentinel-only ones through Sentinel — round after round: a remote
// analyst changes severity and owner, and right after, a hub analyst changes the tags; in the
// last round the hub analyst changes severity as well, right after the remote one did.
// Severity, changed on both sides, is decided by its policy (hub_wins); owner only ever changes
// remotely, tags only in the hub. Meanwhile half of socsync's Sentinel GETs before a write are
// followed by a remote analyst's owner change before its PUT, whose etag is then stale:
// Sentinel answers 409, and socsync must read again and plan again. In the end: Sentinel
// answered 409 at least once and conflicts were recorded; the conflict checker finds every
// conflict decided by its field's rule (I5) and the convergence checker hub and remotes equal
// (I3), with every other checker; each incident's severity and tags are the hub analyst's
// last, and nothing of the other side was lost: socsync never wrote an owner (only remote
// analysts changed it), and the hub shows the remote's last owner. (The hub's last severity
// differs from every value the two sides could have agreed on before: an edit back to the
// agreed value counts as no change, and the remote's would win; see the report of issue 9.
// The planner's determinism over 1,000 random runs: reconcile's
// TestPlan_DeterministicOverRandomRuns and FuzzPlan; the etag race alone: writeback's
// TestSentinelEtagRace_IsReReadReplannedAndConverges.)
func TestR14_ConcurrentEditsAndSentinelEtagRaces_PolicyHonouredNothingLostConverges(t *testing.T) {
	t.Parallel()
	rr := &racingRemotes{rnd: rand.New(rand.NewPCG(14, 14))}
	f := startRun(t, hubtest.Options{Tenants: 3}, func(env *hubtest.Env) {
		env.Config.Sync.Policy = config.SyncPolicy{Default: "latest_wins", Fields: map[string]string{"severity": "hub_wins"}}
	}, hub.Options{WrapRemotes: func(in writeback.Remotes) writeback.Remotes { rr.Remotes = in; return rr }})
	t0, t2 := f.tenant(0), f.tenant(2)
	rr.race = func(tenant, name string, n int) {
		upn := t2.Users[n%len(t2.Users)].UPN
		if err := f.env.Emulator.PatchIncident(tenant, name, []byte(`{"owner":"`+upn+`"}`)); err != nil {
			t.Errorf("the racing analyst's change of %s: %v", name, err)
		}
	}
	type target struct {
		tenant   emulator.TenantInfo
		remote   string
		sentinel bool
		hub      string
		severity string   // the hub analyst's last
		tags     []string // the hub analyst's last
	}
	var targets []*target
	n := pick(3, 8)
	for i := range n {
		g := f.create(t0.TenantID, emulator.NewIncident{Title: fmt.Sprintf("r14-g-%d", i)})
		s := f.create(t2.TenantID, emulator.NewIncident{Title: fmt.Sprintf("r14-s-%d", i), Where: "sentinel", Workspace: t2.Sentinel[1].Workspace})
		targets = append(targets, &target{tenant: t0, remote: g.GraphID}, &target{tenant: t2, remote: s.SentinelID, sentinel: true})
	}
	for _, tg := range targets {
		tg.hub = f.hubID(tg.tenant.TenantID, tg.remote)
	}
	f.settle()
	// Remote severities of the rounds are informational and medium; in the last round the
	// remote sets low and the hub high, a value neither side held before.
	remoteSevs := []string{"informational", "medium"}
	rr.on.Store(true)
	rounds := pick(5, 20)
	for round := range rounds {
		last := round == rounds-1
		for i, tg := range targets {
			remoteSev := remoteSevs[(round+i)%2]
			if last {
				remoteSev = "low"
			}
			upn := tg.tenant.Users[(round+i)%len(tg.tenant.Users)].UPN
			body := fmt.Sprintf(`{"severity":%q,"assignedTo":%q}`, remoteSev, upn)
			if tg.sentinel {
				body = fmt.Sprintf(`{"severity":%q,"owner":%q}`, strings.ToUpper(remoteSev[:1])+remoteSev[1:], upn)
			}
			if err := f.env.Emulator.PatchIncident(tg.tenant.TenantID, tg.remote, []byte(body)); err != nil {
				t.Fatal(err)
			}
			tg.tags = []string{fmt.Sprintf("r14-%d", round)}
			edit := fmt.Sprintf(`{"tags":[%q]}`, tg.tags[0])
			if last {
				tg.severity = "high"
				edit = fmt.Sprintf(`{"severity":"high","tags":[%q]}`, tg.tags[0])
			}
			f.edit(tg.hub, edit)
		}
		time.Sleep(pick(400*time.Millisecond, 2*time.Second))
	}
	f.polled(2)
	rr.on.Store(false)
	f.settle()
	f.checkAll(check.Options{})

	recs := f.requests()
	conflicts409 := count(recs, func(r emulator.RequestRecord) bool {
		return r.API == "arm" && r.Method == http.MethodPut && r.Status == http.StatusConflict && strings.HasSuffix(r.Route, "/incidents/{incidentId}")
	})
	rr.mu.Lock()
	races := rr.races
	rr.mu.Unlock()
	if conflicts409 == 0 {
		t.Fatalf("Sentinel never answered 409 (%d races): the test did not test etag races", races)
	}
	recorded := 0
	for _, tg := range targets {
		hist, err := f.store().History(context.Background(), tg.tenant.TenantID, tg.hub)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range hist {
			if e.Action == "conflict" {
				recorded++
			}
		}
		si, err := f.store().Incident(context.Background(), tg.tenant.TenantID, tg.hub)
		if err != nil {
			t.Fatal(err)
		}
		if string(si.Severity) != tg.severity || !slices.Equal(si.Tags, tg.tags) {
			t.Errorf("%s: severity %s, tags %v; want the hub analyst's last: %s, %v", tg.remote, si.Severity, si.Tags, tg.severity, tg.tags)
			for _, e := range hist {
				t.Logf("  hub audit %s %s %s %s %s %q → %q %s %s", e.At.Format("15:04:05.000"), e.Actor, e.Action, e.Link, e.Field, e.Before, e.After, e.Result, e.Detail)
			}
			for _, e := range f.env.Emulator.History() {
				if e.GraphID == tg.remote || e.SentinelID == tg.remote {
					if e.Field == "severity" {
						t.Logf("  remote %s %s/%s %s %q → %q v%d", e.Time.Format("15:04:05.000"), e.Source, e.Actor, e.Field, e.Old, e.New, e.Version)
					}
				}
			}
		}
	}
	if recorded == 0 {
		t.Error("no conflict was recorded: the test did not test concurrent edits of one field")
	}
	for _, e := range f.env.Emulator.History() {
		if e.Field == "owner" && (e.Source == "graph" || e.Source == "sentinel") {
			t.Errorf("socsync wrote an owner only remote analysts changed (a remote change lost): %+v", e)
		}
	}
	t.Logf("R14 figures: %d incidents (%d Sentinel-only) edited on both sides in %d rounds; %d GET–PUT races, %d Sentinel 409s; %d conflicts recorded, each decided by its rule; converged; %d requests",
		len(targets), len(targets)/2, rounds, races, conflicts409, recorded, len(recs))
}
