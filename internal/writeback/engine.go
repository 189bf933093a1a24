package writeback

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/socsync/socsync/internal/graph"
	"github.com/socsync/socsync/internal/incident"
	"github.com/socsync/socsync/internal/ingest"
	"github.com/socsync/socsync/internal/reconcile"
	"github.com/socsync/socsync/internal/sentinel"
	"github.com/socsync/socsync/internal/store"
	"github.com/socsync/socsync/internal/throttle"
	"github.com/socsync/socsync/internal/workqueue"
)

// Config tunes the engine.
type Config struct {
	Owner   string        // this replica's id in incident leases
	Workers int           // incidents reconciled at once
	Rate    float64       // reconcile attempts per second (0: unbounded)
	Lease   time.Duration // how long a replica holds an incident it reconciles
	Sweep   time.Duration // how often the durable backlog (pending incidents) is re-read
	Policy  reconcile.Policy
	// RaiseMergeSeverity gives a merge target the higher severity of the two.
	RaiseMergeSeverity bool
	// AlertRules runs the alert → incident rules for incidents whose alerts all come from
	// these products (service sources or product names); none: rules off.
	AlertRules []string
	// Timeout bounds one reconcile of one incident, its remote calls included, so that a hung
	// remote frees its worker. It is at most half the lease, so that no write is still under way
	// when the incident's lease may have passed to another replica (default: half the lease).
	Timeout time.Duration
	// PerTenant is how many incidents of one tenant are reconciled at once (default a quarter
	// of Workers, at least 1): a tenant whose remote hangs or fails cannot hold every worker.
	PerTenant int
}

// Engine reconciles hub incidents with their remote copies.
type Engine struct {
	cfg     Config
	store   *store.Store
	remotes Remotes
	ingest  *ingest.Ingester
	queue   *workqueue.Queue[store.IncidentKey]
	log     *slog.Logger
	now     func() time.Time
	metrics *metrics

	mu   sync.Mutex
	busy map[string]int // incidents being reconciled, by tenant
}

// New returns an engine. reg may be nil.
func New(cfg Config, st *store.Store, remotes Remotes, ing *ingest.Ingester, log *slog.Logger, now func() time.Time, reg prometheus.Registerer) (*Engine, error) {
	if cfg.Owner == "" {
		return nil, errors.New("writeback: owner required")
	}
	if cfg.Workers < 1 {
		cfg.Workers = 4
	}
	if cfg.Lease <= 0 {
		cfg.Lease = time.Minute
	}
	if cfg.Sweep <= 0 {
		cfg.Sweep = 5 * time.Second
	}
	if cfg.Timeout <= 0 || cfg.Timeout > cfg.Lease/2 {
		cfg.Timeout = cfg.Lease / 2
	}
	if cfg.PerTenant <= 0 {
		cfg.PerTenant = max(1, cfg.Workers/4)
	}
	if now == nil {
		now = time.Now
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Engine{cfg: cfg, store: st, remotes: remotes, ingest: ing, log: log, now: now, metrics: m, busy: map[string]int{},
		queue: workqueue.New[store.IncidentKey](workqueue.Options{BaseDelay: time.Second, MaxDelay: 5 * time.Minute, Rate: cfg.Rate, Burst: cfg.Workers})}, nil
}

// Enqueue asks for an incident to be reconciled (the API and the pollers call it).
func (e *Engine) Enqueue(k store.IncidentKey) { e.queue.Add(k) }

// Run reconciles queued incidents with a pool of workers until ctx is done. It also re-reads
// the durable backlog (incidents left pending by a crash, a failure or another replica's API
// call) every Sweep.
func (e *Engine) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for range e.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k, err := e.queue.Get(ctx)
				if err != nil {
					return
				}
				e.work(ctx, k)
				e.queue.Done(k)
			}
		}()
	}
	defer wg.Wait()
	for {
		if keys, err := e.store.DueSyncs(ctx, 1000); err == nil {
			for _, k := range keys {
				e.queue.Add(k)
			}
		} else if ctx.Err() == nil {
			e.log.Warn("reading the reconcile backlog failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(e.cfg.Sweep):
		}
	}
}

// errBusy: another replica holds the incident.
var errBusy = errors.New("incident held by another replica")

// enter takes one of the tenant's reconcile slots, if one is free.
func (e *Engine) enter(tenantID string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.busy[tenantID] >= e.cfg.PerTenant {
		return false
	}
	e.busy[tenantID]++
	return true
}

func (e *Engine) leave(tenantID string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.busy[tenantID]--; e.busy[tenantID] <= 0 {
		delete(e.busy, tenantID)
	}
}

// work reconciles one key, within the tenant's share of the workers and the reconcile
// deadline, and decides when it comes back.
func (e *Engine) work(ctx context.Context, k store.IncidentKey) {
	if !e.enter(k.TenantID) {
		e.queue.AddAfter(k, 250*time.Millisecond) // the tenant's slots are busy (a slow or hung remote)
		return
	}
	defer e.leave(k.TenantID)
	rctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	err := e.Reconcile(rctx, k)
	var th *throttle.Throttled
	switch {
	case err == nil:
		e.queue.Forget(k)
		e.metrics.outcomes.WithLabelValues("ok").Inc()
	case errors.Is(err, errBusy):
		e.queue.AddAfter(k, time.Second)
	case errors.As(err, &th):
		e.metrics.outcomes.WithLabelValues("throttled").Inc()
		e.queue.AddAfter(k, th.NotBefore.Sub(e.now()))
	case ctx.Err() != nil:
	default:
		e.metrics.outcomes.WithLabelValues("error").Inc()
		d := e.queue.Retry(k)
		e.log.Warn("reconcile failed; will retry", "tenant", k.TenantID, "incident", k.ID, "in", d, "err", err)
	}
}

// Reconcile brings one incident's copies into agreement: it plans, writes, and records. It
// returns an error when something is left to retry (a *throttle.Throttled says when).
func (e *Engine) Reconcile(ctx context.Context, k store.IncidentKey) error {
	ok, err := e.store.ClaimSync(ctx, k, e.cfg.Owner, e.cfg.Lease)
	if err != nil {
		return err
	}
	if !ok {
		return errBusy
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := e.store.ReleaseSync(rctx, k, e.cfg.Owner); err != nil {
			e.log.Warn("releasing an incident lease failed", "incident", k.ID, "err", err)
		}
	}()
	// A write may find the remote changed since the last poll; then the fresh state is taken
	// in (as a poll would) and the incident planned again.
	for attempt := 0; ; attempt++ {
		err := e.reconcileOnce(ctx, k)
		if !errors.Is(err, errReplan) || attempt == 3 {
			return err
		}
	}
}

var errReplan = errors.New("remote changed; plan again")

// linkResult is what happened on one link.
type linkResult struct {
	written  []reconcile.Field
	observed *incident.Observation // the remote's state after the write
	err      error
}

func (e *Engine) reconcileOnce(ctx context.Context, k store.IncidentKey) error {
	si, err := e.store.Incident(ctx, k.TenantID, k.ID)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	}
	stored, err := e.store.Links(ctx, k.TenantID, k.ID)
	if err != nil {
		return err
	}
	links, err := reconcile.DecodeLinks(stored)
	if err != nil {
		return err
	}
	src, ok, err := e.tenantSource(links)
	if err != nil || !ok {
		return e.setState(ctx, k, "in_sync", time.Time{}, err) // nothing remote to sync (a webhook alert)
	}
	if si.Status == incident.StatusMerged {
		return e.finishMerge(ctx, si, links, src)
	}
	if changed, err := e.applyAlertRules(ctx, si); err != nil || changed {
		if err == nil {
			return errReplan
		}
		return err
	}

	plan := reconcile.Plan(reconcile.InputFor(si, links, src.Owners, src.DefenderPolled, e.cfg.Policy))
	if len(plan.Inbound) > 0 {
		// The hub's fields lag its links (a poll stored the links, then an analyst's change
		// raced it); take the remote values in first.
		err := e.store.InTx(ctx, func(tx *store.Tx) error {
			si.Fields = plan.Hub
			return tx.UpdateIncident(ctx, &si.Incident, store.Change{Summary: "remote changes taken in", Actor: "socsync"})
		})
		if err != nil {
			return err
		}
		return errReplan
	}

	results := map[string]linkResult{}
	var firstErr error
	for _, w := range plan.Writes {
		l := linkByPlanID(links, w.Link)
		r := e.write(ctx, l, w, plan.Hub, src.Owners)
		if errors.Is(r.err, errReplan) {
			return errReplan
		}
		results[w.Link] = r
		if r.err != nil && firstErr == nil {
			firstErr = r.err
		}
	}
	commentErr := e.writeComments(ctx, si, links, src)
	if firstErr == nil {
		firstErr = commentErr
	}
	if err := e.record(ctx, si, links, plan, results, src, commentErr); err != nil {
		return err
	}
	return firstErr
}

// tenantSource returns the ingest view of the incident's tenant (owners, whether Defender is
// polled), from any of its remote links; ok is false for an incident with no remote link.
func (e *Engine) tenantSource(links []reconcile.LinkState) (ingest.Source, bool, error) {
	for _, l := range links {
		if l.Kind == store.LinkWebhook {
			continue
		}
		src, err := e.remotes.Source(l.SourceID)
		return src, err == nil, err
	}
	return ingest.Source{}, false, nil
}

func linkByPlanID(links []reconcile.LinkState, id string) reconcile.LinkState {
	for _, l := range links {
		if l.PlanID() == id {
			return l
		}
	}
	return reconcile.LinkState{}
}

func fieldNames(fs []reconcile.Field) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = string(f)
	}
	return out
}

// write carries out one link's write.
func (e *Engine) write(ctx context.Context, l reconcile.LinkState, w reconcile.Write, hub incident.Fields, owners incident.Owners) linkResult {
	names := fieldNames(w.Fields)
	switch l.Kind {
	case store.LinkGraph:
		g, err := e.remotes.Graph(l.TenantID)
		if err != nil {
			return linkResult{err: err}
		}
		// Graph has no etags: read first, so that a change made since the last poll is taken in
		// and planned with, not overwritten.
		fresh, err := g.Get(ctx, l.ExternalID)
		if err != nil {
			return linkResult{err: fmt.Errorf("graph GET %s: %w", l.ExternalID, err)}
		}
		if !fresh.UpdatedAt.Equal(l.Obs.UpdatedAt) {
			if err := e.observe(ctx, l, fresh); err != nil {
				return linkResult{err: err}
			}
			return linkResult{err: errReplan}
		}
		patch, err := graph.PatchOf(hub, names...)
		if err != nil {
			return linkResult{err: err}
		}
		obs, err := g.Update(ctx, l.ExternalID, patch)
		if err != nil {
			if r, ok := e.verifyLost(ctx, l, w, hub, err, func() (incident.Observation, error) { return g.Get(ctx, l.ExternalID) }); ok {
				return r
			}
			return linkResult{err: fmt.Errorf("graph PATCH %s: %w", l.ExternalID, err)}
		}
		e.metrics.writes.WithLabelValues("graph").Inc()
		return linkResult{written: w.Fields, observed: &obs}
	case store.LinkSentinel:
		s, err := e.remotes.Sentinel(l.SourceID)
		if err != nil {
			return linkResult{err: err}
		}
		fresh, wire, err := s.Get(ctx, l.ExternalID)
		if err != nil {
			return linkResult{err: fmt.Errorf("sentinel GET %s: %w", l.ExternalID, err)}
		}
		keepDetailCounts(l, &fresh)
		if !fresh.UpdatedAt.Equal(l.Obs.UpdatedAt) {
			// Changed since the poll: take it in and plan again rather than overwrite it.
			if err := e.observe(ctx, l, fresh); err != nil {
				return linkResult{err: err}
			}
			return linkResult{err: errReplan}
		}
		changes, err := sentinel.ChangesOf(hub, names...)
		if err != nil {
			return linkResult{err: err}
		}
		if unwritten := sentinel.Apply(&wire, changes, owners); len(unwritten) > 0 {
			return linkResult{err: fmt.Errorf("%w: %v", errUnwritable, unwritten)}
		}
		obs, _, err := s.Put(ctx, l.ExternalID, wire)
		if errors.Is(err, sentinel.ErrConflict) {
			// Someone wrote between our GET and PUT: re-read, take it in, plan again.
			e.metrics.conflicts.Inc()
			if fresh, _, gerr := s.Get(ctx, l.ExternalID); gerr == nil {
				keepDetailCounts(l, &fresh)
				if err := e.observe(ctx, l, fresh); err != nil {
					return linkResult{err: err}
				}
			}
			return linkResult{err: errReplan}
		}
		if err != nil {
			if r, ok := e.verifyLost(ctx, l, w, hub, err, func() (incident.Observation, error) {
				o, _, err := s.Get(ctx, l.ExternalID)
				return o, err
			}); ok {
				return r
			}
			return linkResult{err: fmt.Errorf("sentinel PUT %s: %w", l.ExternalID, err)}
		}
		e.metrics.writes.WithLabelValues("sentinel").Inc()
		keepDetailCounts(l, &obs)
		return linkResult{written: w.Fields, observed: &obs}
	}
	return linkResult{err: fmt.Errorf("link %s: nothing to write to", l.PlanID())}
}

// verifyLost settles a write whose outcome is unknown (its answer was lost or cut off, or the
// remote failed after perhaps acting): it reads the remote again, and if every written field
// now holds the value written, the write took effect and is recorded as such. Otherwise the
// remote's later state would be taken for a remote analyst's change, made after any hub edit
// that came while the write was on its way, and win over it.
func (e *Engine) verifyLost(ctx context.Context, l reconcile.LinkState, w reconcile.Write, hub incident.Fields, cause error,
	get func() (incident.Observation, error)) (linkResult, bool) {
	var th *throttle.Throttled
	if errors.As(cause, &th) || errors.Is(cause, errUnwritable) || ctx.Err() != nil {
		return linkResult{}, false // not sent, or refused before sending
	}
	fresh, err := get()
	if err != nil {
		return linkResult{}, false
	}
	keepDetailCounts(l, &fresh)
	sys := incident.Graph
	if l.Kind == store.LinkSentinel {
		sys = incident.Sentinel
	}
	for _, f := range w.Fields {
		if !reconcile.Equal(sys, f, fresh.Fields, hub) {
			return linkResult{}, false
		}
	}
	e.log.Info("a write whose answer was lost took effect", "link", l.PlanID(), "fields", fieldNames(w.Fields), "cause", cause)
	return linkResult{written: w.Fields, observed: &fresh}, true
}

// keepDetailCounts keeps the link's stored alert and comment counts in a Sentinel observation
// the reconciler read without its details (a GET or PUT answer carries the counts, not the
// alerts and comments). The poller fetches the details of an incident whose counts differ from
// the stored ones, so the stored counts must stay those of the details collected: a comment a
// remote analyst wrote just before a write-back would otherwise never be fetched.
func keepDetailCounts(l reconcile.LinkState, obs *incident.Observation) {
	if l.Kind != store.LinkSentinel {
		return
	}
	if obs.Alerts == nil {
		obs.AlertCount = l.Obs.AlertCount
	}
	if obs.Comments == nil {
		obs.CommentCount = l.Obs.CommentCount
	}
}

// errUnwritable: the remote cannot take the value (a rule of the remote's, such as closing
// without a classification); retrying will not help until something changes.
var errUnwritable = errors.New("the remote cannot take this value")

// observe stores a fresh observation of a link, as a poll would.
func (e *Engine) observe(ctx context.Context, l reconcile.LinkState, obs incident.Observation) error {
	src, err := e.remotes.Source(l.SourceID)
	if err != nil {
		return err
	}
	return e.store.InTx(ctx, func(tx *store.Tx) error {
		_, err := e.ingest.Observe(ctx, tx, src, obs)
		return err
	})
}

// record stores the outcome in one transaction: each written link's new observed state and
// agreed base, with an audit entry per written field; the new base of links that needed no
// write; the incident's sync state.
func (e *Engine) record(ctx context.Context, si store.StoredIncident, links []reconcile.LinkState, plan reconcile.Result, results map[string]linkResult, src ingest.Source, commentErr error) error {
	state, next := "in_sync", time.Time{}
	if commentErr != nil {
		// A comment still to write keeps the incident pending in the database, so that it is
		// shown and swept again (by this replica or another, after a restart too).
		state, next = "pending", e.now().Add(5*time.Second)
	}
	for _, r := range results {
		switch {
		case r.err == nil:
		case errors.Is(r.err, errUnwritable):
			state = "failed"
		default:
			if state != "failed" {
				state = "pending"
			}
			next = e.now().Add(5 * time.Second)
		}
	}
	return e.store.InTx(ctx, func(tx *store.Tx) error {
		for _, l := range links {
			if l.Kind == store.LinkWebhook {
				continue
			}
			r, wrote := results[l.PlanID()]
			switch {
			case !wrote:
				base, _ := json.Marshal(plan.Bases[l.PlanID()])
				if err := tx.SetLinkSync(ctx, si.TenantID, l.ID, base, "in_sync", ""); err != nil {
					return err
				}
			case r.err != nil:
				linkState := "pending"
				if errors.Is(r.err, errUnwritable) {
					linkState = "failed"
				}
				var base json.RawMessage // never agreed: none yet
				if pb, ok := plan.PendingBases[l.PlanID()]; ok {
					base, _ = json.Marshal(pb)
				}
				if err := tx.SetLinkSync(ctx, si.TenantID, l.ID, base, linkState, r.err.Error()); err != nil {
					return err
				}
				if err := tx.Audit(ctx, store.AuditEntry{TenantID: si.TenantID, IncidentID: si.ID, Actor: "socsync", Action: "write-back",
					Link: l.PlanID(), Field: strings.Join(fieldNames(writeFields(plan, l.PlanID())), ","), Result: "failed", Detail: r.err.Error()}); err != nil {
					return err
				}
			default:
				if err := e.recordWrite(ctx, tx, si, l, r, plan, src); err != nil {
					return err
				}
			}
		}
		if state == "in_sync" {
			// An analyst's edit or a merge may have changed the incident while this plan was
			// written (they do not wait for the reconciler's claim): what they changed is not
			// written yet, so it stays pending, in the durable backlog, for the next plan.
			cur, err := tx.Incident(ctx, si.TenantID, si.ID)
			if err != nil {
				return err
			}
			if cur.Version != si.Version {
				state, next = "pending", tx.Now()
			}
		}
		return tx.SetSyncState(ctx, si.TenantID, si.ID, state, next)
	})
}

func writeFields(plan reconcile.Result, link string) []reconcile.Field {
	w, _ := plan.WriteFor(link)
	return w.Fields
}

// recordWrite stores a successful write: the remote's state after it as the link's observed
// state; the written fields, as the remote now holds them, as agreed; one audit entry per field.
// The fields it did not write are agreed as the plan saw them (the hub had them already), not
// as the remote shows them after the write, so that anything else the remote changed meanwhile
// shows as the remote's change and flows in, rather than being taken for a hub change and
// overwritten. (Keeping their old agreed value instead left a field taken in from the link
// agreed at its old value: when the remote later changed it back, that looked like no change,
// and the hub's value overwrote it.)
func (e *Engine) recordWrite(ctx context.Context, tx *store.Tx, si store.StoredIncident, l reconcile.LinkState, r linkResult, plan reconcile.Result, src ingest.Source) error {
	obs := *r.observed
	observed, err := json.Marshal(obs)
	if err != nil {
		return err
	}
	nl := l.Link
	nl.Observed, nl.Raw, nl.RemoteUpdated, nl.ETag = observed, obs.Raw, obs.UpdatedAt, obs.ETag
	if _, err := tx.UpsertLink(ctx, &nl); err != nil {
		return err
	}
	base, _ := json.Marshal(plan.AgreedAfter(l.PlanID(), r.written, obs.Fields))
	if err := tx.SetLinkSync(ctx, si.TenantID, l.ID, base, "in_sync", ""); err != nil {
		return err
	}
	for _, f := range r.written {
		if err := tx.Audit(ctx, store.AuditEntry{TenantID: si.TenantID, IncidentID: si.ID, Actor: "socsync", Action: "write-back",
			Link: l.PlanID(), Field: string(f), Before: fieldText(l.Obs.Fields, f), After: fieldText(plan.Hub, f), Result: "ok"}); err != nil {
			return err
		}
	}
	return nil
}

func fieldText(v incident.Fields, f reconcile.Field) string {
	switch f {
	case reconcile.FieldStatus:
		return string(v.Status)
	case reconcile.FieldSeverity:
		return string(v.Severity)
	case reconcile.FieldOwner:
		return v.Owner
	case reconcile.FieldClassification:
		return string(v.Classification)
	case reconcile.FieldDetermination:
		return string(v.Determination)
	case reconcile.FieldClassificationReason:
		return string(v.ClassificationReason)
	case reconcile.FieldClassificationComment:
		return v.ClassificationComment
	case reconcile.FieldTags:
		return strings.Join(incident.NormalizeTags(v.Tags), ", ")
	}
	return ""
}

func (e *Engine) setState(ctx context.Context, k store.IncidentKey, state string, next time.Time, cause error) error {
	if cause != nil {
		return cause
	}
	return e.store.InTx(ctx, func(tx *store.Tx) error { return tx.SetSyncState(ctx, k.TenantID, k.ID, state, next) })
}

type metrics struct {
	outcomes  *prometheus.CounterVec
	writes    *prometheus.CounterVec
	comments  *prometheus.CounterVec
	conflicts prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "socsync_reconcile_total",
			Help: "Reconcile attempts by outcome (ok, throttled, error)."}, []string{"outcome"}),
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "socsync_writebacks_total",
			Help: "Incident writes sent to remotes (Graph PATCH, Sentinel PUT)."}, []string{"remote"}),
		comments: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "socsync_comments_written_total",
			Help: "Comments written to remotes."}, []string{"remote"}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{Name: "socsync_sentinel_etag_conflicts_total",
			Help: "Sentinel PUTs refused for a stale etag (re-read and planned again)."}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.outcomes, m.writes, m.comments, m.conflicts} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register reconcile metrics: %w", err)
			}
		}
	}
	return m, nil
}
