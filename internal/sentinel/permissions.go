package sentinel

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// AuthorizationAPIVersion is the Microsoft.Authorization api-version Permissions asks with.
const AuthorizationAPIVersion = "2022-04-01"

// The Azure RBAC actions socsync's Sentinel calls need (Microsoft Sentinel Reader has the
// reads; Microsoft Sentinel Responder, or Contributor, the writes too).
var (
	ReadActions  = []string{"Microsoft.SecurityInsights/incidents/read", "Microsoft.SecurityInsights/incidents/comments/read"}
	WriteActions = []string{"Microsoft.SecurityInsights/incidents/write", "Microsoft.SecurityInsights/incidents/comments/write"}
)

// maxPermissionPages bounds the pages of one permissions list.
const maxPermissionPages = 20

// Permissions are what the caller may do on a workspace, as Azure RBAC reports them: one entry
// per role the caller holds there.
type Permissions []Permission

// Permission is one role's actions and the actions it excepts, with * as a wildcard.
type Permission struct {
	Actions    []string `json:"actions"`
	NotActions []string `json:"notActions"`
}

// Allows reports whether some role allows action: one of its actions matches it and none of
// its not-actions does (case-insensitively, as RBAC compares them).
func (ps Permissions) Allows(action string) bool {
	return slices.ContainsFunc(ps, func(p Permission) bool {
		return slices.ContainsFunc(p.Actions, actionMatches(action)) && !slices.ContainsFunc(p.NotActions, actionMatches(action))
	})
}

// Missing returns the actions of want that the permissions do not allow.
func (ps Permissions) Missing(want []string) []string {
	var out []string
	for _, a := range want {
		if !ps.Allows(a) {
			out = append(out, a)
		}
	}
	return out
}

func actionMatches(action string) func(pattern string) bool {
	return func(pattern string) bool {
		re, err := regexp.Compile("(?i)^" + strings.ReplaceAll(regexp.QuoteMeta(pattern), `\*`, ".*") + "$")
		return err == nil && re.MatchString(action)
	}
}

// Permissions lists the caller's permissions on the workspace
// (Microsoft.Authorization/permissions), under the ARM read budget.
func (c *Client) Permissions(ctx context.Context) (Permissions, error) {
	path := c.workspacePath + "/providers/Microsoft.Authorization/permissions"
	u := c.base.Scheme + "://" + c.base.Host + path + "?api-version=" + url.QueryEscape(AuthorizationAPIVersion)
	var out Permissions
	for range maxPermissionPages {
		body, err := c.send(ctx, c.readKey(), http.MethodGet, u, nil)
		if err != nil {
			return nil, fmt.Errorf("sentinel: permissions on workspace %s: %w", c.ws.Workspace, err)
		}
		var page struct {
			Value    Permissions `json:"value"`
			NextLink string      `json:"nextLink"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return nil, fmt.Errorf("sentinel: permissions on workspace %s: %w: %v", c.ws.Workspace, ErrMalformed, err)
		}
		out = append(out, page.Value...)
		if page.NextLink == "" {
			return out, nil
		}
		if u, err = followable(c.base, path, page.NextLink); err != nil {
			return nil, fmt.Errorf("sentinel: permissions on workspace %s: %w", c.ws.Workspace, err)
		}
	}
	return nil, fmt.Errorf("sentinel: permissions on workspace %s: %w: more than %d pages", c.ws.Workspace, ErrMalformed, maxPermissionPages)
}
