package sentinel_test

import (
	"context"
	"slices"
	"testing"

	"github.com/socsync/socsync/internal/emulator"
	"github.com/socsync/socsync/internal/sentinel"
)

// Permissions reads the caller's role on the workspace: a reader may read and not write, a
// responder may do both, an app without a role may do neither.
func TestPermissions_TellWhatTheRoleOnTheWorkspaceAllows(t *testing.T) {
	v := newEnv(t, emulator.Options{IncidentsPerTenant: -1})
	c := v.client(t, mirroredTenant, 0, nil, nil)
	key := v.tenant(mirroredTenant).TenantID
	for _, tc := range []struct {
		role            string
		missingReads    int
		missingWrites   int
		wantPermissions bool
	}{
		{emulator.RoleSentinelResponder, 0, 0, true},
		{emulator.RoleSentinelReader, 0, len(sentinel.WriteActions), true},
		{emulator.RoleSentinelNone, len(sentinel.ReadActions), len(sentinel.WriteActions), false},
	} {
		if err := v.e.SetSentinelRole(key, "", tc.role); err != nil {
			t.Fatal(err)
		}
		ps, err := c.Permissions(context.Background())
		if err != nil {
			t.Fatalf("%s: %v", tc.role, err)
		}
		if got := len(ps) > 0; got != tc.wantPermissions {
			t.Errorf("%s: permissions %v", tc.role, ps)
		}
		if got := ps.Missing(sentinel.ReadActions); len(got) != tc.missingReads {
			t.Errorf("%s: missing reads %v", tc.role, got)
		}
		if got := ps.Missing(sentinel.WriteActions); len(got) != tc.missingWrites {
			t.Errorf("%s: missing writes %v", tc.role, got)
		}
	}
}

func TestPermissionsAllows_WildcardsAndNotActions(t *testing.T) {
	ps := sentinel.Permissions{
		{Actions: []string{"Microsoft.SecurityInsights/*/read"}},
		{Actions: []string{"microsoft.securityinsights/incidents/*"}, NotActions: []string{"Microsoft.SecurityInsights/incidents/*/delete"}},
	}
	for action, want := range map[string]bool{
		"Microsoft.SecurityInsights/incidents/read":            true,
		"Microsoft.SecurityInsights/incidents/write":           true,
		"MICROSOFT.SECURITYINSIGHTS/INCIDENTS/COMMENTS/WRITE":  true,
		"Microsoft.SecurityInsights/incidents/comments/delete": false,
		"Microsoft.SecurityInsights/watchlists/write":          false,
		"Microsoft.SecurityInsights.Other/incidents/read":      false,
	} {
		if got := ps.Allows(action); got != want {
			t.Errorf("Allows(%q) = %v, want %v", action, got, want)
		}
	}
	if got := ps.Missing(slices.Concat(sentinel.ReadActions, sentinel.WriteActions)); len(got) != 0 {
		t.Errorf("missing %v", got)
	}
}
