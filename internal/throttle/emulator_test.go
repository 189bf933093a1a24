package throttle

// Tests against socsync's emulator over real HTTPS, on the emulator's own clock: the emulator
// stamps every request it receives with the same fake clock the Transport waits on, so "no
// request before Retry-After" is checked on the server's side, and its documented limits
// answer 429 if a budget is ever exceeded.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socsync/socsync/internal/emulator"
)

type emuEnv struct {
	e     *emulator.Emulator
	srv   *emulator.Server
	info  emulator.Info
	clock *fakeClock
}

func startEmulator(t *testing.T, opts emulator.Options) *emuEnv {
	t.Helper()
	clock := newClock()
	opts.Now, opts.Seed, opts.CertTenants = clock.Now, 1, -1
	e, err := emulator.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := emulator.Start(ctx, e, "127.0.0.1:0", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		srv.Close()
		e.Close()
	})
	return &emuEnv{e: e, srv: srv, info: e.Info(srv.URL, srv.CAFile), clock: clock}
}

// token gets an access token for scope with the tenant's client secret, through tr, under the
// context key k (the token request must count against the token endpoint's key instead).
func (env *emuEnv) token(t *testing.T, tr *Transport, ti emulator.TenantInfo, scope string, k Key) (string, error) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {ti.ClientID}, "client_secret": {ti.ClientSecret}, "scope": {scope}}
	req, _ := http.NewRequestWithContext(WithKey(context.Background(), k), http.MethodPost,
		env.srv.URL+"/"+ti.TenantID+"/oauth2/v2.0/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := tr.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.AccessToken == "" {
		return "", fmt.Errorf("token: status %d, %v", resp.StatusCode, err)
	}
	return out.AccessToken, nil
}

// call sends one request as a client would; on *Throttled it does what a scheduler does —
// waits until NotBefore — and tries again, until it gets an answer.
func (env *emuEnv) call(t *testing.T, tr *Transport, ctx context.Context, method, path, token, body string) (status int, held int) {
	t.Helper()
	for {
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, _ := http.NewRequestWithContext(ctx, method, env.srv.URL+path, rd)
		req.Header.Set("Authorization", "Bearer "+token)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := tr.Do(req)
		var th *Throttled
		switch {
		case errors.As(err, &th):
			held++
			env.clock.SleepUntil(th.NotBefore)
			continue
		case err != nil:
			return 0, held
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, held
	}
}

// byTenant returns the emulator's request records of one API per tenant, in arrival order.
func byTenant(env *emuEnv, api string) map[string][]emulator.RequestRecord {
	recs, _ := env.e.RequestHistory()
	sort.Slice(recs, func(i, j int) bool { return recs[i].Seq < recs[j].Seq })
	out := map[string][]emulator.RequestRecord{}
	for _, r := range recs {
		if r.API == api {
			out[r.Tenant] = append(out[r.Tenant], r)
		}
	}
	return out
}

func TestEmulator_GraphStormNeverCallsBeforeRetryAfter(t *testing.T) {
	env := startEmulator(t, emulator.Options{Tenants: 3})
	obs := &recorder{}
	tr := newTransport(env.clock, env.srv.Client(), Options{MaxBlock: 3 * time.Second, Observer: obs})
	tokens := map[string]string{}
	for _, ti := range env.info.Tenants {
		tok, err := env.token(t, tr, ti, "https://graph.microsoft.com/.default", Key{API: APIGraph, Scope: ti.TenantID})
		if err != nil {
			t.Fatal(err)
		}
		tokens[ti.TenantID] = tok
	}
	// R1: 30 % of Graph calls answered 429 with Retry-After between 1 and 30 s.
	if err := env.e.SetFaults(emulator.FaultProfile{Rules: []emulator.FaultRule{{API: "graph", Rate429: 0.3, RetryAfter: []int{1, 30}}}}); err != nil {
		t.Fatal(err)
	}
	env.e.ResetRequests()

	const perTenant = 40
	var wg sync.WaitGroup
	var mu sync.Mutex
	heldTotal := 0
	for _, ti := range env.info.Tenants {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := WithKey(context.Background(), Key{API: APIGraph, Scope: ti.TenantID})
			for i := range perTenant {
				status, held := env.call(t, tr, ctx, http.MethodGet, "/v1.0/security/incidents?$top=10", tokens[ti.TenantID], "")
				if status != http.StatusOK {
					t.Errorf("tenant %s call %d: status %d", ti.Name, i, status)
					return
				}
				mu.Lock()
				heldTotal += held
				mu.Unlock()
			}
		}()
	}
	wg.Wait()

	got429, retriedInside := 0, 0
	for tenant, recs := range byTenant(env, "graph") {
		for i, r := range recs {
			if r.Throttled != "" && r.Throttled != "fault" {
				t.Errorf("tenant %s: the emulator's %s limit answered 429: budget exceeded", tenant, r.Throttled)
			}
			if r.Status != http.StatusTooManyRequests {
				continue
			}
			got429++
			if i+1 == len(recs) {
				t.Errorf("tenant %s: a 429 was the last request", tenant)
				continue
			}
			next := recs[i+1]
			if earliest := r.Time.Add(time.Duration(r.RetryAfter) * time.Second); next.Time.Before(earliest) {
				t.Errorf("tenant %s: request %d at %s, before the Retry-After of the 429 at %s (%d s)",
					tenant, next.Seq, next.Time.Format(time.TimeOnly), r.Time.Format(time.TimeOnly), r.RetryAfter)
			}
			if r.RetryAfter <= 3 {
				retriedInside++
			}
		}
		if ok := len(recs) - countStatus(recs, 429); ok != perTenant {
			t.Errorf("tenant %s: %d successful calls, want %d", tenant, ok, perTenant)
		}
	}
	if got429 < 10 || retriedInside == 0 || heldTotal == 0 {
		t.Fatalf("the storm was too mild to prove anything: %d 429s, %d retried in the transport, %d handed back as *Throttled", got429, retriedInside, heldTotal)
	}
	if n := len(obs.Throttles()); n < got429 {
		t.Errorf("observer told of %d holds, the emulator sent %d 429s", n, got429)
	}
}

func countStatus(recs []emulator.RequestRecord, status int) int {
	n := 0
	for _, r := range recs {
		if r.Status == status {
			n++
		}
	}
	return n
}

func TestEmulator_SentinelWritesStayWithinTheirBudget(t *testing.T) {
	env := startEmulator(t, emulator.Options{Tenants: 2})
	// R2 at a smaller scale: Sentinel allows 20 writes per 5 minutes, and so does our budget.
	lim := env.e.Limits()
	lim.SentinelWritesPer5Min = 20
	if err := env.e.SetLimits(lim); err != nil {
		t.Fatal(err)
	}
	tr := newTransport(env.clock, env.srv.Client(), Options{
		Budgets:  map[string]Budget{APISentinelWrite: Window(20, 5*time.Minute)},
		MaxBlock: 30 * time.Second,
	})
	ti := env.info.Tenants[1]
	ws := ti.Sentinel[0]
	created, err := env.e.CreateIncident(ti.TenantID, emulator.NewIncident{Title: "comment target", Severity: "high"})
	if err != nil || created.SentinelID == "" {
		t.Fatalf("%+v, %v", created, err)
	}
	tok, err := env.token(t, tr, ti, "https://management.azure.com/.default", Key{})
	if err != nil {
		t.Fatal(err)
	}
	sub := strings.ToLower(ws.SubscriptionID)
	ctx := WithKey(context.Background(), Key{API: APISentinelWrite, Scope: sub})
	base := fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.OperationalInsights/workspaces/%s/providers/Microsoft.SecurityInsights/incidents/%s/comments/",
		ws.SubscriptionID, ws.ResourceGroup, ws.Workspace, created.SentinelID)
	const n = 50
	for i := range n {
		path := fmt.Sprintf("%s00000000-0000-4000-8000-%012d?api-version=2025-12-01", base, i)
		if status, _ := env.call(t, tr, ctx, http.MethodPut, path, tok, fmt.Sprintf(`{"properties":{"message":"note %d"}}`, i)); status != http.StatusCreated {
			t.Fatalf("comment %d: status %d", i, status)
		}
	}
	var puts []time.Time
	for _, recs := range byTenant(env, "arm") {
		for _, r := range recs {
			if r.Status == http.StatusTooManyRequests {
				t.Fatalf("the emulator throttled a write (%s): budget exceeded", r.Throttled)
			}
			if r.Method == http.MethodPut {
				puts = append(puts, r.Time)
			}
		}
	}
	if len(puts) != n {
		t.Fatalf("%d PUTs received, want %d", len(puts), n)
	}
	for lo, hi := 0, 0; hi < len(puts); hi++ {
		for !puts[lo].After(puts[hi].Add(-5 * time.Minute)) {
			lo++
		}
		if hi-lo+1 > 20 {
			t.Fatalf("%d writes within 5 minutes", hi-lo+1)
		}
	}
}

func TestEmulator_ServerErrorsRetriedForReadsNeverForCommentPOSTs(t *testing.T) {
	env := startEmulator(t, emulator.Options{Tenants: 1})
	obs := &recorder{}
	tr := newTransport(env.clock, env.srv.Client(), Options{Observer: obs})
	ti := env.info.Tenants[0]
	k := Key{API: APIGraph, Scope: ti.TenantID}
	tok, err := env.token(t, tr, ti, "https://graph.microsoft.com/.default", k)
	if err != nil {
		t.Fatal(err)
	}
	created, err := env.e.CreateIncident(ti.TenantID, emulator.NewIncident{Title: "commented", Severity: "low"})
	if err != nil {
		t.Fatal(err)
	}
	// R3 and R5: 5xx bursts and connection resets on reads, 5xx on comment posts.
	if err := env.e.SetFaults(emulator.FaultProfile{Rules: []emulator.FaultRule{
		{API: "graph", Method: "GET", Rate5xx: 0.3, RateReset: 0.1},
		{API: "graph", Method: "POST", Rate5xx: 0.4},
	}}); err != nil {
		t.Fatal(err)
	}
	env.e.ResetRequests()
	ctx := WithKey(context.Background(), k)
	okGets := 0
	for range 30 {
		if status, _ := env.call(t, tr, ctx, http.MethodGet, "/v1.0/security/incidents?$top=5", tok, ""); status == http.StatusOK {
			okGets++
		}
	}
	const posts = 20
	for i := range posts {
		env.call(t, tr, ctx, http.MethodPost, "/v1.0/security/incidents/"+created.GraphID+"/comments", tok,
			fmt.Sprintf(`{"@odata.type":"microsoft.graph.security.alertComment","comment":"note %d"}`, i))
	}

	gets, postsSeen, resets, failedPosts := 0, 0, 0, 0
	for _, r := range byTenant(env, "graph")[strings.ToLower(ti.TenantID)] {
		switch r.Method {
		case http.MethodGet:
			gets++
			if r.Fault == "reset" {
				resets++
			}
		case http.MethodPost:
			postsSeen++
			if r.Status >= 500 {
				failedPosts++
			}
		}
	}
	if postsSeen != posts {
		t.Fatalf("the emulator saw %d comment POSTs for %d posted: a non-idempotent request was resent", postsSeen, posts)
	}
	if failedPosts == 0 || resets == 0 || gets <= 30 {
		t.Fatalf("faults too mild: %d failed posts, %d resets, %d GETs", failedPosts, resets, gets)
	}
	if okGets < 28 {
		t.Fatalf("only %d of 30 reads succeeded through the retries", okGets)
	}
	sent := 0
	for _, ev := range obs.Sents() {
		if ev.key == k {
			sent++
		}
	}
	if sent != gets+postsSeen {
		t.Fatalf("observer saw %d attempts, the emulator %d", sent, gets+postsSeen)
	}
}

func TestEmulator_TokenEndpointThrottlesItsTenantOnly(t *testing.T) {
	env := startEmulator(t, emulator.Options{Tenants: 2})
	a, b := env.info.Tenants[0], env.info.Tenants[1]
	if err := env.e.SetFaults(emulator.FaultProfile{Rules: []emulator.FaultRule{{API: "token", Tenant: a.TenantID, Rate429: 1, RetryAfter: []int{60, 60}}}}); err != nil {
		t.Fatal(err)
	}
	tr := newTransport(env.clock, env.srv.Client(), Options{})
	graphA := Key{API: APIGraph, Scope: a.TenantID}
	tokenA := Key{API: APIToken, Scope: strings.ToLower(a.TenantID)}

	for range 2 {
		_, err := env.token(t, tr, a, "https://graph.microsoft.com/.default", graphA)
		var th *Throttled
		if !errors.As(err, &th) || th.Key != tokenA || th.Status != 429 || !th.NotBefore.Equal(t0.Add(time.Minute)) {
			t.Fatalf("got %v; want *Throttled on %s for 60 s", err, tokenA)
		}
	}
	if recs := byTenant(env, "token")[strings.ToLower(a.TenantID)]; len(recs) != 1 {
		t.Fatalf("%d token requests reached the emulator, want 1", len(recs))
	}
	if !tr.NotBefore(graphA).IsZero() {
		t.Fatal("the token endpoint's 429 held back tenant A's Graph budget")
	}
	if _, err := env.token(t, tr, b, "https://graph.microsoft.com/.default", Key{API: APIGraph, Scope: b.TenantID}); err != nil {
		t.Fatalf("tenant B: %v", err)
	}
}
