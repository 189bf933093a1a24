package emulator

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func (v *testEnv) setFaults(rules ...FaultRule) {
	v.t.Helper()
	if err := v.e.SetFaults(FaultProfile{Rules: rules}); err != nil {
		v.t.Fatal(err)
	}
}

// rawGet sends a GET and returns the response, the body and the first error (transport or
// body read), without failing the test.
func (v *testEnv) rawGet(ctx context.Context, path, token string) (*http.Response, []byte, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", v.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := v.c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func TestFaults_Injected429WithRetryAfterRange(t *testing.T) {
	v := newEnv(t, Options{})
	tok := v.graphToken(0)
	v.setFaults(FaultRule{API: "graph", Rate429: 1, RetryAfter: []int{3, 7}})
	for range 10 {
		resp, b := v.do("GET", incidentsPath, tok, nil)
		ra := resp.Header.Get("Retry-After")
		if resp.StatusCode != 429 || ra < "3" || ra > "7" || len(ra) != 1 {
			t.Fatalf("%d Retry-After %q %s", resp.StatusCode, ra, b)
		}
		var m map[string]any
		json.Unmarshal(b, &m)
		if code, _ := errBody(t, m); code != "TooManyRequests" {
			t.Fatalf("code %q", code)
		}
	}
	recs, _ := v.e.RequestHistory()
	last := recs[len(recs)-1]
	if last.Fault != "429" || last.Throttled != "fault" || last.RetryAfter < 3 || last.Status != 429 {
		t.Errorf("record %+v", last)
	}
	// The token endpoint gets Entra's throttling answer.
	v.setFaults(FaultRule{API: "token", Rate429: 1, RetryAfter: []int{60, 60}})
	ti := v.tenant(0)
	status, m := v.tokenResp(ti.TenantID, map[string][]string{"grant_type": {"client_credentials"}, "client_id": {ti.ClientID}, "client_secret": {ti.ClientSecret}, "scope": {"https://graph.microsoft.com/.default"}})
	if status != 429 || m["error_codes"].([]any)[0] != float64(50196) {
		t.Fatalf("token 429: %d %v", status, m)
	}
}

func faultSequence(t *testing.T, seed int64) []int {
	v := newEnv(t, Options{Seed: seed})
	tok := v.graphToken(0)
	v.setFaults(FaultRule{API: "graph", Rate429: 0.3, Rate5xx: 0.2})
	var out []int
	for range 40 {
		resp, _ := v.do("GET", incidentsPath+"?$top=1", tok, nil)
		out = append(out, resp.StatusCode)
	}
	return out
}

func TestFaults_DeterministicUnderTheSeed(t *testing.T) {
	a, b, c := faultSequence(t, 5), faultSequence(t, 5), faultSequence(t, 6)
	if !slices.Equal(a, b) {
		t.Fatalf("same seed, different faults:\n%v\n%v", a, b)
	}
	if slices.Equal(a, c) {
		t.Fatalf("different seeds, same faults: %v", a)
	}
	n429, n5xx := 0, 0
	for _, s := range a {
		switch {
		case s == 429:
			n429++
		case s >= 500:
			n5xx++
		}
	}
	if n429 < 4 || n429 > 20 || n5xx < 2 || n5xx > 16 {
		t.Errorf("rates off: %d×429, %d×5xx of 40", n429, n5xx)
	}
}

func TestFaults_5xxBodiesPerAPIAndTenantSelection(t *testing.T) {
	v := newEnv(t, Options{})
	g0, g1, a1 := v.graphToken(0), v.graphToken(1), v.armToken(1)
	v.setFaults(FaultRule{Tenant: v.tenant(1).TenantID, Rate5xx: 1, Statuses: []int{503}})
	if resp, _ := v.do("GET", incidentsPath, g0, nil); resp.StatusCode != 200 {
		t.Fatalf("tenant 0 affected: %d", resp.StatusCode)
	}
	status, m := v.doJSON("GET", incidentsPath, g1, nil)
	wantStatus(t, status, 503, m)
	if code, _ := errBody(t, m); code != "serviceNotAvailable" {
		t.Errorf("graph 503 code %q", code)
	}
	v.setFaults(FaultRule{API: "arm", Rate5xx: 1, Statuses: []int{500}})
	status, m = v.doJSON("GET", v.wsPath(1, 0)+"/incidents"+apiV, a1, nil)
	wantStatus(t, status, 500, m)
	if code, _ := errBody(t, m); code != "InternalServerError" {
		t.Errorf("arm 500 code %q", code)
	}
	// Selection by method and route.
	v.setFaults(FaultRule{API: "graph", Method: "PATCH", Route: "/v1.0/security/incidents/{id}", Rate5xx: 1, Statuses: []int{502}})
	tok := g0
	_, list := v.doJSON("GET", incidentsPath, tok, nil)
	id := list["value"].([]any)[0].(map[string]any)["id"].(string)
	if status, _ := v.doJSON("PATCH", incidentsPath+"/"+id, tok, map[string]any{"severity": "high"}); status != 502 {
		t.Errorf("PATCH: %d", status)
	}
	if g := v.e.graphView(t, 0, id); g["severity"] == "high" {
		t.Error("a failed PATCH was applied")
	}
}

func TestFaults_HangTruncateResetAndLatency(t *testing.T) {
	v := newEnv(t, Options{})
	tok := v.graphToken(0)

	v.setFaults(FaultRule{API: "graph", RateHang: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	_, _, err := v.rawGet(ctx, incidentsPath, tok)
	cancel()
	if err == nil {
		t.Fatal("hung request returned")
	}
	waitFor(t, func() bool {
		recs, _ := v.e.RequestHistory()
		r := recs[len(recs)-1]
		return r.Fault == "hang" && r.Status == 0
	})

	v.setFaults(FaultRule{API: "graph", RateTruncate: 1})
	resp, body, err := v.rawGet(context.Background(), incidentsPath, tok)
	if err == nil {
		t.Fatalf("truncated response read without error: %d %q", resp.StatusCode, body)
	}
	if resp == nil || resp.StatusCode != 200 || len(body) == 0 || json.Valid(body) {
		t.Errorf("want a 200 with half a JSON body, got %v %q", resp, body)
	}

	v.setFaults(FaultRule{API: "graph", RateReset: 1})
	if _, _, err := v.rawGet(context.Background(), incidentsPath, tok); err == nil {
		t.Fatal("reset request succeeded")
	}

	v.setFaults(FaultRule{API: "graph", LatencyMs: []int{20, 30}})
	if resp, _, err := v.rawGet(context.Background(), incidentsPath, tok); err != nil || resp.StatusCode != 200 {
		t.Fatalf("latency only: %v %v", resp, err)
	}
	// Close releases hung requests.
	v.setFaults(FaultRule{API: "graph", RateHang: 1})
	key := "graph|" + v.tenant(0).TenantID
	v.e.faultMu.Lock()
	before := v.e.faultN[key]
	v.e.faultMu.Unlock()
	done := make(chan error, 1)
	go func() {
		_, _, err := v.rawGet(context.Background(), incidentsPath, tok)
		done <- err
	}()
	waitFor(t, func() bool {
		v.e.faultMu.Lock()
		defer v.e.faultMu.Unlock()
		return v.e.faultN[key] > before
	})
	v.e.Close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not release the hung request")
	}
}

// waitFor polls cond (for effects of other goroutines) for up to 5 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for range 500 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("condition not met in time")
}

func TestFaults_AdminGetPutDeleteAndValidation(t *testing.T) {
	v := newEnv(t, Options{})
	profile := map[string]any{"rules": []any{map[string]any{"api": "graph", "tenant": v.tenant(0).TenantID, "rate_429": 0.3,
		"retry_after_s": []int{1, 30}, "rate_5xx": 0.1, "latency_ms": []int{0, 5}}}}
	status, m := v.admin("PUT", "/faults", profile)
	wantStatus(t, status, 200, m)
	status, m = v.admin("GET", "/faults", nil)
	wantStatus(t, status, 200, m)
	rules := m["rules"].([]any)
	if len(rules) != 1 || rules[0].(map[string]any)["rate_429"] != 0.3 {
		t.Fatalf("GET faults %v", m)
	}
	resp, _ := v.do("DELETE", "/_emulator/faults", "", nil)
	if resp.StatusCode != 204 || len(v.e.Faults().Rules) != 0 {
		t.Fatal("DELETE did not clear the profile")
	}
	cases := []struct {
		rule map[string]any
		msg  string
	}{
		{map[string]any{"api": "mail"}, `rules[0].api: want token, graph, arm or ingestion, got "mail"`},
		{map[string]any{"rate_429": 1.5}, "rules[0].rate_429: want a fraction between 0 and 1, got 1.5"},
		{map[string]any{"rate_429": 0.6, "rate_5xx": 0.6}, "rules[0]: the rates add up to 1.2, more than 1"},
		{map[string]any{"latency_ms": []int{5, 1}}, "rules[0].latency_ms: want [min, max] with 0 <= min <= max, got [5 1]"},
		{map[string]any{"rate_429": 0.1, "retry_after_s": []int{0, 3}}, "rules[0].retry_after_s: Retry-After must be at least 1 second"},
		{map[string]any{"rate_5xx": 0.1, "statuses_5xx": []int{404}}, "rules[0].statuses_5xx: 404 is not a 5xx status"},
		{map[string]any{"api": "graph", "rate_413": 0.1}, "rules[0].rate_413: only the ingestion API answers 413 for a request's size; set api: ingestion"},
		{map[string]any{"api": "ingestion", "rate_413": 0.6, "rate_429": 0.6}, "rules[0]: the rates add up to 1.2, more than 1"},
		{map[string]any{"latency_after_ms": []int{1}}, "rules[0].latency_after_ms: want [min, max] with 0 <= min <= max, got [1]"},
		{map[string]any{"unknown": 1}, `invalid JSON body: json: unknown field "unknown"`},
	}
	for _, c := range cases {
		status, m := v.admin("PUT", "/faults", map[string]any{"rules": []any{c.rule}})
		wantStatus(t, status, 400, m)
		if _, msg := errBody(t, m); !strings.Contains(msg, c.msg) {
			t.Errorf("%v: %q, want %q", c.rule, msg, c.msg)
		}
	}
}

func TestFaults_TruncateAndResetOverHTTP1(t *testing.T) {
	v := newEnv(t, Options{})
	tok := v.graphToken(0)
	tr := v.c.Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
	tr.ForceAttemptHTTP2 = false
	h1 := &http.Client{Transport: tr}
	get := func() (*http.Response, []byte, error) {
		req, _ := http.NewRequest("GET", v.srv.URL+incidentsPath, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := h1.Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp, b, err
	}
	v.setFaults(FaultRule{API: "graph", RateTruncate: 1})
	resp, b, err := get()
	if err == nil || resp == nil || resp.Proto != "HTTP/1.1" || resp.StatusCode != 200 || len(b) == 0 {
		t.Fatalf("truncate over HTTP/1.1: %v %d bytes, err %v", resp, len(b), err)
	}
	v.setFaults(FaultRule{API: "graph", RateReset: 1})
	if _, _, err := get(); err == nil || !strings.Contains(err.Error(), "reset") {
		t.Fatalf("reset over HTTP/1.1: %v", err)
	}
}

func TestFaults_Injected413IsLogsIngestionsContentLengthErrorAndStoresNothing(t *testing.T) {
	v := newEnv(t, Options{})
	tok := v.ingestionToken()
	small := []byte(`[{"TimeGenerated":"2026-11-02T09:00:00Z","Computer":"a"}]`)
	v.setFaults(FaultRule{API: "ingestion", Rate413: 1})
	resp, b := v.do("POST", v.ingestPath(), tok, gzipBytes(t, small), "Content-Encoding", "gzip")
	var m map[string]any
	json.Unmarshal(b, &m)
	if code, msg := errBody(t, m); resp.StatusCode != 413 || code != "ContentLengthLimitExceeded" || resp.Header.Get("x-ms-error-code") != code ||
		!strings.Contains(msg, "Maximum allowed content length: 1048576 bytes") {
		t.Fatalf("injected 413: %d %q %s", resp.StatusCode, resp.Header.Get("x-ms-error-code"), b)
	}
	if n := v.e.IngestedTotal(v.info.LogsIngestion.Stream); n != 0 {
		t.Errorf("a 413 stored %d rows", n)
	}
	recs, _ := v.e.RequestHistory()
	if last := recs[len(recs)-1]; last.Fault != "413" || last.Status != 413 {
		t.Errorf("request record %+v", last)
	}
	// A fraction: some requests get through, the others are refused; no other API is touched.
	v.setFaults(FaultRule{API: "ingestion", Rate413: 0.5})
	got := map[int]int{}
	for range 40 {
		resp, _ := v.do("POST", v.ingestPath(), tok, small)
		got[resp.StatusCode]++
	}
	if got[413] < 8 || got[204] < 8 || got[413]+got[204] != 40 {
		t.Errorf("rate_413 0.5 over 40 uploads: %v", got)
	}
	if resp, _ := v.do("GET", incidentsPath, v.graphToken(0), nil); resp.StatusCode != 200 {
		t.Errorf("graph under an ingestion rule: %d", resp.StatusCode)
	}
}

func TestFaults_LatencyAfterStoresTheRowsBeforeTheAnswerLeaves(t *testing.T) {
	v := newEnv(t, Options{})
	tok := v.ingestionToken()
	stream := v.info.LogsIngestion.Stream
	v.setFaults(FaultRule{API: "ingestion", LatencyAfterMs: []int{1500, 1500}})
	type answer struct {
		status int
		at     time.Time
	}
	done := make(chan answer, 1)
	start := time.Now()
	go func() {
		req, _ := http.NewRequest("POST", v.srv.URL+v.ingestPath(), strings.NewReader(`[{"Computer":"late"}]`))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := v.c.Do(req)
		if err != nil {
			done <- answer{}
			return
		}
		resp.Body.Close()
		done <- answer{resp.StatusCode, time.Now()}
	}()
	var storedAt time.Time
	for storedAt.IsZero() && time.Since(start) < 10*time.Second {
		select {
		case a := <-done:
			t.Fatalf("answered %d before the rows were seen stored", a.status)
		default:
		}
		if v.e.IngestedTotal(stream) == 1 {
			storedAt = time.Now()
		}
		time.Sleep(5 * time.Millisecond)
	}
	if storedAt.IsZero() {
		t.Fatal("the rows were never stored")
	}
	a := <-done
	if a.status != 204 || a.at.Sub(start) < 1500*time.Millisecond || !a.at.After(storedAt) {
		t.Errorf("answer %d after %v (stored after %v); want 204 held 1.5 s after the rows were stored",
			a.status, a.at.Sub(start), storedAt.Sub(start))
	}
}
