package emulator

import (
	"encoding/json"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// graph429Sample is the JSON body of the documented Graph 429 sample.
func graph429Sample(t *testing.T) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(samplesDir + "/graph_throttling_429_sample.http")
	if err != nil {
		t.Fatalf("reference sample missing: %v", err)
	}
	s := string(raw)
	if !strings.Contains(s, "Retry-After: 10") {
		t.Fatalf("sample changed: %s", s)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(s[strings.Index(s, "{"):]), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestLimits_Graph150PerMinutePerAppPerTenant(t *testing.T) {
	v := newEnv(t, Options{})
	tok := v.graphToken(0)
	for i := range 150 {
		if resp, b := v.do("GET", incidentsPath+"?$top=1", tok, nil); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %s", i+1, resp.StatusCode, b)
		}
	}
	resp, b := v.do("GET", incidentsPath+"?$top=1", tok, nil)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("151st: %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	sample := graph429Sample(t)
	compareShape(t, "429", sample, m, true)
	compareShape(t, "429 error", sample["error"].(map[string]any), m["error"].(map[string]any), true)
	compareShape(t, "429 innerError", sample["error"].(map[string]any)["innerError"].(map[string]any), m["error"].(map[string]any)["innerError"].(map[string]any), true)
	if code, msg := errBody(t, m); code != "TooManyRequests" || msg != "Please retry again later." {
		t.Errorf("%q %q", code, msg)
	}
	// Other tenants and other apps have their own budget.
	if resp, _ := v.do("GET", incidentsPath, v.graphToken(1), nil); resp.StatusCode != 200 {
		t.Errorf("tenant 1 throttled: %d", resp.StatusCode)
	}
	mt := v.info.MultiTenantApp
	_, tm := v.tokenResp(v.tenant(0).TenantID, url.Values{"grant_type": {"client_credentials"}, "client_id": {mt.ClientID},
		"client_secret": {mt.ClientSecret}, "scope": {"https://graph.microsoft.com/.default"}})
	if resp, _ := v.do("GET", incidentsPath, tm["access_token"].(string), nil); resp.StatusCode != 200 {
		t.Errorf("another app in tenant 0 throttled: %d", resp.StatusCode)
	}
	// The bucket refills on the emulator clock.
	v.e.Advance(time.Second)
	if resp, _ := v.do("GET", incidentsPath, tok, nil); resp.StatusCode != 200 {
		t.Errorf("after Retry-After: %d", resp.StatusCode)
	}
	// The detailed request log shows the 429 and its Retry-After.
	recs, _ := v.e.RequestHistory()
	var throttled []RequestRecord
	for _, r := range recs {
		if r.Status == 429 {
			throttled = append(throttled, r)
		}
	}
	if len(throttled) != 1 || throttled[0].RetryAfter != 1 || throttled[0].Throttled != "graph" || throttled[0].Tenant != v.tenant(0).TenantID ||
		throttled[0].Principal != v.tenant(0).ClientID || !throttled[0].Time.Equal(testBase) {
		t.Errorf("429 records %+v", throttled)
	}
}

func TestLimits_ARMTokenBucketPerSubscriptionAndPrincipal(t *testing.T) {
	v := newEnv(t, Options{Limits: &Limits{ARMReadBurst: 3, ARMReadPerSecond: 1, ARMWriteBurst: 100, ARMWritePerSecond: 10}})
	tok := v.armToken(1)
	path := v.wsPath(1, 0) + "/incidents" + apiV
	for i, want := range []string{"2", "1", "0"} {
		resp, b := v.do("GET", path, tok, nil)
		if resp.StatusCode != 200 || resp.Header.Get("x-ms-ratelimit-remaining-subscription-reads") != want {
			t.Fatalf("read %d: %d remaining %q %s", i+1, resp.StatusCode, resp.Header.Get("x-ms-ratelimit-remaining-subscription-reads"), b)
		}
	}
	resp, b := v.do("GET", path, tok, nil)
	var m map[string]any
	json.Unmarshal(b, &m)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("4th read: %d %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
	if code, msg := errBody(t, m); code != "SubscriptionRequestsThrottled" || !strings.HasPrefix(msg, "Number of 'read' requests for subscription '"+v.tenant(1).Sentinel[0].SubscriptionID+"' actor '") {
		t.Errorf("%q %q", code, msg)
	}
	// Another principal on the same subscription has its own bucket.
	mt := v.info.MultiTenantApp
	_, tm := v.tokenResp(v.tenant(1).TenantID, url.Values{"grant_type": {"client_credentials"}, "client_id": {mt.ClientID},
		"client_secret": {mt.ClientSecret}, "scope": {"https://management.azure.com/.default"}})
	if resp, _ := v.do("GET", path, tm["access_token"].(string), nil); resp.StatusCode != 200 {
		t.Errorf("other principal: %d", resp.StatusCode)
	}
	v.e.Advance(time.Second)
	if resp, _ := v.do("GET", path, tok, nil); resp.StatusCode != 200 {
		t.Errorf("after refill: %d", resp.StatusCode)
	}
}

func TestLimits_SentinelWritesAndReadsPer5Minutes(t *testing.T) {
	v := newEnv(t, Options{IncidentsPerTenant: -1, Limits: &Limits{ARMReadBurst: 100, ARMReadPerSecond: 10, ARMWriteBurst: 100,
		ARMWritePerSecond: 10, SentinelWritesPer5Min: 2, SentinelReadsPer5Min: 2}})
	c, _ := v.e.CreateIncident("1", NewIncident{Title: "x"})
	tok := v.armToken(1)
	comments := v.wsPath(1, 0) + "/incidents/" + c.SentinelID + "/comments"
	for i := range 2 {
		if status, m := v.doJSON("PUT", comments+"/c"+strconv.Itoa(i)+apiV, tok, sentinelBody(map[string]any{"message": "m"})); status != 201 {
			t.Fatalf("write %d: %d %v", i, status, m)
		}
	}
	resp, b := v.do("PUT", comments+"/c9"+apiV, tok, sentinelBody(map[string]any{"message": "m"}))
	var m map[string]any
	json.Unmarshal(b, &m)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "150" {
		t.Fatalf("3rd write: %d %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
	if code, _ := errBody(t, m); code != "TooManyRequests" {
		t.Errorf("code %q", code)
	}
	// Reads of comments and alerts have their own budget; plain incident reads are not limited by it.
	for range 2 {
		if resp, _ := v.do("GET", comments+apiV, tok, nil); resp.StatusCode != 200 {
			t.Fatalf("comment read: %d", resp.StatusCode)
		}
	}
	if resp, _ := v.do("POST", v.wsPath(1, 0)+"/incidents/"+c.SentinelID+"/alerts"+apiV, tok, nil); resp.StatusCode != 429 {
		t.Fatalf("3rd alerts/comments read: %d", resp.StatusCode)
	}
	if resp, _ := v.do("GET", v.wsPath(1, 0)+"/incidents/"+c.SentinelID+apiV, tok, nil); resp.StatusCode != 200 {
		t.Fatalf("incident get: %d", resp.StatusCode)
	}
	v.e.Advance(150 * time.Second)
	if status, m := v.doJSON("PUT", comments+"/c9"+apiV, tok, sentinelBody(map[string]any{"message": "m"})); status != 201 {
		t.Fatalf("after Retry-After: %d %v", status, m)
	}
}

func TestLimits_IngestionAndTokenEndpoint(t *testing.T) {
	v := newEnv(t, Options{Limits: &Limits{IngestionPerMinute: 2, IngestionBytesPerMinute: 1 << 30, TokenPerMinute: 3}})
	tok := v.ingestionToken()
	for range 2 {
		if resp, b := v.do("POST", v.ingestPath(), tok, []byte(`[{"a":1}]`)); resp.StatusCode != 204 {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
	}
	resp, b := v.do("POST", v.ingestPath(), tok, []byte(`[{"a":1}]`))
	var m map[string]any
	json.Unmarshal(b, &m)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "30" || resp.Header.Get("x-ms-error-code") != "TooManyRequests" {
		t.Fatalf("3rd upload: %d %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
	// The token endpoint limit (off by default) answers like Entra's throttling.
	ti := v.tenant(0)
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {ti.ClientID}, "client_secret": {ti.ClientSecret}, "scope": {"https://graph.microsoft.com/.default"}}
	for range 3 {
		if status, m := v.tokenResp(ti.TenantID, form); status != 200 {
			t.Fatalf("token: %d %v", status, m)
		}
	}
	status, tm := v.tokenResp(ti.TenantID, form)
	if status != 429 || tm["error"] != "temporarily_unavailable" || tm["error_codes"].([]any)[0] != float64(50196) {
		t.Fatalf("4th token: %d %v", status, tm)
	}
}

func TestLimits_AdminGetPutAndValidation(t *testing.T) {
	v := newEnv(t, Options{})
	status, m := v.admin("GET", "/limits", nil)
	wantStatus(t, status, 200, m)
	if m["graph_per_minute"] != float64(150) || m["arm_read_burst"] != float64(250) || m["sentinel_writes_per_5min"] != float64(75) ||
		m["ingestion_per_minute"] != float64(12000) {
		t.Fatalf("defaults %v", m)
	}
	status, m = v.admin("PUT", "/limits", map[string]any{"graph_per_minute": 1})
	wantStatus(t, status, 200, m)
	if m["graph_per_minute"] != float64(1) || m["arm_read_burst"] != float64(250) {
		t.Fatalf("partial update: %v", m)
	}
	tok := v.graphToken(0)
	v.do("GET", incidentsPath, tok, nil)
	if resp, _ := v.do("GET", incidentsPath, tok, nil); resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "60" {
		t.Fatalf("limit of 1/min: %d %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	for _, bad := range []any{map[string]any{"graph_per_minute": -1}, map[string]any{"nope": 1}, "x"} {
		status, m := v.admin("PUT", "/limits", bad)
		wantStatus(t, status, 400, m)
		if code, _ := errBody(t, m); code != "BadRequest" {
			t.Errorf("%v: %q", bad, code)
		}
	}
}
