package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func noEnv(string) string { return "" }

const minimal = `
tenants:
  - id: 11111111-1111-1111-1111-111111111111
    name: Contoso
    credential:
      client_id: 55555555-5555-5555-5555-555555555555
      client_secret: env:CONTOSO_SECRET
`

func TestParse_MinimalConfigGetsDefaults(t *testing.T) {
	c, err := Parse([]byte(minimal), "socsync.yaml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.Listen != DefaultListen || c.Database != DefaultDatabase || c.Cloud.Graph != DefaultGraph {
		t.Errorf("defaults not applied: %+v", c)
	}
	if c.Polling.Idle.D() != time.Minute || c.Polling.Hot.D() != 10*time.Second || c.Polling.Workers != 16 {
		t.Errorf("polling defaults: %+v", c.Polling)
	}
	if !c.Tenants[0].DefenderEnabled() {
		t.Error("defender must default to on")
	}
	if c.Cloud.SentinelAPIVersion != "2025-12-01" {
		t.Errorf("cloud.sentinel_api_version defaults to %q, want 2025-12-01", c.Cloud.SentinelAPIVersion)
	}
}

func TestExampleConfig_IsValid(t *testing.T) {
	c, err := Load("../../examples/socsync.yaml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Tenants) != 2 || c.Tenants[0].Credential.App != "mssp" {
		t.Errorf("example tenants: %+v", c.Tenants)
	}
}

// Every malformed configuration names the key and what is expected, and never echoes a secret.
func TestParse_MalformedConfigNamesTheKey(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		wants []string // substrings of the error
	}{
		{"unknown key", "server:\n  listne: :8080\n", []string{"socsync.yaml: server.listne:", `unknown key "listne"`, "line 2"}},
		{"unknown top-level key", "tenant: []\n", []string{"socsync.yaml: tenant:", "unknown key"}},
		{"wrong type", "polling:\n  workers: many\n", []string{"polling.workers:", "want a whole number", `"many"`}},
		{"wrong type in list", strings.Replace(minimal, "name: Contoso", "name: [a, b]", 1), []string{"tenants[0].name:", "want a string"}},
		{"bad duration", "polling:\n  idle: 60\n", []string{"polling.idle:", "want a duration such as 30s"}},
		{"missing tenant id", "tenants:\n  - name: x\n    credential: {client_id: 55555555-5555-5555-5555-555555555555, client_secret: env:X}\n",
			[]string{"tenants[0].id:", "required"}},
		{"tenant id not a GUID", strings.Replace(minimal, "11111111-1111-1111-1111-111111111111", "contoso.onmicrosoft.com", 1),
			[]string{"tenants[0].id:", "want an Entra tenant id (a GUID)"}},
		{"inline secret", strings.Replace(minimal, "env:CONTOSO_SECRET", "s3cr3t-Value~123", 1),
			[]string{"tenants[0].credential.client_secret:", "never written inline", "env:NAME or file:PATH"}},
		{"no credential", "tenants:\n  - id: 11111111-1111-1111-1111-111111111111\n", []string{"tenants[0].credential.client_id:", "required"}},
		{"secret and certificate", strings.Replace(minimal, "client_secret: env:CONTOSO_SECRET", "client_secret: env:A\n      certificate: c.pem", 1),
			[]string{"tenants[0].credential:", "not both"}},
		{"unknown shared app", "tenants:\n  - id: 11111111-1111-1111-1111-111111111111\n    credential: {app: nope}\n",
			[]string{"tenants[0].credential.app:", `no app named "nope"`}},
		{"duplicate tenant", minimal + strings.TrimPrefix(strings.SplitN(minimal, "tenants:\n", 2)[1], ""), []string{"tenants[1].id:", "configured twice"}},
		{"polls nothing", strings.Replace(minimal, "name: Contoso", "name: Contoso\n    defender: false", 1), []string{"tenants[0]:", "polls nothing"}},
		{"bad workspace", minimal + "    sentinel:\n      - {subscription_id: nope, resource_group: rg, workspace: -bad}\n",
			[]string{"tenants[0].sentinel[0].subscription_id:", "tenants[0].sentinel[0].workspace:"}},
		{"http authority", "cloud:\n  authority: http://localhost:1234\n", []string{"cloud.authority:", "https://"}},
		{"preview sentinel api-version", "cloud:\n  sentinel_api_version: 2025-07-01-preview\n",
			[]string{"cloud.sentinel_api_version:", "stable Microsoft.SecurityInsights api-version", "2025-12-01", `"2025-07-01-preview"`}},
		{"bad database", "database: mysql://x\n", []string{"database:", "want sqlite:PATH or a postgres:// URL"}},
		{"hot above idle", "polling:\n  idle: 10s\n  hot: 1m\n", []string{"polling.hot:", "at most polling.idle"}},
		{"webhook without token", minimal + "webhooks:\n  - {name: splunk, kind: splunk, tenant: 11111111-1111-1111-1111-111111111111}\n",
			[]string{"webhooks[0].token:", "never open"}},
		{"webhook for unknown tenant", minimal + "webhooks:\n  - {name: splunk, kind: splunk, tenant: x, token: env:T}\n",
			[]string{"webhooks[0].tenant:", "configured tenant"}},
		{"forward without ingestion endpoint", minimal + "forward:\n  dcr_immutable_id: dcr-0123456789abcdef0123456789abcdef\n  stream: Custom-X\n  tenant_id: 11111111-1111-1111-1111-111111111111\n  credential: {client_id: 55555555-5555-5555-5555-555555555555, client_secret: env:F}\n",
			[]string{"cloud.ingestion:", "required when forward is set"}},
		{"duplicate key", "server:\n  listen: :1\n  listen: :2\n", []string{"already defined"}},
		{"not a mapping", "- a\n- b\n", []string{"socsync.yaml:", "want a mapping"}},
		{"not yaml", "server: [\n", []string{"socsync.yaml:", "not valid YAML"}},
		{"bad sync policy", "sync:\n  policy:\n    default: newest\n    fields: {colour: hub_wins, owner: mine}\n",
			[]string{"sync.policy.default:", "sync.policy.fields.colour: unknown field", "sync.policy.fields.owner: want hub_wins"}},
		{"bad budget", "budgets:\n  graph: {burst: 0, per_second: 1}\n  graphs: {burst: 1, per_second: 1}\n",
			[]string{"budgets.graph: want burst", "budgets.graphs: unknown API"}},
		{"owner mapping ambiguous", minimal + "    owners:\n      - {upn: a@x.com, object_id: 33333333-3333-3333-3333-333333333333}\n      - {upn: b@x.com, object_id: 33333333-3333-3333-3333-333333333333}\n",
			[]string{"tenants[0].owners[1]:", "listed once"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), "socsync.yaml", noEnv)
			if err == nil {
				t.Fatal("want an error, got none")
			}
			for _, w := range tt.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error echoes the inline secret: %q", err)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Errorf("error %T is not a *config.Error", err)
			}
		})
	}
}

func TestParse_ReportsEveryProblemAtOnce(t *testing.T) {
	_, err := Parse([]byte("log:\n  level: loud\n  format: xml\n"), "c.yaml", noEnv)
	if err == nil || !strings.Contains(err.Error(), "log.level") || !strings.Contains(err.Error(), "log.format") {
		t.Errorf("want both problems, got %v", err)
	}
}

func TestParse_EnvironmentOverridesFileValues(t *testing.T) {
	env := map[string]string{
		"SOCSYNC_SERVER_LISTEN": ":9999",
		"SOCSYNC_DATABASE":      "postgres://socsync:pw@127.0.0.1:5432/socsync",
		"SOCSYNC_POLLING_IDLE":  "2m",
		"SOCSYNC_CLOUD_CA_FILE": "ca.pem",
	}
	c, err := Parse([]byte(minimal), "socsync.yaml", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.Listen != ":9999" || !strings.HasPrefix(c.Database, "postgres://") || c.Polling.Idle.D() != 2*time.Minute || c.Cloud.CAFile != "ca.pem" {
		t.Errorf("overrides not applied: %+v", c)
	}
	_, err = Parse([]byte(minimal), "socsync.yaml", func(k string) string {
		if k == "SOCSYNC_POLLING_WORKERS" {
			return "lots"
		}
		return ""
	})
	if err == nil || !strings.Contains(err.Error(), "environment: SOCSYNC_POLLING_WORKERS: overrides polling.workers: want a whole number") {
		t.Errorf("bad override error = %v", err)
	}
	if _, ok := EnvKeys()["SOCSYNC_FORWARD_CREDENTIAL_CLIENT_SECRET"]; !ok {
		t.Error("nested keys must be overridable")
	}
}

func TestResolve_ReadsSecretsByReferenceAndNeverEchoesThem(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "s.secret"), []byte("  from-file \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &Config{File: filepath.Join(dir, "socsync.yaml")}
	env := func(k string) string { return map[string]string{"S": "from-env"}[k] }
	if v, err := c.Resolve("env:S", env); err != nil || v != "from-env" {
		t.Errorf("env: got %q, %v", v, err)
	}
	if v, err := c.Resolve("file:s.secret", env); err != nil || v != "from-file" {
		t.Errorf("file: got %q, %v", v, err)
	}
	if _, err := c.Resolve("env:MISSING", env); err == nil || !strings.Contains(err.Error(), "MISSING") {
		t.Errorf("missing env: %v", err)
	}
	if _, err := c.Resolve("file:nope", env); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := c.Resolve("hunter2", env); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("inline secret: %v", err)
	}
}

func TestCheckResources_NamesUnresolvableSecretsAndFiles(t *testing.T) {
	c, err := Parse([]byte(minimal+"cloud:\n  ca_file: missing-ca.pem\n"), filepath.Join(t.TempDir(), "socsync.yaml"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	err = c.CheckResources(noEnv)
	for _, w := range []string{"tenants[0].credential.client_secret: environment variable CONTOSO_SECRET", "cloud.ca_file: cannot read"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("CheckResources error %v does not contain %q", err, w)
		}
	}
	if err := c.CheckResources(func(k string) string { return map[string]string{"CONTOSO_SECRET": "x"}[k] }); err == nil || strings.Contains(err.Error(), "CONTOSO_SECRET") {
		t.Errorf("with the secret set only the CA file should fail: %v", err)
	}
}

func TestRedacted_HidesDatabasePassword(t *testing.T) {
	c, err := Parse([]byte(minimal+"database: postgres://socsync:topsecret@db:5432/s?sslmode=disable\n"), "c.yaml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Redacted()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "topsecret") || !strings.Contains(string(out), "socsync:redacted@db") {
		t.Errorf("redacted dump:\n%s", out)
	}
	if !strings.Contains(string(out), "env:CONTOSO_SECRET") {
		t.Errorf("secret references should be shown:\n%s", out)
	}
	if got := RedactURL("postgres://db/s?password=pw&user=u"); strings.Contains(got, "pw&") || !strings.Contains(got, "password=redacted") {
		t.Errorf("RedactURL query password: %s", got)
	}
}

func TestPath_IsRelativeToTheConfigFile(t *testing.T) {
	c := &Config{File: "/etc/socsync/socsync.yaml"}
	if got := c.Path("ca.pem"); got != "/etc/socsync/ca.pem" {
		t.Errorf("Path = %s", got)
	}
	if got := c.Path("/abs/ca.pem"); got != "/abs/ca.pem" {
		t.Errorf("Path = %s", got)
	}
}

// FuzzParse: no input makes the loader panic, and every error it returns names the file.
func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	f.Add([]byte("server:\n  listen: [\n"))
	f.Add([]byte("tenants:\n  - id: 1\n    sentinel: {a: b}\n"))
	f.Add([]byte("polling:\n  idle: -5s\n  workers: 99999999999999999999\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := Parse(data, "fuzz.yaml", noEnv)
		if err != nil && !strings.Contains(err.Error(), "fuzz.yaml") {
			t.Errorf("error does not name the file: %v", err)
		}
	})
}
