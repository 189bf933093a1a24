package cli

import (
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
