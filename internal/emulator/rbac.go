package emulator

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Azure RBAC on the emulated Sentinel workspaces: each app holds one of the built-in Sentinel
// roles on every workspace of a tenant (Contributor unless an admin call says otherwise). A
// Sentinel request the role does not allow gets ARM's 403 AuthorizationFailed, and
// Microsoft.Authorization/permissions reports the role's actions, as socsync doctor reads them.
//
// The action lists are the roles' documented shapes cut down to what the emulator serves
// [INFER]: Reader reads, Responder also updates incidents and writes comments but deletes
// nothing, Contributor may do everything.

// Sentinel roles an app can hold on a tenant's workspaces.
const (
	RoleSentinelContributor = "contributor"
	RoleSentinelResponder   = "responder"
	RoleSentinelReader      = "reader"
	RoleSentinelNone        = "none"
)

type roleDefinition struct {
	actions, notActions []string
}

var sentinelRoles = map[string]roleDefinition{
	RoleSentinelContributor: {actions: []string{"Microsoft.SecurityInsights/*", "Microsoft.OperationalInsights/workspaces/read",
		"Microsoft.OperationalInsights/workspaces/query/read", "Microsoft.Authorization/*/read"}},
	RoleSentinelResponder: {actions: []string{"Microsoft.SecurityInsights/*/read", "Microsoft.SecurityInsights/incidents/*",
		"Microsoft.SecurityInsights/cases/*", "Microsoft.OperationalInsights/workspaces/read",
		"Microsoft.OperationalInsights/workspaces/query/read", "Microsoft.Authorization/*/read"},
		notActions: []string{"Microsoft.SecurityInsights/incidents/delete", "Microsoft.SecurityInsights/incidents/*/delete",
			"Microsoft.SecurityInsights/cases/*/Delete"}},
	RoleSentinelReader: {actions: []string{"Microsoft.SecurityInsights/*/read", "Microsoft.OperationalInsights/workspaces/read",
		"Microsoft.OperationalInsights/workspaces/query/read", "Microsoft.Authorization/*/read"}},
	RoleSentinelNone: {},
}

// SetSentinelRole gives an app (clientID; "" means every app) a Sentinel role on every
// workspace of a tenant: contributor (the default), responder, reader or none.
func (e *Emulator) SetSentinelRole(tenantKey, clientID, role string) error {
	role = strings.ToLower(role)
	if _, ok := sentinelRoles[role]; !ok {
		return badf("role must be one of contributor, responder, reader, none; got %q", role)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	t, err := e.tenantByKey(tenantKey)
	if err != nil {
		return notFoundf("%v", err)
	}
	if t.sentinelRoles == nil {
		t.sentinelRoles = map[string]string{}
	}
	if clientID == "" {
		t.sentinelRoles[strings.ToLower(e.multi.ClientID)] = role
		if t.App != nil {
			t.sentinelRoles[strings.ToLower(t.App.ClientID)] = role
		}
		return nil
	}
	a := e.apps[strings.ToLower(clientID)]
	if a == nil || (!a.Multi && a.Home != t) {
		return notFoundf("app %q is not registered in tenant %s", clientID, t.ID)
	}
	t.sentinelRoles[strings.ToLower(a.ClientID)] = role
	return nil
}

// sentinelRole is the role of the calling app on the tenant's workspaces.
func (c *call) sentinelRole() roleDefinition {
	c.e.mu.Lock()
	role, ok := c.tenant.sentinelRoles[strings.ToLower(c.principal)]
	c.e.mu.Unlock()
	if !ok {
		role = RoleSentinelContributor
	}
	return sentinelRoles[role]
}

// allows reports whether the role grants action: an action pattern matches it and no
// not-action does (patterns with * wildcards, case-insensitive, as Azure RBAC has them).
func (r roleDefinition) allows(action string) bool {
	match := func(p string) bool { return wildcardMatch(strings.ToLower(p), strings.ToLower(action)) }
	return slices.ContainsFunc(r.actions, match) && !slices.ContainsFunc(r.notActions, match)
}

func wildcardMatch(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return strings.HasSuffix(s, parts[len(parts)-1])
}

// sentinelAction is the RBAC action of a Sentinel request.
func (c *call) sentinelAction() string {
	object := "incidents"
	if strings.Contains(c.route, "/comments") {
		object = "incidents/comments"
	}
	switch {
	case strings.HasSuffix(c.route, "/alerts"):
		return "Microsoft.SecurityInsights/incidents/alerts/read" // a list, though a POST
	case c.r.Method == http.MethodPut:
		return "Microsoft.SecurityInsights/" + object + "/write"
	case c.r.Method == http.MethodDelete:
		return "Microsoft.SecurityInsights/" + object + "/delete"
	}
	return "Microsoft.SecurityInsights/" + object + "/read"
}

// authorizeSentinel refuses, with ARM's 403, a request the caller's role on workspace w does
// not allow.
func (c *call) authorizeSentinel(w *workspace) bool {
	action := c.sentinelAction()
	if c.sentinelRole().allows(action) {
		return true
	}
	scope := fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.OperationalInsights/workspaces/%s/providers/Microsoft.SecurityInsights/incidents",
		w.Sub, w.RG, w.Name)
	if id := c.p["incidentId"]; id != "" {
		scope += "/" + id
	}
	c.armError(http.StatusForbidden, "AuthorizationFailed", fmt.Sprintf("The client '%s' with object id '%s' does not have authorization to perform action '%s' over scope '%s' or the scope is invalid. If access was recently granted, please refresh your credentials.",
		c.principal, c.principalOID(), action, scope))
	return false
}

// AuthorizationAPIVersions are the Microsoft.Authorization api-versions the permissions list
// accepts.
var AuthorizationAPIVersions = []string{"2022-04-01", "2018-07-01", "2015-07-01"}

// armPermissions serves GET …/workspaces/{ws}/providers/Microsoft.Authorization/permissions:
// what the caller may do on the workspace, one entry per role it holds there.
func (e *Emulator) armPermissions(c *call) {
	w := c.armWorkspace(AuthorizationAPIVersions, sentinelNone)
	if w == nil {
		return
	}
	value := []obj{}
	if r := c.sentinelRole(); len(r.actions) > 0 {
		value = append(value, obj{{"actions", r.actions}, {"notActions", orEmpty(r.notActions)},
			{"dataActions", []string{}}, {"notDataActions", []string{}}})
	}
	c.json(http.StatusOK, obj{{"value", value}})
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
