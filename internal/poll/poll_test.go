package poll_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/socsync/socsync/internal/emulator"
	"github.com/socsync/socsync/internal/graph"
	"github.com/socsync/socsync/internal/incident"
	"github.com/socsync/socsync/internal/ingest"
	"github.com/socsync/socsync/internal/poll"
	"github.com/socsync/socsync/internal/reconcile"
	"github.com/socsync/socsync/internal/sentinel"
	"github.com/socsync/socsync/internal/store"
	"github.com/socsync/socsync/internal/throttle"
)

// env is an emulator over HTTPS and a hub store, with targets built the way the hub builds them.
type env struct {
	e     *emulator.Emulator
	srv   *emulator.Server
	info  emulator.Info
	store *store.Store
	creds map[string]azcore.TokenCredential
	// transport sends the pollers' requests (default: the emulator's HTTPS client).
	transport policy.Transporter
	// changed, when set, is the schedulers' Changed (the reconciler's queue).
	changed func(tenantID string, incidentIDs []string)
}

func newEnv(t *testing.T, tenants int) *env {
	t.Helper()
	e, err := emulator.New(emulator.Options{Tenants: tenants, Seed: 1, IncidentsPerTenant: -1, CertTenants: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := emulator.Start(ctx, e, "127.0.0.1:0", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "hub.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); srv.Close(); e.Close(); st.Close() })
	v := &env{e: e, srv: srv, info: e.Info(srv.URL, srv.CAFile), store: st, creds: map[string]azcore.TokenCredential{}, transport: srv.Client()}
	var ts []store.Tenant
	var ss []store.Source
	for _, ti := range v.info.Tenants {
		cred, err := azidentity.NewClientSecretCredential(ti.TenantID, ti.ClientID, ti.ClientSecret, &azidentity.ClientSecretCredentialOptions{
			ClientOptions:            azcore.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: srv.URL + "/"}, Transport: srv.Client()},
			DisableInstanceDiscovery: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		v.creds[ti.TenantID] = cred
		ts = append(ts, store.Tenant{ID: ti.TenantID, Name: ti.Name})
		ss = append(ss, store.Source{TenantID: ti.TenantID, Kind: store.KindDefender})
		for _, w := range ti.Sentinel {
			ss = append(ss, store.Source{TenantID: ti.TenantID, Kind: store.KindSentinel, Workspace: w.SubscriptionID + "/" + w.ResourceGroup + "/" + w.Workspace})
		}
	}
	if err := st.SyncTenants(ctx, ts, ss); err != nil {
		t.Fatal(err)
	}
	return v
}

// resolve builds a stored source's target: its client with its tenant's credential.
func (v *env) resolve(src store.Source) (poll.Target, error) {
	var ti emulator.TenantInfo
	for _, x := range v.info.Tenants {
		if x.TenantID == src.TenantID {
			ti = x
		}
	}
	t := poll.Target{Source: ingest.Source{ID: src.ID, TenantID: src.TenantID, Kind: src.Kind, DefenderPolled: ti.Defender},
		Idle: time.Hour, Hot: time.Hour}
	cred := v.creds[src.TenantID]
	if src.Kind == store.KindDefender {
		c, err := graph.New(v.srv.URL, cred, v.transport, src.TenantID, nil)
		t.Fetcher = poll.GraphFetcher{Client: c}
		return t, err
	}
	for _, w := range ti.Sentinel {
		if store.SourceID(src.TenantID, store.KindSentinel, w.SubscriptionID+"/"+w.ResourceGroup+"/"+w.Workspace) == src.ID {
			c, err := sentinel.New(v.srv.URL, cred, v.transport, src.TenantID,
				sentinel.Workspace{SubscriptionID: w.SubscriptionID, ResourceGroup: w.ResourceGroup, Workspace: w.Workspace}, &sentinel.Options{PageSize: 3})
			t.Fetcher = poll.SentinelFetcher{Client: c}
			return t, err
		}
	}
	return t, fmt.Errorf("no workspace for %s", src.ID)
}

func (v *env) scheduler(t *testing.T, owner string) *poll.Scheduler {
	return v.schedulerWith(t, poll.Config{Owner: owner})
}

func (v *env) schedulerWith(t *testing.T, cfg poll.Config) *poll.Scheduler {
	t.Helper()
	cfg.Workers, cfg.Lease, cfg.Overlap, cfg.Tick = 4, 30*time.Second, time.Minute, 20*time.Millisecond
	s, err := poll.New(cfg, v.store, v.resolve, &ingest.Ingester{Policy: reconcile.DefaultPolicy()}, slog.New(slog.NewTextHandler(io.Discard, nil)), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Changed = v.changed
	return s
}

// pollAll makes every source due and runs a scheduler until each has been polled once more,
// n times over.
func (v *env) pollAll(t *testing.T, n int) {
	t.Helper()
	v.pollAllWith(t, n, poll.Config{Owner: "test"})
}

func (v *env) pollAllWith(t *testing.T, n int, cfg poll.Config) {
	t.Helper()
	ctx := context.Background()
	for range n {
		before := map[string]int64{}
		srcs, _ := v.store.Sources(ctx, store.AllTenants())
		for _, s := range srcs {
			before[s.ID] = s.Polls
		}
		if err := v.store.PollNow(ctx, store.AllTenants()); err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { v.schedulerWith(t, cfg).Run(rctx); close(done) }()
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			srcs, _ := v.store.Sources(ctx, store.AllTenants())
			polled := 0
			for _, s := range srcs {
				if s.Polls > before[s.ID] {
					polled++
				}
			}
			if polled == len(srcs) {
				break
			}
			if time.Now().After(deadline) {
				for _, s := range srcs {
					t.Logf("%s: polls %d, last error %q", s.ID, s.Polls, s.LastError)
				}
				t.Fatal("sources were not all polled")
			}
		}
		cancel()
		<-done
	}
}

func (v *env) create(t *testing.T, tenant int, in emulator.NewIncident) emulator.Created {
	t.Helper()
	c, err := v.e.CreateIncident(v.info.Tenants[tenant].TenantID, in)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (v *env) incidents(t *testing.T, tenant int) []store.StoredIncident {
	t.Helper()
	list, err := v.store.ListIncidents(context.Background(), store.Tenants(v.info.Tenants[tenant].TenantID), store.ListFilter{}, store.ListPage{}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func TestPoll_CollectsEveryIncidentOnceJoinsMirrorsAndRecordsMerges(t *testing.T) {
	v := newEnv(t, 3)
	ws2 := v.info.Tenants[2].Sentinel[1].Workspace
	v.create(t, 0, emulator.NewIncident{Title: "d0-a", Where: "defender", Alerts: []emulator.NewAlert{{Title: "a1"}, {Title: "a2"}}})
	d0b := v.create(t, 0, emulator.NewIncident{Title: "d0-b", Where: "defender"})
	d0c := v.create(t, 0, emulator.NewIncident{Title: "d0-c", Where: "defender"})
	m1 := v.create(t, 1, emulator.NewIncident{Title: "mirrored", Where: "defender+sentinel", Alerts: []emulator.NewAlert{{Title: "x"}}})
	v.create(t, 1, emulator.NewIncident{Title: "sentinel-only", Where: "sentinel"})
	for i := range 7 { // more than one Sentinel page (page size 3)
		v.create(t, 2, emulator.NewIncident{Title: fmt.Sprintf("dfc-%d", i), Where: "sentinel", Workspace: ws2,
			Alerts: []emulator.NewAlert{{Title: "dfc", ServiceSource: "microsoftDefenderForCloud", Status: "new"}}})
	}
	v.pollAll(t, 1)

	if got := len(v.incidents(t, 0)); got != 3 {
		t.Errorf("tenant 0: %d hub incidents, want 3", got)
	}
	t1 := v.incidents(t, 1)
	if len(t1) != 2 {
		t.Fatalf("tenant 1: %d hub incidents, want 2 (a mirrored pair is one)", len(t1))
	}
	for _, si := range t1 {
		links, _ := v.store.Links(context.Background(), si.TenantID, si.ID)
		switch si.Title {
		case "mirrored":
			if len(links) != 2 || len(si.Sources) != 2 {
				t.Errorf("mirrored incident has %d links, sources %v; want 2 and defender+sentinel", len(links), si.Sources)
			}
			for _, l := range links {
				if l.Kind == store.LinkSentinel && l.ProviderIncidentID != m1.GraphID {
					t.Errorf("sentinel link provider id %q, want %s", l.ProviderIncidentID, m1.GraphID)
				}
			}
			alerts, _ := v.store.Alerts(context.Background(), si.TenantID, si.ID)
			if len(alerts) != 1 {
				t.Errorf("mirrored incident has %d alerts, want 1 (stored once though seen twice)", len(alerts))
			}
		case "sentinel-only":
			if len(links) != 1 || links[0].Kind != store.LinkSentinel {
				t.Errorf("sentinel-only links %+v", links)
			}
		}
	}
	t2 := v.incidents(t, 2)
	if len(t2) != 7 {
		t.Errorf("tenant 2: %d hub incidents, want 7", len(t2))
	}
	for _, si := range t2 {
		if alerts, _ := v.store.Alerts(context.Background(), si.TenantID, si.ID); len(alerts) != 1 || alerts[0].Status != incident.AlertNew {
			t.Errorf("%s alerts = %+v", si.Title, alerts)
		}
	}

	// A remote merge: the source shows as merged into the target, and a later poll never reopens it.
	if err := v.e.Merge(v.info.Tenants[0].TenantID, d0b.GraphID, d0c.GraphID); err != nil {
		t.Fatal(err)
	}
	v.pollAll(t, 1)
	byTitle := map[string]store.StoredIncident{}
	for _, si := range v.incidents(t, 0) {
		byTitle[si.Title] = si
	}
	src, dst := byTitle["d0-b"], byTitle["d0-c"]
	if src.Status != incident.StatusMerged || src.MergedInto != dst.ID {
		t.Errorf("merged source: status %s, merged_into %q; want merged into %s", src.Status, src.MergedInto, dst.ID)
	}
	if len(v.incidents(t, 0)) != 3 {
		t.Errorf("merge created or lost incidents: %d", len(v.incidents(t, 0)))
	}
}

func TestPoll_IdleSourcesCostOneListCallPerPoll(t *testing.T) {
	v := newEnv(t, 3)
	v.create(t, 0, emulator.NewIncident{Title: "x", Where: "defender"})
	v.pollAll(t, 1)
	// The emulator records a request once it has answered it, so the last answers of the first
	// round can be recorded after it ended: count by arrival time, not by what was recorded.
	mark := v.e.Now()
	v.pollAll(t, 3)
	// Calls the remote answered; an attempt it did not answer (a reset or timeout on a loaded
	// machine) is retried by the transport, and is not what this test counts.
	calls := map[string]int{}
	recs, _ := v.e.RequestHistory()
	for _, r := range recs {
		if r.API == "token" || r.Time.Before(mark) {
			continue
		}
		if r.Status == 0 || r.Status >= 500 {
			t.Logf("retried attempt: %s %s → %d", r.Method, r.Path, r.Status)
			continue
		}
		calls[r.API+" "+r.Method+" "+r.Route]++
	}
	defer func() {
		if t.Failed() {
			for _, r := range recs {
				t.Logf("%s %s %s %s → %d (counted from %s)", r.Time.Format("15:04:05.000"), r.Tenant, r.Method, r.Path, r.Status, mark.Format("15:04:05.000"))
			}
		}
	}()
	srcs, _ := v.store.Sources(context.Background(), store.AllTenants())
	nGraph, nSentinel := 0, 0
	for _, s := range srcs {
		if s.Kind == store.KindDefender {
			nGraph++
		} else {
			nSentinel++
		}
	}
	for route, n := range calls {
		switch {
		case route == "graph GET /v1.0/security/incidents":
			if n != 3*nGraph {
				t.Errorf("%s: %d calls, want %d (one per source per poll)", route, n, 3*nGraph)
			}
		case route == "arm GET /subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.OperationalInsights/workspaces/{workspaceName}/providers/Microsoft.SecurityInsights/incidents":
			if n != 3*nSentinel {
				t.Errorf("%s: %d calls, want %d", route, n, 3*nSentinel)
			}
		default:
			t.Errorf("idle polls made %d %s calls", n, route)
		}
	}
}

// The poll deadline (polling.timeout) is one of progress: a first poll of a backlog that takes
// longer than it in all, but stores a page well within it each time, finishes; a page that
// hangs is cut off. (Regression: under load, a first poll of 1,050 incidents was cut off at
// the deadline every time and never finished.)
func TestPoll_DeadlineIsOneOfProgress_ALongBacklogFinishesAHungPageIsCutOff(t *testing.T) {
	v := newEnv(t, 1)
	for i := range 200 {
		v.create(t, 0, emulator.NewIncident{Title: fmt.Sprintf("backlog-%d", i)})
	}
	list := emulator.FaultRule{API: "graph", Route: "/v1.0/security/incidents", LatencyMs: []int{600, 700}}
	if err := v.e.SetFaults(emulator.FaultProfile{Rules: []emulator.FaultRule{list}}); err != nil {
		t.Fatal(err)
	}
	cfg := poll.Config{Owner: "test", Timeout: 1500 * time.Millisecond} // 4 pages of 50: 2.4–2.8 s
	start := time.Now()
	v.pollAllWith(t, 1, cfg)
	took := time.Since(start)
	srcs, _ := v.store.Sources(context.Background(), store.AllTenants())
	if got := len(v.incidents(t, 0)); got != 200 || srcs[0].LastError != "" {
		t.Fatalf("after a poll of %s: %d of 200 incidents stored, last error %q", took, got, srcs[0].LastError)
	}
	if took < cfg.Timeout {
		t.Fatalf("the poll took %s, less than the timeout: the test did not test a long poll", took)
	}

	list.LatencyMs, list.RateHang = nil, 1
	if err := v.e.SetFaults(emulator.FaultProfile{Rules: []emulator.FaultRule{list}}); err != nil {
		t.Fatal(err)
	}
	v.pollAllWith(t, 1, cfg)
	srcs, _ = v.store.Sources(context.Background(), store.AllTenants())
	if !strings.Contains(srcs[0].LastError, "nothing read or stored within polling.timeout") {
		t.Errorf("a hung page: last error %q, want the poll cut off for making no progress", srcs[0].LastError)
	}
}

// offsetTimes gives Graph's incident lists, while on is set, every change time with a +02:00
// offset: the same instant, not written in UTC.
type offsetTimes struct {
	next http.RoundTripper
	on   atomic.Bool
}

var changeTimeRE = regexp.MustCompile(`"lastUpdateDateTime":"([^"]+)"`)

func (o *offsetTimes) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := o.next.RoundTrip(req)
	if err != nil || !o.on.Load() || req.URL.Path != "/v1.0/security/incidents" {
		return resp, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	zone := time.FixedZone("", 2*3600)
	b = changeTimeRE.ReplaceAllFunc(b, func(m []byte) []byte {
		at, err := time.Parse(time.RFC3339Nano, string(changeTimeRE.FindSubmatch(m)[1]))
		if err != nil {
			return m
		}
		return []byte(`"lastUpdateDateTime":"` + at.In(zone).Format(time.RFC3339Nano) + `"`)
	})
	resp.Body, resp.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
	resp.Header.Del("Content-Length")
	return resp, nil
}

// cursorTime is the change time a source's cursor stands at.
func (v *env) cursorTime(t *testing.T, sourceID string) time.Time {
	t.Helper()
	srcs, err := v.store.Sources(context.Background(), store.AllTenants())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range srcs {
		if s.ID != sourceID {
			continue
		}
		var c struct {
			T time.Time `json:"t"`
		}
		if err := json.Unmarshal([]byte(s.Cursor), &c); err != nil {
			t.Fatalf("cursor %q: %v", s.Cursor, err)
		}
		return c.T
	}
	t.Fatalf("no source %s", sourceID)
	return time.Time{}
}

// link returns the link of tenant's hub incident titled title.
func (v *env) link(t *testing.T, tenant int, title string) store.Link {
	t.Helper()
	for _, si := range v.incidents(t, tenant) {
		if si.Title != title {
			continue
		}
		links, err := v.store.Links(context.Background(), si.TenantID, si.ID)
		if err != nil || len(links) != 1 {
			t.Fatalf("incident %q: links %+v, %v", title, links, err)
		}
		return links[0]
	}
	t.Fatalf("no hub incident %q", title)
	return store.Link{}
}

// A change time Graph writes with an offset instead of in UTC is kept (as the same instant),
// flagged non-utc-timestamp, and never used as the cursor; once change times come in UTC again
// the cursor moves on.
func TestPoll_NonUTCChangeTimesAreKeptFlaggedAndNeverMoveTheCursor(t *testing.T) {
	v := newEnv(t, 1)
	offset := &offsetTimes{next: v.srv.Client().Transport}
	v.transport = &http.Client{Transport: offset}
	src := store.SourceID(v.info.Tenants[0].TenantID, store.KindDefender, "")
	sameMs := func(a, b time.Time) bool { return a.Truncate(time.Millisecond).Equal(b.Truncate(time.Millisecond)) }

	v.create(t, 0, emulator.NewIncident{Title: "in-utc", Where: "defender"})
	v.pollAll(t, 1)
	first := v.link(t, 0, "in-utc").RemoteUpdated
	if cur := v.cursorTime(t, src); first.IsZero() || !sameMs(cur, first) {
		t.Fatalf("cursor %s after a UTC change time %s, want that time", cur, first)
	}

	offset.on.Store(true)
	v.create(t, 0, emulator.NewIncident{Title: "with-offset", Where: "defender"})
	v.pollAll(t, 1)
	l := v.link(t, 0, "with-offset")
	if !strings.Contains(l.Flags, graph.FlagNonUTCTimestamp) {
		t.Errorf("flags %q, want %s", l.Flags, graph.FlagNonUTCTimestamp)
	}
	if !l.RemoteUpdated.After(first) || l.RemoteUpdated.Location() != time.UTC {
		t.Errorf("kept change time %s, want the instant sent (in UTC), after %s", l.RemoteUpdated, first)
	}
	if cur := v.cursorTime(t, src); !sameMs(cur, first) {
		t.Errorf("cursor %s after a non-UTC change time %s, want it left at %s", cur, l.RemoteUpdated, first)
	}

	offset.on.Store(false)
	v.pollAll(t, 1)
	if cur := v.cursorTime(t, src); !sameMs(cur, l.RemoteUpdated) {
		t.Errorf("cursor %s once the change time comes in UTC, want %s", cur, l.RemoteUpdated)
	}
}

// A poll the remote throttles for longer than a request may block (Retry-After 30 s, the
// transport's MaxBlock 3 s) is handed back to the scheduler: the source is due again at the
// not-before time, the poll is counted as throttled and not recorded as a failure, and the
// remote sees no second call.
func TestPoll_ThrottledBeyondTheMaxBlockIsRescheduledAtItsNotBeforeTimeWithoutAnError(t *testing.T) {
	v := newEnv(t, 1)
	v.transport = throttle.New(v.srv.Client(), throttle.Options{MaxBlock: 3 * time.Second})
	tenant := v.info.Tenants[0].TenantID
	v.create(t, 0, emulator.NewIncident{Title: "behind the 429", Where: "defender"})
	rule := emulator.FaultRule{API: "graph", Route: "/v1.0/security/incidents", Rate429: 1, RetryAfter: []int{30, 30}}
	if err := v.e.SetFaults(emulator.FaultProfile{Rules: []emulator.FaultRule{rule}}); err != nil {
		t.Fatal(err)
	}
	v.pollAll(t, 1)

	recs, _ := v.e.RequestHistory()
	var lists []emulator.RequestRecord
	for _, r := range recs {
		if r.API == "graph" {
			lists = append(lists, r)
		}
	}
	if len(lists) != 1 || lists[0].Status != http.StatusTooManyRequests || lists[0].RetryAfter != 30 {
		t.Fatalf("Graph calls %+v, want one answered 429 with Retry-After 30", lists)
	}
	src, err := v.store.Source(context.Background(), tenant, store.SourceID(tenant, store.KindDefender, ""))
	if err != nil {
		t.Fatal(err)
	}
	if src.LastError != "" || src.Degraded != "" {
		t.Errorf("last error %q, degraded %q: a throttled poll is not a failure", src.LastError, src.Degraded)
	}
	if src.Throttled != 1 || src.Polls != 1 {
		t.Errorf("throttled %d of %d polls, want 1 of 1", src.Throttled, src.Polls)
	}
	notBefore := lists[0].Time.Add(30 * time.Second)
	if src.NextPoll.Before(notBefore.Add(-time.Millisecond)) || src.NextPoll.After(notBefore.Add(5*time.Second)) {
		t.Errorf("next poll at %s, want the not-before time %s (the 429 at %s + Retry-After 30 s); the idle interval would be an hour",
			src.NextPoll.Format(time.RFC3339Nano), notBefore.Format(time.RFC3339Nano), lists[0].Time.Format(time.RFC3339Nano))
	}
	if got := len(v.incidents(t, 0)); got != 0 {
		t.Errorf("%d incidents stored from a throttled poll", got)
	}
}

// The seen set of the boundary: incidents every poll re-reads in its overlap window (one
// minute here) that did not change are skipped — no store write (the link's observed_at stays),
// no new hub version, nothing enqueued for the reconciler — on Graph and on Sentinel (read in
// pages of 3 with a fresh query from the newest change time, which re-reads each page's last
// incident); one that changed within the window is stored as before.
func TestPoll_UnchangedIncidentsReReadAtTheBoundaryAreSkippedWithoutAWrite(t *testing.T) {
	v := newEnv(t, 3)
	var mu sync.Mutex
	var enqueued []string
	v.changed = func(_ string, ids []string) {
		mu.Lock()
		enqueued = append(enqueued, ids...)
		mu.Unlock()
	}
	ws2 := v.info.Tenants[2].Sentinel[1].Workspace
	g := v.create(t, 0, emulator.NewIncident{Title: "graph", Where: "defender", Alerts: []emulator.NewAlert{{Title: "a"}}})
	for i := range 5 {
		v.create(t, 2, emulator.NewIncident{Title: fmt.Sprintf("sentinel-%d", i), Where: "sentinel", Workspace: ws2})
	}
	v.pollAll(t, 1)

	type state struct {
		observedAt time.Time
		version    int64
	}
	snapshot := func() map[string]state {
		out := map[string]state{}
		for _, tenant := range []int{0, 2} {
			for _, si := range v.incidents(t, tenant) {
				links, _ := v.store.Links(context.Background(), si.TenantID, si.ID)
				out[si.Title] = state{links[0].ObservedAt, si.Version}
			}
		}
		return out
	}
	before := snapshot()
	if len(before) != 6 {
		t.Fatalf("%d incidents collected, want 6", len(before))
	}
	mu.Lock()
	enqueued = nil
	mu.Unlock()
	time.Sleep(20 * time.Millisecond) // a write now would move observed_at
	v.pollAll(t, 2)
	for title, st := range snapshot() {
		if st != before[title] {
			t.Errorf("%s: observed at %s, version %d after re-reads of the unchanged incident; want %s, %d (no write)",
				title, st.observedAt.Format(time.RFC3339Nano), st.version, before[title].observedAt.Format(time.RFC3339Nano), before[title].version)
		}
	}
	mu.Lock()
	if len(enqueued) != 0 {
		t.Errorf("re-reads of unchanged incidents enqueued %v", enqueued)
	}
	enqueued = nil
	mu.Unlock()
	w := v.info.Tenants[2].Sentinel[1]
	for _, id := range []string{store.SourceID(v.info.Tenants[0].TenantID, store.KindDefender, ""),
		store.SourceID(v.info.Tenants[2].TenantID, store.KindSentinel, w.SubscriptionID+"/"+w.ResourceGroup+"/"+w.Workspace)} {
		src, err := v.store.Source(context.Background(), strings.Split(id, "/")[0], id)
		var c struct {
			Seen map[string]string `json:"s"`
		}
		if err != nil || json.Unmarshal([]byte(src.Cursor), &c) != nil || len(c.Seen) == 0 {
			t.Errorf("source %s: cursor %q (%v) has no seen set", id, src.Cursor, err)
		}
	}

	// A change within the window is not skipped.
	if err := v.e.PatchIncident(v.info.Tenants[0].TenantID, g.GraphID, []byte(`{"severity":"high"}`)); err != nil {
		t.Fatal(err)
	}
	v.pollAll(t, 1)
	after := snapshot()["graph"]
	for _, si := range v.incidents(t, 0) {
		if si.Severity != incident.SeverityHigh || after.version <= before["graph"].version || !after.observedAt.After(before["graph"].observedAt) {
			t.Errorf("changed incident: severity %s, version %d, observed at %s; want high, a new version, a new read", si.Severity, after.version, after.observedAt)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(enqueued) != 1 {
		t.Errorf("the change enqueued %v, want its incident", enqueued)
	}
}
