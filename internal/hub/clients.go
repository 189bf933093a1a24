package hub

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/socsync/socsync/internal/config"
	"github.com/socsync/socsync/internal/doctor"
	"github.com/socsync/socsync/internal/entra"
	"github.com/socsync/socsync/internal/graph"
	"github.com/socsync/socsync/internal/incident"
	"github.com/socsync/socsync/internal/ingest"
	"github.com/socsync/socsync/internal/sentinel"
	"github.com/socsync/socsync/internal/store"
	"github.com/socsync/socsync/internal/throttle"
)

// clients holds the credentials of the configured tenants, the throttled transport all their
// requests share, and the API clients of their sources, each built once. The hub polls and
// writes with them; socsync doctor checks with the same, without a database.
type clients struct {
	cfg       *config.Config
	creds     *entra.Credentials
	transport *throttle.Transport
	version   string
	now       func() time.Time
	owners    map[string]incident.Owners // by lower-case tenant id

	mu sync.Mutex
	m  map[string]any // *graph.Client by "graph/<tenant>", *sentinel.Client by source id
}

// newClients builds the transport (within the configured budgets, telling observer of every
// attempt; observer may be nil) and the credentials.
func newClients(cfg *config.Config, getenv func(string) string, version string, now func() time.Time, observer throttle.Observer) (*clients, error) {
	c := &clients{cfg: cfg, version: version, now: now, owners: map[string]incident.Owners{}, m: map[string]any{}}
	for _, t := range cfg.Tenants {
		pairs := map[string]string{}
		for _, o := range t.Owners {
			pairs[o.UPN] = o.ObjectID
		}
		owners, err := incident.NewOwners(pairs)
		if err != nil {
			return nil, fmt.Errorf("tenant %s owners: %w", t.ID, err)
		}
		c.owners[strings.ToLower(t.ID)] = owners
	}
	httpClient, err := entra.HTTPClient(cfg)
	if err != nil {
		return nil, err
	}
	budgets := map[string]throttle.Budget{}
	for api, b := range cfg.Budgets {
		budgets[api] = throttle.Bucket(b.Burst, b.PerSecond)
	}
	c.transport = throttle.New(httpClient, throttle.Options{Now: now, Observer: observer, Budgets: budgets})
	if c.creds, err = entra.New(cfg, getenv, c.transport); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *clients) tenant(id string) (config.Tenant, bool) {
	for _, t := range c.cfg.Tenants {
		if strings.EqualFold(t.ID, id) {
			return t, true
		}
	}
	return config.Tenant{}, false
}

// sourceInfo returns the ingest view of a source and its tenant's configuration. Source ids
// are tenant/kind[/workspace] (store.SourceID).
func (c *clients) sourceInfo(sourceID string) (ingest.Source, config.Tenant, error) {
	tenantID, rest, _ := strings.Cut(sourceID, "/")
	kind, _, _ := strings.Cut(rest, "/")
	tc, ok := c.tenant(tenantID)
	if !ok {
		return ingest.Source{}, tc, fmt.Errorf("source %s: tenant not configured", sourceID)
	}
	return ingest.Source{ID: sourceID, TenantID: strings.ToLower(tc.ID), Kind: store.SourceKind(kind),
		Owners: c.owners[strings.ToLower(tc.ID)], DefenderPolled: tc.DefenderEnabled()}, tc, nil
}

// graph returns (building once) the Graph client of a tenant.
func (c *clients) graph(tenantID string) (*graph.Client, error) {
	key := "graph/" + strings.ToLower(tenantID)
	c.mu.Lock()
	defer c.mu.Unlock()
	if g, ok := c.m[key]; ok {
		return g.(*graph.Client), nil
	}
	tc, ok := c.tenant(tenantID)
	if !ok {
		return nil, fmt.Errorf("tenant %s not configured", tenantID)
	}
	cred, err := c.creds.For(tc.ID)
	if err != nil {
		return nil, err
	}
	g, err := graph.New(c.cfg.Cloud.Graph, cred, c.transport, tc.ID, &graph.Options{Version: c.version, Now: c.now})
	if err != nil {
		return nil, err
	}
	c.m[key] = g
	return g, nil
}

// sentinel returns (building once) the Sentinel client of a workspace source.
func (c *clients) sentinel(sourceID string) (*sentinel.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.m[sourceID]; ok {
		return s.(*sentinel.Client), nil
	}
	is, tc, err := c.sourceInfo(sourceID)
	if err != nil {
		return nil, err
	}
	var ws sentinel.Workspace
	found := false
	for _, w := range tc.Sentinel {
		if store.SourceID(tc.ID, store.KindSentinel, WorkspaceKey(w)) == sourceID {
			ws, found = sentinel.Workspace{SubscriptionID: w.SubscriptionID, ResourceGroup: w.ResourceGroup, Workspace: w.Workspace}, true
		}
	}
	if !found {
		return nil, fmt.Errorf("source %s: workspace not configured", sourceID)
	}
	cred, err := c.creds.For(tc.ID)
	if err != nil {
		return nil, err
	}
	s, err := sentinel.New(c.cfg.Cloud.ARM, cred, c.transport, tc.ID, ws, &sentinel.Options{Owners: is.Owners, Version: c.version, Now: c.now,
		APIVersion: c.cfg.Cloud.SentinelAPIVersion})
	if err != nil {
		return nil, err
	}
	c.m[sourceID] = s
	return s, nil
}

// doctor checks one configured tenant with these clients.
func (c *clients) doctor(ctx context.Context, tenantID string) (doctor.Report, error) {
	return doctor.Check(ctx, c.cfg, tenantID, doctorRemotes{c}, c.now)
}

// doctorRemotes gives the doctor the clients.
type doctorRemotes struct{ c *clients }

func (r doctorRemotes) Credential(tenantID string) (azcore.TokenCredential, error) {
	return r.c.creds.For(tenantID)
}

func (r doctorRemotes) Graph(tenantID string) (doctor.GraphProbe, error) { return r.c.graph(tenantID) }

func (r doctorRemotes) Sentinel(tenantID string, w config.Workspace) (doctor.SentinelProbe, error) {
	return r.c.sentinel(store.SourceID(tenantID, store.KindSentinel, WorkspaceKey(w)))
}

// doctorParallel is how many tenants Doctor checks at once.
const doctorParallel = 8

// Doctor checks configured tenants — every one when tenantIDs is empty — as socsync doctor
// does: with the credentials, transport and clients the hub polls with, and no database. The
// reports come in the order of tenantIDs, or of the configuration.
func Doctor(ctx context.Context, cfg *config.Config, opts Options, tenantIDs []string) ([]doctor.Report, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c, err := newClients(cfg, opts.Getenv, opts.Version, opts.Now, nil)
	if err != nil {
		return nil, err
	}
	if len(tenantIDs) == 0 {
		for _, t := range cfg.Tenants {
			tenantIDs = append(tenantIDs, t.ID)
		}
	}
	for _, id := range tenantIDs {
		if _, ok := c.tenant(id); !ok {
			return nil, fmt.Errorf("tenant %s is not configured", id)
		}
	}
	reports := make([]doctor.Report, len(tenantIDs))
	sem := make(chan struct{}, doctorParallel)
	var wg sync.WaitGroup
	for i, id := range tenantIDs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			reports[i], _ = c.doctor(ctx, id) // configured: checked above
		})
	}
	wg.Wait()
	return reports, nil
}
