package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/socsync/socsync/internal/doctor"
	"github.com/socsync/socsync/internal/web"
)

// Run checks on the tenants page: an admin runs a tenant's checks (with the session's CSRF
// token) and sees each finding with its fix; nobody else may, another tenant's id is not
// found, and a form without the token is refused. (The doctor itself is tested against the
// emulator in internal/doctor; here it is the UI's.)
func TestTenants_AdminRunsChecksAndSeesFindingsWithFixes(t *testing.T) {
	var ran []string
	f := newFixture(t, func(d *web.Deps) {
		d.Doctor = func(_ context.Context, id string) (doctor.Report, error) {
			ran = append(ran, id)
			return doctor.Report{TenantID: id, TenantName: "Alpha", CheckedAt: time.Now(), Findings: []doctor.Finding{
				{Check: "Graph token", Status: doctor.OK, Detail: "Entra ID issued a token"},
				{Check: "Sentinel sub/rg/ws permissions", Status: doctor.Fail, Detail: "the app may not Microsoft.SecurityInsights/incidents/write",
					Fix: "assign the app the role Microsoft Sentinel Responder on the workspace"},
			}}, nil
		}
	})
	admin := f.login(t, "admin")
	page := admin.get("/tenants").body
	if !strings.Contains(page, `action="/tenants/`+tenantA+`/doctor"`) || !strings.Contains(page, "Run checks") {
		t.Fatal("the admin's tenants page offers no Run checks")
	}
	path := "/tenants/" + tenantA + "/doctor"
	if r := admin.post(path, url.Values{}); r.status != http.StatusForbidden {
		t.Errorf("Run checks without the CSRF token: %d", r.status)
	}
	r := admin.post(path, url.Values{"csrf": {admin.csrf()}})
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/tenants#tenant-"+tenantA {
		t.Fatalf("Run checks: %d %s", r.status, r.header.Get("Location"))
	}
	if len(ran) != 1 || ran[0] != tenantA {
		t.Fatalf("checks run for %v", ran)
	}
	page = admin.get("/tenants").body
	for _, s := range []string{"socsync doctor", "problems", "Sentinel sub/rg/ws permissions", "may not Microsoft.SecurityInsights/incidents/write",
		"Fix: assign the app the role Microsoft Sentinel Responder"} {
		if !strings.Contains(page, s) {
			t.Errorf("the tenants page lacks %q after the checks", s)
		}
	}
	if r := admin.post("/tenants/00000000-0000-4000-8000-000000000000/doctor", url.Values{"csrf": {admin.csrf()}}); r.status != http.StatusNotFound {
		t.Errorf("checks of an unknown tenant: %d", r.status)
	}

	analyst := f.login(t, "analyst-a")
	if strings.Contains(analyst.get("/tenants").body, "Run checks") {
		t.Error("an analyst is offered Run checks")
	}
	if r := analyst.post(path, url.Values{"csrf": {analyst.csrf()}}); r.status != http.StatusForbidden {
		t.Errorf("an analyst ran checks: %d", r.status)
	}
	if len(ran) != 1 {
		t.Errorf("checks run %d times, want once", len(ran))
	}
}
