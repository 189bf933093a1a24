package emulator

import (
	"strings"
	"testing"
)

// Each Sentinel role allows what it should and refuses the rest with ARM's 403, and the
// permissions list reports the role's actions.
func TestSentinelRoles_AllowTheirActionsRefuseTheRestAndShowInPermissions(t *testing.T) {
	v := newEnv(t, Options{IncidentsPerTenant: -1})
	c, err := v.e.CreateIncident("1", NewIncident{Title: "x", Where: "sentinel"})
	if err != nil {
		t.Fatal(err)
	}
	tok := v.armToken(1)
	inc := v.wsPath(1, 0) + "/incidents/" + c.SentinelID
	perms := strings.TrimSuffix(v.wsPath(1, 0), "/providers/Microsoft.SecurityInsights") + "/providers/Microsoft.Authorization/permissions?api-version=2022-04-01"
	type op struct{ method, path string }
	read, comments := op{"GET", inc + apiV}, op{"GET", inc + "/comments" + apiV}
	alerts := op{"POST", inc + "/alerts" + apiV}
	comment := op{"PUT", inc + "/comments/c-1" + apiV}
	for _, tc := range []struct {
		role             string
		allowed, refused []op
		wantActions      bool
	}{
		{RoleSentinelContributor, []op{read, comments, alerts, comment}, nil, true},
		{RoleSentinelResponder, []op{read, comments, alerts, comment}, []op{{"DELETE", inc + "/comments/c-1" + apiV}}, true},
		{RoleSentinelReader, []op{read, comments, alerts}, []op{comment}, true},
		{RoleSentinelNone, nil, []op{read, comments, alerts, comment}, false},
	} {
		t.Run(tc.role, func(t *testing.T) {
			if err := v.e.SetSentinelRole("1", "", tc.role); err != nil {
				t.Fatal(err)
			}
			for _, o := range tc.allowed {
				var body any
				if o.method == "PUT" {
					body = sentinelBody(map[string]any{"message": "hello"})
				}
				if status, m := v.doJSON(o.method, o.path, tok, body); status >= 400 {
					t.Errorf("%s %s: %d %v, want it allowed", o.method, o.path, status, m)
				}
			}
			for _, o := range tc.refused {
				var body any
				if o.method == "PUT" {
					body = sentinelBody(map[string]any{"message": "hello"})
				}
				status, m := v.doJSON(o.method, o.path, tok, body)
				wantStatus(t, status, 403, m)
				if code, msg := errBody(t, m); code != "AuthorizationFailed" || !strings.Contains(msg, "does not have authorization to perform action 'Microsoft.SecurityInsights/") {
					t.Errorf("%s %s: %q %q", o.method, o.path, code, msg)
				}
			}
			status, m := v.doJSON("GET", perms, tok, nil)
			wantStatus(t, status, 200, m)
			value, _ := m["value"].([]any)
			if got := len(value) > 0; got != tc.wantActions {
				t.Fatalf("permissions: %v", m)
			}
			if tc.wantActions {
				p := value[0].(map[string]any)
				for _, k := range []string{"actions", "notActions", "dataActions", "notDataActions"} {
					if _, ok := p[k].([]any); !ok {
						t.Errorf("permissions entry lacks %s: %v", k, p)
					}
				}
			}
		})
	}
	if err := v.e.SetSentinelRole("1", "", "owner"); err == nil {
		t.Error("an unknown role was accepted")
	}
	// The admin API sets it too.
	status, m := v.doJSON("PUT", "/_emulator/tenants/1/sentinel-role", "", map[string]any{"role": "Reader"})
	wantStatus(t, status, 200, m)
	status, m = v.doJSON(comment.method, comment.path, tok, sentinelBody(map[string]any{"message": "hello"}))
	wantStatus(t, status, 403, m)
	status, m = v.doJSON("PUT", "/_emulator/tenants/1/sentinel-role", "", map[string]any{"role": "owner"})
	wantStatus(t, status, 400, m)
	status, m = v.doJSON("GET", strings.Replace(perms, "2022-04-01", "2099-01-01", 1), tok, nil)
	wantStatus(t, status, 400, m)
	if code, _ := errBody(t, m); code != "InvalidApiVersionParameter" {
		t.Errorf("permissions with an unknown api-version: %v", m)
	}
}

func TestWildcardMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"microsoft.securityinsights/*", "microsoft.securityinsights/incidents/write", true},
		{"microsoft.securityinsights/*/read", "microsoft.securityinsights/incidents/comments/read", true},
		{"microsoft.securityinsights/*/read", "microsoft.securityinsights/incidents/write", false},
		{"*", "anything", true},
		{"a/b", "a/b", true},
		{"a/b", "a/bc", false},
		{"a/*/c/*/e", "a/x/c/y/e", true},
		{"a/*/c/*/e", "a/x/y/e", false},
	} {
		if got := wildcardMatch(tc.pattern, tc.s); got != tc.want {
			t.Errorf("wildcardMatch(%q, %q) = %v", tc.pattern, tc.s, got)
		}
	}
}
