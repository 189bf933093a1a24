// Package forward drains the hub's outbox into the central Sentinel workspace through the Azure
// Monitor Logs Ingestion API: one Row per (incident, version), in gzipped batches of at most
// 1 MB before and after compression, sent with the official azlogs client through socsync's
// throttle transport, and acknowledged in the outbox only after the API answered 204.
//
// Outcomes of an upload:
//   - 204: the batch's rows are acknowledged (sent).
//   - 429, or 503 with Retry-After: the throttle transport holds the request back until the
//     Retry-After has passed (short waits) or returns *throttle.Throttled, and the batch is sent
//     again after that time, never before.
//   - 5xx, transport errors, timeouts: the throttle transport retries with jittered backoff (an
//     upload is marked idempotent: its rows carry their own keys, so a repeat of an upload the
//     service did take leaves arg_max exact); when it gives up, the forwarder backs off with
//     jitter and sends the batch again.
//   - 413: the batch is split in halves and each half sent, and the batch bound is lowered to
//     half that batch for the rest of the process's life; a single row is rebuilt with its
//     largest values cut further (half the budget each time, down to 16 KiB) and, past that,
//     set aside as a dead letter. It never loops.
//   - 400: the batch is split down to the rows that are refused alone. If other rows of the
//     batch were taken, each of those rows is asked for once more on its own and, refused
//     again, set aside as a dead letter (store.FailOutbox: logged, counted, listed by
//     store.OutboxFailures); if every row was refused, the rule or the table is the likelier
//     culprit, so nothing is set aside: the claims are given back and the forwarder backs off.
//   - 401, 403, 404 (credential, role assignment, unknown rule): logged, backed off, retried.
//
// Each outbox row is claimed by one replica at a time (store.ClaimOutbox); the claim is kept
// alive while its batch is in flight and checked before every attempt, so a row is sent by one
// replica. One batch is in flight per replica: after a crash, at most that batch is sent again,
// with the same rows.
package forward

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/monitor/ingestion/azlogs"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/socsync/socsync/internal/store"
	"github.com/socsync/socsync/internal/throttle"
)

// Defaults of Options.
const (
	// DefaultAudience is the token audience of Logs Ingestion in the public cloud. azlogs asks
	// for Audience + "/.default"; its own default audience ends in a slash, which puts
	// https://monitor.azure.com//.default on the wire. Without the slash the scope is the
	// documented https://monitor.azure.com/.default (entra.ScopeIngestion).
	DefaultAudience = "https://monitor.azure.com"
	// DefaultMaxBatchBytes bounds a request's body before and after gzip: the service takes
	// 1 MB (1,048,576 bytes) either way; this leaves 8 % headroom.
	DefaultMaxBatchBytes = 960_000
	// DefaultMaxRowBytes bounds one row's JSON.
	DefaultMaxRowBytes = 512 << 10
	minRowBudget       = 16 << 10
	minBatchBytes      = 64 << 10
)

// Store is what the forwarder needs of the hub's database.
type Store interface {
	ClaimOutbox(ctx context.Context, owner string, ttl time.Duration, limit int) ([]store.OutboxRow, error)
	RenewOutboxClaims(ctx context.Context, owner string, ttl time.Duration) ([]store.OutboxKey, error)
	AckOutboxBatch(ctx context.Context, owner string, keys []store.OutboxKey) (int, error)
	FailOutbox(ctx context.Context, owner string, k store.OutboxKey, reason string) (bool, error)
	ReleaseOutbox(ctx context.Context, owner string) (int, error)
	OutboxStats(ctx context.Context) (store.OutboxStats, error)
	Tenants(ctx context.Context, scope store.Scope) ([]store.Tenant, error)
}

// Target is where rows go: the Logs Ingestion endpoint (a DCE's, or a kind: Direct data
// collection rule's own), the rule's immutable id and its stream.
type Target struct {
	Endpoint       string
	DCRImmutableID string
	Stream         string
}

// Options tune a Forwarder. Owner is required; the zero value of everything else is a default.
type Options struct {
	// Owner names this replica in outbox claims.
	Owner string
	Log   *slog.Logger
	// Registerer takes the forward metrics (nil: not registered).
	Registerer prometheus.Registerer
	// Now is the clock of the lag metric and the TimeGenerated window (default time.Now).
	Now func() time.Time
	// Audience is the token audience (default DefaultAudience).
	Audience string
	// Version is socsync's version for the User-Agent.
	Version string

	ClaimTTL       time.Duration // how long a claim lasts unless renewed (default 15s; renewed every third of it)
	ClaimLimit     int           // rows claimed at once (default 2,000)
	MaxBatchBytes  int           // request body bound, before and after gzip (default DefaultMaxBatchBytes)
	MaxRowBytes    int           // one row's bound (default DefaultMaxRowBytes)
	RequestTimeout time.Duration // deadline of one upload (default 30s)
	ShutdownGrace  time.Duration // how long an upload in flight may finish after Run's context ends (default 5s)
	PollInterval   time.Duration // how often an empty outbox is looked at again (default 250ms)
	MinBackoff     time.Duration // first backoff after a failure (default 500ms)
	MaxBackoff     time.Duration // longest backoff (default 30s)
}

// Forwarder drains the outbox. Build it with New and run it with Run.
type Forwarder struct {
	target Target
	client *azlogs.Client
	cred   *refreshingCredential
	store  Store
	o      Options
	log    *slog.Logger
	m      *metrics
	key    throttle.Key

	// Owned by the goroutine running Run.
	maxBatch int // MaxBatchBytes, lowered after a 413 of a batch under it
	names    map[string]string
	statsAt  time.Time
}

// New returns a forwarder for target. Tokens come from cred (the central workspace's tenant);
// requests go through transport (the hub's throttle transport); azcore's own retries are off.
func New(target Target, cred azcore.TokenCredential, transport policy.Transporter, st Store, o Options) (*Forwarder, error) {
	u, err := url.Parse(strings.TrimSuffix(target.Endpoint, "/"))
	switch {
	case err != nil || u.Scheme != "https" || u.Host == "":
		return nil, fmt.Errorf("forward: endpoint %q: want https://host (tokens are only sent over TLS)", target.Endpoint)
	case target.DCRImmutableID == "" || target.Stream == "":
		return nil, errors.New("forward: a data collection rule immutable id and a stream are required")
	case cred == nil || st == nil:
		return nil, errors.New("forward: a credential and a store are required")
	case o.Owner == "":
		return nil, errors.New("forward: an owner is required")
	}
	target.Endpoint = u.String()
	o.setDefaults()
	if o.MaxBatchBytes < minBatchBytes {
		return nil, fmt.Errorf("forward: MaxBatchBytes %d: want at least %d", o.MaxBatchBytes, minBatchBytes)
	}
	fresh := &refreshingCredential{TokenCredential: cred}
	client, err := azlogs.NewClient(target.Endpoint, fresh, &azlogs.ClientOptions{ClientOptions: azcore.ClientOptions{
		Cloud: cloud.Configuration{Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
			azlogs.ServiceNameIngestion: {Audience: o.Audience},
		}},
		Transport: transport,
		Retry:     policy.RetryOptions{MaxRetries: -1}, // the throttle transport is the one retry layer
		Telemetry: policy.TelemetryOptions{ApplicationID: "socsync/" + o.Version},
	}})
	if err != nil {
		return nil, fmt.Errorf("forward: %w", err)
	}
	f := &Forwarder{target: target, client: client, cred: fresh, store: st, o: o, log: o.Log, maxBatch: o.MaxBatchBytes,
		names: map[string]string{}, key: throttle.Key{API: throttle.APIIngestion, Scope: target.DCRImmutableID}}
	f.m = newMetrics()
	if o.Registerer != nil {
		if err := o.Registerer.Register(f.m); err != nil {
			return nil, fmt.Errorf("forward: metrics: %w", err)
		}
	}
	return f, nil
}

func (o *Options) setDefaults() {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Audience == "" {
		o.Audience = DefaultAudience
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.ClaimTTL, 15*time.Second)
	def(&o.RequestTimeout, 30*time.Second)
	def(&o.ShutdownGrace, 5*time.Second)
	def(&o.PollInterval, 250*time.Millisecond)
	def(&o.MinBackoff, 500*time.Millisecond)
	def(&o.MaxBackoff, 30*time.Second)
	if o.ClaimLimit <= 0 {
		o.ClaimLimit = 2000
	}
	if o.MaxBatchBytes <= 0 {
		o.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if o.MaxRowBytes <= 0 {
		o.MaxRowBytes = DefaultMaxRowBytes
	}
}

// errRefused: every row of a batch was refused (400) on its own; the claims are given back.
var errRefused = errors.New("forward: Logs Ingestion refused every row of a batch")

// Run forwards until ctx ends; it returns nil then. On the way out it gives back the claims it
// holds, so that a restarted or other replica takes the rows at once.
func (f *Forwarder) Run(ctx context.Context) error {
	f.log.Info("forwarding to Logs Ingestion", "endpoint", f.target.Endpoint, "rule", f.target.DCRImmutableID, "stream", f.target.Stream)
	defer f.release(ctx)
	failures := 0
	for ctx.Err() == nil {
		f.updateStats(ctx)
		n, err := f.cycle(ctx)
		switch {
		case ctx.Err() != nil:
		case err != nil:
			f.release(ctx)
			d := f.backoff(failures)
			failures++
			if !errors.Is(err, errRefused) {
				f.log.Warn("forward: will try again", "err", err, "in", d.Round(time.Millisecond).String())
			}
			sleep(ctx, d)
		case n == 0:
			failures = 0
			sleep(ctx, f.o.PollInterval)
		default:
			failures = 0
		}
	}
	return nil
}

func (f *Forwarder) release(ctx context.Context) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if n, err := f.store.ReleaseOutbox(rctx, f.o.Owner); err != nil {
		f.log.Warn("forward: could not give back outbox claims; they expire on their own", "err", err)
	} else if n > 0 {
		f.log.Debug("forward: gave back outbox claims", "rows", n)
	}
}

// updateStats refreshes the outbox gauges, at most every 5 seconds.
func (f *Forwarder) updateStats(ctx context.Context) {
	now := time.Now()
	if now.Sub(f.statsAt) < 5*time.Second {
		return
	}
	f.statsAt = now
	st, err := f.store.OutboxStats(ctx)
	if err != nil {
		return
	}
	f.m.pending.Set(float64(st.Pending))
	f.m.deadLetters.Set(float64(st.Failed))
	age := 0.0
	if !st.OldestPending.IsZero() {
		age = max(0, f.o.Now().Sub(st.OldestPending).Seconds())
	}
	f.m.oldest.Set(age)
}

// entry is one outbox row ready to send.
type entry struct {
	row    store.OutboxRow
	name   string // customer tenant name
	budget int    // bound of the row's JSON
	json   []byte
	cut    bool // values were truncated
}

func (f *Forwarder) build(r store.OutboxRow, name string, budget int) *entry {
	e := &entry{row: r, name: name, budget: budget}
	f.render(e)
	return e
}

func (f *Forwarder) render(e *entry) {
	row := rowFor(e.row, e.name)
	clampNow(&row, f.o.Now())
	e.json = fit(&row, e.budget)
	e.cut = len(row.TruncatedFields) > 0
	if row.TimeClamped {
		f.m.clamped.Inc()
	}
}

func (e *entry) key() store.OutboxKey {
	return store.OutboxKey{IncidentID: e.row.IncidentID, Version: e.row.Version}
}

// batch is rows sent in one request.
type batch struct {
	entries []*entry
	size    int // of the JSON array's elements and commas, without the brackets
}

func (b *batch) add(e *entry) {
	if len(b.entries) > 0 {
		b.size++
	}
	b.entries = append(b.entries, e)
	b.size += len(e.json)
}

// body is the JSON array of the batch's rows.
func (b batch) body() []byte {
	buf := make([]byte, 0, b.size+2)
	buf = append(buf, '[')
	for i, e := range b.entries {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, e.json...)
	}
	return append(buf, ']')
}

func (b batch) halves() (batch, batch) {
	var l, r batch
	mid := len(b.entries) / 2
	for i, e := range b.entries {
		if i < mid {
			l.add(e)
		} else {
			r.add(e)
		}
	}
	return l, r
}

// pack puts entries, in order, into batches whose JSON arrays are at most max bytes.
func pack(entries []*entry, max int) []batch {
	var out []batch
	var cur batch
	for _, e := range entries {
		if len(cur.entries) > 0 && cur.size+1+len(e.json)+2 > max {
			out = append(out, cur)
			cur = batch{}
		}
		cur.add(e)
	}
	if len(cur.entries) > 0 {
		out = append(out, cur)
	}
	return out
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b) // writes to a bytes.Buffer do not fail
	zw.Close()
	return buf.Bytes()
}

// cycle claims a set of rows and sends them; it returns how many it claimed.
func (f *Forwarder) cycle(ctx context.Context) (int, error) {
	rows, err := f.store.ClaimOutbox(ctx, f.o.Owner, f.o.ClaimTTL, f.o.ClaimLimit)
	if err != nil || len(rows) == 0 {
		return 0, err
	}
	cl := f.keepClaims(ctx, rows)
	defer cl.stop()
	names := f.tenantNames(ctx, rows)
	budget := min(f.o.MaxRowBytes, f.maxBatch-2)
	entries := make([]*entry, 0, len(rows))
	for _, r := range rows {
		entries = append(entries, f.build(r, names[r.TenantID], budget))
	}
	for _, b := range pack(entries, f.maxBatch) {
		if err := f.sendBatch(ctx, cl, b); err != nil {
			return len(rows), err
		}
	}
	return len(rows), nil
}

// tenantNames returns the names of the rows' tenants (their ids for tenants the store does not
// know).
func (f *Forwarder) tenantNames(ctx context.Context, rows []store.OutboxRow) map[string]string {
	for _, r := range rows {
		if _, ok := f.names[r.TenantID]; !ok {
			if ts, err := f.store.Tenants(ctx, store.AllTenants()); err == nil {
				for _, t := range ts {
					f.names[t.ID] = t.Name
				}
			}
			break
		}
	}
	for _, r := range rows {
		if _, ok := f.names[r.TenantID]; !ok {
			f.names[r.TenantID] = r.TenantID
		}
	}
	return f.names
}

// suspect is a row refused (400) on its own.
type suspect struct {
	e      *entry
	reason string
}

// tree is what became of the rows of one batch and the halves it was split into.
type tree struct {
	accepted int
	suspects []suspect
}

// sendBatch sends a batch (splitting it as needed) and settles the rows refused on their own.
func (f *Forwarder) sendBatch(ctx context.Context, cl *claims, b batch) error {
	var t tree
	if err := f.send(ctx, cl, b, &t, 0); err != nil {
		return err
	}
	if len(t.suspects) == 0 {
		return nil
	}
	if t.accepted == 0 {
		f.log.Error("forward: Logs Ingestion refuses every row of a batch, each on its own; check the data collection rule's stream declaration against socsync dcr-template",
			"rows", len(t.suspects), "reason", t.suspects[0].reason)
		return errRefused
	}
	// Other rows were taken: ask once more for each refused row alone (the refusal may have been
	// the service's passing state), and set aside those refused again.
	for _, s := range t.suspects {
		var again tree
		var one batch
		one.add(s.e)
		if err := f.send(ctx, cl, one, &again, 0); err != nil {
			return err
		}
		for _, s := range again.suspects {
			f.deadLetter(ctx, s.e, s.reason)
		}
	}
	return nil
}

// send sends b until it is taken, split, or set aside. It returns an error only when ctx ends.
func (f *Forwarder) send(ctx context.Context, cl *claims, b batch, t *tree, depth int) error {
	failures := 0
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := cl.fresh(ctx); err != nil {
			d := f.backoff(failures)
			failures++
			f.log.Warn("forward: cannot renew outbox claims; waiting", "err", err, "in", d.Round(time.Millisecond).String())
			sleep(ctx, d)
			continue
		}
		b = cl.held(b)
		if len(b.entries) == 0 {
			return nil
		}
		body := b.body()
		gz := gzipped(body)
		if len(gz) > f.maxBatch && len(b.entries) > 1 {
			// Over the bound even after gzip. JSON text never gzips to more than itself at these
			// sizes; this is a half of a batch refused with 413: the bound is now half that
			// batch, and halves are cut by rows, not bytes. Split it before sending.
			l, r := b.halves()
			if err := f.send(ctx, cl, l, t, depth+1); err != nil {
				return err
			}
			return f.send(ctx, cl, r, t, depth+1)
		}
		err := f.upload(ctx, gz)
		if err == nil {
			f.m.requests.WithLabelValues("ok").Inc()
			f.m.batches.Inc()
			f.m.bytes.WithLabelValues("json").Add(float64(len(body)))
			f.m.bytes.WithLabelValues("gzip").Add(float64(len(gz)))
			f.m.batchBytes.WithLabelValues("json").Observe(float64(len(body)))
			f.m.batchBytes.WithLabelValues("gzip").Observe(float64(len(gz)))
			f.ack(ctx, b)
			t.accepted += len(b.entries)
			return nil
		}
		var th *throttle.Throttled
		var re *azcore.ResponseError
		switch {
		case errors.As(err, &th):
			f.m.requests.WithLabelValues("throttled").Inc()
			f.log.Debug("forward: throttled", "until", th.NotBefore.Format(time.RFC3339Nano), "status", th.Status)
			sleepUntil(ctx, th.NotBefore)
		case errors.As(err, &re) && re.StatusCode == http.StatusRequestEntityTooLarge:
			f.m.requests.WithLabelValues("too_large").Inc()
			if len(b.entries) > 1 {
				f.m.splits.WithLabelValues("413").Inc()
				if len(body)/2 < f.maxBatch {
					f.maxBatch = max(minBatchBytes, len(body)/2)
				}
				f.log.Info("forward: batch too large for Logs Ingestion; splitting it", "rows", len(b.entries), "bytes", len(body), "gzip", len(gz))
				l, r := b.halves()
				if err := f.send(ctx, cl, l, t, depth+1); err != nil {
					return err
				}
				return f.send(ctx, cl, r, t, depth+1)
			}
			e := b.entries[0]
			if e.budget/2 >= minRowBudget {
				e.budget /= 2
				f.render(e)
				f.log.Info("forward: row too large for Logs Ingestion; cutting its largest values further", "incident", e.row.IncidentID,
					"version", e.row.Version, "budget", e.budget)
				continue
			}
			f.deadLetter(ctx, e, fmt.Sprintf("413 %s: the row is too large even with its values cut to %d bytes", re.ErrorCode, e.budget))
			return nil
		case errors.As(err, &re) && re.StatusCode == http.StatusBadRequest:
			f.m.requests.WithLabelValues("rejected").Inc()
			reason := fmt.Sprintf("400 %s: %s", re.ErrorCode, responseMessage(re))
			if len(b.entries) > 1 {
				f.m.splits.WithLabelValues("400").Inc()
				f.log.Info("forward: Logs Ingestion refused a batch; splitting it to find the rows", "rows", len(b.entries), "reason", reason)
				l, r := b.halves()
				if err := f.send(ctx, cl, l, t, depth+1); err != nil {
					return err
				}
				return f.send(ctx, cl, r, t, depth+1)
			}
			t.suspects = append(t.suspects, suspect{b.entries[0], reason})
			return nil
		case errors.As(err, &re) && (re.StatusCode == http.StatusTooManyRequests || re.StatusCode == http.StatusServiceUnavailable):
			// The transport turns these into *throttle.Throttled; if one gets through, respect
			// its Retry-After all the same.
			f.m.requests.WithLabelValues("throttled").Inc()
			wait := f.backoff(failures)
			if re.RawResponse != nil {
				if d, ok := retryAfter(re.RawResponse.Header.Get("Retry-After")); ok {
					wait = max(wait, d)
				}
			}
			failures++
			sleep(ctx, wait)
		case errors.As(err, &re) && (re.StatusCode == http.StatusUnauthorized || re.StatusCode == http.StatusForbidden || re.StatusCode == http.StatusNotFound):
			f.m.requests.WithLabelValues("refused").Inc()
			if re.StatusCode == http.StatusUnauthorized {
				f.cred.refused.Store(true)
			}
			d := f.backoff(failures + 4)
			failures++
			f.log.Error("forward: Logs Ingestion refuses socsync; check forward.credential, the Monitoring Metrics Publisher role on the rule, forward.dcr_immutable_id and forward.stream",
				"status", re.StatusCode, "code", re.ErrorCode, "in", d.Round(time.Millisecond).String())
			sleep(ctx, d)
		case ctx.Err() != nil:
			return ctx.Err() // shutting down: the upload was cut off after its grace
		default:
			f.m.requests.WithLabelValues("error").Inc()
			d := f.backoff(failures)
			failures++
			f.log.Warn("forward: upload failed; sending the batch again", "rows", len(b.entries), "err", err, "in", d.Round(time.Millisecond).String())
			sleep(ctx, d)
		}
	}
}

// upload sends one gzipped batch. An upload in flight when ctx ends gets ShutdownGrace to
// finish, so that a clean shutdown does not leave a batch the service took unacknowledged.
func (f *Forwarder) upload(ctx context.Context, gz []byte) error {
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.o.RequestTimeout)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(f.o.ShutdownGrace, cancel) })
	defer stop()
	uctx = throttle.Idempotent(throttle.WithKey(uctx, f.key))
	enc := "gzip"
	_, err := f.client.Upload(uctx, f.target.DCRImmutableID, f.target.Stream, gz, &azlogs.UploadOptions{ContentEncoding: &enc})
	return err
}

// ack records the batch's rows as sent. The rows are in the sink: this is done even when ctx
// has ended.
func (f *Forwarder) ack(ctx context.Context, b batch) {
	actx := context.WithoutCancel(ctx)
	keys := make([]store.OutboxKey, len(b.entries))
	for i, e := range b.entries {
		keys[i] = e.key()
	}
	for attempt := 0; ; attempt++ {
		n, err := f.store.AckOutboxBatch(actx, f.o.Owner, keys)
		if err == nil {
			if n < len(keys) {
				f.log.Warn("forward: some rows were claimed by another replica while in flight; they may be sent twice (same keys)",
					"rows", len(keys), "acknowledged", n)
			}
			break
		}
		if attempt == 4 {
			f.log.Error("forward: cannot acknowledge sent rows; they will be sent again once their claims expire (same keys)", "rows", len(keys), "err", err)
			return
		}
		sleep(actx, f.backoff(attempt))
	}
	now := f.o.Now()
	for _, e := range b.entries {
		f.m.rows.WithLabelValues("sent").Inc()
		f.m.lag.Observe(max(0, now.Sub(e.row.CreatedAt).Seconds()))
		if e.cut {
			f.m.truncated.Inc()
		}
	}
}

// deadLetter sets a row aside with the reason the service gave.
func (f *Forwarder) deadLetter(ctx context.Context, e *entry, reason string) {
	ok, err := f.store.FailOutbox(context.WithoutCancel(ctx), f.o.Owner, e.key(), reason)
	if err != nil {
		f.log.Error("forward: cannot set a refused row aside; it will be tried again", "incident", e.row.IncidentID, "version", e.row.Version, "err", err)
		return
	}
	if !ok {
		return // another replica holds it now
	}
	f.m.rows.WithLabelValues("failed").Inc()
	f.log.Error("forward: Logs Ingestion refuses a row; it is set aside as a dead letter (store.OutboxFailures)",
		"incident", e.row.IncidentID, "version", e.row.Version, "tenant", e.row.TenantID, "reason", reason)
}

// backoff is the wait after n failures in a row: full jitter below min(MaxBackoff, MinBackoff·2ⁿ).
func (f *Forwarder) backoff(n int) time.Duration {
	d := f.o.MaxBackoff
	if n < 30 {
		d = min(d, f.o.MinBackoff<<n)
	}
	return f.o.MinBackoff/2 + time.Duration(rand.Float64()*float64(d))
}

func responseMessage(re *azcore.ResponseError) string {
	msg := re.Error()
	// azcore's message is multi-line: the request line, the status and the body; keep the body's
	// message when there is one.
	if i := strings.Index(msg, `"message"`); i >= 0 {
		rest := msg[i+len(`"message"`):]
		if j := strings.IndexByte(rest, '"'); j >= 0 {
			rest = rest[j+1:]
			if k := strings.IndexByte(rest, '"'); k >= 0 {
				return rest[:k]
			}
		}
	}
	return http.StatusText(re.StatusCode)
}

func retryAfter(v string) (time.Duration, bool) {
	var secs int
	if _, err := fmt.Sscanf(v, "%d", &secs); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second, true
	}
	return 0, false
}

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// sleepUntil waits until t has passed (never returning earlier unless ctx ends).
func sleepUntil(ctx context.Context, t time.Time) {
	for ctx.Err() == nil {
		d := time.Until(t)
		if d <= 0 {
			return
		}
		sleep(ctx, d+time.Millisecond)
	}
}

// claims keeps the claims of one cycle's rows alive while they are in flight and tells which
// the forwarder still holds.
type claims struct {
	f    *Forwarder
	mu   sync.Mutex
	keys map[store.OutboxKey]bool
	at   time.Time // when they were last claimed or renewed
	done chan struct{}
	wg   sync.WaitGroup
}

func (f *Forwarder) keepClaims(ctx context.Context, rows []store.OutboxRow) *claims {
	c := &claims{f: f, keys: make(map[store.OutboxKey]bool, len(rows)), at: time.Now(), done: make(chan struct{})}
	for _, r := range rows {
		c.keys[store.OutboxKey{IncidentID: r.IncidentID, Version: r.Version}] = true
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		t := time.NewTicker(f.o.ClaimTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-c.done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				_ = c.renew(ctx)
			}
		}
	}()
	return c
}

func (c *claims) stop() {
	close(c.done)
	c.wg.Wait()
}

func (c *claims) renew(ctx context.Context) error {
	start := time.Now()
	keys, err := c.f.store.RenewOutboxClaims(ctx, c.f.o.Owner, c.f.o.ClaimTTL)
	if err != nil {
		return err
	}
	now := map[store.OutboxKey]bool{}
	for _, k := range keys {
		now[k] = true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.keys {
		if !now[k] {
			delete(c.keys, k) // sent, set aside, or taken over by another replica
		}
	}
	c.at = start
	return nil
}

// fresh makes sure the claims were renewed within the last half of their lifetime, so that
// none can expire while the next upload is in flight.
func (c *claims) fresh(ctx context.Context) error {
	c.mu.Lock()
	ok := time.Since(c.at) < c.f.o.ClaimTTL/2
	c.mu.Unlock()
	if ok {
		return nil
	}
	return c.renew(ctx)
}

// held returns b without the rows this replica no longer holds.
func (c *claims) held(b batch) batch {
	c.mu.Lock()
	defer c.mu.Unlock()
	lost := 0
	for _, e := range b.entries {
		if !c.keys[e.key()] {
			lost++
		}
	}
	if lost == 0 {
		return b
	}
	c.f.log.Warn("forward: rows were taken over by another replica before they were sent; leaving them to it", "rows", lost)
	var out batch
	for _, e := range b.entries {
		if c.keys[e.key()] {
			out.add(e)
		}
	}
	return out
}

// refreshingCredential asks for a new token, rather than the SDK's cached one, after Logs
// Ingestion refused a token (401): the SDK caches tokens by the local clock, so a token the
// service already refuses (expired by its clock, revoked) would otherwise be sent until then.
type refreshingCredential struct {
	azcore.TokenCredential
	refused atomic.Bool
}

func (c *refreshingCredential) GetToken(ctx context.Context, tro policy.TokenRequestOptions) (azcore.AccessToken, error) {
	if c.refused.Swap(false) && tro.Claims == "" {
		// A token issued no earlier than now, as a continuous access evaluation challenge asks:
		// the credential then skips its cache.
		tro.Claims = fmt.Sprintf(`{"access_token":{"nbf":{"essential":true,"value":"%d"}}}`, time.Now().Unix())
	}
	return c.TokenCredential.GetToken(ctx, tro)
}
