// Package config loads socsync's configuration: a YAML file decoded strictly (an unknown key is
// an error), overridden by SOCSYNC_* environment variables, and validated. Every error names
// the file, the key path and what is expected. Secrets are never in the file: it holds
// references (env:NAME or file:PATH) that are resolved when needed and never printed.
package config

import (
	"time"
)

// Config is the whole configuration of one socsync process.
type Config struct {
	Server   Server    `yaml:"server"`
	Database string    `yaml:"database"` // sqlite:PATH (default) or a postgres:// URL
	Log      Log       `yaml:"log"`
	Cloud    Cloud     `yaml:"cloud"`
	Polling  Polling   `yaml:"polling"`
	Apps     []App     `yaml:"apps"`
	Tenants  []Tenant  `yaml:"tenants"`
	Forward  Forward   `yaml:"forward"`
	Webhooks []Webhook `yaml:"webhooks"`
	Sync     Sync      `yaml:"sync"`
	// Budgets override the documented request budgets socsync keeps to, by API: graph (per
	// tenant), arm-read, arm-write, sentinel-read, sentinel-write (per subscription), ingestion
	// (per data collection rule), token (per tenant).
	Budgets map[string]Budget `yaml:"budgets"`

	// File is the path the configuration was read from; relative paths in it are relative to
	// its directory.
	File string `yaml:"-"`
}

// Server is the hub's HTTP listener.
type Server struct {
	Listen string `yaml:"listen"`
	TLS    TLS    `yaml:"tls"`
	// PublicURL is the address users reach the hub at (for links and the consent redirect).
	PublicURL string `yaml:"public_url"`
	// ShutdownTimeout bounds how long a graceful shutdown waits for requests in flight.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
}

// TLS serves HTTPS when both files are set.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Enabled reports whether TLS is configured.
func (t TLS) Enabled() bool { return t.CertFile != "" }

// Log configures the structured log.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// Cloud holds the endpoints of the Microsoft cloud socsync talks to. They default to the public
// cloud; the emulator (or a national cloud) overrides them.
type Cloud struct {
	Authority string `yaml:"authority"` // Entra ID, e.g. https://login.microsoftonline.com
	Graph     string `yaml:"graph"`     // Microsoft Graph, e.g. https://graph.microsoft.com
	ARM       string `yaml:"arm"`       // Azure Resource Manager, e.g. https://management.azure.com
	Ingestion string `yaml:"ingestion"` // Logs Ingestion endpoint (DCE or DCR endpoint) of the forward stream
	// CAFile adds a PEM CA bundle to the system roots for all of the above (the emulator's CA).
	CAFile string `yaml:"ca_file"`
	// SentinelAPIVersion is the Microsoft.SecurityInsights api-version of every Sentinel
	// request, one of SentinelAPIVersions (default the newest, DefaultSentinelAPIVersion).
	SentinelAPIVersion string `yaml:"sentinel_api_version"`
}

// SentinelAPIVersions are the stable Microsoft.SecurityInsights api-versions with the incident
// operations socsync uses, newest first (the emulator accepts the same).
var SentinelAPIVersions = []string{"2025-12-01", "2025-09-01", "2025-06-01", "2025-03-01", "2024-09-01",
	"2024-03-01", "2023-11-01", "2021-10-01", "2021-04-01"}

// DefaultSentinelAPIVersion is the newest stable Microsoft.SecurityInsights api-version.
const DefaultSentinelAPIVersion = "2025-12-01"

// Polling holds the default poll settings of every source.
type Polling struct {
	Idle    Duration `yaml:"idle"`    // interval of a source without recent changes
	Hot     Duration `yaml:"hot"`     // interval of a source with recent changes
	Overlap Duration `yaml:"overlap"` // how far back each poll re-reads before its cursor
	Lease   Duration `yaml:"lease"`   // how long a replica holds a source it polls
	Workers int      `yaml:"workers"` // polls in flight at once per replica
	Timeout Duration `yaml:"timeout"` // a poll that reads or stores nothing for this long is cut off
	// Resync is how often a source is re-read in full, to repair silent drift (default 24h; 0,
	// like any unset duration, means the default).
	Resync Duration `yaml:"resync"`
}

// App is an app registration socsync signs in as. A multi-tenant app is consented in each
// customer tenant and shared by the tenants that name it.
type App struct {
	Name       string     `yaml:"name"`
	Credential Credential `yaml:"credential"`
}

// Credential is how socsync gets tokens: an app registration's client id with a client secret
// or a certificate, or the name of a shared app.
type Credential struct {
	App          string    `yaml:"app"` // name of an entry of apps (instead of the fields below)
	ClientID     string    `yaml:"client_id"`
	ClientSecret SecretRef `yaml:"client_secret"`
	// Certificate is a PEM (or PKCS#12) file holding the certificate and its private key.
	Certificate         string    `yaml:"certificate"`
	CertificatePassword SecretRef `yaml:"certificate_password"`
}

// Tenant is one customer's Entra tenant and the sources socsync polls in it.
type Tenant struct {
	ID         string       `yaml:"id"` // Entra tenant id (a GUID)
	Name       string       `yaml:"name"`
	Credential Credential   `yaml:"credential"`
	Defender   *bool        `yaml:"defender"` // poll Defender XDR through Graph (default true)
	Sentinel   []Workspace  `yaml:"sentinel"`
	Poll       TenantPoll   `yaml:"poll"`
	Owners     []OwnerEntry `yaml:"owners"`
}

// DefenderEnabled reports whether the tenant's Defender XDR incidents are polled.
func (t Tenant) DefenderEnabled() bool { return t.Defender == nil || *t.Defender }

// Workspace is a Sentinel workspace.
type Workspace struct {
	SubscriptionID string `yaml:"subscription_id"`
	ResourceGroup  string `yaml:"resource_group"`
	Workspace      string `yaml:"workspace"`
}

// TenantPoll overrides the poll intervals for one tenant.
type TenantPoll struct {
	Idle Duration `yaml:"idle"`
	Hot  Duration `yaml:"hot"`
}

// OwnerEntry maps an owner's UPN (Graph assignedTo) to the Entra object id Sentinel names
// owners by.
type OwnerEntry struct {
	UPN      string `yaml:"upn"`
	ObjectID string `yaml:"object_id"`
}

// Forward is the central Sentinel workspace stream that every incident change is forwarded to.
// It is off when DCRImmutableID is empty.
type Forward struct {
	DCRImmutableID string     `yaml:"dcr_immutable_id"`
	Stream         string     `yaml:"stream"`
	TenantID       string     `yaml:"tenant_id"` // the tenant of the central workspace
	Credential     Credential `yaml:"credential"`
}

// Enabled reports whether forwarding is configured.
func (f Forward) Enabled() bool { return f.DCRImmutableID != "" }

// Webhook is an inbound alert webhook at /api/v1/webhooks/{name}.
type Webhook struct {
	Name   string    `yaml:"name"`
	Kind   string    `yaml:"kind"`   // splunk
	Tenant string    `yaml:"tenant"` // the configured tenant its alerts belong to
	Token  SecretRef `yaml:"token"`  // secret token in the URL (?token=…)
	// HMACSecret lets senders that can sign use an X-Socsync-Signature header instead.
	HMACSecret SecretRef `yaml:"hmac_secret"`
	MaxBody    int64     `yaml:"max_body"` // bytes; default 1 MiB
}

// Sync tunes the two-way sync.
type Sync struct {
	// Policy decides a field changed on two sides since they last agreed: hub_wins,
	// remote_wins or latest_wins (the later change; a tie goes to the hub).
	Policy SyncPolicy `yaml:"policy"`
	// Workers is how many incidents are written back at once per replica.
	Workers int `yaml:"workers"`
	// Rate bounds write-back attempts per second per replica (0: unbounded; the per-tenant
	// budgets of the remotes still apply).
	Rate float64 `yaml:"rate"`
	// RaiseMergeTargetSeverity gives an incident that absorbs a merged one the higher of their
	// severities.
	RaiseMergeTargetSeverity *bool `yaml:"raise_merge_target_severity"`
	// AlertRules close or reactivate Sentinel incidents from the status of their Defender for
	// Cloud alerts.
	AlertRules AlertRules `yaml:"alert_rules"`
}

// SyncPolicy gives the conflict rule of each field.
type SyncPolicy struct {
	Default string            `yaml:"default"`
	Fields  map[string]string `yaml:"fields"`
}

// AlertRules configures the alert → incident rules.
type AlertRules struct {
	Enabled *bool `yaml:"enabled"` // default true
	// Products whose alerts the rules follow (product names or service sources), default the
	// Defender for Cloud ones.
	Products []string `yaml:"products"`
	// Refresh is how often the alerts of such incidents are re-read (Sentinel does not change
	// an incident when one of its Defender for Cloud alerts changes status). Default 5m.
	Refresh Duration `yaml:"refresh"`
}

// RulesEnabled reports whether the alert rules run.
func (a AlertRules) RulesEnabled() bool { return a.Enabled == nil || *a.Enabled }

// RaiseSeverity reports whether a merge target takes the higher severity.
func (s Sync) RaiseSeverity() bool {
	return s.RaiseMergeTargetSeverity == nil || *s.RaiseMergeTargetSeverity
}

// Budget is a token bucket: up to Burst requests at once, refilled at PerSecond.
type Budget struct {
	Burst     int     `yaml:"burst"`
	PerSecond float64 `yaml:"per_second"`
}

// Defaults of everything the file may leave out.
const (
	DefaultListen    = "127.0.0.1:8080"
	DefaultDatabase  = "sqlite:socsync.db"
	DefaultAuthority = "https://login.microsoftonline.com"
	DefaultGraph     = "https://graph.microsoft.com"
	DefaultARM       = "https://management.azure.com"
	DefaultMaxBody   = 1 << 20
)

func (c *Config) applyDefaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	defDur := func(d *Duration, v time.Duration) {
		if *d == 0 {
			*d = Duration(v)
		}
	}
	def(&c.Server.Listen, DefaultListen)
	defDur(&c.Server.ShutdownTimeout, 15*time.Second)
	def(&c.Database, DefaultDatabase)
	def(&c.Log.Level, "info")
	def(&c.Log.Format, "text")
	def(&c.Cloud.Authority, DefaultAuthority)
	def(&c.Cloud.Graph, DefaultGraph)
	def(&c.Cloud.ARM, DefaultARM)
	def(&c.Cloud.SentinelAPIVersion, DefaultSentinelAPIVersion)
	defDur(&c.Polling.Idle, 60*time.Second)
	defDur(&c.Polling.Hot, 10*time.Second)
	defDur(&c.Polling.Overlap, 2*time.Minute)
	defDur(&c.Polling.Lease, 60*time.Second)
	defDur(&c.Polling.Timeout, 45*time.Second)
	defDur(&c.Polling.Resync, 24*time.Hour)
	if c.Polling.Workers == 0 {
		c.Polling.Workers = 16
	}
	def(&c.Sync.Policy.Default, "latest_wins")
	if c.Sync.Workers == 0 {
		c.Sync.Workers = 8
	}
	defDur(&c.Sync.AlertRules.Refresh, 5*time.Minute)
	if len(c.Sync.AlertRules.Products) == 0 {
		c.Sync.AlertRules.Products = []string{"microsoftDefenderForCloud", "Microsoft Defender for Cloud", "Azure Security Center"}
	}
	for i := range c.Webhooks {
		if c.Webhooks[i].MaxBody == 0 {
			c.Webhooks[i].MaxBody = DefaultMaxBody
		}
	}
}

// Tenant returns the configured tenant with that id.
func (c *Config) Tenant(id string) (Tenant, bool) {
	for _, t := range c.Tenants {
		if t.ID == id {
			return t, true
		}
	}
	return Tenant{}, false
}

// App returns the configured app of that name.
func (c *Config) App(name string) (App, bool) {
	for _, a := range c.Apps {
		if a.Name == name {
			return a, true
		}
	}
	return App{}, false
}
