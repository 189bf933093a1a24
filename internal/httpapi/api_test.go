package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/socsync/socsync/internal/incident"
	"github.com/socsync/socsync/internal/store"
)

const (
	tenantA = "aaaaaaaa-0000-0000-0000-00000000000a"
	tenantB = "bbbbbbbb-0000-0000-0000-00000000000b"
)

type fixture struct {
	srv   *httptest.Server
	store *store.Store
	ids   map[string][]string // tenant → incident ids, oldest first
}

// newFixture serves the API over a real store holding 3 incidents of tenant A and 2 of B,
// with tokens "admin", "analyst-a" (tenant A) and "viewer-b" (tenant B).
func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	now := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { now = now.Add(time.Second); return now }
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "api.db"), store.Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	err = st.SyncTenants(ctx, []store.Tenant{{ID: tenantA, Name: "Alpha"}, {ID: tenantB, Name: "Beta"}},
		[]store.Source{{TenantID: tenantA, Kind: store.KindDefender}, {TenantID: tenantB, Kind: store.KindDefender}})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: st, ids: map[string][]string{}}
	for i, tenant := range []string{tenantA, tenantA, tenantA, tenantB, tenantB} {
		err := st.InTx(ctx, func(tx *store.Tx) error {
			inc := &incident.Incident{TenantID: tenant, Title: fmt.Sprintf("canary-%s-%d", tenant[:4], i),
				Fields:  incident.Fields{Status: incident.StatusNew, Severity: incident.SeverityHigh},
				Sources: []incident.Source{incident.SourceDefender}}
			if i == 1 {
				inc.Severity = incident.SeverityLow
			}
			if _, err := tx.CreateIncident(ctx, inc, fmt.Sprintf("graph:%d", i), store.Change{}); err != nil {
				return err
			}
			f.ids[tenant] = append(f.ids[tenant], inc.ID)
			_, err := tx.UpsertLink(ctx, &store.Link{TenantID: tenant, IncidentID: inc.ID, SourceID: store.SourceID(tenant, store.KindDefender, ""),
				Kind: store.LinkGraph, ExternalID: fmt.Sprint(i), URL: "https://security.microsoft.com/incidents/" + fmt.Sprint(i)})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for name, tok := range map[string]store.Token{
		"admin":     {Name: "admin", Role: RoleAdmin},
		"analyst-a": {Name: "analyst-a", Role: RoleAnalyst, Tenants: []string{tenantA}},
		"viewer-b":  {Name: "viewer-b", Role: RoleViewer, Tenants: []string{tenantB}},
	} {
		if err := st.CreateToken(ctx, &tok, "tok-"+name); err != nil {
			t.Fatal(err)
		}
	}
	api := New(Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Store: st, Metrics: prometheus.NewRegistry()})
	f.srv = httptest.NewServer(api)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) get(t *testing.T, token, path string, into any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer tok-"+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if into != nil {
		if err := json.Unmarshal(body, into); err != nil {
			t.Fatalf("GET %s: %v in %s", path, err, body)
		}
	}
	return resp.StatusCode
}

type listResp struct {
	Items      []incidentJSON `json:"items"`
	NextCursor string         `json:"next_cursor"`
}

func TestAPI_RequiresAValidToken(t *testing.T) {
	f := newFixture(t)
	var e apiError
	if code := f.get(t, "", "/api/v1/incidents", &e); code != 401 || e.Error.Code != "unauthenticated" {
		t.Errorf("no token: %d %+v", code, e)
	}
	if code := f.get(t, "nope", "/api/v1/tenants", &e); code != 401 {
		t.Errorf("bad token: %d", code)
	}
}

func TestAPI_ListIsScopedFilteredAndPaged(t *testing.T) {
	f := newFixture(t)
	var all listResp
	if code := f.get(t, "admin", "/api/v1/incidents", &all); code != 200 || len(all.Items) != 5 {
		t.Fatalf("admin list: %d, %d items", code, len(all.Items))
	}
	if all.Items[0].ID != f.ids[tenantB][1] || all.Items[0].TenantName != "Beta" {
		t.Errorf("first item %+v, want the newest (B's second)", all.Items[0])
	}
	var a listResp
	f.get(t, "analyst-a", "/api/v1/incidents", &a)
	if len(a.Items) != 3 {
		t.Fatalf("analyst of A sees %d incidents, want 3", len(a.Items))
	}
	for _, it := range a.Items {
		if it.TenantID != tenantA || strings.Contains(it.Title, "bbbb") {
			t.Errorf("analyst of A sees %+v", it)
		}
	}
	// Asking for another tenant by filter shows nothing, not B's incidents.
	var leak listResp
	f.get(t, "analyst-a", "/api/v1/incidents?tenant="+tenantB, &leak)
	if len(leak.Items) != 0 {
		t.Errorf("tenant filter crossed the scope: %d items", len(leak.Items))
	}
	var low listResp
	f.get(t, "admin", "/api/v1/incidents?severity=low", &low)
	if len(low.Items) != 1 || low.Items[0].Severity != "low" {
		t.Errorf("severity filter: %+v", low.Items)
	}
	// Paging: 2 per page covers all 5 once, in order.
	var seen []string
	cursor := ""
	for range 5 {
		var page listResp
		f.get(t, "admin", "/api/v1/incidents?limit=2&cursor="+cursor, &page)
		for _, it := range page.Items {
			seen = append(seen, it.ID)
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	if len(seen) != 5 || seen[4] != f.ids[tenantA][0] {
		t.Errorf("paged ids %v", seen)
	}
	var e apiError
	for _, q := range []string{"limit=0", "limit=9999", "status=open", "severity=critical", "source=splunk", "cursor=bm9wZQ"} {
		if code := f.get(t, "admin", "/api/v1/incidents?"+q, &e); code != 400 || e.Error.Field == "" {
			t.Errorf("%s: %d %+v; want 400 naming the field", q, code, e)
		}
	}
}

func TestAPI_AnotherTenantsIncidentIsNotFoundLikeAMissingOne(t *testing.T) {
	f := newFixture(t)
	var d detailJSON
	if code := f.get(t, "analyst-a", "/api/v1/incidents/"+f.ids[tenantA][0], &d); code != 200 {
		t.Fatalf("own incident: %d", code)
	}
	if len(d.Links) != 1 || d.Links[0].Kind != "graph" || d.Links[0].URL == "" || d.TenantName != "Alpha" {
		t.Errorf("detail = %+v", d)
	}
	var other, missing apiError
	codeOther := f.get(t, "analyst-a", "/api/v1/incidents/"+f.ids[tenantB][0], &other)
	codeMissing := f.get(t, "analyst-a", "/api/v1/incidents/00000000-0000-0000-0000-000000000000", &missing)
	if codeOther != 404 || codeMissing != 404 || other != missing {
		t.Errorf("other tenant's: %d %+v; missing: %d %+v; want identical 404s", codeOther, other, codeMissing, missing)
	}
}

func TestAPI_TenantsShowOnlyThePrincipalsTenantsWithSourceHealth(t *testing.T) {
	f := newFixture(t)
	var out struct {
		Tenants []tenantJSON `json:"tenants"`
	}
	if code := f.get(t, "viewer-b", "/api/v1/tenants", &out); code != 200 {
		t.Fatal(code)
	}
	if len(out.Tenants) != 1 || out.Tenants[0].ID != tenantB || len(out.Tenants[0].Sources) != 1 {
		t.Fatalf("tenants = %+v", out.Tenants)
	}
	if s := out.Tenants[0].Sources[0]; s.Kind != "defender" || s.Health != "never polled" {
		t.Errorf("source = %+v", s)
	}
}

func TestAPI_ListFindsTheIncidentOfARemoteIDWithinScope(t *testing.T) {
	f := newFixture(t)
	var got listResp
	f.get(t, "admin", "/api/v1/incidents?remote_id=3", &got)
	if len(got.Items) != 1 || got.Items[0].ID != f.ids[tenantB][0] {
		t.Errorf("remote_id=3: %+v, want B's first incident", got.Items)
	}
	f.get(t, "analyst-a", "/api/v1/incidents?remote_id=3", &got)
	if len(got.Items) != 0 {
		t.Errorf("remote_id crossed the scope: %+v", got.Items)
	}
}
