package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/socsync/socsync/internal/store"
)

func (f *fixture) send(t *testing.T, method, token, path, body string, into any) int {
	t.Helper()
	req, _ := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer tok-"+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if into != nil {
		if err := json.Unmarshal(b, into); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	return resp.StatusCode
}

type recordQueue struct {
	mu   sync.Mutex
	keys []store.IncidentKey
}

func (q *recordQueue) Enqueue(k store.IncidentKey) {
	q.mu.Lock()
	q.keys = append(q.keys, k)
	q.mu.Unlock()
}

func TestPatch_ChangesTheHubAuditsAndQueues(t *testing.T) {
	f := newFixture(t)
	q := &recordQueue{}
	f.srv.Config.Handler.(*Server).queue = q
	id := f.ids[tenantA][0]
	var d detailJSON
	code := f.send(t, http.MethodPatch, "analyst-a", "/api/v1/incidents/"+id,
		`{"status":"resolved","classification":"true_positive","determination":"malware","owner":"Ana@Contoso.com","tags":["b","A"]}`, &d)
	if code != 200 {
		t.Fatalf("PATCH = %d %+v", code, d)
	}
	if d.Status != "resolved" || d.Classification != "true_positive" || d.Determination != "malware" || d.Owner != "ana@contoso.com" || d.SyncState != "pending" || d.Version != 2 {
		t.Errorf("after PATCH: %+v", d.incidentJSON)
	}
	edits := 0
	for _, h := range d.History {
		if h.Action == "edit" && h.Actor == "token:analyst-a" {
			edits++
		}
	}
	if edits != 5 {
		t.Errorf("audit has %d edits, want 5 (one per field): %+v", edits, d.History)
	}
	if len(q.keys) != 1 || q.keys[0].ID != id {
		t.Errorf("queued %v", q.keys)
	}
	// The same patch again changes nothing: no new version.
	f.send(t, http.MethodPatch, "analyst-a", "/api/v1/incidents/"+id, `{"status":"resolved","tags":["a","B"]}`, &d)
	if d.Version != 2 {
		t.Errorf("a no-op patch made version %d", d.Version)
	}
}

func TestPatch_RejectsBadInputNamingTheField(t *testing.T) {
	f := newFixture(t)
	id := f.ids[tenantA][0]
	tests := []struct {
		body, field string
		status      int
	}{
		{`{"status":"closed"}`, "status", 400},
		{`{"status":"merged"}`, "status", 400},
		{`{"status":"resolved"}`, "classification", 400},
		{`{"classification":"false_positive","determination":"malware"}`, "determination", 400},
		{`{"classification":"true_positive","classification_reason":"inaccurate_data"}`, "classification_reason", 400},
		{`{"severity":"critical"}`, "severity", 400},
		{`{"owner":"not a upn"}`, "owner", 400},
		{`{"tags":[""]}`, "tags", 400},
		{`{"severity":3}`, "severity", 400},
		{`{"colour":"red"}`, "colour", 400},
		{`{"status":`, "", 400},
		{``, "", 400},
		{`{"classification_comment":"` + strings.Repeat("x", 30001) + `"}`, "classification_comment", 400},
	}
	for _, tt := range tests {
		var e apiError
		code := f.send(t, http.MethodPatch, "admin", "/api/v1/incidents/"+id, tt.body, &e)
		if code != tt.status || e.Error.Field != tt.field {
			t.Errorf("%.60s: %d %+v; want %d naming %q", tt.body, code, e, tt.status, tt.field)
		}
	}
	big := `{"classification_comment":"` + strings.Repeat("x", maxRequestBody) + `"}`
	if code := f.send(t, http.MethodPatch, "admin", "/api/v1/incidents/"+id, big, nil); code != 413 {
		t.Errorf("oversized body: %d, want 413", code)
	}
}

func TestWrites_RespectRolesAndTenants(t *testing.T) {
	f := newFixture(t)
	a, b := f.ids[tenantA][0], f.ids[tenantB][0]
	var e apiError
	if code := f.send(t, http.MethodPatch, "viewer-b", "/api/v1/incidents/"+b, `{"severity":"low"}`, &e); code != 403 {
		t.Errorf("viewer PATCH: %d", code)
	}
	if code := f.send(t, http.MethodPost, "viewer-b", "/api/v1/incidents/"+b+"/comments", `{"text":"x"}`, &e); code != 403 {
		t.Errorf("viewer comment: %d", code)
	}
	// An analyst of A probing B's incident by id gets a 404, and nothing changes.
	if code := f.send(t, http.MethodPatch, "analyst-a", "/api/v1/incidents/"+b, `{"severity":"low"}`, &e); code != 404 {
		t.Errorf("cross-tenant PATCH: %d", code)
	}
	if code := f.send(t, http.MethodPost, "analyst-a", "/api/v1/incidents/"+b+"/comments", `{"text":"x"}`, &e); code != 404 {
		t.Errorf("cross-tenant comment: %d", code)
	}
	si, _ := f.store.Incident(context.Background(), tenantB, b)
	if si.Severity != "high" || si.Version != 1 {
		t.Errorf("B's incident changed: %+v", si.Incident)
	}
	if code := f.send(t, http.MethodPatch, "", "/api/v1/incidents/"+a, `{"severity":"low"}`, &e); code != 401 {
		t.Errorf("unauthenticated PATCH: %d", code)
	}
}

func TestComment_IsStoredOnceWithItsAuthorAndBumpsTheVersion(t *testing.T) {
	f := newFixture(t)
	id := f.ids[tenantA][1]
	var d detailJSON
	if code := f.send(t, http.MethodPost, "analyst-a", "/api/v1/incidents/"+id+"/comments", `{"text":"Isolated the host."}`, &d); code != 201 {
		t.Fatalf("comment: %d", code)
	}
	if len(d.Comments) != 1 || d.Comments[0].Author != "token:analyst-a" || d.Comments[0].Origin != "hub" || d.Version != 2 || d.SyncState != "pending" {
		t.Errorf("after comment: %+v / %+v", d.Comments, d.incidentJSON)
	}
	var e apiError
	for _, body := range []string{`{}`, `{"text":"  "}`, `{"text":"` + strings.Repeat("é", 30001) + `"}`} {
		if code := f.send(t, http.MethodPost, "analyst-a", "/api/v1/incidents/"+id+"/comments", body, &e); code != 400 || e.Error.Field != "text" {
			t.Errorf("%.30s: %d %+v", body, code, e)
		}
	}
}
