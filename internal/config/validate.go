package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"
)

var (
	guidRE      = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	workspaceRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,88}[A-Za-z0-9]$`)
	rgRE        = regexp.MustCompile(`^[-\w._()]{1,90}$`)
	dcrRE       = regexp.MustCompile(`^dcr-[0-9a-f]{32}$`)
	nameRE      = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
)

// problems collects validation errors for one file.
type problems struct {
	file string
	errs []error
}

func (p *problems) add(path, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (c *Config) validate() error {
	p := &problems{file: c.File}
	c.validateServer(p)
	c.validateCloud(p)
	c.validatePolling(p)

	if err := checkDatabase(c.Database); err != nil {
		p.add("database", "%v", err)
	}
	if !oneOf(c.Log.Level, "debug", "info", "warn", "error") {
		p.add("log.level", "want debug, info, warn or error, got %q", c.Log.Level)
	}
	if !oneOf(c.Log.Format, "text", "json") {
		p.add("log.format", "want text or json, got %q", c.Log.Format)
	}

	apps := map[string]bool{}
	for i, a := range c.Apps {
		path := fmt.Sprintf("apps[%d]", i)
		switch {
		case a.Name == "":
			p.add(path+".name", "required: the name tenants use to share this app")
		case apps[a.Name]:
			p.add(path+".name", "app %q is defined twice", a.Name)
		}
		apps[a.Name] = true
		if a.Credential.App != "" {
			p.add(path+".credential.app", "an app's credential must give client_id and a secret or certificate, not another app")
		}
		c.validateCredential(p, path+".credential", a.Credential, apps)
	}

	tenants := map[string]bool{}
	for i, t := range c.Tenants {
		c.validateTenant(p, i, t, tenants, apps)
	}

	if c.Forward.Enabled() {
		f := c.Forward
		if !dcrRE.MatchString(f.DCRImmutableID) {
			p.add("forward.dcr_immutable_id", "want a data collection rule immutable id (dcr- and 32 hex digits), got %q", f.DCRImmutableID)
		}
		if !strings.HasPrefix(f.Stream, "Custom-") {
			p.add("forward.stream", "want the DCR's stream name, starting with Custom- (e.g. Custom-SocsyncIncidents), got %q", f.Stream)
		}
		if !guidRE.MatchString(f.TenantID) {
			p.add("forward.tenant_id", "want the Entra tenant id (a GUID) of the central workspace, got %q", f.TenantID)
		}
		if c.Cloud.Ingestion == "" {
			p.add("cloud.ingestion", "required when forward is set: the Logs Ingestion endpoint of the data collection rule")
		}
		c.validateCredential(p, "forward.credential", f.Credential, apps)
	}

	rules := []string{"hub_wins", "remote_wins", "latest_wins"}
	if !oneOf(c.Sync.Policy.Default, rules...) {
		p.add("sync.policy.default", "want hub_wins, remote_wins or latest_wins, got %q", c.Sync.Policy.Default)
	}
	for f, r := range c.Sync.Policy.Fields {
		if !oneOf(f, "status", "severity", "owner", "classification", "determination", "classification_reason", "classification_comment", "tags") {
			p.add("sync.policy.fields."+f, "unknown field; want status, severity, owner, classification, determination, classification_reason, classification_comment or tags")
		}
		if !oneOf(r, rules...) {
			p.add("sync.policy.fields."+f, "want hub_wins, remote_wins or latest_wins, got %q", r)
		}
	}
	if c.Sync.Workers < 1 || c.Sync.Workers > 256 {
		p.add("sync.workers", "want 1 to 256, got %d", c.Sync.Workers)
	}
	if c.Sync.Rate < 0 {
		p.add("sync.rate", "want 0 (unbounded) or more, got %v", c.Sync.Rate)
	}

	for api, b := range c.Budgets {
		if !oneOf(api, "graph", "arm-read", "arm-write", "arm-delete", "sentinel-read", "sentinel-write", "ingestion", "token") {
			p.add("budgets."+api, "unknown API; want graph, arm-read, arm-write, arm-delete, sentinel-read, sentinel-write, ingestion or token")
		}
		if b.Burst < 1 || b.PerSecond <= 0 {
			p.add("budgets."+api, "want burst of at least 1 and per_second above 0")
		}
	}

	hooks := map[string]bool{}
	for i, w := range c.Webhooks {
		path := fmt.Sprintf("webhooks[%d]", i)
		switch {
		case !nameRE.MatchString(w.Name):
			p.add(path+".name", "want a name of lower-case letters, digits, - and _ (it is part of the URL), got %q", w.Name)
		case hooks[w.Name]:
			p.add(path+".name", "webhook %q is defined twice", w.Name)
		}
		hooks[w.Name] = true
		if w.Kind != "splunk" {
			p.add(path+".kind", "want splunk (the only kind so far), got %q", w.Kind)
		}
		if !tenants[strings.ToLower(w.Tenant)] {
			p.add(path+".tenant", "want the id of a configured tenant, got %q", w.Tenant)
		}
		if !w.Token.Set() && !w.HMACSecret.Set() {
			p.add(path+".token", "required (or hmac_secret): a webhook is never open")
		}
		checkSecret(p, path+".token", w.Token)
		checkSecret(p, path+".hmac_secret", w.HMACSecret)
		if w.MaxBody < 1024 || w.MaxBody > 64<<20 {
			p.add(path+".max_body", "want a size in bytes between 1024 and 67108864, got %d", w.MaxBody)
		}
	}
	return errors.Join(p.errs...)
}

func (c *Config) validateServer(p *problems) {
	if _, _, err := net.SplitHostPort(c.Server.Listen); err != nil {
		p.add("server.listen", "want host:port (e.g. 127.0.0.1:8080 or :8443), got %q", c.Server.Listen)
	}
	if (c.Server.TLS.CertFile == "") != (c.Server.TLS.KeyFile == "") {
		p.add("server.tls", "want both cert_file and key_file, or neither")
	}
	if u := c.Server.PublicURL; u != "" {
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			p.add("server.public_url", "want an absolute http(s) URL, got %q", u)
		}
	}
}

func (c *Config) validateCloud(p *problems) {
	for _, e := range []struct{ key, val string }{
		{"cloud.authority", c.Cloud.Authority}, {"cloud.graph", c.Cloud.Graph},
		{"cloud.arm", c.Cloud.ARM}, {"cloud.ingestion", c.Cloud.Ingestion},
	} {
		if e.val == "" {
			continue
		}
		u, err := url.Parse(e.val)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			p.add(e.key, "want an https:// URL (tokens are never sent over plain http), got %q", e.val)
		}
	}
	if !oneOf(c.Cloud.SentinelAPIVersion, SentinelAPIVersions...) {
		p.add("cloud.sentinel_api_version", "want a stable Microsoft.SecurityInsights api-version (%s), got %q",
			strings.Join(SentinelAPIVersions, ", "), c.Cloud.SentinelAPIVersion)
	}
}

func (c *Config) validatePolling(p *problems) {
	pl := c.Polling
	if pl.Hot > pl.Idle {
		p.add("polling.hot", "want at most polling.idle (%s), got %s", pl.Idle, pl.Hot)
	}
	if pl.Hot.D() < 100*time.Millisecond {
		p.add("polling.hot", "want at least 100ms, got %s", pl.Hot)
	}
	if pl.Lease.D().Seconds() < 5 {
		p.add("polling.lease", "want at least 5s, got %s", pl.Lease)
	}
	if pl.Workers < 1 || pl.Workers > 1024 {
		p.add("polling.workers", "want 1 to 1024, got %d", pl.Workers)
	}
}

func (c *Config) validateTenant(p *problems, i int, t Tenant, seen, apps map[string]bool) {
	path := fmt.Sprintf("tenants[%d]", i)
	switch {
	case t.ID == "":
		p.add(path+".id", "required: the tenant's Entra tenant id (a GUID)")
	case !guidRE.MatchString(t.ID):
		p.add(path+".id", "want an Entra tenant id (a GUID), got %q", t.ID)
	case seen[strings.ToLower(t.ID)]:
		p.add(path+".id", "tenant %s is configured twice", t.ID)
	}
	seen[strings.ToLower(t.ID)] = true
	c.validateCredential(p, path+".credential", t.Credential, apps)
	if !t.DefenderEnabled() && len(t.Sentinel) == 0 {
		p.add(path, "polls nothing: enable defender or list sentinel workspaces")
	}
	ws := map[string]bool{}
	for j, w := range t.Sentinel {
		wp := fmt.Sprintf("%s.sentinel[%d]", path, j)
		if !guidRE.MatchString(w.SubscriptionID) {
			p.add(wp+".subscription_id", "want an Azure subscription id (a GUID), got %q", w.SubscriptionID)
		}
		if !rgRE.MatchString(w.ResourceGroup) {
			p.add(wp+".resource_group", "want a resource group name, got %q", w.ResourceGroup)
		}
		if !workspaceRE.MatchString(w.Workspace) {
			p.add(wp+".workspace", "want a Log Analytics workspace name (letters, digits, -), got %q", w.Workspace)
		}
		key := strings.ToLower(w.SubscriptionID + "/" + w.ResourceGroup + "/" + w.Workspace)
		if ws[key] {
			p.add(wp, "workspace listed twice")
		}
		ws[key] = true
	}
	if t.Poll.Hot != 0 && t.Poll.Idle != 0 && t.Poll.Hot > t.Poll.Idle {
		p.add(path+".poll.hot", "want at most poll.idle (%s), got %s", t.Poll.Idle, t.Poll.Hot)
	}
	upns, ids := map[string]bool{}, map[string]bool{}
	for j, o := range t.Owners {
		op := fmt.Sprintf("%s.owners[%d]", path, j)
		u, id := strings.ToLower(strings.TrimSpace(o.UPN)), strings.ToLower(o.ObjectID)
		if !strings.Contains(u, "@") {
			p.add(op+".upn", "want a user principal name (name@domain), got %q", o.UPN)
		}
		if !guidRE.MatchString(o.ObjectID) {
			p.add(op+".object_id", "want the owner's Entra object id (a GUID), got %q", o.ObjectID)
		}
		if upns[u] || ids[id] {
			p.add(op, "each owner and object id may be listed once, so the mapping works both ways")
		}
		upns[u], ids[id] = true, true
	}
}

func (c *Config) validateCredential(p *problems, path string, cr Credential, apps map[string]bool) {
	if cr.App != "" {
		if !apps[cr.App] {
			p.add(path+".app", "no app named %q under apps", cr.App)
		}
		if cr.ClientID != "" || cr.ClientSecret != "" || cr.Certificate != "" {
			p.add(path, "give either app or client_id with a secret or certificate, not both")
		}
		return
	}
	switch {
	case cr.ClientID == "":
		p.add(path+".client_id", "required: the app registration's application (client) id, or name a shared app with app")
	case !guidRE.MatchString(cr.ClientID):
		p.add(path+".client_id", "want an application (client) id (a GUID), got %q", cr.ClientID)
	}
	switch {
	case cr.ClientSecret.Set() && cr.Certificate != "":
		p.add(path, "give client_secret or certificate, not both")
	case !cr.ClientSecret.Set() && cr.Certificate == "":
		p.add(path+".client_secret", "required (or certificate): how socsync proves it is the app")
	}
	checkSecret(p, path+".client_secret", cr.ClientSecret)
	checkSecret(p, path+".certificate_password", cr.CertificatePassword)
}

func checkSecret(p *problems, path string, r SecretRef) {
	if r.Set() {
		if err := r.check(); err != nil {
			p.add(path, "%v", err)
		}
	}
}

func checkDatabase(db string) error {
	switch {
	case strings.HasPrefix(db, "sqlite:"):
		if strings.TrimPrefix(db, "sqlite:") == "" {
			return errors.New("want sqlite:PATH with a file path")
		}
		return nil
	case strings.HasPrefix(db, "postgres://"), strings.HasPrefix(db, "postgresql://"):
		if _, err := url.Parse(db); err != nil {
			return errors.New("the PostgreSQL URL does not parse") // the URL may hold a password: not echoed
		}
		return nil
	}
	return fmt.Errorf("want sqlite:PATH or a postgres:// URL, got %q", RedactURL(db))
}

func oneOf(s string, allowed ...string) bool {
	for _, a := range allowed {
		if s == a {
			return true
		}
	}
	return false
}

// CheckResources goes beyond the file's form: it resolves every secret reference and reads
// every file the configuration names, so that `config check` and `serve` fail early with the
// key that is wrong. Secrets are resolved only to check that they exist.
func (c *Config) CheckResources(getenv func(string) string) error {
	p := &problems{file: c.File}
	secret := func(path string, r SecretRef) {
		if r.Set() {
			if _, err := c.Resolve(r, getenv); err != nil {
				p.add(path, "%v", err)
			}
		}
	}
	file := func(path, f string) {
		if f == "" {
			return
		}
		if _, err := os.Stat(c.resolvePath(f)); err != nil {
			p.add(path, "cannot read %s: %v", c.resolvePath(f), errors.Unwrap(err))
		}
	}
	cred := func(path string, cr Credential) {
		secret(path+".client_secret", cr.ClientSecret)
		secret(path+".certificate_password", cr.CertificatePassword)
		file(path+".certificate", cr.Certificate)
	}
	file("server.tls.cert_file", c.Server.TLS.CertFile)
	file("server.tls.key_file", c.Server.TLS.KeyFile)
	file("cloud.ca_file", c.Cloud.CAFile)
	for i, a := range c.Apps {
		cred(fmt.Sprintf("apps[%d].credential", i), a.Credential)
	}
	for i, t := range c.Tenants {
		cred(fmt.Sprintf("tenants[%d].credential", i), t.Credential)
	}
	if c.Forward.Enabled() {
		cred("forward.credential", c.Forward.Credential)
	}
	for i, w := range c.Webhooks {
		secret(fmt.Sprintf("webhooks[%d].token", i), w.Token)
		secret(fmt.Sprintf("webhooks[%d].hmac_secret", i), w.HMACSecret)
	}
	return errors.Join(p.errs...)
}
