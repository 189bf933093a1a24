// Package hub assembles a socsync hub from its configuration: the store, credentials, the
// throttled transport, the clients of every source, the poll scheduler, the reconciler and the
// HTTP server. The serve command, the demo, the benchmarks and end-to-end tests all run a Hub.
package hub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/socsync/socsync/internal/config"
	"github.com/socsync/socsync/internal/entra"
	"github.com/socsync/socsync/internal/graph"
	"github.com/socsync/socsync/internal/httpapi"
	"github.com/socsync/socsync/internal/incident"
	"github.com/socsync/socsync/internal/ingest"
	"github.com/socsync/socsync/internal/poll"
	"github.com/socsync/socsync/internal/reconcile"
	"github.com/socsync/socsync/internal/sentinel"
	"github.com/socsync/socsync/internal/store"
	"github.com/socsync/socsync/internal/web"
	"github.com/socsync/socsync/internal/writeback"
)

// Options are what a hub takes from its process rather than its configuration.
type Options struct {
	Log      *slog.Logger
	Getenv   func(string) string
	Now      func() time.Time     // default time.Now
	Registry *prometheus.Registry // default: a new one with the Go and process collectors
	// Owner identifies this replica in leases; default host-pid-random.
	Owner string
	// Version is reported in User-Agent headers.
	Version string
	// WrapRemotes, if set, wraps the clients the reconciler writes with: a seam for fault
	// injection (a crash after a remote write, a race with a remote analyst) in tests.
	WrapRemotes func(writeback.Remotes) writeback.Remotes
	// Observed, if set, is told every observation polls store (the benchmark's lag probe).
	Observed func(tenantID string, obs incident.Observation, at time.Time)
}

// Hub is one running socsync replica.
type Hub struct {
	cfg       *config.Config
	opts      Options
	log       *slog.Logger
	store     *store.Store
	remote    *clients
	registry  *prometheus.Registry
	scheduler *poll.Scheduler
	api       *httpapi.Server

	// background are the hub's long-running workers (the poll scheduler, the reconciler, the
	// forwarder …); Run runs each until its context ends.
	background []func(ctx context.Context) error

	engine *writeback.Engine

	mu   sync.Mutex
	addr string
}

// New opens the database (which must be migrated), records the configured tenants and
// sources, and builds every component. It starts nothing.
func New(ctx context.Context, cfg *config.Config, opts Options) (*Hub, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Owner == "" {
		opts.Owner = defaultOwner()
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
		opts.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	h := &Hub{cfg: cfg, opts: opts, log: opts.Log, registry: opts.Registry}
	rm := newRemoteMetrics()
	remote, err := newClients(cfg, opts.Getenv, opts.Version, opts.Now, rm)
	if err != nil {
		return nil, err
	}
	h.remote = remote
	if err := remote.creds.Problems(); err != nil {
		h.log.Warn("some tenants cannot get tokens; they are marked degraded, the others run", "problems", err)
	}

	st, err := store.Open(ctx, DatabaseDSN(cfg), store.Options{Now: opts.Now, MustExist: true})
	if err != nil {
		return nil, fmt.Errorf("refusing to start: %w", err)
	}
	h.store = st
	if err := st.CheckMigrated(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("refusing to start: %w", err)
	}
	tenants, sources := StoreTenants(cfg)
	if err := st.SyncTenants(ctx, tenants, sources); err != nil {
		st.Close()
		return nil, err
	}

	if err := h.registry.Register(rm); err != nil {
		st.Close()
		return nil, err
	}
	if err := h.registry.Register(newSourceMetrics(st, opts.Now)); err != nil {
		st.Close()
		return nil, err
	}

	policy := reconcile.PolicyFrom(cfg.Sync.Policy.Default, cfg.Sync.Policy.Fields)
	ing := &ingest.Ingester{Policy: policy}
	h.scheduler, err = poll.New(poll.Config{Owner: opts.Owner, Workers: cfg.Polling.Workers, Lease: cfg.Polling.Lease.D(),
		Overlap: cfg.Polling.Overlap.D(), Timeout: cfg.Polling.Timeout.D()}, st, h.resolve, ing, h.log, opts.Now, h.registry)
	if err != nil {
		st.Close()
		return nil, err
	}
	h.scheduler.Classify = classify
	h.scheduler.Observed = opts.Observed
	var rules []string
	if cfg.Sync.AlertRules.RulesEnabled() {
		rules = cfg.Sync.AlertRules.Products
	}
	var rem writeback.Remotes = remotes{h}
	if opts.WrapRemotes != nil {
		rem = opts.WrapRemotes(rem)
	}
	h.engine, err = writeback.New(writeback.Config{Owner: opts.Owner, Workers: cfg.Sync.Workers, Rate: cfg.Sync.Rate,
		Lease: cfg.Polling.Lease.D(), Timeout: cfg.Polling.Timeout.D(), Policy: policy, RaiseMergeSeverity: cfg.Sync.RaiseSeverity(), AlertRules: rules},
		st, rem, ing, h.log, opts.Now, h.registry)
	if err != nil {
		st.Close()
		return nil, err
	}
	h.scheduler.Changed = func(tenantID string, ids []string) {
		for _, id := range ids {
			h.engine.Enqueue(store.IncidentKey{TenantID: tenantID, ID: id})
		}
	}
	h.background = append(h.background, h.scheduler.Run, h.engine.Run)
	webhooks, err := h.forwardAndWebhooks()
	if err != nil {
		st.Close()
		return nil, err
	}
	ui := web.New(web.Deps{Log: h.log, Store: st, Queue: h.engine, Config: cfg, Now: opts.Now,
		CredentialProblem: func(tenantID string) error { _, err := remote.creds.For(tenantID); return err },
		Doctor:            remote.doctor})
	h.api = httpapi.New(httpapi.Deps{Log: h.log, Store: st, Metrics: h.registry, Now: opts.Now, Queue: h.engine,
		UI: ui, Principals: []httpapi.PrincipalSource{ui}, Webhooks: webhooks})
	return h, nil
}

// Store is the hub's database (tests and tools read it).
func (h *Hub) Store() *store.Store { return h.store }

// Handler is the hub's HTTP handler.
func (h *Hub) Handler() http.Handler { return h.api }

// Owner is this replica's lease owner id.
func (h *Hub) Owner() string { return h.opts.Owner }

// Addr is the address the hub serves on, once Run has started listening.
func (h *Hub) Addr() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.addr
}

// Close releases the database.
func (h *Hub) Close() error { return h.store.Close() }

// Run serves HTTP and runs the poll scheduler until ctx is done, then shuts down gracefully.
// If ready is not nil it receives the listen address once the hub serves.
func (h *Hub) Run(ctx context.Context, ready chan<- string) error {
	srv := &http.Server{Handler: h.api, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(h.log.Handler(), slog.LevelWarn)}
	ln, err := net.Listen("tcp", h.cfg.Server.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s (server.listen): %w", h.cfg.Server.Listen, err)
	}
	h.mu.Lock()
	h.addr = ln.Addr().String()
	h.mu.Unlock()
	scheme := "http"
	if h.cfg.Server.TLS.Enabled() {
		scheme = "https"
	}
	h.log.Info("socsync serving", "url", scheme+"://"+ln.Addr().String(), "database", config.RedactURL(DatabaseDSN(h.cfg)),
		"tenants", len(h.cfg.Tenants), "replica", h.opts.Owner)
	if ready != nil {
		ready <- ln.Addr().String()
	}

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	errc := make(chan error, 1+len(h.background))
	go func() {
		if h.cfg.Server.TLS.Enabled() {
			errc <- srv.ServeTLS(ln, h.cfg.Path(h.cfg.Server.TLS.CertFile), h.cfg.Path(h.cfg.Server.TLS.KeyFile))
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	var workers sync.WaitGroup
	for _, run := range h.background {
		workers.Add(1)
		go func() {
			defer workers.Done()
			if err := run(runCtx); err != nil {
				select {
				case errc <- err:
				default:
				}
			}
		}()
	}

	var runErr error
	select {
	case err := <-errc:
		runErr = err
	case <-ctx.Done():
	}
	h.log.Info("shutting down", "grace", h.cfg.Server.ShutdownTimeout.String())
	stop()
	sctx, cancel := context.WithTimeout(context.Background(), h.cfg.Server.ShutdownTimeout.D())
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && runErr == nil {
		runErr = fmt.Errorf("graceful shutdown: %w", err)
	}
	workers.Wait()
	if runErr == nil || errors.Is(runErr, http.ErrServerClosed) {
		h.log.Info("stopped")
		return nil
	}
	return runErr
}

// resolve builds the poll target of a stored source from the configuration.
func (h *Hub) resolve(src store.Source) (poll.Target, error) {
	is, tc, err := h.remote.sourceInfo(src.ID)
	if err != nil {
		return poll.Target{}, err
	}
	t := poll.Target{Source: is, Idle: h.cfg.Polling.Idle.D(), Hot: h.cfg.Polling.Hot.D(), Resync: h.cfg.Polling.Resync.D()}
	if tc.Poll.Idle != 0 {
		t.Idle = tc.Poll.Idle.D()
	}
	if tc.Poll.Hot != 0 {
		t.Hot = tc.Poll.Hot.D()
	}
	switch src.Kind {
	case store.KindDefender:
		c, err := h.remote.graph(tc.ID)
		if err != nil {
			return t, err
		}
		t.Fetcher = poll.GraphFetcher{Client: c}
	case store.KindSentinel:
		c, err := h.remote.sentinel(src.ID)
		if err != nil {
			return t, err
		}
		t.Fetcher = poll.SentinelFetcher{Client: c}
		if h.cfg.Sync.AlertRules.RulesEnabled() {
			t.AlertProducts, t.AlertRefresh = h.cfg.Sync.AlertRules.Products, h.cfg.Sync.AlertRules.Refresh.D()
		}
	default:
		return t, fmt.Errorf("source %s: unknown kind %q", src.ID, src.Kind)
	}
	return t, nil
}

// remotes gives the reconciler the hub's clients.
type remotes struct{ h *Hub }

func (r remotes) Graph(tenantID string) (writeback.GraphWriter, error) {
	return r.h.remote.graph(tenantID)
}

func (r remotes) Sentinel(sourceID string) (writeback.SentinelWriter, error) {
	return r.h.remote.sentinel(sourceID)
}

func (r remotes) Source(sourceID string) (ingest.Source, error) {
	is, _, err := r.h.remote.sourceInfo(sourceID)
	return is, err
}

// WorkspaceKey is how a source names its Sentinel workspace.
func WorkspaceKey(w config.Workspace) string {
	return w.SubscriptionID + "/" + w.ResourceGroup + "/" + w.Workspace
}

// StoreTenants turns the configured tenants into the store's tenants and sources.
func StoreTenants(c *config.Config) ([]store.Tenant, []store.Source) {
	var ts []store.Tenant
	var ss []store.Source
	for _, t := range c.Tenants {
		name := t.Name
		if name == "" {
			name = t.ID
		}
		ts = append(ts, store.Tenant{ID: t.ID, Name: name})
		if t.DefenderEnabled() {
			ss = append(ss, store.Source{TenantID: t.ID, Kind: store.KindDefender})
		}
		for _, w := range t.Sentinel {
			ss = append(ss, store.Source{TenantID: t.ID, Kind: store.KindSentinel, Workspace: WorkspaceKey(w)})
		}
	}
	return ts, ss
}

// DatabaseDSN is the configured database with a relative SQLite path made relative to the
// configuration file.
func DatabaseDSN(c *config.Config) string {
	if p, ok := strings.CutPrefix(c.Database, "sqlite:"); ok {
		return "sqlite:" + c.Path(p)
	}
	return c.Database
}

// classify says why a failed poll's source is degraded (it cannot work until someone fixes its
// setup), or "" for an ordinary failure that the next poll may not see again.
func classify(err error) string {
	if kind, reason := entra.Classify(err); kind == entra.KindDegraded {
		return reason
	}
	if errors.Is(err, graph.ErrForbidden) || errors.Is(err, sentinel.ErrForbidden) {
		return "forbidden: the app lacks the permission or admin consent this source needs"
	}
	return ""
}

func defaultOwner() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}
