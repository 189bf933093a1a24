// Package emuconfig writes a hub configuration for an emulator's tenants: what
// `socsync emulator --write-config`, the demo, the benchmarks and end-to-end tests run a hub with.
package emuconfig

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"

	"github.com/socsync/socsync/internal/emulator"
)

// hubConfigTemplate is the hub configuration written for an emulator's tenants. Secrets go to
// files beside it, referenced with file:, as they would in production.
var hubConfigTemplate = template.Must(template.New("hub").Parse(`# socsync configuration for the emulator at {{.Info.BaseURL}}
# written by socsync emulator --write-config. Secrets are in {{.SecretsDir}}/.
server:
  listen: {{.Listen}}
database: {{.Database}}
cloud:
  authority: {{.Info.BaseURL}}
  graph: {{.Info.BaseURL}}
  arm: {{.Info.BaseURL}}
  ingestion: {{.Info.LogsIngestion.Endpoint}}
  ca_file: {{.Info.CAFile}}
polling:
  idle: {{.Idle}}
  hot: {{.Hot}}
  overlap: {{.Overlap}}
  lease: {{.Lease}}
  resync: {{.Resync}}
apps:
  - name: mssp
    credential:
      client_id: {{.Info.MultiTenantApp.ClientID}}
      client_secret: file:{{.SecretsDir}}/mssp-app.secret
tenants:
{{- range .Tenants}}
  - id: {{.TenantID}}
    name: {{printf "%q" .Name}}
    credential:
      client_id: {{.ClientID}}
      client_secret: file:{{$.SecretsDir}}/{{.TenantID}}.secret
    defender: {{.Defender}}
{{- if .Sentinel}}
    sentinel:
{{- range .Sentinel}}
      - subscription_id: {{.SubscriptionID}}
        resource_group: {{.ResourceGroup}}
        workspace: {{.Workspace}}
{{- end}}
{{- end}}
{{- if .Users}}
    owners:
{{- range .Users}}
      - upn: {{.UPN}}
        object_id: {{.ObjectID}}
{{- end}}
{{- end}}
{{- end}}
sync:
  alert_rules:
    refresh: {{.AlertRefresh}}
forward:
  dcr_immutable_id: {{.Info.LogsIngestion.DCRImmutableID}}
  stream: {{.Info.LogsIngestion.Stream}}
  tenant_id: {{.Info.LogsIngestion.TenantID}}
  credential:
    client_id: {{.Info.LogsIngestion.ClientID}}
    client_secret: file:{{.SecretsDir}}/forward.secret
`))

// Params say how to write a hub configuration for an emulator.
type Params struct {
	Info      emulator.Info
	Tenants   []emulator.TenantInfo
	Listen    string
	Database  string
	Idle, Hot string
	// AlertRefresh is how often Defender for Cloud alerts are re-read for the alert rules.
	AlertRefresh string
	Lease        string // lease on a source (default 30s)
	Resync       string // full re-read interval (default 24h)
	Overlap      string // how far behind its cursor a poll re-reads (default 30s)
	// Extra is YAML appended to the configuration (top-level sections the template lacks).
	Extra      string
	SecretsDir string // relative to the configuration file
}

// Write writes the configuration to path and the secrets it references to files in a
// "secrets" directory beside it (mode 0600). Tenants defaults to all of Info's tenants; Listen,
// Database, Idle and Hot to 127.0.0.1:8080, sqlite:socsync.db, 30s and 5s.
func Write(path string, hc Params) error {
	dir := filepath.Dir(path)
	hc.SecretsDir = "secrets"
	secrets := filepath.Join(dir, hc.SecretsDir)
	if err := os.MkdirAll(secrets, 0o700); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	write := func(name, secret string) error {
		return os.WriteFile(filepath.Join(secrets, name), []byte(secret+"\n"), 0o600)
	}
	files := map[string]string{"mssp-app.secret": hc.Info.MultiTenantApp.ClientSecret, "forward.secret": hc.Info.LogsIngestion.ClientSecret}
	for _, t := range hc.Info.Tenants {
		files[t.TenantID+".secret"] = t.ClientSecret
	}
	for name, secret := range files {
		if err := write(name, secret); err != nil {
			return fmt.Errorf("write config: %w", err)
		}
	}
	if hc.Tenants == nil {
		hc.Tenants = hc.Info.Tenants
	}
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&hc.Listen, "127.0.0.1:8080")
	def(&hc.Database, "sqlite:socsync.db")
	def(&hc.Idle, "30s")
	def(&hc.Hot, "5s")
	def(&hc.AlertRefresh, "1m")
	def(&hc.Lease, "30s")
	def(&hc.Resync, "24h")
	def(&hc.Overlap, "30s")
	var b strings.Builder
	if err := hubConfigTemplate.Execute(&b, hc); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	b.WriteString(hc.Extra)
	return os.WriteFile(path, []byte(b.String()), 0o600)
}
