package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/socsync/socsync/internal/hub/hubtest"
)

// socsync doctor against the emulator: exit 0 when every tenant passes, 1 when one has a
// problem (printed with its fix), 2 for a tenant the configuration does not name; --json for
// scripts; the secrets it reads never printed.
func TestDoctor_ExitCodesTextAndJSON(t *testing.T) {
	env := hubtest.New(t, hubtest.Options{Tenants: 2})
	cfg := env.ConfigPath()
	code, stdout, stderr := run(t, nil, "doctor", "--config", cfg)
	printed := stdout + stderr
	if code != 0 || !strings.Contains(stdout, "0 of 2 tenants have problems") || !strings.Contains(stdout, "ok   Defender XDR (Graph)") {
		t.Fatalf("doctor of a good setup: exit %d\n%s%s", code, stdout, stderr)
	}
	bad := env.Info.Tenants[1]
	if err := env.Emulator.SetConsent(bad.TenantID, "", false, nil); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ = run(t, nil, "doctor", "--config", cfg)
	printed += stdout
	if code != 1 || !strings.Contains(stdout, "FAIL Graph token: AADSTS7000229") || !strings.Contains(stdout, "fix: ") ||
		!strings.Contains(stdout, "1 of 2 tenants have problems") {
		t.Errorf("doctor with a revoked consent: exit %d\n%s", code, stdout)
	}
	code, stdout, _ = run(t, nil, "doctor", "--config", cfg, "--tenant", env.Info.Tenants[0].TenantID, "--json")
	printed += stdout
	var out struct {
		Tenants []struct {
			TenantID string `json:"tenant_id"`
			OK       bool   `json:"ok"`
			Findings []struct {
				Check, Status string
			} `json:"findings"`
		} `json:"tenants"`
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil || code != 0 || len(out.Tenants) != 1 || !out.Tenants[0].OK || len(out.Tenants[0].Findings) == 0 {
		t.Errorf("doctor --tenant --json: exit %d, %v\n%s", code, err, stdout)
	}
	if code, _, stderr := run(t, nil, "doctor", "--config", cfg, "--tenant", "00000000-0000-4000-8000-000000000000"); code != 2 || !strings.Contains(stderr, "not configured") {
		t.Errorf("doctor of an unknown tenant: exit %d, %q", code, stderr)
	}
	for _, ti := range env.Info.Tenants {
		if strings.Contains(printed, ti.ClientSecret) {
			t.Error("doctor printed a client secret")
		}
	}
}
