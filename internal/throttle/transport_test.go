package throttle

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"golang.org/x/time/rate"
)

var (
	keyA = Key{API: APIGraph, Scope: "tenant-a"}
	keyB = Key{API: APIGraph, Scope: "tenant-b"}
)

func TestRetryAfter_ParsesSecondsDatesAndMilliseconds(t *testing.T) {
	now := t0
	for _, tc := range []struct {
		name   string
		header map[string]string
		want   time.Duration
		asked  bool
	}{
		{"seconds", map[string]string{"Retry-After": "7"}, 7 * time.Second, true},
		{"fractional seconds", map[string]string{"Retry-After": "1.5"}, 1500 * time.Millisecond, true},
		{"HTTP-date", map[string]string{"Retry-After": now.Add(42 * time.Second).Format(http.TimeFormat)}, 42 * time.Second, true},
		{"HTTP-date in the past", map[string]string{"Retry-After": now.Add(-time.Minute).Format(http.TimeFormat)}, 0, true},
		{"x-ms-retry-after-ms wins", map[string]string{"Retry-After": "10", "x-ms-retry-after-ms": "2500"}, 2500 * time.Millisecond, true},
		{"retry-after-ms", map[string]string{"retry-after-ms": "300"}, 300 * time.Millisecond, true},
		{"negative", map[string]string{"Retry-After": "-5"}, 0, true},
		{"absurd is capped", map[string]string{"Retry-After": "1e30"}, maxRetryAfter, true},
		{"garbage", map[string]string{"Retry-After": "soon"}, 0, false},
		{"absent", nil, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tc.header {
				h.Set(k, v)
			}
			got, asked := retryAfter(h, now)
			if got != tc.want || asked != tc.asked {
				t.Fatalf("retryAfter = %v, %v; want %v, %v", got, asked, tc.want, tc.asked)
			}
		})
	}
}

func TestWindow_NeverAllowsMoreThanNInAnyPeriod(t *testing.T) {
	for _, tc := range []struct {
		n   int
		per time.Duration
	}{{150, time.Minute}, {75, 5 * time.Minute}, {12_000, time.Minute}, {3, time.Second}, {1, time.Minute}} {
		b := Window(tc.n, tc.per)
		lim := rate.NewLimiter(rate.Limit(b.Rate), b.Burst)
		// A greedy sender: every request as early as the bucket allows, for five periods.
		var sent []time.Time
		for now := t0; now.Before(t0.Add(5 * tc.per)); {
			r := lim.ReserveN(now, 1)
			now = now.Add(r.DelayFrom(now))
			sent = append(sent, now)
		}
		lo := 0
		for hi := range sent {
			for !sent[lo].After(sent[hi].Add(-tc.per)) { // keep sent[lo] in (sent[hi]-per, sent[hi]]
				lo++
			}
			if n := hi - lo + 1; n > tc.n {
				t.Fatalf("Window(%d, %s) = %+v let %d requests through in one period", tc.n, tc.per, b, n)
			}
		}
		if len(sent) < 5*(tc.n-b.Burst) {
			t.Errorf("Window(%d, %s) = %+v is too strict: %d requests in 5 periods", tc.n, tc.per, b, len(sent))
		}
	}
}

func TestDo_WaitsOutRetryAfterBeforeResending(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		header map[string]string
		want   time.Duration
	}{
		{"429 seconds", 429, map[string]string{"Retry-After": "2"}, 2 * time.Second},
		{"429 HTTP-date", 429, map[string]string{"Retry-After": t0.Add(3 * time.Second).Format(http.TimeFormat)}, 3 * time.Second},
		{"429 x-ms-retry-after-ms", 429, map[string]string{"x-ms-retry-after-ms": "1250"}, 1250 * time.Millisecond},
		{"503 with Retry-After", 503, map[string]string{"Retry-After": "1"}, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newClock()
			srv := newServer(t, clock, script(answer{tc.status, tc.header}, answer{200, nil}))
			obs := &recorder{}
			tr := newTransport(clock, srv.Client(), Options{Observer: obs})

			status, err := get(t, tr, srv.URL, keyA)
			if err != nil || status != 200 {
				t.Fatalf("got %d, %v; want 200", status, err)
			}
			hits := srv.Hits()
			if len(hits) != 2 {
				t.Fatalf("%d requests, want 2", len(hits))
			}
			if gap := hits[1].at.Sub(hits[0].at); gap < tc.want {
				t.Fatalf("resent %v after the %d, before its Retry-After of %v", gap, tc.status, tc.want)
			}
			if th := obs.Throttles(); len(th) != 1 || th[0].key != keyA || th[0].status != tc.status || !th[0].notBefore.Equal(hits[0].at.Add(tc.want)) {
				t.Fatalf("observer told %+v", th)
			}
		})
	}
}

func TestDo_LongRetryAfterReturnsThrottledWithoutSending(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header map[string]string
		want   time.Duration
	}{
		{"Retry-After beyond MaxBlock", map[string]string{"Retry-After": "30"}, 30 * time.Second},
		{"429 without Retry-After gets the default", nil, 60 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newClock()
			srv := newServer(t, clock, script(answer{429, tc.header}, answer{200, nil}))
			tr := newTransport(clock, srv.Client(), Options{MaxBlock: 3 * time.Second})

			_, err := get(t, tr, srv.URL, keyA)
			var th *Throttled
			if !errors.As(err, &th) || th.Key != keyA || th.Status != 429 || !th.NotBefore.Equal(t0.Add(tc.want)) {
				t.Fatalf("got %v; want *Throttled for %s until %s", err, keyA, t0.Add(tc.want))
			}
			if n := len(srv.Hits()); n != 1 {
				t.Fatalf("%d requests sent, want 1", n)
			}
			if nb := tr.NotBefore(keyA); !nb.Equal(t0.Add(tc.want)) {
				t.Fatalf("NotBefore = %s", nb)
			}

			// Every request of the key is held back now, unsent; other keys are not.
			clock.Advance(tc.want - 5*time.Second)
			if _, err := get(t, tr, srv.URL, keyA); !errors.As(err, &th) || th.Status != 429 {
				t.Fatalf("second request of the key: %v", err)
			}
			if n := len(srv.Hits()); n != 1 {
				t.Fatalf("a request of the throttled key was sent before its Retry-After")
			}
			if status, err := get(t, tr, srv.URL, keyB); err != nil || status != 200 {
				t.Fatalf("other key: %d, %v", status, err)
			}

			// Within MaxBlock of the time it waits, then goes.
			clock.Advance(3 * time.Second)
			if status, err := get(t, tr, srv.URL, keyA); err != nil || status != 200 {
				t.Fatalf("after the wait: %d, %v", status, err)
			}
			if last := srv.Hits()[2]; last.at.Before(t0.Add(tc.want)) {
				t.Fatalf("sent at %s, before %s", last.at, t0.Add(tc.want))
			}
		})
	}
}

func TestDo_PacesEachKeyWithItsBucket(t *testing.T) {
	clock := newClock()
	srv := newServer(t, clock, script(answer{200, nil}))
	tr := newTransport(clock, srv.Client(), Options{Budgets: map[string]Budget{APIGraph: Bucket(2, 1)}, MaxBlock: 5 * time.Second})

	for range 5 {
		if status, err := get(t, tr, srv.URL, keyA); err != nil || status != 200 {
			t.Fatalf("%d, %v", status, err)
		}
	}
	if status, err := get(t, tr, srv.URL, keyB); err != nil || status != 200 { // a fresh bucket
		t.Fatalf("%d, %v", status, err)
	}
	want := []time.Duration{0, 0, time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second}
	hits := srv.Hits()
	for i, h := range hits {
		if got := h.at.Sub(t0); got != want[i] {
			t.Fatalf("request %d sent at +%v, want +%v", i, got, want[i])
		}
	}
}

func TestDo_RefusesWhenTheBucketWaitExceedsMaxBlock(t *testing.T) {
	clock := newClock()
	srv := newServer(t, clock, script(answer{200, nil}))
	obs := &recorder{}
	tr := newTransport(clock, srv.Client(), Options{Budgets: map[string]Budget{APIGraph: Bucket(1, 0.1)}, MaxBlock: 3 * time.Second, Observer: obs})

	if _, err := get(t, tr, srv.URL, keyA); err != nil {
		t.Fatal(err)
	}
	_, err := get(t, tr, srv.URL, keyA)
	var th *Throttled
	if !errors.As(err, &th) || th.Status != 0 || !th.NotBefore.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("got %v; want a local *Throttled until +10s", err)
	}
	if n := len(srv.Hits()); n != 1 {
		t.Fatalf("%d requests sent, want 1", n)
	}
	if ev := obs.Throttles(); len(ev) != 1 || ev[0].status != 0 {
		t.Fatalf("observer told %+v", ev)
	}
	if b := tr.Blocked(keyA); b == nil || !b.NotBefore.Equal(th.NotBefore) {
		t.Fatalf("Blocked = %v", b)
	}
	// A refused request took no token: at NotBefore the next one goes at once.
	clock.SleepUntil(th.NotBefore)
	if _, err := get(t, tr, srv.URL, keyA); err != nil {
		t.Fatal(err)
	}
	if tr.Blocked(keyB) != nil {
		t.Fatal("an unused key is blocked")
	}
}

func TestDo_RetriesServerErrorsOnlyWhenIdempotent(t *testing.T) {
	for _, tc := range []struct {
		method     string
		idempotent bool
		body       string
		wantHits   int
		wantStatus int
	}{
		{http.MethodGet, false, "", 3, 200},
		{http.MethodPut, false, `{"x":1}`, 3, 200},
		{http.MethodDelete, false, "", 3, 200},
		{http.MethodPost, false, `{"comment":"once"}`, 1, 500},
		{http.MethodPatch, false, `{"status":"active"}`, 1, 500},
		{http.MethodPost, true, `{"list":"alerts"}`, 3, 200},
	} {
		t.Run(tc.method+map[bool]string{true: " marked idempotent"}[tc.idempotent], func(t *testing.T) {
			clock := newClock()
			srv := newServer(t, clock, script(answer{500, nil}, answer{502, nil}, answer{200, nil}))
			tr := newTransport(clock, srv.Client(), Options{})
			ctx := WithKey(context.Background(), keyA)
			if tc.idempotent {
				ctx = Idempotent(ctx)
			}
			status, err := send(t, tr, ctx, tc.method, srv.URL, tc.body)
			if err != nil || status != tc.wantStatus {
				t.Fatalf("got %d, %v; want %d", status, err, tc.wantStatus)
			}
			hits := srv.Hits()
			if len(hits) != tc.wantHits {
				t.Fatalf("%d requests, want %d", len(hits), tc.wantHits)
			}
			for i, h := range hits {
				if h.body != tc.body {
					t.Fatalf("attempt %d carried body %q, want %q", i, h.body, tc.body)
				}
			}
			// Full jitter with Rand≈1: 250 ms, then 500 ms.
			if slept := clock.Slept(); tc.wantHits == 3 && (len(slept) != 2 || slept[0] > 250*time.Millisecond || slept[1] > 500*time.Millisecond || slept[1] < 499*time.Millisecond) {
				t.Fatalf("backoff %v", slept)
			}
		})
	}
}

func TestDo_GivesUpAfterMaxRetries(t *testing.T) {
	t.Run("5xx returns the last response", func(t *testing.T) {
		clock := newClock()
		srv := newServer(t, clock, script(answer{503, nil}))
		tr := newTransport(clock, srv.Client(), Options{MaxRetries: 2})
		if status, err := get(t, tr, srv.URL, keyA); err != nil || status != 503 {
			t.Fatalf("%d, %v", status, err)
		}
		if n := len(srv.Hits()); n != 3 {
			t.Fatalf("%d requests, want 3", n)
		}
	})
	t.Run("429 returns Throttled", func(t *testing.T) {
		clock := newClock()
		srv := newServer(t, clock, script(answer{429, map[string]string{"Retry-After": "1"}}))
		tr := newTransport(clock, srv.Client(), Options{MaxRetries: 2})
		_, err := get(t, tr, srv.URL, keyA)
		var th *Throttled
		if !errors.As(err, &th) || th.Status != 429 {
			t.Fatalf("got %v", err)
		}
		hits := srv.Hits()
		if len(hits) != 3 || !th.NotBefore.Equal(hits[2].at.Add(time.Second)) {
			t.Fatalf("%d requests, NotBefore %s", len(hits), th.NotBefore)
		}
	})
	t.Run("no retries", func(t *testing.T) {
		clock := newClock()
		srv := newServer(t, clock, script(answer{500, nil}, answer{200, nil}))
		tr := newTransport(clock, srv.Client(), Options{MaxRetries: -1})
		if status, _ := get(t, tr, srv.URL, keyA); status != 500 || len(srv.Hits()) != 1 {
			t.Fatalf("%d after %d requests", status, len(srv.Hits()))
		}
	})
}

func TestDo_NonIdempotent503KeepsTheResponseButHoldsTheKey(t *testing.T) {
	clock := newClock()
	srv := newServer(t, clock, script(answer{503, map[string]string{"Retry-After": "2"}}, answer{200, nil}))
	tr := newTransport(clock, srv.Client(), Options{})
	status, err := send(t, tr, WithKey(context.Background(), keyA), http.MethodPost, srv.URL, `{"comment":"x"}`)
	if err != nil || status != 503 {
		t.Fatalf("%d, %v; want the 503 itself", status, err)
	}
	if !tr.NotBefore(keyA).Equal(t0.Add(2 * time.Second)) {
		t.Fatalf("NotBefore = %s", tr.NotBefore(keyA))
	}
	if _, err := get(t, tr, srv.URL, keyA); err != nil {
		t.Fatal(err)
	}
	if hits := srv.Hits(); len(hits) != 2 || hits[1].at.Before(t0.Add(2*time.Second)) {
		t.Fatalf("hits %+v", hits)
	}
}

func TestDo_RetriesTransportErrorsOnlyWhenIdempotent(t *testing.T) {
	for _, tc := range []struct {
		method   string
		wantHits int32
		wantErr  bool
	}{{http.MethodGet, 2, false}, {http.MethodPost, 1, true}} {
		t.Run(tc.method, func(t *testing.T) {
			clock := newClock()
			var n atomic.Int32
			srv := newServer(t, clock, func(int, http.ResponseWriter, *http.Request) {})
			srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.ReadAll(r.Body)
				if n.Add(1) == 1 { // reset the first connection without an answer
					conn, _, _ := w.(http.Hijacker).Hijack()
					conn.Close()
					return
				}
				w.WriteHeader(200)
			})
			tr := newTransport(clock, srv.Client(), Options{})
			status, err := send(t, tr, WithKey(context.Background(), keyA), tc.method, srv.URL, "x")
			if (err != nil) != tc.wantErr || n.Load() != tc.wantHits {
				t.Fatalf("got %d, %v after %d requests", status, err, n.Load())
			}
		})
	}
}

func TestDo_NeverResendsABodyItCannotReplay(t *testing.T) {
	for _, tc := range []struct {
		name  string
		first answer
	}{{"5xx", answer{500, nil}}, {"429", answer{429, map[string]string{"Retry-After": "1"}}}} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newClock()
			srv := newServer(t, clock, script(tc.first, answer{200, nil}))
			tr := newTransport(clock, srv.Client(), Options{})
			req, _ := http.NewRequestWithContext(WithKey(context.Background(), keyA), http.MethodPut, srv.URL, io.NopCloser(strings.NewReader("stream")))
			req.GetBody = nil
			resp, err := tr.Do(req)
			if resp != nil {
				resp.Body.Close()
			}
			var th *Throttled
			switch {
			case len(srv.Hits()) != 1:
				t.Fatalf("%d requests, want 1", len(srv.Hits()))
			case tc.first.status == 429 && !errors.As(err, &th):
				t.Fatalf("got %v, want *Throttled", err)
			case tc.first.status == 500 && (err != nil || resp.StatusCode != 500):
				t.Fatalf("got %v, %v", resp, err)
			}
		})
	}
}

func TestDo_ReplaysAzcoreRequestBodies(t *testing.T) {
	clock := newClock()
	srv := newServer(t, clock, script(answer{429, map[string]string{"Retry-After": "1"}}, answer{503, nil}, answer{201, nil}))
	tr := newTransport(clock, srv.Client(), Options{})
	pl := runtime.NewPipeline("socsync-test", "v0", runtime.PipelineOptions{}, &policy.ClientOptions{
		Transport: tr, Retry: policy.RetryOptions{MaxRetries: -1},
	})
	req, err := runtime.NewRequest(WithKey(context.Background(), Key{API: APISentinelWrite, Scope: "sub-1"}), http.MethodPut, srv.URL+"/incidents/1")
	if err != nil {
		t.Fatal(err)
	}
	const body = `{"properties":{"title":"replayed"}}`
	if err := req.SetBody(streaming.NopCloser(bytes.NewReader([]byte(body))), "application/json"); err != nil {
		t.Fatal(err)
	}
	resp, err := pl.Do(req)
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("%v, %v", resp, err)
	}
	resp.Body.Close()
	hits := srv.Hits()
	if len(hits) != 3 {
		t.Fatalf("%d requests, want 3", len(hits))
	}
	for i, h := range hits {
		if h.body != body {
			t.Fatalf("attempt %d carried %q", i, h.body)
		}
	}
}

func TestDo_TokenEndpointCountsAgainstItsTenant(t *testing.T) {
	clock := newClock()
	srv := newServer(t, clock, script(answer{429, map[string]string{"Retry-After": "60"}}, answer{500, nil}, answer{200, nil}))
	obs := &recorder{}
	tr := newTransport(clock, srv.Client(), Options{Observer: obs})
	ctx := WithKey(context.Background(), keyA) // what the bearer policy passes down

	_, err := send(t, tr, ctx, http.MethodPost, srv.URL+"/Tenant-X/oauth2/v2.0/token", "grant_type=client_credentials")
	tokenKey := Key{API: APIToken, Scope: "tenant-x"}
	var th *Throttled
	if !errors.As(err, &th) || th.Key != tokenKey {
		t.Fatalf("got %v; want *Throttled on %s", err, tokenKey)
	}
	if !tr.NotBefore(keyA).IsZero() {
		t.Fatalf("the token endpoint's 429 held back the API key until %s", tr.NotBefore(keyA))
	}
	if status, err := get(t, tr, srv.URL+"/v1.0/security/incidents", keyA); err != nil || status != 200 {
		t.Fatalf("API request: %d, %v", status, err) // sent at once (its 500 retried)
	}
	clock.SleepUntil(th.NotBefore)
	if status, err := send(t, tr, ctx, http.MethodGet, srv.URL+"/tenant-x/v2.0/.well-known/openid-configuration", ""); err != nil || status != 200 {
		t.Fatalf("metadata: %d, %v", status, err)
	}
	sent := obs.Sents()
	if sent[0].key != tokenKey || sent[1].key != keyA || sent[len(sent)-1].key != tokenKey {
		t.Fatalf("observed keys %+v", sent)
	}
}

func TestDo_TokenPOSTIsRetriedAfterServerErrors(t *testing.T) {
	clock := newClock()
	srv := newServer(t, clock, script(answer{500, nil}, answer{200, nil}))
	tr := newTransport(clock, srv.Client(), Options{})
	if status, err := send(t, tr, context.Background(), http.MethodPost, srv.URL+"/t1/oauth2/v2.0/token", "grant_type=client_credentials"); err != nil || status != 200 {
		t.Fatalf("%d, %v", status, err)
	}
	if n := len(srv.Hits()); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}
}

func TestDo_CancelledContextStopsWaiting(t *testing.T) {
	t.Run("while waiting out Retry-After", func(t *testing.T) {
		clock := newClock()
		ctx, cancel := context.WithCancel(WithKey(context.Background(), keyA))
		clock.hook = func(ctx context.Context, d time.Duration) error {
			cancel() // the caller gives up while the transport waits
			<-ctx.Done()
			return ctx.Err()
		}
		srv := newServer(t, clock, script(answer{429, map[string]string{"Retry-After": "2"}}, answer{200, nil}))
		tr := newTransport(clock, srv.Client(), Options{})
		_, err := send(t, tr, ctx, http.MethodGet, srv.URL, "")
		if !errors.Is(err, context.Canceled) || len(srv.Hits()) != 1 {
			t.Fatalf("got %v after %d requests; want context.Canceled after 1", err, len(srv.Hits()))
		}
	})
	t.Run("while waiting for the bucket, with the real sleep", func(t *testing.T) {
		srv := newServer(t, newClock(), script(answer{200, nil}))
		started := make(chan struct{})
		tr := New(srv.Client(), Options{
			Budgets:  map[string]Budget{APIGraph: Bucket(1, 1.0/3600)},
			MaxBlock: 2 * time.Hour,
			Sleep: func(ctx context.Context, d time.Duration) error {
				close(started)
				return sleep(ctx, d)
			},
		})
		if _, err := get(t, tr, srv.URL, keyA); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(WithKey(context.Background(), keyA))
		go func() {
			select {
			case <-started:
				cancel()
			case <-ctx.Done():
			}
		}()
		defer cancel()
		if _, err := send(t, tr, ctx, http.MethodGet, srv.URL, ""); !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v", err)
		}
		if n := len(srv.Hits()); n != 1 {
			t.Fatalf("%d requests, want 1", n)
		}
	})
}

func TestDo_ChecksRetryAfterAgainAfterWaitingForTheBucket(t *testing.T) {
	clock := newClock()
	arrived, release := make(chan struct{}), make(chan struct{})
	srv := newServer(t, clock, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 0 {
			close(arrived)
			<-release
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(429)
			return
		}
		w.WriteHeader(200)
	})
	aDone := make(chan struct{})
	bSleeping := make(chan struct{})
	clock.hook = func(ctx context.Context, d time.Duration) error {
		close(bSleeping) // only B ever waits
		<-aDone
		return nil
	}
	tr := newTransport(clock, srv.Client(), Options{Budgets: map[string]Budget{APIGraph: Bucket(1, 0.5)}, MaxBlock: 5 * time.Second})

	var errA error
	go func() {
		defer close(aDone)
		_, errA = get(t, tr, srv.URL, keyA)
	}()
	<-arrived
	errB := make(chan error, 1)
	go func() {
		_, err := get(t, tr, srv.URL, keyA) // waits 2 s for a token
		errB <- err
	}()
	select {
	case <-bSleeping:
	case err := <-errB:
		close(release)
		t.Fatalf("B did not wait for the bucket: %v", err)
	}
	close(release) // A earns a 429 with Retry-After: 30 while B waits

	var th *Throttled
	if err := <-errB; !errors.As(err, &th) || th.Status != 429 {
		t.Fatalf("B got %v; want *Throttled by A's 429", err)
	}
	<-aDone
	if !errors.As(errA, &th) {
		t.Fatalf("A got %v", errA)
	}
	if n := len(srv.Hits()); n != 1 {
		t.Fatalf("%d requests sent; B went out despite the Retry-After", n)
	}
}

func TestDo_NeverSpinsOnASleepThatDoesNotMoveTheClock(t *testing.T) {
	clock := newClock()
	srv := newServer(t, clock, script(answer{429, map[string]string{"Retry-After": "1"}}, answer{200, nil}))
	sleeps := 0
	tr := New(srv.Client(), Options{Now: clock.Now, Sleep: func(ctx context.Context, _ time.Duration) error {
		sleeps++
		return ctx.Err()
	}})
	_, err := get(t, tr, srv.URL, keyA)
	var th *Throttled
	if !errors.As(err, &th) || !th.NotBefore.Equal(t0.Add(time.Second)) || sleeps != 1 || len(srv.Hits()) != 1 {
		t.Fatalf("got %v after %d sleeps and %d requests; want *Throttled after one of each", err, sleeps, len(srv.Hits()))
	}
}

func TestDo_UnkeyedRequestsAreNotPacedButStillRetried(t *testing.T) {
	clock := newClock()
	srv := newServer(t, clock, script(answer{502, nil}, answer{200, nil}))
	tr := newTransport(clock, srv.Client(), Options{Budgets: map[string]Budget{APIGraph: Bucket(1, 0.001)}})
	for i := range 5 {
		status, err := send(t, tr, context.Background(), http.MethodGet, srv.URL, "")
		if err != nil || status != 200 {
			t.Fatalf("request %d: %d, %v", i, status, err)
		}
	}
	if slept := clock.Slept(); len(slept) != 1 { // the one backoff after the 502
		t.Fatalf("slept %v", slept)
	}
}

func TestDo_UnkeyedRequestHonoursItsOwnRetryAfter(t *testing.T) {
	clock := newClock()
	srv := newServer(t, clock, script(answer{429, map[string]string{"Retry-After": "2"}}, answer{200, nil}))
	tr := newTransport(clock, srv.Client(), Options{})
	if status, err := send(t, tr, context.Background(), http.MethodGet, srv.URL, ""); err != nil || status != 200 {
		t.Fatalf("%d, %v", status, err)
	}
	if hits := srv.Hits(); hits[1].at.Sub(hits[0].at) < 2*time.Second {
		t.Fatalf("resent after %v", hits[1].at.Sub(hits[0].at))
	}
}

// closeCounter counts closed response bodies.
type closeCounter struct {
	next   http.RoundTripper
	closed atomic.Int32
}

func (c *closeCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(r)
	if resp != nil {
		resp.Body = &countingBody{resp.Body, &c.closed}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int32
}

func (b *countingBody) Close() error { b.n.Add(1); return b.ReadCloser.Close() }

func TestDo_ClosesTheResponsesItRetries(t *testing.T) {
	clock := newClock()
	srv := newServer(t, clock, script(answer{500, nil}, answer{429, map[string]string{"Retry-After": "1"}}, answer{200, nil}))
	cc := &closeCounter{next: srv.Client().Transport}
	tr := New(FromRoundTripper(cc), Options{Now: clock.Now, Sleep: clock.Sleep})
	req, _ := http.NewRequestWithContext(WithKey(context.Background(), keyA), http.MethodGet, srv.URL, nil)
	resp, err := tr.RoundTrip(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v, %v", resp, err)
	}
	if n := cc.closed.Load(); n != 2 {
		t.Fatalf("%d retried responses closed, want 2", n)
	}
	resp.Body.Close()
}

func TestDo_ClosesTheBodyOfARequestItRefuses(t *testing.T) {
	clock := newClock()
	srv := newServer(t, clock, script(answer{429, map[string]string{"Retry-After": "30"}}))
	tr := newTransport(clock, srv.Client(), Options{})
	get(t, tr, srv.URL, keyA)
	var closed atomic.Bool
	body := &closeFlag{Reader: strings.NewReader("x"), closed: &closed}
	req, _ := http.NewRequestWithContext(WithKey(context.Background(), keyA), http.MethodPut, srv.URL, body)
	if _, err := tr.Do(req); err == nil || !closed.Load() {
		t.Fatalf("err %v, body closed %v", err, closed.Load())
	}
}

type closeFlag struct {
	io.Reader
	closed *atomic.Bool
}

func (c *closeFlag) Close() error { c.closed.Store(true); return nil }

func TestNotBefore_IsTheLaterOfRetryAfterAndTheBucket(t *testing.T) {
	clock := newClock()
	srv := newServer(t, clock, script(answer{200, nil}, answer{429, map[string]string{"Retry-After": "20"}}))
	tr := newTransport(clock, srv.Client(), Options{Budgets: map[string]Budget{APIGraph: Bucket(1, 0.1)}, MaxBlock: time.Minute})
	if !tr.NotBefore(keyA).IsZero() {
		t.Fatal("an unused key has a NotBefore")
	}
	get(t, tr, srv.URL, keyA)
	if nb := tr.NotBefore(keyA); !nb.Equal(t0.Add(10 * time.Second)) {
		t.Fatalf("after one request: %s, want the bucket's +10s", nb)
	}
	tr.opts.MaxRetries = 0
	get(t, tr, srv.URL, keyA) // waits 10 s for the token, then earns Retry-After: 20
	if nb := tr.NotBefore(keyA); !nb.Equal(t0.Add(30 * time.Second)) {
		t.Fatalf("after the 429: %s, want +30s", nb)
	}
}

func TestDo_ConcurrentRequestsShareTheKeysState(t *testing.T) {
	clock := newClock()
	srv := newServer(t, clock, func(n int, w http.ResponseWriter, r *http.Request) {
		if n%7 == 3 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(429)
			return
		}
		if n%11 == 5 {
			w.WriteHeader(503)
			return
		}
		w.WriteHeader(200)
	})
	tr := newTransport(clock, srv.Client(), Options{Budgets: map[string]Budget{APIGraph: Bucket(5, 50)}})
	var wg sync.WaitGroup
	var ok, held atomic.Int32
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := []Key{keyA, keyB}[g%2]
			for range 20 {
				status, err := get(t, tr, srv.URL, k)
				var th *Throttled
				switch {
				case err == nil && status == 200:
					ok.Add(1)
				case errors.As(err, &th), err == nil && status == 503:
					held.Add(1)
				default:
					t.Errorf("%d, %v", status, err)
				}
			}
		}()
	}
	wg.Wait()
	if ok.Load()+held.Load() != 160 || ok.Load() < 100 {
		t.Fatalf("%d ok, %d held", ok.Load(), held.Load())
	}
}
