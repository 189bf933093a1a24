package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// Every kind of scalar key outside lists and maps takes its value from the environment,
// including numbers with a fraction and optional booleans, over the file's value.
func TestParse_EnvironmentOverridesEveryScalarKind(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string // appended to minimal
		env   map[string]string
		check func(c *Config) bool
	}{
		{"float sync.rate", "", map[string]string{"SOCSYNC_SYNC_RATE": "2.5"},
			func(c *Config) bool { return c.Sync.Rate == 2.5 }},
		{"float over the file", "sync:\n  rate: 7\n", map[string]string{"SOCSYNC_SYNC_RATE": "0.25"},
			func(c *Config) bool { return c.Sync.Rate == 0.25 }},
		{"*bool off over its default", "", map[string]string{"SOCSYNC_SYNC_RAISE_MERGE_TARGET_SEVERITY": "false"},
			func(c *Config) bool { return !c.Sync.RaiseSeverity() }},
		{"*bool on over the file", "sync:\n  raise_merge_target_severity: false\n", map[string]string{"SOCSYNC_SYNC_RAISE_MERGE_TARGET_SEVERITY": "true"},
			func(c *Config) bool { return c.Sync.RaiseSeverity() }},
		{"nested *bool", "", map[string]string{"SOCSYNC_SYNC_ALERT_RULES_ENABLED": "false"},
			func(c *Config) bool { return !c.Sync.AlertRules.RulesEnabled() }},
		{"nested *bool over the file", "sync:\n  alert_rules:\n    enabled: false\n", map[string]string{"SOCSYNC_SYNC_ALERT_RULES_ENABLED": "1"},
			func(c *Config) bool { return c.Sync.AlertRules.RulesEnabled() }},
		{"duration", "", map[string]string{"SOCSYNC_SYNC_ALERT_RULES_REFRESH": "90s"},
			func(c *Config) bool { return c.Sync.AlertRules.Refresh.D() == 90*time.Second }},
		{"whole number", "", map[string]string{"SOCSYNC_SYNC_WORKERS": "3"},
			func(c *Config) bool { return c.Sync.Workers == 3 }},
		{"secret reference", "", map[string]string{"SOCSYNC_FORWARD_CREDENTIAL_CLIENT_SECRET": "env:FWD"},
			func(c *Config) bool { return c.Forward.Credential.ClientSecret == "env:FWD" }},
		{"unset *bool keeps the default", "", nil,
			func(c *Config) bool {
				return c.Sync.RaiseMergeTargetSeverity == nil && c.Sync.RaiseSeverity() && c.Sync.AlertRules.RulesEnabled() && c.Sync.Rate == 0
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(minimal+tt.yaml), "socsync.yaml", envOf(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Errorf("override %v not applied: sync = %+v", tt.env, c.Sync)
			}
		})
	}
}

// A value of the wrong form is a configuration error that names the variable and the key.
func TestParse_BadEnvironmentValueNamesTheVariableAndKey(t *testing.T) {
	tests := []struct {
		name, value, want string
	}{
		{"SOCSYNC_SYNC_RATE", "fast", `environment: SOCSYNC_SYNC_RATE: overrides sync.rate: want a number such as 2 or 0.5, got "fast"`},
		{"SOCSYNC_SYNC_RATE", "NaN", `environment: SOCSYNC_SYNC_RATE: overrides sync.rate: want a number`},
		{"SOCSYNC_SYNC_RATE", "+Inf", `environment: SOCSYNC_SYNC_RATE: overrides sync.rate: want a number`},
		{"SOCSYNC_SYNC_RATE", "-1", `socsync.yaml: sync.rate: want 0 (unbounded) or more, got -1`},
		{"SOCSYNC_SYNC_RAISE_MERGE_TARGET_SEVERITY", "maybe", `environment: SOCSYNC_SYNC_RAISE_MERGE_TARGET_SEVERITY: overrides sync.raise_merge_target_severity: want true or false, got "maybe"`},
		{"SOCSYNC_SYNC_ALERT_RULES_ENABLED", "yes", `environment: SOCSYNC_SYNC_ALERT_RULES_ENABLED: overrides sync.alert_rules.enabled: want true or false, got "yes"`},
		{"SOCSYNC_POLLING_WORKERS", "2.5", `environment: SOCSYNC_POLLING_WORKERS: overrides polling.workers: want a whole number, got "2.5"`},
		{"SOCSYNC_POLLING_IDLE", "60", `environment: SOCSYNC_POLLING_IDLE: overrides polling.idle: want a duration such as 30s, got "60"`},
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			_, err := Parse([]byte(minimal), "socsync.yaml", envOf(map[string]string{tt.name: tt.value}))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v\nwant it to contain %q", err, tt.want)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Errorf("error %T is not a *config.Error", err)
			}
		})
	}
}

// Every scalar field outside lists and maps, whatever its Go type, has an environment variable:
// a field of a kind the walk skipped would silently ignore its variable.
func TestEnvKeys_CoverEveryScalarFieldOutsideListsAndMaps(t *testing.T) {
	var want []string
	var walk func(tp reflect.Type, prefix string)
	walk = func(tp reflect.Type, prefix string) {
		for i := range tp.NumField() {
			tag, _, _ := strings.Cut(tp.Field(i).Tag.Get("yaml"), ",")
			if tag == "" || tag == "-" {
				continue
			}
			path := strings.TrimPrefix(prefix+"."+tag, ".")
			switch ft := tp.Field(i).Type; ft.Kind() {
			case reflect.Struct:
				walk(ft, path)
			case reflect.Slice, reflect.Map:
			default:
				want = append(want, path)
			}
		}
	}
	walk(reflect.TypeFor[Config](), "")
	keys := EnvKeys()
	for _, path := range want {
		if keys[envName(path)] != path {
			t.Errorf("%s has no environment variable (want %s)", path, envName(path))
		}
	}
	for _, path := range []string{"sync.rate", "sync.raise_merge_target_severity", "sync.alert_rules.enabled", "server.tls.cert_file"} {
		if keys[envName(path)] != path {
			t.Errorf("%s missing from EnvKeys", path)
		}
	}
}

// A SOCSYNC_ variable that names no key is an error naming it (with the key it probably
// meant), unless socsync reads it for something else or the configuration refers to it.
func TestCheckEnv_RefusesVariablesThatNameNoKey(t *testing.T) {
	const withRefs = minimal + `forward:
  credential: {client_id: 55555555-5555-5555-5555-555555555555, client_secret: env:SOCSYNC_FORWARD_SECRET}
webhooks:
  - {name: splunk, kind: splunk, tenant: 11111111-1111-1111-1111-111111111111, token: env:SOCSYNC_SPLUNK_TOKEN}
`
	tests := []struct {
		name  string
		names []string
		wants []string // substrings of the error; none: no error
	}{
		{"misspelt key", []string{"SOCSYNC_POLING_IDLE=5s"},
			[]string{"environment: SOCSYNC_POLING_IDLE: no such configuration key (did you mean SOCSYNC_POLLING_IDLE?)"}},
		{"misspelt nested key", []string{"SOCSYNC_SYNC_ALERT_RULE_ENABLED"},
			[]string{"SOCSYNC_SYNC_ALERT_RULE_ENABLED: no such configuration key (did you mean SOCSYNC_SYNC_ALERT_RULES_ENABLED?)"}},
		{"nothing close", []string{"SOCSYNC_FROBNICATE=1"},
			[]string{"environment: SOCSYNC_FROBNICATE: no such configuration key (SOCSYNC_ + a key path"}},
		{"key inside a list", []string{"SOCSYNC_TENANTS_0_NAME=x"},
			[]string{"SOCSYNC_TENANTS_0_NAME: no such configuration key"}},
		{"key inside a map", []string{"SOCSYNC_SYNC_POLICY_FIELDS_OWNER=hub_wins"},
			[]string{"SOCSYNC_SYNC_POLICY_FIELDS_OWNER: no such configuration key"}},
		{"every bad one at once", []string{"SOCSYNC_A=1", "SOCSYNC_B=2", "SOCSYNC_A=1"},
			[]string{"environment: SOCSYNC_A:", "environment: SOCSYNC_B:"}},
		{"keys", []string{"SOCSYNC_POLLING_IDLE=5s", "SOCSYNC_SYNC_RATE=1", "SOCSYNC_SYNC_ALERT_RULES_ENABLED=false", "SOCSYNC_DATABASE"}, nil},
		{"variables socsync reads for other things", []string{"SOCSYNC_CONFIG=/etc/socsync.yaml", "SOCSYNC_TEST_POSTGRES=postgres://x",
			"SOCSYNC_ARTIFACTS=/tmp", "SOCSYNC_SKIP_BROWSER=1", "SOCSYNC_CHROMIUM=/usr/bin/chromium", "SOCSYNC_CHAOS_LONG=1",
			"SOCSYNC_CHAOS_KILLS=200", "SOCSYNC_SOAK=30m", "SOCSYNC_SOAK_SEED=4", "SOCSYNC_TEST_KILLS=9", "SOCSYNC_TEST_WAIT=1m"}, nil},
		{"secret references", []string{"SOCSYNC_FORWARD_SECRET=s", "SOCSYNC_SPLUNK_TOKEN=t"}, nil},
		{"other prefixes", []string{"PATH=/bin", "SOCSYNCX=1", "socsync_polling_idle=1"}, nil},
	}
	c, err := Parse([]byte(withRefs), "socsync.yaml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.CheckEnv(tt.names)
			if len(tt.wants) == 0 {
				if err != nil {
					t.Fatalf("want no error, got %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("want an error, got none")
			}
			for _, w := range tt.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
			if n := strings.Count(err.Error(), "environment: SOCSYNC_A:"); n > 1 {
				t.Errorf("a variable listed twice is reported %d times", n)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Errorf("error %T is not a *config.Error", err)
			}
		})
	}
}

// Every SOCSYNC_ variable named anywhere in the repository (code, tests, CI, deployment files,
// docs) is a configuration key, in OtherEnv, or used as an env: secret reference: adding a
// variable without listing it would make `serve` refuse the environment it runs in.
func TestOtherEnv_ListsEverySOCSYNCVariableTheRepositoryUses(t *testing.T) {
	root := filepath.Join("..", "..")
	nameRE := regexp.MustCompile(`(env:)?\bSOCSYNC_[A-Z0-9_]*(?:[A-Z0-9]|_\*)`)
	keys := EnvKeys()
	// The examples of misspelt variables in the README and the command line's tests.
	misspelt := map[string]bool{"SOCSYNC_POLING_IDLE": true, "SOCSYNC_SYNC_RAET": true}
	found := map[string]string{} // name → a file naming it
	refs := map[string]bool{}    // names used as env: references
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n == ".git" || n == "tmp" || n == "node_modules" {
				return filepath.SkipDir
			}
			return nil
		}
		if p == filepath.Join(root, "internal", "config", "env_test.go") { // this file's deliberate misspellings
			return nil
		}
		switch ext := filepath.Ext(p); {
		case ext == ".go", ext == ".md", ext == ".yaml", ext == ".yml", ext == ".service", ext == ".sh",
			filepath.Base(p) == "Dockerfile", filepath.Base(p) == "run":
		default:
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range nameRE.FindAllStringSubmatch(string(b), -1) {
			name := strings.TrimPrefix(m[0], "env:")
			if m[1] != "" {
				refs[name] = true
			} else if keys[name] == "" && !otherEnv(name) && !slices.Contains(OtherEnv, name) && !misspelt[name] {
				found[name] = p
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range found {
		if !refs[n] {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		t.Errorf("%s (used in %s) is neither a configuration key nor listed in config.OtherEnv", n, found[n])
	}
}
