package hubtest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/socsync/socsync/internal/store"
)

// Token creates an API token on the running hub and returns it.
func (r *Running) Token(t testing.TB, name, role string, tenants ...string) string {
	t.Helper()
	tok := "ssk_test_" + name
	if err := r.Hub.Store().CreateToken(context.Background(), &store.Token{Name: name, Role: role, Tenants: tenants}, tok); err != nil {
		t.Fatal(err)
	}
	return tok
}

// API calls the hub's REST API and decodes the JSON answer into into (if not nil).
func (r *Running) API(t testing.TB, token, method, path, body string, into any) int {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+r.Addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if into != nil && len(b) > 0 {
		if err := json.Unmarshal(b, into); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return resp.StatusCode
}

// Views returns the emulator's views of a remote incident (its "graph" and "sentinel" copies)
// as plain JSON maps.
func (e *Env) Views(t testing.TB, tenant, id string) map[string]map[string]any {
	t.Helper()
	v, err := e.Emulator.IncidentViews(tenant, id)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(v)
	var out map[string]json.RawMessage
	json.Unmarshal(b, &out)
	res := map[string]map[string]any{}
	for _, k := range []string{"graph", "sentinel"} {
		if raw, ok := out[k]; ok {
			var m map[string]any
			json.Unmarshal(raw, &m)
			res[k] = m
		}
	}
	return res
}

// Writes counts the write requests the emulator received (Graph PATCH and comment POST,
// Sentinel PUT of incidents and comments), by "api method route".
func (e *Env) Writes() map[string]int {
	out := map[string]int{}
	for _, r := range e.Emulator.Requests() {
		if r.Method == http.MethodGet || r.API == "token" || r.API == "ingestion" || strings.HasSuffix(r.Route, "/alerts") {
			continue
		}
		out[r.API+" "+r.Method+" "+r.Route] += r.Count
	}
	return out
}
