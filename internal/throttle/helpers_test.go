package throttle

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// t0 is where every fake clock starts.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeClock is the injected clock: Sleep returns at once, moving the clock forward, so tests
// see every wait without spending it. hook, if set, runs at the start of each Sleep.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	slept []time.Duration
	hook  func(ctx context.Context, d time.Duration) error
}

func newClock() *fakeClock { return &fakeClock{now: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if c.hook != nil {
		if err := c.hook(ctx, d); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.slept = append(c.slept, d)
	return nil
}

// SleepUntil is what a caller's scheduler does with *Throttled.NotBefore.
func (c *fakeClock) SleepUntil(at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if at.After(c.now) {
		c.now = at
	}
}

func (c *fakeClock) Advance(d time.Duration) { c.SleepUntil(c.Now().Add(d)) }

func (c *fakeClock) Slept() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.slept...)
}

// hit is one request a test server received, stamped with the fake clock.
type hit struct {
	at     time.Time
	method string
	path   string
	body   string
}

// server is a test HTTP server whose answers a test scripts by request number (from 0).
type server struct {
	*httptest.Server
	clock *fakeClock

	mu   sync.Mutex
	hits []hit
}

func newServer(t *testing.T, clock *fakeClock, answer func(n int, w http.ResponseWriter, r *http.Request)) *server {
	t.Helper()
	s := &server{clock: clock}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		n := len(s.hits)
		s.hits = append(s.hits, hit{at: clock.Now(), method: r.Method, path: r.URL.Path, body: string(b)})
		s.mu.Unlock()
		answer(n, w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) Hits() []hit {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]hit(nil), s.hits...)
}

// status answers with the given statuses in turn (the last one repeats), each with headers.
type answer struct {
	status int
	header map[string]string
}

func script(answers ...answer) func(n int, w http.ResponseWriter, r *http.Request) {
	return func(n int, w http.ResponseWriter, r *http.Request) {
		a := answers[min(n, len(answers)-1)]
		for k, v := range a.header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(a.status)
		io.WriteString(w, `{"n":`+strconv.Itoa(n)+`}`)
	}
}

// recorder is an Observer that remembers what it was told.
type recorder struct {
	mu        sync.Mutex
	sent      []sentEvent
	throttled []throttledEvent
}

type sentEvent struct {
	key    Key
	status int
}

type throttledEvent struct {
	key       Key
	notBefore time.Time
	status    int
}

func (r *recorder) Sent(k Key, status int, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, sentEvent{k, status})
}

func (r *recorder) Throttled(k Key, nb time.Time, status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.throttled = append(r.throttled, throttledEvent{k, nb, status})
}

func (r *recorder) Sents() []sentEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]sentEvent(nil), r.sent...)
}

func (r *recorder) Throttles() []throttledEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]throttledEvent(nil), r.throttled...)
}

// newTransport returns a Transport on the fake clock with a deterministic jitter of 1 (the
// longest backoff), sending through client.
func newTransport(clock *fakeClock, client *http.Client, o Options) *Transport {
	o.Now, o.Sleep = clock.Now, clock.Sleep
	if o.Rand == nil {
		o.Rand = func() float64 { return 0.999999 }
	}
	return New(client, o)
}

// get sends a GET of key k through tr and returns the status (0 with an error).
func get(t *testing.T, tr *Transport, url string, k Key) (int, error) {
	t.Helper()
	return send(t, tr, WithKey(context.Background(), k), http.MethodGet, url, "")
}

func send(t *testing.T, tr *Transport, ctx context.Context, method, url, body string) (int, error) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tr.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}
