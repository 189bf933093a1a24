// Package doctor checks a tenant's setup from end to end, calling out as polling would: that
// its credential can be built, that Entra ID issues it tokens for the APIs its sources need,
// that the tokens and Azure RBAC give it the permissions two-way sync needs, and that every
// source answers. Each check ends in a finding with what to do about a problem.
package doctor

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/socsync/socsync/internal/config"
	"github.com/socsync/socsync/internal/entra"
	"github.com/socsync/socsync/internal/graph"
	"github.com/socsync/socsync/internal/sentinel"
	"github.com/socsync/socsync/internal/throttle"
)

// Status is the outcome of one check.
type Status string

const (
	OK Status = "ok"
	// Warn: the check could not tell (throttled, a list socsync may not read); nothing is
	// known to be wrong.
	Warn Status = "warn"
	// Fail: something is wrong that stops socsync collecting from a source or writing to it.
	Fail Status = "fail"
)

// Graph application roles.
const (
	roleRead      = "SecurityIncident.Read.All"
	roleReadWrite = "SecurityIncident.ReadWrite.All"
)

// Finding is the result of one check.
type Finding struct {
	Check  string `json:"check"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// Report is the doctor's word on one tenant.
type Report struct {
	TenantID   string    `json:"tenant_id"`
	TenantName string    `json:"tenant_name"`
	CheckedAt  time.Time `json:"checked_at"`
	OK         bool      `json:"ok"` // no check failed
	Findings   []Finding `json:"findings"`
}

// GraphProbe is what the doctor calls of a tenant's Graph client.
type GraphProbe interface {
	ListChanged(ctx context.Context, since time.Time, next string) (graph.Page, error)
}

// SentinelProbe is what the doctor calls of a workspace's Sentinel client.
type SentinelProbe interface {
	ListChanged(ctx context.Context, since time.Time, next string) (sentinel.Page, error)
	Permissions(ctx context.Context) (sentinel.Permissions, error)
}

// Remotes gives the doctor a tenant's credential and the clients of its sources, as polling
// uses them.
type Remotes interface {
	Credential(tenantID string) (azcore.TokenCredential, error)
	Graph(tenantID string) (GraphProbe, error)
	Sentinel(tenantID string, w config.Workspace) (SentinelProbe, error)
}

// Check runs every check of the configured tenant tenantID. It fails only for a tenant the
// configuration does not name; everything else is a finding.
func Check(ctx context.Context, c *config.Config, tenantID string, r Remotes, now func() time.Time) (Report, error) {
	if now == nil {
		now = time.Now
	}
	idx := slices.IndexFunc(c.Tenants, func(t config.Tenant) bool { return strings.EqualFold(t.ID, tenantID) })
	if idx < 0 {
		return Report{}, fmt.Errorf("doctor: tenant %s is not configured", tenantID)
	}
	t := c.Tenants[idx]
	d := &run{c: c, t: t, path: fmt.Sprintf("tenants[%d]", idx), r: r, now: now}
	d.check(ctx)
	rep := Report{TenantID: t.ID, TenantName: cmp.Or(t.Name, t.ID), CheckedAt: now().UTC(), OK: true, Findings: d.findings}
	for _, f := range d.findings {
		if f.Status == Fail {
			rep.OK = false
		}
	}
	return rep, nil
}

type run struct {
	c        *config.Config
	t        config.Tenant
	path     string // the tenant's configuration key
	r        Remotes
	now      func() time.Time
	findings []Finding
}

func (d *run) add(check string, s Status, detail, fix string) {
	d.findings = append(d.findings, Finding{Check: check, Status: s, Detail: detail, Fix: fix})
}

func (d *run) check(ctx context.Context) {
	cred, err := d.r.Credential(d.t.ID)
	if err != nil {
		d.add("credential", Fail, err.Error(), "correct "+d.path+".credential in the configuration (socsync config check names the problem)")
		return
	}
	d.add("credential", OK, d.credentialKind(), "")
	if d.t.DefenderEnabled() {
		if token, ok := d.token(ctx, cred, "Graph token", entra.ScopeGraph); ok {
			d.graphRoles(token)
			d.graph(ctx)
		}
	}
	if len(d.t.Sentinel) == 0 {
		return
	}
	if _, ok := d.token(ctx, cred, "Azure Resource Manager token", entra.ScopeARM); !ok {
		return
	}
	for i, w := range d.t.Sentinel {
		d.sentinel(ctx, i, w)
	}
}

func (d *run) credentialKind() string {
	cr := d.t.Credential
	if cr.App != "" {
		if app, ok := d.c.App(cr.App); ok {
			cr = app.Credential
		}
		return fmt.Sprintf("shared app %q (client id %s) builds", d.t.Credential.App, cr.ClientID)
	}
	if cr.Certificate != "" {
		return fmt.Sprintf("certificate of client id %s builds", cr.ClientID)
	}
	return fmt.Sprintf("client secret of client id %s (%s) builds", cr.ClientID, cr.ClientSecret)
}

// token asks Entra for a token of scope, as a poll would.
func (d *run) token(ctx context.Context, cred azcore.TokenCredential, check, scope string) (string, bool) {
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}, TenantID: d.t.ID})
	if err == nil {
		d.add(check, OK, "Entra ID issued a token", "")
		return tok.Token, true
	}
	kind, reason := entra.Classify(err)
	switch kind {
	case entra.KindThrottled:
		d.add(check, Warn, reason, "try again later")
	case entra.KindTransient:
		d.add(check, Fail, reason, "check that socsync reaches "+d.c.Cloud.Authority+" (proxy, firewall, cloud.ca_file)")
	default:
		d.add(check, Fail, reason, d.consentFix())
	}
	return "", false
}

func (d *run) consentFix() string {
	return "check the app's secret or certificate in " + d.path + ".credential, and that an administrator of the tenant granted admin consent: " + d.consentURL()
}

// graphRoles reads the application roles of a Graph token (its payload is a JWT; the
// signature is Graph's to check, not socsync's).
func (d *run) graphRoles(token string) {
	const check = "Graph permissions"
	roles, err := jwtRoles(token)
	if err != nil {
		d.add(check, Warn, "could not read the token's roles: "+err.Error(), "")
		return
	}
	fix := "give the app the application permission " + roleReadWrite + " on Microsoft Graph and grant admin consent again: " + d.consentURL()
	switch {
	case slices.Contains(roles, roleReadWrite):
		d.add(check, OK, roleReadWrite+" granted", "")
	case slices.Contains(roles, roleRead):
		d.add(check, Fail, roleRead+" only: incidents are collected, but hub changes cannot be written to Defender XDR", fix)
	default:
		d.add(check, Fail, fmt.Sprintf("the token carries neither %s nor %s (roles: %s)", roleReadWrite, roleRead, cmp.Or(strings.Join(roles, ", "), "none")), fix)
	}
}

func (d *run) consentURL() string {
	u, err := entra.ConsentURL(d.c, d.t.ID)
	if err != nil {
		return "(no consent URL: " + err.Error() + ")"
	}
	return u
}

// graph lists the incidents changed from now on: one call, an empty page.
func (d *run) graph(ctx context.Context) {
	const check = "Defender XDR (Graph)"
	c, err := d.r.Graph(d.t.ID)
	if err != nil {
		d.add(check, Fail, err.Error(), "")
		return
	}
	start := time.Now()
	_, err = c.ListChanged(ctx, d.now(), "")
	switch {
	case err == nil:
		d.add(check, OK, "listed incidents in "+since(start), "")
	case errors.As(err, new(*throttle.Throttled)):
		d.add(check, Warn, "throttled: "+err.Error(), "try again later")
	case errors.Is(err, graph.ErrForbidden):
		d.add(check, Fail, err.Error(), "give the app "+roleReadWrite+" on Microsoft Graph and grant admin consent: "+d.consentURL())
	default:
		d.add(check, Fail, err.Error(), "check cloud.graph and that socsync reaches it")
	}
}

// sentinel lists a workspace's incidents changed from now on and reads the app's permissions
// on it.
func (d *run) sentinel(ctx context.Context, i int, w config.Workspace) {
	check := "Sentinel " + w.SubscriptionID + "/" + w.ResourceGroup + "/" + w.Workspace
	key := fmt.Sprintf("%s.sentinel[%d]", d.path, i)
	c, err := d.r.Sentinel(d.t.ID, w)
	if err != nil {
		d.add(check, Fail, err.Error(), "correct "+key)
		return
	}
	start := time.Now()
	_, err = c.ListChanged(ctx, d.now(), "")
	role := "assign the app the role Microsoft Sentinel Responder on the workspace (Reader is not enough to write back)"
	switch {
	case err == nil:
		d.add(check, OK, "listed incidents in "+since(start), "")
	case errors.As(err, new(*throttle.Throttled)):
		d.add(check, Warn, "throttled: "+err.Error(), "try again later")
		return
	case errors.Is(err, sentinel.ErrNotFound):
		d.add(check, Fail, err.Error(), "check subscription_id, resource_group and workspace of "+key)
		return
	case errors.Is(err, sentinel.ErrForbidden):
		d.add(check, Fail, err.Error(), role)
		return
	case errors.Is(err, sentinel.ErrUnauthorized):
		d.add(check, Fail, err.Error(), "check that subscription "+w.SubscriptionID+" belongs to tenant "+d.t.ID)
		return
	default:
		d.add(check, Fail, err.Error(), "check cloud.arm and that socsync reaches it")
		return
	}
	perms, err := c.Permissions(ctx)
	if err != nil {
		d.add(check+" permissions", Warn, "could not list the app's permissions: "+err.Error(), "")
		return
	}
	if missing := perms.Missing(slices.Concat(sentinel.ReadActions, sentinel.WriteActions)); len(missing) > 0 {
		d.add(check+" permissions", Fail, "the app may not "+strings.Join(missing, ", "), role)
		return
	}
	d.add(check+" permissions", OK, "the app may read and update incidents and comment", "")
}

// jwtRoles returns the roles claim of a JWT, unverified.
func jwtRoles(token string) ([]string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, errors.New("not a JWT")
	}
	var claims struct {
		Roles []string `json:"roles"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, errors.New("not a JWT")
	}
	return claims.Roles, nil
}

func since(start time.Time) string {
	return time.Since(start).Round(time.Millisecond).String()
}
