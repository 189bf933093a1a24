package throttle

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"golang.org/x/time/rate"
)

// Observer is told about every attempt and every hold, so that pollers can count calls and
// 429s per source and metrics can be fed without this package knowing about either. Its
// methods are called synchronously from the requesting goroutine and must be quick.
type Observer interface {
	// Sent reports one attempt that went to the remote: the status it answered, or 0 when
	// the attempt failed in transport, and how long it took.
	Sent(k Key, status int, took time.Duration)
	// Throttled reports that requests of k are held back until notBefore: because the
	// remote said so (status 429 or 503), or — status 0 — because a request was refused for
	// the local budget.
	Throttled(k Key, notBefore time.Time, status int)
}

// Options configures a Transport. The zero value gives the documented budgets, a 3 s
// MaxBlock, 3 retries and the real clock.
type Options struct {
	// Budgets override DefaultBudgets by API name; a Budget whose Rate is not positive removes
	// that API's limit.
	Budgets map[string]Budget
	// MaxBlock is the longest one request waits for its bucket and the Retry-After of its key
	// together before the Transport returns *Throttled instead (default 3 s; negative: never
	// wait).
	MaxBlock time.Duration
	// MaxRetries is how often one request is re-sent after a 429, a 5xx or a transport error
	// (default 3; negative: never).
	MaxRetries int
	// RetryDelay and MaxRetryDelay shape the backoff after a 5xx or a transport error: retry n
	// (from 0) waits a uniformly random time below min(MaxRetryDelay, RetryDelay·2ⁿ) ("full
	// jitter"). Defaults: 250 ms and 2 s.
	RetryDelay, MaxRetryDelay time.Duration
	// DefaultRetryAfter is the wait imposed by a 429 that carries no usable Retry-After
	// (default 60 s, what Entra sends).
	DefaultRetryAfter time.Duration
	// Now, Sleep and Rand replace the clock, the wait and the jitter (tests). Sleep returns
	// ctx.Err() when ctx ends first, and otherwise once Now has moved d on (a Sleep that does
	// not move the clock makes a waiting request return *Throttled rather than spin); Rand
	// returns a number in [0, 1).
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
	Rand  func() float64
	// Observer, if set, is told about attempts and holds.
	Observer Observer
}

// Transport keeps requests within their budgets. It is a policy.Transporter for azcore
// pipelines (whose own retry policy should be off: MaxRetries < 0) and an http.RoundTripper.
//
// For each request it determines the budget key (the Entra token endpoint's tenant, else the
// context's key from WithKey; a request without one is neither paced nor gated), then, before
// every attempt: waits for the key's Retry-After and a token of its bucket if that takes at
// most MaxBlock, or returns *Throttled without sending. A 429 (or a 503 with Retry-After)
// moves the key's Retry-After for every request of the key and is re-sent after it; a 5xx or
// a transport error is re-sent after a jittered backoff, but only when the request is
// idempotent (see Idempotent) and its body can be replayed.
type Transport struct {
	next    policy.Transporter
	opts    Options
	budgets map[string]Budget

	mu   sync.Mutex // guards keys and every keyState and rate.Limiter in it
	keys map[Key]*keyState
}

type keyState struct {
	lim       *rate.Limiter // nil: the key's API has no budget
	notBefore time.Time     // the remote asked for no request before this
	status    int           // the status that set notBefore
}

// New returns a Transport sending through next (an *http.Client satisfies policy.Transporter;
// wrap a RoundTripper with FromRoundTripper).
func New(next policy.Transporter, opts Options) *Transport {
	if next == nil {
		next = &http.Client{}
	}
	if opts.MaxBlock == 0 {
		opts.MaxBlock = 3 * time.Second
	}
	opts.MaxBlock = max(opts.MaxBlock, 0)
	switch {
	case opts.MaxRetries == 0:
		opts.MaxRetries = 3
	case opts.MaxRetries < 0:
		opts.MaxRetries = 0
	}
	if opts.RetryDelay <= 0 {
		opts.RetryDelay = 250 * time.Millisecond
	}
	if opts.MaxRetryDelay <= 0 {
		opts.MaxRetryDelay = 2 * time.Second
	}
	if opts.DefaultRetryAfter <= 0 {
		opts.DefaultRetryAfter = 60 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Sleep == nil {
		opts.Sleep = sleep
	}
	if opts.Rand == nil {
		opts.Rand = rand.Float64
	}
	budgets := DefaultBudgets()
	for api, b := range opts.Budgets {
		budgets[api] = b
	}
	return &Transport{next: next, opts: opts, budgets: budgets, keys: map[Key]*keyState{}}
}

// FromRoundTripper adapts an http.RoundTripper to the next transport New wants.
func FromRoundTripper(rt http.RoundTripper) policy.Transporter { return roundTripper{rt} }

type roundTripper struct{ rt http.RoundTripper }

func (r roundTripper) Do(req *http.Request) (*http.Response, error) { return r.rt.RoundTrip(req) }

// RoundTrip implements http.RoundTripper; it is Do.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) { return t.Do(req) }

// Do sends req within its budget (see Transport). Besides the errors of the next transport it
// returns *Throttled when the request may not be sent (or re-sent) before a time further away
// than MaxBlock, and the context's error when it ends while waiting.
func (t *Transport) Do(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	k, keyed := keyOf(req)
	idempotent := isIdempotent(req) || k.API == APIToken && keyed
	body := newReplay(req)
	var own hold // an unkeyed request still honours the Retry-After of its own responses

	for attempt := 0; ; attempt++ {
		if err := t.acquire(ctx, k, keyed, &own); err != nil {
			if attempt == 0 && req.Body != nil {
				req.Body.Close() // a RoundTripper closes the body even when it sends nothing
			}
			return nil, err
		}
		out, err := body.request(ctx, req, attempt)
		if err != nil {
			return nil, fmt.Errorf("throttle: replaying the body of %s %s: %w", req.Method, req.URL.Redacted(), err)
		}
		start := t.opts.Now()
		resp, err := t.next.Do(out)
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		if o := t.opts.Observer; o != nil {
			o.Sent(k, status, t.opts.Now().Sub(start))
		}
		again := attempt < t.opts.MaxRetries && body.replayable()

		if err != nil {
			if !idempotent || !again || !transient(ctx, err) {
				if attempt > 0 {
					return nil, fmt.Errorf("throttle: attempt %d: %w", attempt+1, err)
				}
				return nil, err
			}
			if err := t.backoff(ctx, attempt); err != nil {
				return nil, err
			}
			continue
		}
		wait, asked := retryAfter(resp.Header, t.opts.Now())
		switch {
		case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable && asked:
			if !asked {
				wait = t.opts.DefaultRetryAfter
			}
			nb := t.block(k, keyed, &own, t.opts.Now().Add(wait), status)
			if status == http.StatusServiceUnavailable && !idempotent {
				return resp, nil // the remote may have acted: the caller must look before repeating
			}
			drain(resp)
			if !again {
				// The remote did not process it (429) or asked for patience (503, on a request
				// that may be repeated): say when it may be tried again.
				return nil, &Throttled{Key: k, NotBefore: nb, Status: status}
			}
			// acquire waits for the new Retry-After or gives up with *Throttled.
		case retryable(status) && idempotent && again:
			drain(resp)
			if err := t.backoff(ctx, attempt); err != nil {
				return nil, err
			}
		default:
			return resp, nil
		}
	}
}

// hold is the Retry-After of an unkeyed request, which only that request honours.
type hold struct {
	notBefore time.Time
	status    int
}

// acquire returns when an attempt of k may be sent: when neither the key's Retry-After nor
// its bucket stands in the way any more. It waits when that takes at most MaxBlock, and
// returns *Throttled without waiting when longer. The Retry-After is looked at again after
// every wait, since another request of the key may have earned a new one meanwhile.
func (t *Transport) acquire(ctx context.Context, k Key, keyed bool, own *hold) error {
	var res *rate.Reservation // the bucket token this attempt holds
	for {
		now := t.opts.Now()
		t.mu.Lock()
		h := *own
		var st *keyState
		if keyed {
			st = t.state(k)
			h = hold{st.notBefore, st.status}
		}
		wait, status := h.notBefore.Sub(now), h.status
		if st != nil && st.lim != nil {
			var bucket time.Duration
			if res != nil {
				bucket = res.DelayFrom(now)
			} else {
				bucket = tokenDelay(st.lim, now)
			}
			if bucket > wait {
				wait, status = bucket, 0
			}
			if res == nil && wait <= t.opts.MaxBlock {
				res = st.lim.ReserveN(now, 1) // its delay is bucket: t.mu orders all reservations
			}
		}
		t.mu.Unlock()

		if wait <= 0 {
			return nil
		}
		nb := now.Add(wait)
		if wait > t.opts.MaxBlock {
			if res != nil {
				res.CancelAt(now) // returns the token if it is still in the future
			}
			if status == 0 {
				t.observeThrottled(k, nb, 0)
			}
			return &Throttled{Key: k, NotBefore: nb, Status: status}
		}
		if err := t.opts.Sleep(ctx, wait); err != nil {
			if res != nil {
				res.CancelAt(t.opts.Now())
			}
			return err
		}
		if t.opts.Now().Before(nb) {
			// A Sleep that returned before the clock got there (an injected one that does
			// not move the clock): waiting again would spin, sending would be early.
			return &Throttled{Key: k, NotBefore: nb, Status: status}
		}
	}
}

// tokenDelay is how long until lim holds a whole token (queued reservations included).
func tokenDelay(lim *rate.Limiter, now time.Time) time.Duration {
	tokens := lim.TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	return time.Duration((1 - tokens) / float64(lim.Limit()) * float64(time.Second))
}

// block records that the remote asked for no request of k before nb; it returns the key's
// (possibly later) Retry-After.
func (t *Transport) block(k Key, keyed bool, own *hold, nb time.Time, status int) time.Time {
	if !keyed {
		if nb.After(own.notBefore) {
			*own = hold{nb, status}
		}
		t.observeThrottled(k, own.notBefore, status)
		return own.notBefore
	}
	t.mu.Lock()
	st := t.state(k)
	if nb.After(st.notBefore) {
		st.notBefore, st.status = nb, status
	}
	nb = st.notBefore
	t.mu.Unlock()
	t.observeThrottled(k, nb, status)
	return nb
}

func (t *Transport) observeThrottled(k Key, nb time.Time, status int) {
	if o := t.opts.Observer; o != nil {
		o.Throttled(k, nb, status)
	}
}

// state returns the state of k, creating it; t.mu must be held.
func (t *Transport) state(k Key) *keyState {
	st := t.keys[k]
	if st == nil {
		st = &keyState{}
		if b, ok := t.budgets[k.API]; ok && b.Rate > 0 {
			st.lim = rate.NewLimiter(rate.Limit(b.Rate), max(b.Burst, 1))
		}
		t.keys[k] = st
	}
	return st
}

// NotBefore returns when a request of k could be sent without waiting: the later of the
// remote's Retry-After and the time k's bucket holds a token. A time not after now (the zero
// time for a key never used) means at once.
func (t *Transport) NotBefore(k Key) time.Time {
	now := t.opts.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.keys[k]
	if st == nil {
		return time.Time{}
	}
	nb := st.notBefore
	if st.lim != nil {
		if d := tokenDelay(st.lim, now); d > 0 && now.Add(d).After(nb) {
			nb = now.Add(d)
		}
	}
	return nb
}

// Blocked returns what a request of k sent now would get without reaching the remote: a
// *Throttled when k is unusable for longer than MaxBlock, else nil.
func (t *Transport) Blocked(k Key) *Throttled {
	now := t.opts.Now()
	nb := t.NotBefore(k)
	if nb.Sub(now) <= t.opts.MaxBlock {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	status := 0
	if st := t.keys[k]; st != nil && !st.notBefore.Before(nb) {
		status = st.status
	}
	return &Throttled{Key: k, NotBefore: nb, Status: status}
}

// backoff waits before retry n (from 0) after a 5xx or a transport error.
func (t *Transport) backoff(ctx context.Context, n int) error {
	d := t.opts.MaxRetryDelay
	if n < 30 {
		d = min(d, t.opts.RetryDelay<<n)
	}
	d = time.Duration(t.opts.Rand() * float64(d))
	if d <= 0 {
		return ctx.Err()
	}
	return t.opts.Sleep(ctx, d)
}

func sleep(ctx context.Context, d time.Duration) error {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// retryable statuses are the transient server errors (429 and 503 with Retry-After are
// handled before).
func retryable(status int) bool {
	switch status {
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// transient reports whether a transport error may go away on a retry: anything but the end of
// the caller's context and errors that every attempt would meet again (certificates, TLS
// spoken to a plain listener, a host that does not exist).
func transient(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		record   tls.RecordHeaderError
		dns      *net.DNSError
		held     *Throttled
	)
	switch {
	case errors.As(err, &verify), errors.As(err, &unknown), errors.As(err, &hostname),
		errors.As(err, &invalid), errors.As(err, &record), errors.As(err, &held):
		return false
	case errors.As(err, &dns) && dns.IsNotFound:
		return false
	}
	return true
}

// drain reads a little of a response that is dropped for a retry, so that its connection can
// be reused, and closes it.
func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// keyOf returns the budget key of a request: Entra's token endpoint (and its metadata) count
// against the tenant in the path whatever the context says — azcore's bearer policy passes the
// API request's context down into token acquisition — and everything else against the
// context's key.
func keyOf(req *http.Request) (Key, bool) {
	if tenant, ok := entraTenant(req.URL.Path); ok {
		return Key{API: APIToken, Scope: tenant}, true
	}
	return KeyFrom(req.Context())
}

// entraTenant returns the tenant of an Entra ID token endpoint or OpenID metadata path
// ({authority}/{tenant}/oauth2/v2.0/token and friends).
func entraTenant(path string) (string, bool) {
	for _, suffix := range []string{"/oauth2/v2.0/token", "/oauth2/token", "/v2.0/.well-known/openid-configuration"} {
		if rest, ok := strings.CutSuffix(path, suffix); ok {
			if tenant := rest[strings.LastIndexByte(rest, '/')+1:]; tenant != "" {
				return strings.ToLower(tenant), true
			}
		}
	}
	return "", false
}

type idempotentCtx struct{}

// Idempotent marks the requests of ctx as safe to repeat whatever their method: a POST that
// only reads (Sentinel's list alerts), a PATCH that sets absolute values. Without the mark only
// GET, HEAD, OPTIONS, TRACE, PUT and DELETE are re-sent after a 5xx or a transport error; a
// POST or PATCH is not, since the remote may have acted on it (a Graph comment would be
// posted twice). A 429 is re-sent whatever the method: the remote did not process it.
func Idempotent(ctx context.Context) context.Context {
	return context.WithValue(ctx, idempotentCtx{}, true)
}

func isIdempotent(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	marked, _ := req.Context().Value(idempotentCtx{}).(bool)
	return marked
}

var (
	_ policy.Transporter = (*Transport)(nil)
	_ http.RoundTripper  = (*Transport)(nil)
)
