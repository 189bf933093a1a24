package httpapi

import (
	"net/http"
	"strings"
	"testing"

	"github.com/socsync/socsync/internal/store"
)

// headerSource is a principal source keyed by a request header, standing in for the UI's
// session cookie.
type headerSource struct{}

func (headerSource) Principal(r *http.Request) (Principal, bool, error) {
	switch r.Header.Get("X-Test-Principal") {
	case "":
		return Principal{}, false, nil
	case "analyst-a":
		if r.Method != http.MethodGet && r.Header.Get("X-CSRF-Token") != "ok" {
			return Principal{}, false, &AuthError{Status: http.StatusForbidden, Code: "csrf", Message: "no CSRF token"}
		}
		return Principal{Name: "ana", Role: RoleAnalyst, Scope: store.Tenants(tenantA)}, true, nil
	}
	return Principal{}, false, &AuthError{Status: http.StatusUnauthorized, Code: "unauthenticated", Message: "session ended"}
}

func TestPrincipalSource_AuthenticatesRequestsWithoutAnAPITokenWithTheirScope(t *testing.T) {
	f := newFixture(t)
	f.srv.Config.Handler.(*Server).sources = []PrincipalSource{headerSource{}}
	do := func(method, path, principal, csrf, body string) int {
		req, _ := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if principal != "" {
			req.Header.Set("X-Test-Principal", principal)
		}
		if csrf != "" {
			req.Header.Set("X-CSRF-Token", csrf)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	a, b := f.ids[tenantA][0], f.ids[tenantB][0]
	for _, tc := range []struct {
		method, path, principal, csrf, body string
		want                                int
	}{
		{"GET", "/api/v1/incidents/" + a, "analyst-a", "", "", 200},
		{"GET", "/api/v1/incidents/" + b, "analyst-a", "", "", 404},
		{"PATCH", "/api/v1/incidents/" + a, "analyst-a", "", `{"severity":"low"}`, 403},
		{"PATCH", "/api/v1/incidents/" + a, "analyst-a", "ok", `{"severity":"low"}`, 200},
		{"GET", "/api/v1/incidents", "expired", "", "", 401},
		{"GET", "/api/v1/incidents", "", "", "", 401},
	} {
		if got := do(tc.method, tc.path, tc.principal, tc.csrf, tc.body); got != tc.want {
			t.Errorf("%s %s as %q: %d, want %d", tc.method, tc.path, tc.principal, got, tc.want)
		}
	}
	history, _ := f.store.History(t.Context(), tenantA, a)
	if len(history) != 1 || history[0].Actor != "ana" {
		t.Errorf("history %+v: want one edit by the source's principal", history)
	}
}
