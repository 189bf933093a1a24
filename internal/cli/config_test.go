package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The environment overrides go through every command that loads the configuration: a
// misspelt SOCSYNC_ variable or a bad value is a configuration error (exit 2) naming the
// variable, and float and optional boolean keys are applied.
func TestConfig_EnvironmentVariablesAreCheckedAndApplied(t *testing.T) {
	tests := []struct {
		name   string
		env    map[string]string // set in the process too: the check lists the process's names
		cmd    string
		code   int
		stdout string // substring of stdout
		stderr string // substring of stderr
	}{
		{"misspelt key", map[string]string{"SOCSYNC_POLING_IDLE": "5s"}, "check", 2, "",
			"environment: SOCSYNC_POLING_IDLE: no such configuration key (did you mean SOCSYNC_POLLING_IDLE?)"},
		{"misspelt key refused by show", map[string]string{"SOCSYNC_SYNC_RAET": "2"}, "show", 2, "",
			"SOCSYNC_SYNC_RAET: no such configuration key (did you mean SOCSYNC_SYNC_RATE?)"},
		{"bad float", map[string]string{"SOCSYNC_SYNC_RATE": "fast"}, "check", 2, "",
			`environment: SOCSYNC_SYNC_RATE: overrides sync.rate: want a number such as 2 or 0.5, got "fast"`},
		{"bad optional boolean", map[string]string{"SOCSYNC_SYNC_ALERT_RULES_ENABLED": "nope"}, "check", 2, "",
			`environment: SOCSYNC_SYNC_ALERT_RULES_ENABLED: overrides sync.alert_rules.enabled: want true or false, got "nope"`},
		{"float and optional booleans applied", map[string]string{"SOCSYNC_SYNC_RATE": "2.5",
			"SOCSYNC_SYNC_RAISE_MERGE_TARGET_SEVERITY": "false", "SOCSYNC_SYNC_ALERT_RULES_ENABLED": "false"}, "show", 0,
			"rate: 2.5\n    raise_merge_target_severity: false\n    alert_rules:\n        enabled: false", ""},
		{"variables that are not keys", map[string]string{"SOCSYNC_TEST_POSTGRES": "postgres://x", "SOCSYNC_CHAOS_LONG": "1",
			"SOCSYNC_ARTIFACTS": "/tmp"}, "check", 0, "ok (1 tenants", ""},
		{"secret reference", map[string]string{"SOCSYNC_CONTOSO_SECRET": "s3cret"}, "check", 0, "ok (1 tenants", ""},
	}
	cfg := writeConfig(t, strings.Replace(tenantConfig, "env:CONTOSO_SECRET", "env:SOCSYNC_CONTOSO_SECRET", 1))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"SOCSYNC_CONTOSO_SECRET": "s3cret"}
			for k, v := range tt.env {
				t.Setenv(k, v)
				env[k] = v
			}
			code, stdout, stderr := run(t, env, "config", tt.cmd, "--config", cfg)
			if code != tt.code || !strings.Contains(stdout, tt.stdout) || !strings.Contains(stderr, tt.stderr) {
				t.Errorf("config %s: exit %d, stdout %q, stderr %q; want exit %d, %q, %q", tt.cmd, code, stdout, stderr, tt.code, tt.stdout, tt.stderr)
			}
		})
	}
}

// The example configurations in examples/ pass `config check` once the secrets they reference
// exist (environment variables set in the process, so that the SOCSYNC_ check sees them too,
// and the file secret written beside the copy), and fail naming each missing one otherwise.
func TestConfigCheck_ExampleConfigurationsPass(t *testing.T) {
	tests := []struct {
		file    string
		env     map[string]string
		files   map[string]string // relative to the configuration's directory
		ok      string
		missing []string // what config check names without the secrets
	}{
		{"quickstart.yaml", nil, nil, "ok (0 tenants, 0 sources, 0 webhooks, forward off)", nil},
		{"socsync.yaml",
			map[string]string{"SOCSYNC_MSSP_APP_SECRET": "app-secret", "SOCSYNC_SPLUNK_CONTOSO_TOKEN": "splunk-token"},
			map[string]string{"secrets/fabrikam.secret": "fabrikam-secret\n"},
			"ok (2 tenants, 3 sources, 1 webhooks, forward off)",
			[]string{"apps[0].credential.client_secret: environment variable SOCSYNC_MSSP_APP_SECRET",
				"webhooks[0].token: environment variable SOCSYNC_SPLUNK_CONTOSO_TOKEN",
				"tenants[1].credential.client_secret: cannot read secret file"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			text, err := os.ReadFile(filepath.Join("..", "..", "examples", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			p := filepath.Join(dir, tt.file)
			if err := os.WriteFile(p, text, 0o600); err != nil {
				t.Fatal(err)
			}
			if len(tt.missing) > 0 {
				code, _, stderr := run(t, nil, "config", "check", "--config", p)
				if code != 2 {
					t.Errorf("without its secrets: exit %d, want 2", code)
				}
				for _, w := range tt.missing {
					if !strings.Contains(stderr, w) {
						t.Errorf("without its secrets, stderr %q\ndoes not name %q", stderr, w)
					}
				}
			}
			for name, content := range tt.files {
				f := filepath.Join(dir, name)
				if err := os.MkdirAll(filepath.Dir(f), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			code, stdout, stderr := run(t, tt.env, "config", "check", "--config", p)
			if code != 0 || !strings.Contains(stdout, tt.ok) {
				t.Errorf("config check %s: exit %d, stdout %q, stderr %q; want 0 and %q", tt.file, code, stdout, stderr, tt.ok)
			}
			if code, stdout, _ := run(t, tt.env, "config", "show", "--config", p); code != 0 || strings.Contains(stdout, "app-secret") || strings.Contains(stdout, "fabrikam-secret") {
				t.Errorf("config show %s: exit %d, or a secret printed:\n%s", tt.file, code, stdout)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1+len(tt.files) {
				t.Errorf("config check wrote files beside the configuration: %d entries", len(entries))
			}
		})
	}
}
