package emulator

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testBase is the injected clock's start in tests.
var testBase = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// samplesDir holds the reference payloads (the repository's shared/ lies beside main/).
const samplesDir = "../../../shared/reference/api-samples"

// testEnv is an emulator behind an httptest TLS server.
type testEnv struct {
	t    *testing.T
	e    *Emulator
	srv  *httptest.Server
	c    *http.Client
	info Info
}

func newEnv(t *testing.T, opts Options) *testEnv {
	t.Helper()
	if opts.Now == nil {
		opts.Now = func() time.Time { return testBase }
	}
	if opts.Seed == 0 {
		opts.Seed = 42
	}
	e, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(e.Handler())
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(func() {
		e.Close()
		srv.Close()
	})
	return &testEnv{t: t, e: e, srv: srv, c: srv.Client(), info: e.Info(srv.URL, "")}
}

// tenant returns the info of sample tenant i.
func (v *testEnv) tenant(i int) TenantInfo { return v.info.Tenants[i] }

// tokenResp posts a token request with the given form.
func (v *testEnv) tokenResp(tenantID string, form url.Values) (int, map[string]any) {
	v.t.Helper()
	resp, err := v.c.PostForm(v.srv.URL+"/"+tenantID+"/oauth2/v2.0/token", form)
	if err != nil {
		v.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &m); err != nil {
		v.t.Fatalf("token response %d is not JSON: %s", resp.StatusCode, body)
	}
	return resp.StatusCode, m
}

// token gets an access token for tenant i's app and the resource of scope.
func (v *testEnv) token(i int, scope string) string {
	v.t.Helper()
	ti := v.tenant(i)
	status, m := v.tokenResp(ti.TenantID, url.Values{"grant_type": {"client_credentials"}, "client_id": {ti.ClientID},
		"client_secret": {ti.ClientSecret}, "scope": {scope}})
	if status != 200 {
		v.t.Fatalf("token: %d %v", status, m)
	}
	return m["access_token"].(string)
}

func (v *testEnv) graphToken(i int) string { return v.token(i, "https://graph.microsoft.com/.default") }
func (v *testEnv) armToken(i int) string   { return v.token(i, "https://management.azure.com/.default") }

// do sends a request; body may be nil, []byte, string or a value to encode as JSON.
func (v *testEnv) do(method, path, token string, body any, headers ...string) (*http.Response, []byte) {
	v.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			v.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	u := path
	if !strings.HasPrefix(path, "https://") {
		u = v.srv.URL + path
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		v.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := v.c.Do(req)
	if err != nil {
		v.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		v.t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return resp, b
}

// doJSON sends a request and decodes a JSON object answer.
func (v *testEnv) doJSON(method, path, token string, body any, headers ...string) (int, map[string]any) {
	v.t.Helper()
	resp, b := v.do(method, path, token, body, headers...)
	if len(b) == 0 {
		return resp.StatusCode, nil
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		v.t.Fatalf("%s %s: %d body is not a JSON object: %s", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode, m
}

// admin calls the admin API and decodes the answer.
func (v *testEnv) admin(method, path string, body any) (int, map[string]any) {
	v.t.Helper()
	return v.doJSON(method, "/_emulator"+path, "", body)
}

// wsPath is the ARM path of tenant i's workspace w.
func (v *testEnv) wsPath(i, w int) string {
	ws := v.tenant(i).Sentinel[w]
	return "/subscriptions/" + ws.SubscriptionID + "/resourceGroups/" + ws.ResourceGroup +
		"/providers/Microsoft.OperationalInsights/workspaces/" + ws.Workspace + "/providers/Microsoft.SecurityInsights"
}

// errBody returns error.code and error.message of a Graph/ARM/ingestion error body.
func errBody(t *testing.T, m map[string]any) (code, msg string) {
	t.Helper()
	e, ok := m["error"].(map[string]any)
	if !ok {
		t.Fatalf("no error object in %v", m)
	}
	code, _ = e["code"].(string)
	msg, _ = e["message"].(string)
	return code, msg
}

func wantStatus(t *testing.T, got, want int, body any) {
	t.Helper()
	if got != want {
		t.Fatalf("status %d, want %d; body %v", got, want, body)
	}
}

// loadSample reads a reference sample; a missing file fails the test.
func loadSample(t *testing.T, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(samplesDir, name))
	if err != nil {
		t.Fatalf("reference sample missing (the tests need ../shared beside the repository): %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("sample %s: %v", name, err)
	}
	return m
}

// jsonKind names the JSON type of a decoded value.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "?"
}

// compareShape checks that got has every key of want with the same JSON type (null in either
// counts as compatible with any type, since samples and our data differ in which optional
// values are set), and, when exact, no other keys.
func compareShape(t *testing.T, what string, want, got map[string]any, exact bool) {
	t.Helper()
	for k, wv := range want {
		gv, ok := got[k]
		if !ok {
			t.Errorf("%s: missing key %q", what, k)
			continue
		}
		wk, gk := jsonKind(wv), jsonKind(gv)
		if wk != gk && wk != "null" && gk != "null" {
			t.Errorf("%s: key %q is %s, sample has %s", what, k, gk, wk)
		}
	}
	if exact {
		for k := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("%s: extra key %q not in the sample", what, k)
			}
		}
	}
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

func jsonUnmarshal(b []byte, v any) { _ = json.Unmarshal(b, v) }

// foreignToken is a token with valid claims for ti but signed by another emulator's key.
func foreignToken(t *testing.T, ti TenantInfo) string {
	t.Helper()
	other, err := New(Options{Seed: 7, Now: func() time.Time { return testBase }, IncidentsPerTenant: -1})
	if err != nil {
		t.Fatal(err)
	}
	return other.signToken(claims{Aud: audGraph, Tid: ti.TenantID, AppID: ti.ClientID, Exp: testBase.Add(time.Hour).Unix(),
		Roles: allRoles})
}
