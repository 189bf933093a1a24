package chaos

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socsync/socsync/internal/chaos/check"
	"github.com/socsync/socsync/internal/emulator"
	"github.com/socsync/socsync/internal/hub"
	"github.com/socsync/socsync/internal/hub/hubtest"
	"github.com/socsync/socsync/internal/store"
)

// long reports whether the long versions of the fault runs were asked for
// (SOCSYNC_CHAOS_LONG=1): longer storms, longer Retry-Afters, more rounds.
func long() bool { return os.Getenv("SOCSYNC_CHAOS_LONG") == "1" }

// pick returns short in CI and long under SOCSYNC_CHAOS_LONG=1.
func pick[T any](short, long_ T) T {
	if long() {
		return long_
	}
	return short
}

// skewClock is an emulator clock that can be moved both ways (emulator.Advance only moves
// forward): the remote's clock for the clock-skew and late-change runs.
type skewClock struct{ skew atomic.Int64 }

func (c *skewClock) Now() time.Time           { return time.Now().Add(time.Duration(c.skew.Load())) }
func (c *skewClock) Set(d time.Duration)      { c.skew.Store(int64(d)) }
func (c *skewClock) Get() time.Duration       { return time.Duration(c.skew.Load()) }
func newSkewClock() *skewClock                { return &skewClock{} }
func (c *skewClock) Option() func() time.Time { return c.Now }

// faultRun is one in-process fault run: an emulator, a hub with captured debug logs, an admin
// token, a cursor sampler and a stall watch running all along, and the checkers' view of it.
type faultRun struct {
	t       *testing.T
	env     *hubtest.Env
	hub     *hubtest.Running
	token   string
	logs    *hubtest.LogBuffer
	cursors *check.Cursors
	stalls  *stallWatch
	run     check.Run
}

// startRun starts an emulator and a hub; adjust, if set, changes the hub's configuration first.
func startRun(t *testing.T, o hubtest.Options, adjust func(*hubtest.Env), ho hub.Options) *faultRun {
	t.Helper()
	if o.Emulator.MaxRequestHistory == 0 {
		o.Emulator.MaxRequestHistory = 2_000_000
	}
	env := hubtest.New(t, o)
	if adjust != nil {
		adjust(env)
	}
	return startHub(t, env, ho)
}

func startHub(t *testing.T, env *hubtest.Env, ho hub.Options) *faultRun {
	t.Helper()
	return startHubWithToken(t, env, ho, "")
}

// restart stops the run's hub and starts another on the same database and configuration (the
// caller may have changed env.Config meanwhile), with the same admin token.
func (f *faultRun) restart(ho hub.Options) *faultRun {
	f.t.Helper()
	f.hub.Stop()
	return startHubWithToken(f.t, f.env, ho, f.token)
}

func startHubWithToken(t *testing.T, env *hubtest.Env, ho hub.Options, token string) *faultRun {
	t.Helper()
	logs := &hubtest.LogBuffer{}
	if ho.Log == nil {
		ho.Log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	r := env.Start(t, ho)
	if token == "" {
		token = r.Token(t, "admin", "admin")
	}
	fr := &faultRun{t: t, env: env, hub: r, token: token, logs: logs, cursors: check.NewCursors(),
		stalls: &stallWatch{}, run: check.Run{Emulator: env.Emulator, Store: r.Hub.Store()}}
	ctx, cancel := context.WithCancel(context.Background())
	var done sync.WaitGroup
	done.Go(func() { fr.cursors.Run(ctx, r.Hub.Store(), env.Emulator.Now, 100*time.Millisecond) })
	done.Go(func() { fr.stalls.run(ctx) })
	t.Cleanup(func() { cancel(); done.Wait() })
	return fr
}

// stallWatch watches the test process, where the hub and the emulator run: a goroutine sleeps
// 10 ms again and again and notes each time it woke more than 20 ms late — a time nothing in
// the process ran on time. The Retry-After checker widens its in-flight window by them.
type stallWatch struct {
	mu     sync.Mutex
	stalls []struct{ from, to time.Time }
}

func (s *stallWatch) run(ctx context.Context) {
	for {
		start := time.Now()
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Millisecond):
		}
		if end := time.Now(); end.Sub(start) > 30*time.Millisecond {
			s.mu.Lock()
			s.stalls = append(s.stalls, struct{ from, to time.Time }{start.Add(10 * time.Millisecond), end})
			s.mu.Unlock()
		}
	}
}

// total is how much of [from, to] the process spent stalled (check.Options.Stalled).
func (s *stallWatch) total(from, to time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var d time.Duration
	for _, st := range s.stalls {
		lo, hi := max(st.from.UnixNano(), from.UnixNano()), min(st.to.UnixNano(), to.UnixNano())
		d += time.Duration(max(0, hi-lo))
	}
	return d
}

// summary gives the number of stalls and the longest.
func (s *stallWatch) summary() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var longest time.Duration
	for _, st := range s.stalls {
		longest = max(longest, st.to.Sub(st.from))
	}
	return fmt.Sprintf("%d stalls over 20 ms (longest %s)", len(s.stalls), longest.Round(time.Millisecond))
}

func (f *faultRun) tenant(i int) emulator.TenantInfo { return f.env.Info.Tenants[i] }

func (f *faultRun) store() *store.Store { return f.hub.Hub.Store() }

// create makes a remote incident (fatal on error).
func (f *faultRun) create(tenant string, in emulator.NewIncident) emulator.Created {
	f.t.Helper()
	c, err := f.env.Emulator.CreateIncident(tenant, in)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// hubID waits until the remote incident (a Graph id or a Sentinel name) is in the hub and
// returns the hub incident's id.
func (f *faultRun) hubID(tenant, remoteID string) string {
	f.t.Helper()
	var id string
	hubtest.Eventually(f.t, "remote incident "+remoteID+" is in the hub", func() bool {
		list, err := f.store().ListIncidents(context.Background(), store.Tenants(tenant), store.ListFilter{RemoteID: remoteID}, store.ListPage{}, 10)
		if err != nil || len(list) != 1 {
			return false
		}
		id = list[0].ID
		return true
	})
	return id
}

// edit changes a hub incident through the API, as an analyst would.
func (f *faultRun) edit(id, body string) {
	f.t.Helper()
	if code := f.hub.API(f.t, f.token, "PATCH", "/api/v1/incidents/"+id, body, nil); code != 200 {
		f.t.Fatalf("PATCH %s %s: %d", id, body, code)
	}
}

// comment adds a hub comment through the API.
func (f *faultRun) comment(id, text string) {
	f.t.Helper()
	if code := f.hub.API(f.t, f.token, "POST", "/api/v1/incidents/"+id+"/comments", fmt.Sprintf(`{"text":%q}`, text), nil); code != 201 {
		f.t.Fatalf("comment on %s: %d", id, code)
	}
}

// collected waits until the hub holds n incidents.
func (f *faultRun) collected(n int) {
	f.t.Helper()
	f.collectedWithin(n, 150*time.Second)
}

// collectedWithin waits up to d until the hub holds n incidents.
func (f *faultRun) collectedWithin(n int, d time.Duration) {
	f.t.Helper()
	deadline := time.Now().Add(d)
	for {
		list, _ := f.store().ListIncidents(context.Background(), store.AllTenants(), store.ListFilter{}, store.ListPage{}, 1_000_000)
		if len(list) >= n {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%d of %d incidents are in the hub:\n%s", len(list), n, unsettled(context.Background(), f.store()))
		}
		// Listing every incident competes with the hub for the database and the cores (with
		// thousands of incidents under -race, at 20 a second it took a quarter of the run).
		time.Sleep(500 * time.Millisecond)
	}
}

// polled waits until every source (or those of the given tenants) has polled n more times.
func (f *faultRun) polled(n int64, tenants ...string) {
	f.t.Helper()
	scope := store.AllTenants()
	if len(tenants) > 0 {
		scope = store.Tenants(tenants...)
	}
	before := map[string]int64{}
	srcs, _ := f.store().Sources(context.Background(), scope)
	for _, s := range srcs {
		before[s.ID] = s.Polls
	}
	deadline := time.Now().Add(150 * time.Second)
	for {
		srcs, _ := f.store().Sources(context.Background(), scope)
		behind := 0
		for _, s := range srcs {
			if s.Polls < before[s.ID]+n {
				behind++
			}
		}
		if behind == 0 {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%d sources did not poll %d more times:\n%s", behind, n, unsettled(context.Background(), f.store()))
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// settle waits until the hub has nothing left to do and every source has polled twice more
// (so that an echo of its last writes would show), and returns when that was.
func (f *faultRun) settle() time.Time {
	f.t.Helper()
	f.waitSettled()
	f.polled(2)
	f.waitSettled()
	return f.env.Emulator.Now()
}

// waitSettled waits until check.Settled, and says what is left when it does not come.
func (f *faultRun) waitSettled() {
	f.t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(150 * time.Second)
	for !check.Settled(ctx, f.store()) {
		if time.Now().After(deadline) {
			if os.Getenv("SOCSYNC_CHAOS_DEBUG") != "" {
				recs := f.requests()
				for _, r := range recs[max(0, len(recs)-300):] {
					f.t.Logf("%s %s %s %s %d %s", r.Time.Format("15:04:05.000"), r.API, r.Method, r.Route, r.Status, r.Fault)
				}
			}
			f.t.Fatalf("the hub did not settle:\n%s", unsettled(ctx, f.store()))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// unsettled describes what a hub has left to do.
func unsettled(ctx context.Context, st *store.Store) string {
	var b strings.Builder
	n, err := st.OutboxPending(ctx)
	fmt.Fprintf(&b, "outbox pending: %d %v\n", n, err)
	srcs, _ := st.Sources(ctx, store.AllTenants())
	for _, s := range srcs {
		flagged, _ := st.LinksFlagged(ctx, s.TenantID, s.ID, "details-pending", 100)
		fmt.Fprintf(&b, "source %s: polls %d, throttled %d, last error %q, next poll %s, details pending %d\n", s.ID, s.Polls, s.Throttled, s.LastError,
			s.NextPoll.Format("15:04:05.000"), len(flagged))
	}
	list, _ := st.ListIncidents(ctx, store.AllTenants(), store.ListFilter{}, store.ListPage{}, 1_000_000)
	for _, si := range list {
		if si.SyncState == "pending" {
			links, _ := st.Links(ctx, si.TenantID, si.ID)
			for _, l := range links {
				fmt.Fprintf(&b, "pending incident %s %q link %s %s: %s %q\n", si.ID, si.Title, l.Kind, l.ExternalID, l.SyncState, l.LastError)
			}
		}
	}
	return b.String()
}

// checkAll runs every checker over the run, and the cursor samples, and fails on the first
// violation.
func (f *faultRun) checkAll(o check.Options) {
	f.t.Helper()
	if o.Stalled == nil {
		o.Stalled = f.stalls.total
	}
	if v := check.All(context.Background(), f.run, o); v != nil {
		f.t.Fatal(v)
	}
	v, n := f.cursors.Check()
	if v != nil {
		f.t.Fatal(v)
	}
	if n == 0 {
		f.t.Fatal("the cursors were never sampled")
	}
}

// requests returns the emulator's request history.
func (f *faultRun) requests() []emulator.RequestRecord {
	recs, _ := f.env.Emulator.RequestHistory()
	return recs
}

// faults sets the emulator's fault profile (fatal on a bad one).
func (f *faultRun) faults(rules ...emulator.FaultRule) {
	f.t.Helper()
	if err := f.env.Emulator.SetFaults(emulator.FaultProfile{Rules: rules}); err != nil {
		f.t.Fatal(err)
	}
}

// where is the widest placement of a Defender incident in a tenant: mirrored into its first
// workspace if it has one.
func where(ti emulator.TenantInfo) string {
	if len(ti.Sentinel) > 0 {
		return "defender+sentinel"
	}
	return "defender"
}

// count returns how many request records match.
func count(recs []emulator.RequestRecord, match func(emulator.RequestRecord) bool) int {
	n := 0
	for _, r := range recs {
		if match(r) {
			n++
		}
	}
	return n
}

// noTokensIn fails if a log holds a JWT (every token the emulator issues is one) or a secret.
func noTokensIn(t *testing.T, where, log string, secrets ...string) {
	t.Helper()
	if i := strings.Index(log, "eyJ"); i >= 0 {
		t.Errorf("%s holds a JWT: …%s…", where, log[max(0, i-80):min(len(log), i+80)])
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(log, s) {
			t.Errorf("%s holds a secret (%d characters, starting %q)", where, len(s), s[:min(4, len(s))])
		}
	}
}
