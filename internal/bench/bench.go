// Package bench is socsync's benchmark harness: it runs the emulator and socsync (one or more
// replicas) in this process's goroutines, drives a load of remote and hub changes, optionally
// runs the status-quo pattern (a Logic App that lists every active incident of every tenant
// each interval and posts each to the ingestion stream) against the same emulator and load, and
// measures both: API calls, sink records, lags (from the emulator's own change timestamps),
// upsert rate, peak RSS and Retry-After violations.
package bench

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/socsync/socsync/internal/config"
	"github.com/socsync/socsync/internal/emuconfig"
	"github.com/socsync/socsync/internal/emulator"
	"github.com/socsync/socsync/internal/hub"
	"github.com/socsync/socsync/internal/store"
)

// Streams of the central workspace: socsync's, and the baseline's own.
const (
	socsyncStream  = "Custom-SocsyncIncidents"
	baselineStream = "Custom-LogicAppIncidents"
)

// Options describe a run.
type Options struct {
	Tenants    int           // emulated customer tenants
	Incidents  int           // incidents per tenant at the start
	ChangeRate float64       // changes per second during the run (remote edits, new incidents, hub edits)
	Duration   time.Duration // how long the load runs
	// BusyShare is the fraction of tenants that get most (BusyLoad) of the changes: real
	// fleets have a few busy tenants and many quiet ones.
	BusyShare, BusyLoad float64
	HubEditShare        float64 // fraction of changes made by analysts in the hub
	DB                  string  // sqlite or postgres
	PostgresURL         string  // the server for DB=postgres (a fresh schema is made and dropped)
	Replicas            int
	Baseline            string        // "" or "logicapp"
	BaselineInterval    time.Duration // the Logic App's recurrence (default: Idle)
	Idle, Hot           time.Duration
	Workers             int
	Seed                int64
	Dir                 string    // work directory (default: a temporary one, removed)
	Progress            io.Writer // progress lines (nil: none)
}

func (o *Options) defaults() error {
	if o.Tenants <= 0 {
		o.Tenants = 200
	}
	if o.Incidents <= 0 {
		o.Incidents = 5
	}
	if o.ChangeRate <= 0 {
		o.ChangeRate = 20
	}
	if o.Duration <= 0 {
		o.Duration = 60 * time.Second
	}
	if o.BusyShare <= 0 || o.BusyShare > 1 {
		o.BusyShare = 0.1
	}
	if o.BusyLoad <= 0 || o.BusyLoad > 1 {
		o.BusyLoad = 0.9
	}
	if o.HubEditShare < 0 || o.HubEditShare > 1 {
		return errors.New("hub edit share: want 0 to 1")
	}
	if o.HubEditShare == 0 {
		o.HubEditShare = 0.1
	}
	if o.DB == "" {
		o.DB = "sqlite"
	}
	if o.DB != "sqlite" && o.DB != "postgres" {
		return fmt.Errorf("db: want sqlite or postgres, got %q", o.DB)
	}
	if o.DB == "postgres" && o.PostgresURL == "" {
		return errors.New("db postgres needs a server: --postgres URL or SOCSYNC_TEST_POSTGRES")
	}
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.Replicas > 1 && o.DB != "postgres" {
		return errors.New("several replicas need --db postgres")
	}
	if o.Baseline != "" && o.Baseline != "logicapp" {
		return fmt.Errorf("baseline: want logicapp, got %q", o.Baseline)
	}
	if o.Idle <= 0 {
		o.Idle = 60 * time.Second
	}
	if o.Hot <= 0 {
		o.Hot = 10 * time.Second
	}
	if o.BaselineInterval <= 0 {
		o.BaselineInterval = o.Idle
	}
	if o.Workers <= 0 {
		o.Workers = 32
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	return nil
}

func (o Options) logf(format string, a ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, time.Now().Format("15:04:05 ")+format+"\n", a...)
	}
}

// Figures are one system's results (the JSON's field names are stable).
type Figures struct {
	APICalls             int      `json:"api_calls"`
	Changes              int      `json:"changes"`
	CallsPerChanged      float64  `json:"calls_per_changed_incident"`
	SinkRecords          int      `json:"sink_records"`
	SinkRecordsPerChange float64  `json:"sink_records_per_change"`
	LagRemoteToHubP50    float64  `json:"lag_remote_to_hub_p50_s"`
	LagRemoteToHubP99    float64  `json:"lag_remote_to_hub_p99_s"`
	LagHubToRemoteP99    *float64 `json:"lag_hub_to_remote_p99_s"`
	LagHubToSinkP99      *float64 `json:"lag_hub_to_sink_p99_s"`
	UpsertsPerS          *float64 `json:"upserts_per_s"`
	PeakRSSMB            *float64 `json:"peak_rss_mb"`
	RetryAfterViolations int      `json:"retry_after_violations"`
	// Unobserved counts changes the system had not caught by the end of the run.
	Unobserved int `json:"unobserved_changes"`
	// PollStartDelayP99 is the 99th percentile of how late polls started after their source
	// fell due (the upper bound of its histogram bucket).
	PollStartDelayP99 *float64 `json:"poll_start_delay_p99_s,omitempty"`
	// CallsByRoute breaks api_calls down by API, method and route.
	CallsByRoute map[string]int `json:"api_calls_by_route,omitempty"`
}

// Report is the outcome of a run.
type Report struct {
	Setup    map[string]any      `json:"setup"`
	Socsync  Figures             `json:"socsync"`
	Baseline *Figures            `json:"baseline,omitempty"`
	Ratios   map[string]*float64 `json:"ratios,omitempty"` // socsync / baseline
	Notes    []string            `json:"notes"`
}

// change is one change the load made, as the emulator timed it.
type change struct {
	tenant, remoteID string // the remote incident (Graph id, or Sentinel name for Sentinel-only)
	at               time.Time
}

// remoteIncident is an incident the load may change.
type remoteIncident struct {
	tenant, graphID, sentinelID string
}

func (r remoteIncident) id() string {
	if r.graphID != "" {
		return r.graphID
	}
	return r.sentinelID
}

// Run runs the benchmark.
func Run(ctx context.Context, o Options) (Report, error) {
	if err := o.defaults(); err != nil {
		return Report{}, err
	}
	dir := o.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "socsync-bench-")
		if err != nil {
			return Report{}, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	rep := Report{Setup: map[string]any{"tenants": o.Tenants, "incidents_per_tenant": o.Incidents, "change_rate_per_s": o.ChangeRate,
		"duration_s": o.Duration.Seconds(), "db": o.DB, "replicas": o.Replicas, "idle_s": o.Idle.Seconds(), "hot_s": o.Hot.Seconds(),
		"busy_tenants_share": o.BusyShare, "busy_load_share": o.BusyLoad, "hub_edit_share": o.HubEditShare,
		"process": "emulator, socsync replicas and baseline run as goroutines of the bench process"}}

	o.logf("starting the emulator with %d tenants", o.Tenants)
	em, err := emulator.New(emulator.Options{Tenants: o.Tenants, Seed: o.Seed, IncidentsPerTenant: o.Incidents, CertTenants: -1,
		IngestionStreams: []string{socsyncStream, baselineStream}, MaxHistory: 5_000_000, MaxRequestHistory: 2_000_000})
	if err != nil {
		return rep, err
	}
	defer em.Close()
	srv, err := emulator.Start(ctx, em, "127.0.0.1:0", filepath.Join(dir, "emulator"))
	if err != nil {
		return rep, err
	}
	defer srv.Close()
	info := em.Info(srv.URL, srv.CAFile)

	dsn := "sqlite:bench.db"
	if o.DB == "postgres" {
		schemaDSN, drop, err := freshSchema(o.PostgresURL)
		if err != nil {
			return rep, err
		}
		defer drop()
		dsn = schemaDSN
	}
	cfgPath := filepath.Join(dir, "socsync.yaml")
	if err := emuconfig.Write(cfgPath, emuconfig.Params{Info: info, Listen: "127.0.0.1:0", Database: dsn,
		Idle: o.Idle.String(), Hot: o.Hot.String(), AlertRefresh: "5m"}); err != nil {
		return rep, err
	}
	cfg, err := config.Load(cfgPath, os.Getenv)
	if err != nil {
		return rep, err
	}
	cfg.Polling.Workers = o.Workers
	st, err := store.Open(ctx, hub.DatabaseDSN(cfg), store.Options{})
	if err != nil {
		return rep, err
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		return rep, err
	}
	tok := "ssk_bench_" + randHex(16)
	if err := st.CreateToken(ctx, &store.Token{Name: "bench", Role: "admin"}, tok); err != nil {
		return rep, err
	}

	// The replicas.
	probe := newProbe()
	runCtx, stopHubs := context.WithCancel(ctx)
	defer stopHubs()
	var hubs sync.WaitGroup
	addrs := make([]string, o.Replicas)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	regs := make([]*prometheus.Registry, o.Replicas)
	for i := range o.Replicas {
		regs[i] = prometheus.NewRegistry()
		h, err := hub.New(runCtx, cfg, hub.Options{Log: quiet, Owner: fmt.Sprintf("bench-replica-%d", i), Observed: probe.observe, Registry: regs[i]})
		if err != nil {
			return rep, err
		}
		ready := make(chan string, 1)
		hubs.Add(1)
		go func() {
			defer hubs.Done()
			defer h.Close()
			h.Run(runCtx, ready)
		}()
		addrs[i] = <-ready
	}

	// The initial collection: every sample incident stored and forwarded.
	initial := remoteIncidents(em)
	o.logf("collecting %d incidents from %d tenants with %d replica(s) on %s", len(initial), o.Tenants, o.Replicas, o.DB)
	started := time.Now()
	lastLog := started
	if err := waitFor(ctx, 30*time.Minute, func() bool {
		n, _ := countIncidents(ctx, st)
		p, _ := st.OutboxPending(ctx)
		if time.Since(lastLog) > 10*time.Second {
			o.logf("  %d of %d incidents collected, %d changes waiting to be forwarded", n, len(initial), p)
			lastLog = time.Now()
		}
		return n >= len(initial) && p == 0
	}); err != nil {
		return rep, fmt.Errorf("initial collection: %w", err)
	}
	took := time.Since(started)
	ups := float64(len(initial)) / took.Seconds()
	o.logf("collected in %s (%.0f incidents/s)", took.Round(time.Millisecond), ups)
	// The alerts of Sentinel incidents come at the pace of Sentinel's read budget (100 per 5
	// minutes per subscription); the run measures the steady state after them.
	if err := waitFor(ctx, 30*time.Minute, func() bool {
		n, _ := st.CountFlagged(ctx, "details-pending")
		if time.Since(lastLog) > 10*time.Second {
			o.logf("  %d Sentinel incidents still wait for their alerts", n)
			lastLog = time.Now()
		}
		return n == 0
	}); err != nil {
		return rep, fmt.Errorf("initial alert reads: %w", err)
	}
	rep.Setup["initial_collection_s"] = took.Seconds()
	rep.Setup["initial_alert_reads_s"] = time.Since(started).Seconds() - took.Seconds()

	// The load starts with a warm-up of one idle interval that is not measured: the run measures
	// the steady state, with busy sources already polled as busy ones.
	var base *baseline
	if o.Baseline == "logicapp" {
		base, err = newBaseline(info, em, baselineStream)
		if err != nil {
			return rep, err
		}
	}
	baseCtx, stopBase := context.WithCancel(ctx)
	var wg sync.WaitGroup
	if base != nil {
		wg.Add(1)
		go func() { defer wg.Done(); base.run(baseCtx, o.BaselineInterval, info) }()
	}
	ld := newLoad(o, em, info, initial, addrs[0], tok)
	o.logf("warm-up: %.1f changes/s for %s (not measured)", o.ChangeRate, o.Idle)
	warmCtx, stopWarm := context.WithTimeout(ctx, o.Idle)
	ld.run(warmCtx)
	stopWarm()
	// The warm-up's changes are caught and forwarded before the measured run starts, so that
	// its counts hold the measured changes only.
	waitFor(ctx, 2*o.Idle+10*time.Second, func() bool {
		p, _ := st.OutboxPending(ctx)
		return probe.unobserved(ld.changes) == 0 && p == 0
	})

	// The measured run.
	t0 := time.Now()
	em.ResetRequests()
	ld.changes, ld.hubEdits = nil, nil
	if base != nil {
		base.resetCalls()
	}
	sink0 := em.IngestedTotal(socsyncStream)
	baseSink0 := em.IngestedTotal(baselineStream)
	loadCtx, stopLoad := context.WithTimeout(ctx, o.Duration)
	o.logf("load: %.1f changes/s for %s", o.ChangeRate, o.Duration)
	ld.run(loadCtx)
	stopLoad()
	loadEnd := time.Now()
	o.logf("load done: %d changes (%d hub edits); letting socsync catch up", len(ld.changes)+len(ld.hubEdits), len(ld.hubEdits))

	// Let the last changes arrive (up to two idle intervals), and the baseline run once more
	// after the load so that it may post the last changes too.
	waitFor(ctx, 2*o.Idle+10*time.Second, func() bool {
		p, _ := st.OutboxPending(ctx)
		return probe.unobserved(ld.changes) == 0 && p == 0 && (base == nil || base.ranSince(loadEnd))
	})
	stopBase()
	wg.Wait()
	stopHubs()
	hubs.Wait()

	// socsync's figures.
	history := em.History()
	reqs, dropped := em.RequestHistory()

	if dropped > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("the emulator's request history dropped %d records; Retry-After checks cover the rest", dropped))
	}
	var s Figures
	s.Changes = len(ld.changes) + len(ld.hubEdits)
	baseCalls := 0
	if base != nil {
		baseCalls = base.calls()
	}
	s.CallsByRoute = map[string]int{}
	for _, r := range em.Requests() {
		if r.API == "graph" || r.API == "arm" {
			s.APICalls += r.Count
			s.CallsByRoute[r.API+" "+r.Method+" "+shortRoute(r.Route)] += r.Count
		}
	}
	s.APICalls -= baseCalls
	s.CallsByRoute["graph GET /security/incidents"] -= baseCalls // the baseline's are its own
	s.CallsPerChanged = ratio(float64(s.APICalls), float64(s.Changes))
	s.SinkRecords = em.IngestedTotal(socsyncStream) - sink0
	s.SinkRecordsPerChange = ratio(float64(s.SinkRecords), float64(s.Changes))
	lags := probe.lags(ld.changes)
	s.Unobserved = len(ld.changes) - len(lags)
	s.LagRemoteToHubP50, s.LagRemoteToHubP99 = pct(lags, 50), pct(lags, 99)
	if hl := hubToRemote(history, ld.hubEdits); len(hl) > 0 {
		v := pct(hl, 99)
		s.LagHubToRemoteP99 = &v
	}
	if fl, err := st.ForwardLatencies(ctx, t0); err == nil && len(fl) > 0 {
		v := pct(fl, 99)
		s.LagHubToSinkP99 = &v
	}
	s.UpsertsPerS = &ups
	if d, ok := histogramP99(regs, "socsync_poll_start_delay_seconds"); ok {
		s.PollStartDelayP99 = &d
	}
	if rss, ok := peakRSSMB(); ok {
		s.PeakRSSMB = &rss
	}
	baseApp := ""
	if base != nil {
		baseApp = base.clientID
	}
	var own, theirs []emulator.RequestRecord
	for _, r := range reqs {
		if r.Principal == baseApp && baseApp != "" {
			theirs = append(theirs, r)
		} else {
			own = append(own, r)
		}
	}
	s.RetryAfterViolations = len(emulator.RetryAfterViolations(own))
	rep.Socsync = s

	if base != nil {
		var b Figures
		b.Changes = s.Changes
		b.APICalls = baseCalls
		b.CallsPerChanged = ratio(float64(b.APICalls), float64(b.Changes))
		b.SinkRecords = em.IngestedTotal(baselineStream) - baseSink0
		b.SinkRecordsPerChange = ratio(float64(b.SinkRecords), float64(b.Changes))
		bl := base.lags(ld.changes)
		b.Unobserved = len(ld.changes) - len(bl)
		b.LagRemoteToHubP50, b.LagRemoteToHubP99 = pct(bl, 50), pct(bl, 99)
		b.RetryAfterViolations = len(emulator.RetryAfterViolations(theirs))
		rep.Baseline = &b
		rep.Ratios = map[string]*float64{
			"api_calls":                  ratioPtr(float64(s.APICalls), float64(b.APICalls)),
			"calls_per_changed_incident": ratioPtr(s.CallsPerChanged, b.CallsPerChanged),
			"sink_records":               ratioPtr(float64(s.SinkRecords), float64(b.SinkRecords)),
			"sink_records_per_change":    ratioPtr(s.SinkRecordsPerChange, b.SinkRecordsPerChange),
			"lag_remote_to_hub_p50_s":    ratioPtr(s.LagRemoteToHubP50, b.LagRemoteToHubP50),
			"lag_remote_to_hub_p99_s":    ratioPtr(s.LagRemoteToHubP99, b.LagRemoteToHubP99),
		}
		rep.Notes = append(rep.Notes, fmt.Sprintf("baseline: every %s, list every tenant's active Defender incidents through Graph (all pages) and post each to %s; its lag is from a change to the run that posted it", o.BaselineInterval, baselineStream))
	}
	rep.Notes = append(rep.Notes, "lags are measured from the emulator's own change timestamps; hub → sink from the change's commit to the ingestion API's 204",
		"peak RSS is the whole bench process (emulator, replicas, baseline)")
	return rep, nil
}

// histogramP99 merges a histogram across registries and returns the upper bound of the bucket
// holding its 99th percentile.
func histogramP99(regs []*prometheus.Registry, name string) (float64, bool) {
	counts := map[float64]uint64{}
	var total uint64
	for _, r := range regs {
		mfs, err := r.Gather()
		if err != nil {
			continue
		}
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, m := range mf.GetMetric() {
				h := m.GetHistogram()
				total += h.GetSampleCount()
				for _, b := range h.GetBucket() {
					counts[b.GetUpperBound()] += b.GetCumulativeCount()
				}
			}
		}
	}
	if total == 0 {
		return 0, false
	}
	bounds := make([]float64, 0, len(counts))
	for b := range counts {
		bounds = append(bounds, b)
	}
	sort.Float64s(bounds)
	for _, b := range bounds {
		if float64(counts[b]) >= 0.99*float64(total) {
			return b, true
		}
	}
	return bounds[len(bounds)-1], true // beyond the last bucket: at least that
}

// shortRoute drops the ARM prefix of Sentinel routes.
func shortRoute(r string) string {
	if i := strings.Index(r, "/providers/Microsoft.SecurityInsights"); i >= 0 {
		return "sentinel" + strings.TrimPrefix(r[i:], "/providers/Microsoft.SecurityInsights")
	}
	return strings.TrimPrefix(r, "/v1.0")
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return math.Round(a/b*1000) / 1000
}

func ratioPtr(a, b float64) *float64 {
	if b == 0 {
		return nil
	}
	v := ratio(a, b)
	return &v
}

// pct returns the p-th percentile of durations, in seconds.
func pct(ds []time.Duration, p float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	i = max(0, min(i, len(s)-1))
	return math.Round(s[i].Seconds()*1000) / 1000
}

func waitFor(ctx context.Context, limit time.Duration, cond func() bool) error {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not done after %s", limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

func countIncidents(ctx context.Context, st *store.Store) (int, error) {
	list, err := st.ListIncidents(ctx, store.AllTenants(), store.ListFilter{}, store.ListPage{}, 10_000_000)
	return len(list), err
}

// remoteIncidents lists the incidents the emulator created, from its history.
func remoteIncidents(em *emulator.Emulator) []remoteIncident {
	var out []remoteIncident
	for _, h := range em.History() {
		if h.Field == "created" {
			out = append(out, remoteIncident{tenant: h.Tenant, graphID: h.GraphID, sentinelID: h.SentinelID})
		}
	}
	return out
}

// hubToRemote measures, for each hub edit, the time until the emulator recorded socsync's write.
func hubToRemote(history []emulator.HistoryEntry, edits []change) []time.Duration {
	byID := map[string][]time.Time{}
	for _, h := range history {
		if h.Source != "graph" && h.Source != "sentinel" {
			continue
		}
		for _, id := range []string{h.GraphID, h.SentinelID} {
			if id != "" {
				byID[h.Tenant+"/"+id] = append(byID[h.Tenant+"/"+id], h.Time)
			}
		}
	}
	var out []time.Duration
	for _, e := range edits {
		for _, t := range byID[e.tenant+"/"+e.remoteID] {
			if !t.Before(e.at) {
				out = append(out, t.Sub(e.at))
				break
			}
		}
	}
	return out
}

// freshSchema makes a new schema on the server and returns a URL using it.
func freshSchema(base string) (string, func(), error) {
	db, err := sql.Open("pgx", base)
	if err != nil {
		return "", nil, err
	}
	schema := "bench_" + randHex(6)
	if _, err := db.Exec("CREATE SCHEMA " + schema); err != nil {
		db.Close()
		return "", nil, fmt.Errorf("postgres: %w", err)
	}
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + schema, func() { db.Exec("DROP SCHEMA " + schema + " CASCADE"); db.Close() }, nil
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// peakRSSMB reads the process's peak resident set size.
func peakRSSMB() (float64, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb float64
			fmt.Sscanf(strings.TrimSpace(rest), "%f", &kb)
			return math.Round(kb/1024*10) / 10, true
		}
	}
	return 0, false
}
