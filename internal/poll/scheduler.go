package poll

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/socsync/socsync/internal/incident"
	"github.com/socsync/socsync/internal/ingest"
	"github.com/socsync/socsync/internal/store"
	"github.com/socsync/socsync/internal/throttle"
)

// Config tunes the scheduler.
type Config struct {
	Owner    string        // this replica's lease owner id (unique per process)
	Workers  int           // polls in flight at once
	Lease    time.Duration // how long a claim holds; renewed while a poll runs
	Overlap  time.Duration // how far behind its cursor each poll re-reads
	Timeout  time.Duration // a poll that reads or stores nothing for this long is cut off
	Tick     time.Duration // longest sleep between looks for due sources
	MaxPages int           // pages per poll before the rest waits for the next poll
}

// Scheduler claims due sources and polls them with a bounded pool of workers. One slow or
// failing source holds one worker until its deadline and never delays the others.
type Scheduler struct {
	cfg     Config
	store   *store.Store
	resolve Resolver
	ingest  *ingest.Ingester
	log     *slog.Logger
	now     func() time.Time
	metrics *metrics
	// Classify turns a poll error into a reason the source is degraded (revoked consent …),
	// or "" for an ordinary failure. Optional.
	Classify func(error) string
	// Changed is told the hub incidents a poll changed (the reconciler's queue). Optional.
	Changed func(tenantID string, incidentIDs []string)
	// Observed is told every observation a poll stored, when its transaction committed (the
	// benchmark measures lag with it). Optional; it must not block.
	Observed func(tenantID string, obs incident.Observation, at time.Time)
}

// New returns a scheduler. reg may be nil.
func New(cfg Config, st *store.Store, resolve Resolver, ing *ingest.Ingester, log *slog.Logger, now func() time.Time, reg prometheus.Registerer) (*Scheduler, error) {
	if cfg.Owner == "" || cfg.Workers < 1 || cfg.Lease <= 0 {
		return nil, errors.New("poll scheduler: owner, workers and lease are required")
	}
	if cfg.Tick <= 0 {
		cfg.Tick = 250 * time.Millisecond
	}
	if cfg.MaxPages <= 0 {
		cfg.MaxPages = 2000
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 45 * time.Second
	}
	if now == nil {
		now = time.Now
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Scheduler{cfg: cfg, store: st, resolve: resolve, ingest: ing, log: log, now: now, metrics: m}, nil
}

// Run claims and polls due sources until ctx is done, then waits for polls in flight to stop
// and releases their sources.
func (s *Scheduler) Run(ctx context.Context) error {
	sem := make(chan struct{}, s.cfg.Workers)
	freed := make(chan struct{}, 1) // a worker finished: look again without waiting a tick
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		if free := s.cfg.Workers - len(sem); free > 0 {
			leases, err := s.store.ClaimDue(ctx, s.cfg.Owner, s.cfg.Lease, free)
			if err != nil && ctx.Err() == nil {
				s.log.Warn("claiming due sources failed; retrying", "err", err)
			}
			for _, l := range leases {
				sem <- struct{}{}
				wg.Add(1)
				go func() {
					defer func() {
						<-sem
						wg.Done()
						select {
						case freed <- struct{}{}:
						default:
						}
					}()
					s.work(ctx, l)
				}()
			}
		}
		wait := s.cfg.Tick
		if len(sem) < s.cfg.Workers { // with no free worker, only a finished poll is worth waking for
			if next, err := s.store.NextDue(ctx); err == nil && !next.IsZero() {
				wait = min(wait, max(10*time.Millisecond, next.Sub(s.now())))
			}
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-freed:
			timer.Stop()
		case <-timer.C:
		}
	}
}

// work polls one leased source and releases it with its next poll time.
func (s *Scheduler) work(ctx context.Context, l store.Lease) {
	start := s.now()
	if !l.LastPoll.IsZero() { // a source's first poll has no schedule to be late on
		s.metrics.startDelay.Observe(max(0, start.Sub(l.NextPoll)).Seconds())
	}
	s.log.Debug("poll start", "source", l.ID, "owner", l.Owner, "token", l.Token)
	defer s.log.Debug("poll end", "source", l.ID, "owner", l.Owner, "token", l.Token)
	t, err := s.resolve(l.Source)
	var res result
	if err == nil {
		res, err = s.pollLeased(ctx, l, t)
	}
	if errors.Is(err, store.ErrFenced) {
		s.log.Warn("lease lost during poll; its writes were refused", "tenant", l.TenantID, "source", l.ID)
		s.metrics.polls.WithLabelValues(string(l.Kind), "fenced").Inc()
		return
	}
	degraded := ""
	if err != nil && s.Classify != nil {
		degraded = s.Classify(err)
	}
	now := s.now()
	outcome := "ok"
	switch {
	case errors.As(err, new(*throttle.Throttled)):
		outcome = "throttled"
	case degraded != "":
		outcome = "degraded"
	case err != nil:
		outcome = "error"
	}
	s.metrics.polls.WithLabelValues(string(l.Kind), outcome).Inc()
	s.metrics.duration.WithLabelValues(string(l.Kind)).Observe(now.Sub(start).Seconds())
	s.metrics.changed.WithLabelValues(string(l.Kind)).Add(float64(res.changed))
	if err != nil {
		s.log.Warn("poll failed", "tenant", l.TenantID, "source", l.ID, "outcome", outcome, "err", err)
	}
	if t.Idle == 0 {
		t.Idle, t.Hot = time.Minute, 10*time.Second // the source could not be resolved
	}
	r := store.PollResult{NextPoll: nextPoll(now, t, l.Source, res, err), Calls: res.calls, Changed: res.changed,
		Err: err, Degraded: degraded}
	if errors.As(err, new(*throttle.Throttled)) || res.detailsThrottled {
		r.Throttled = 1
		r.Err = nil // being throttled is not a failure of the source
	}
	// Release even when ctx is done (shutdown), so that another replica can take over at once.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := s.store.Release(rctx, l, r); err != nil {
		s.log.Warn("releasing source failed", "source", l.ID, "err", err)
	}
	if len(res.changedIDs) > 0 && s.Changed != nil {
		s.Changed(l.TenantID, res.changedIDs)
	}
}

// errStalled ends a poll that made no progress for the configured timeout.
var errStalled = errors.New("poll deadline: nothing read or stored within polling.timeout")

// pollLeased polls, renewing the lease while the poll runs; losing the lease cancels the poll.
// The poll's deadline is one of progress: it is cut off when no page or detail has been read
// and no page stored for s.cfg.Timeout, so that a hung remote never holds a worker long, while a
// first poll of a large backlog (thousands of incidents, on a loaded machine) takes as long as
// it keeps making progress.
func (s *Scheduler) pollLeased(ctx context.Context, l store.Lease, t Target) (result, error) {
	pctx, cancelCause := context.WithCancelCause(ctx)
	cancel := func() { cancelCause(context.Canceled) }
	defer cancel()
	stall := time.AfterFunc(s.cfg.Timeout, func() { cancelCause(errStalled) })
	defer stall.Stop()
	renewed := make(chan error, 1)
	go func() {
		tick := time.NewTicker(s.cfg.Lease / 3)
		defer tick.Stop()
		for {
			select {
			case <-pctx.Done():
				renewed <- nil
				return
			case <-tick.C:
				if err := s.store.Renew(pctx, &l, s.cfg.Lease); err != nil && pctx.Err() == nil {
					cancel()
					renewed <- fmt.Errorf("renew lease: %w", err)
					return
				}
			}
		}
	}()
	res, err := s.poll(pctx, l, t, func() { stall.Reset(s.cfg.Timeout) })
	stalled := errors.Is(context.Cause(pctx), errStalled)
	cancel()
	if rerr := <-renewed; rerr != nil && errors.Is(rerr, store.ErrFenced) {
		return res, rerr
	}
	if err != nil && stalled {
		err = fmt.Errorf("%w (%s): %w", errStalled, s.cfg.Timeout, err)
	}
	return res, err
}

type metrics struct {
	polls      *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	changed    *prometheus.CounterVec
	startDelay prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "socsync_polls_total",
			Help: "Polls of sources by kind and outcome (ok, error, throttled, degraded, fenced)."}, []string{"kind", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "socsync_poll_duration_seconds",
			Help: "Duration of one poll of one source.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 14)}, []string{"kind"}),
		changed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "socsync_incidents_changed_total",
			Help: "Hub incidents changed by polls."}, []string{"kind"}),
		startDelay: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "socsync_poll_start_delay_seconds",
			Help:    "How late a poll started after its source fell due (scheduling jitter).",
			Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60}}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.polls, m.duration, m.changed, m.startDelay} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register poll metrics: %w", err)
			}
		}
	}
	return m, nil
}
