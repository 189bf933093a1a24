package doctor_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/socsync/socsync/internal/config"
	"github.com/socsync/socsync/internal/doctor"
	"github.com/socsync/socsync/internal/emulator"
	"github.com/socsync/socsync/internal/hub"
	"github.com/socsync/socsync/internal/hub/hubtest"
)

// find returns the findings whose check starts with prefix.
func find(r doctor.Report, prefix string) []doctor.Finding {
	var out []doctor.Finding
	for _, f := range r.Findings {
		if strings.HasPrefix(f.Check, prefix) {
			out = append(out, f)
		}
	}
	return out
}

// The doctor, over HTTPS against the emulator, with the clients polling uses: a tenant set up
// right passes every check; each way of setting one up wrong is a failed check that says what
// is wrong and what to do, and the others are unaffected.
func TestDoctor_FindsEachSetupProblemAndSaysHowToFixIt(t *testing.T) {
	env := hubtest.New(t, hubtest.Options{Tenants: 6})
	em := env.Emulator
	ti := env.Info.Tenants
	// The emulator's tenants: 0 and 3 Defender only, 1 and 4 with a workspace, 2 and 5 with two.
	// 0 and 1 are set up right. 2: consent revoked. 3: another tenant's app, not registered
	// there. 4: Graph read-only and Sentinel Reader. 5: no role on the workspaces. 6: a secret
	// that cannot be read.
	if err := em.SetConsent(ti[2].TenantID, "", false, nil); err != nil {
		t.Fatal(err)
	}
	if err := em.SetConsent(ti[4].TenantID, "", true, []string{"SecurityIncident.Read.All"}); err != nil {
		t.Fatal(err)
	}
	if err := em.SetSentinelRole(ti[4].TenantID, "", emulator.RoleSentinelReader); err != nil {
		t.Fatal(err)
	}
	if err := em.SetSentinelRole(ti[5].TenantID, "", emulator.RoleSentinelNone); err != nil {
		t.Fatal(err)
	}
	cfg := *env.Config
	cfg.Tenants = append([]config.Tenant(nil), cfg.Tenants...)
	cfg.Tenants[3].Credential = cfg.Tenants[0].Credential
	badSecret := cfg.Tenants[0]
	badSecret.ID, badSecret.Name = "99999999-9999-4999-8999-999999999999", "Unreadable secret"
	badSecret.Credential.ClientSecret = "env:SOCSYNC_DOCTOR_TEST_UNSET"
	cfg.Tenants = append(cfg.Tenants, badSecret)

	reports, err := hub.Doctor(context.Background(), &cfg, hub.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(reports) != len(cfg.Tenants) {
		t.Fatalf("%d reports for %d tenants", len(reports), len(cfg.Tenants))
	}
	byTenant := map[int]doctor.Report{}
	for i, r := range reports {
		if r.TenantID != cfg.Tenants[i].ID {
			t.Fatalf("report %d is of tenant %s, want %s (the configuration's order)", i, r.TenantID, cfg.Tenants[i].ID)
		}
		byTenant[i] = r
		t.Logf("%s: ok %v", r.TenantName, r.OK)
		for _, f := range r.Findings {
			t.Logf("  %s %s: %s | %s", f.Status, f.Check, f.Detail, f.Fix)
		}
	}

	for _, i := range []int{0, 1} {
		r := byTenant[i]
		if !r.OK {
			t.Errorf("tenant %d, set up right, did not pass", i)
		}
		for _, f := range r.Findings {
			if f.Status != doctor.OK {
				t.Errorf("tenant %d: %s is %s: %s", i, f.Check, f.Status, f.Detail)
			}
		}
	}
	if n := len(byTenant[1].Findings); n != 7 { // credential, 2 tokens, Graph roles, Graph, Sentinel, its permissions
		t.Errorf("tenant 1 had %d checks, want 7", n)
	}

	type want struct {
		tenant                int
		check, detail, fixHas string
	}
	for _, w := range []want{
		{2, "Graph token", "AADSTS7000229", "/adminconsent?"},
		{3, "Graph token", "AADSTS700016", "tenants[3].credential"},
		{4, "Graph permissions", "SecurityIncident.Read.All only", "SecurityIncident.ReadWrite.All"},
		{4, "Sentinel ", "may not Microsoft.SecurityInsights/incidents/write", "Microsoft Sentinel Responder"},
		{5, "Sentinel ", "AuthorizationFailed", "Microsoft Sentinel Responder"},
		{6, "credential", "SOCSYNC_DOCTOR_TEST_UNSET", "tenants[6].credential"},
	} {
		r := byTenant[w.tenant]
		if r.OK {
			t.Errorf("tenant %d passed; want %s to fail", w.tenant, w.check)
		}
		fs := find(r, w.check)
		found := false
		for _, f := range fs {
			if f.Status == doctor.Fail && strings.Contains(f.Detail, w.detail) && strings.Contains(f.Fix, w.fixHas) {
				found = true
			}
		}
		if !found {
			t.Errorf("tenant %d: no failed %q check saying %q with a fix naming %q; got %+v", w.tenant, w.check, w.detail, w.fixHas, fs)
		}
	}
	// Both of tenant 5's workspaces refuse it; a missing credential stops every other check.
	if n := len(find(byTenant[5], "Sentinel ")); n != 2 {
		t.Errorf("tenant 5: %d Sentinel findings, want one per workspace", n)
	}
	if n := len(byTenant[6].Findings); n != 1 {
		t.Errorf("tenant 6 (no credential): %d findings, want only the credential's", n)
	}

	// Secrets stay out of the reports.
	b, _ := json.Marshal(reports)
	for _, x := range ti {
		if strings.Contains(string(b), x.ClientSecret) {
			t.Errorf("a report holds tenant %s's client secret", x.TenantID)
		}
	}
	if strings.Contains(string(b), "eyJ") {
		t.Error("a report holds a token")
	}
}

// A workspace that does not exist is a failed check naming the configuration key to correct.
func TestDoctor_MissingWorkspaceNamesItsConfigurationKey(t *testing.T) {
	env := hubtest.New(t, hubtest.Options{Tenants: 2})
	cfg := *env.Config
	cfg.Tenants = append([]config.Tenant(nil), cfg.Tenants...)
	tn := cfg.Tenants[1]
	tn.Sentinel = append([]config.Workspace(nil), tn.Sentinel...)
	tn.Sentinel[0].Workspace = "law-missing"
	cfg.Tenants[1] = tn
	reports, err := hub.Doctor(context.Background(), &cfg, hub.Options{}, []string{tn.ID})
	if err != nil {
		t.Fatal(err)
	}
	fs := find(reports[0], "Sentinel ")
	if len(fs) != 1 || fs[0].Status != doctor.Fail || !strings.Contains(fs[0].Detail, "404") || !strings.Contains(fs[0].Fix, "tenants[1].sentinel[0]") {
		t.Errorf("missing workspace: %+v", fs)
	}
	if _, err := hub.Doctor(context.Background(), &cfg, hub.Options{}, []string{"00000000-0000-4000-8000-000000000000"}); err == nil {
		t.Error("a tenant the configuration does not name was checked")
	}
}
