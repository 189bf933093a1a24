package cli

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socsync/socsync/internal/store"
)

// syncBuffer is a bytes.Buffer safe to read while a command writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func run(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb syncBuffer
	code = Run(context.Background(), args, func(k string) string { return env[k] }, &out, &errb)
	return code, out.String(), errb.String()
}

const tenantConfig = `
server:
  listen: 127.0.0.1:0
database: sqlite:data/socsync.db
tenants:
  - id: 11111111-1111-1111-1111-111111111111
    name: Contoso
    credential: {client_id: 55555555-5555-5555-5555-555555555555, client_secret: env:CONTOSO_SECRET}
`

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "socsync.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

var secretEnv = map[string]string{"CONTOSO_SECRET": "hunter2-not-printed"}

func TestRun_UnknownCommandIsAUsageError(t *testing.T) {
	if code, _, stderr := run(t, nil, "frobnicate"); code != 2 || !strings.Contains(stderr, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: exit %d, %q", code, stderr)
	}
	if code, stdout, _ := run(t, nil, "help"); code != 0 || !strings.Contains(stdout, "serve") {
		t.Errorf("help: exit %d, %q", code, stdout)
	}
}

func TestVersion_PrintsTheVersion(t *testing.T) {
	code, stdout, _ := run(t, nil, "version")
	if code != 0 || !strings.HasPrefix(stdout, "socsync ") {
		t.Errorf("version: exit %d, %q", code, stdout)
	}
}

func TestConfigCheck_ValidConfigPassesAndMissingSecretFails(t *testing.T) {
	p := writeConfig(t, tenantConfig)
	if code, stdout, stderr := run(t, secretEnv, "config", "check", "--config", p); code != 0 || !strings.Contains(stdout, "ok (1 tenants, 1 sources") {
		t.Errorf("check: exit %d, %q %q", code, stdout, stderr)
	}
	code, _, stderr := run(t, nil, "config", "check", "--config", p)
	if code != 2 || !strings.Contains(stderr, "tenants[0].credential.client_secret: environment variable CONTOSO_SECRET") {
		t.Errorf("check without the secret: exit %d, %q", code, stderr)
	}
	// SOCSYNC_CONFIG stands in for --config.
	if code, _, _ := run(t, map[string]string{"SOCSYNC_CONFIG": p, "CONTOSO_SECRET": "x"}, "config", "check"); code != 0 {
		t.Errorf("check with SOCSYNC_CONFIG: exit %d", code)
	}
}

func TestConfigShow_NeverPrintsSecrets(t *testing.T) {
	p := writeConfig(t, strings.Replace(tenantConfig, "database: sqlite:data/socsync.db", "database: postgres://socsync:pg-password@db/socsync", 1))
	code, stdout, _ := run(t, secretEnv, "config", "show", "--config", p)
	if code != 0 {
		t.Fatalf("show: exit %d", code)
	}
	for _, secret := range []string{"hunter2", "pg-password"} {
		if strings.Contains(stdout, secret) {
			t.Errorf("config show printed %q:\n%s", secret, stdout)
		}
	}
	if !strings.Contains(stdout, "env:CONTOSO_SECRET") {
		t.Errorf("config show should show the secret's reference:\n%s", stdout)
	}
}

// A malformed configuration gets an error naming the key, exit 2, and nothing is written.
func TestMalformedConfig_NamesTheKeyExits2AndWritesNothing(t *testing.T) {
	tests := []struct{ name, text, want string }{
		{"wrong type", strings.Replace(tenantConfig, "server:\n", "polling:\n  workers: lots\nserver:\n", 1), "polling.workers: want a whole number"},
		{"unknown key", strings.Replace(tenantConfig, "listen:", "lisen:", 1), `server.lisen: unknown key "lisen"`},
		{"missing tenant id", strings.Replace(tenantConfig, "- id: 11111111-1111-1111-1111-111111111111\n    name", "- name", 1), "tenants[0].id: required"},
		{"inline secret", strings.Replace(tenantConfig, "env:CONTOSO_SECRET", "Pa55w0rd-inline", 1), "tenants[0].credential.client_secret: secrets are never written inline"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeConfig(t, tt.text)
			for _, cmd := range [][]string{{"config", "check"}, {"migrate"}, {"serve"}} {
				code, _, stderr := run(t, secretEnv, append(cmd, "--config", p)...)
				if code != 2 || !strings.Contains(stderr, tt.want) || !strings.Contains(stderr, "socsync.yaml") {
					t.Errorf("%v: exit %d, stderr %q; want 2 and %q", cmd, code, stderr, tt.want)
				}
				if strings.Contains(stderr, "Pa55w0rd") {
					t.Errorf("%v echoed the inline secret", cmd)
				}
			}
			if entries, _ := os.ReadDir(filepath.Dir(p)); len(entries) != 1 {
				t.Errorf("files written next to the config: %d entries", len(entries))
			}
		})
	}
}

func TestServe_RefusesAnUnmigratedDatabase(t *testing.T) {
	p := writeConfig(t, tenantConfig)
	code, _, stderr := run(t, secretEnv, "serve", "--config", p)
	if code != 1 || !strings.Contains(stderr, "socsync migrate") {
		t.Errorf("serve unmigrated: exit %d, %q", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(p), "data", "socsync.db")); err == nil {
		t.Error("serve created the database file")
	}
}

var servingRE = regexp.MustCompile(`url=(http://[0-9.:]+)`)

func TestServe_HealthReadinessMetricsAndGracefulShutdown(t *testing.T) {
	p := writeConfig(t, tenantConfig)
	if code, stdout, stderr := run(t, secretEnv, "migrate", "--config", p); code != 0 || !strings.Contains(stdout, "schema version") {
		t.Fatalf("migrate: exit %d, %q %q", code, stdout, stderr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int)
	go func() {
		done <- Run(ctx, []string{"serve", "--config", p}, func(k string) string { return secretEnv[k] }, &stdout, &stderr)
	}()
	var base string
	for deadline := time.Now().Add(10 * time.Second); base == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := servingRE.FindStringSubmatch(stderr.String()); m != nil {
			base = m[1]
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited %d: %s", code, stderr.String())
		default:
		}
	}
	if base == "" {
		t.Fatalf("serve did not start: %s", stderr.String())
	}
	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/healthz"); code != 200 || !strings.Contains(body, `"ok"`) {
		t.Errorf("/healthz = %d %s", code, body)
	}
	if code, body := get("/readyz"); code != 200 || !strings.Contains(body, `"ready"`) {
		t.Errorf("/readyz = %d %s", code, body)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics = %d", code)
	}
	cancel() // what SIGINT/SIGTERM do through signal.NotifyContext in main
	select {
	case code := <-done:
		if code != 0 || !strings.Contains(stderr.String(), "stopped") {
			t.Errorf("serve exited %d after shutdown: %s", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop")
	}
	if strings.Contains(stderr.String(), "hunter2") {
		t.Error("the log contains a secret")
	}
}

func TestTokenCreate_PrintsTheTokenOnceAndItAuthenticates(t *testing.T) {
	p := writeConfig(t, tenantConfig)
	if code, _, stderr := run(t, secretEnv, "migrate", "--config", p); code != 0 {
		t.Fatal(stderr)
	}
	code, stdout, stderr := run(t, secretEnv, "token", "create", "--config", p, "--name", "ci", "--role", "analyst", "--tenants", "11111111-1111-1111-1111-111111111111")
	tok := strings.TrimSpace(stdout)
	if code != 0 || !strings.HasPrefix(tok, "ssk_") || strings.Contains(stderr, tok) {
		t.Fatalf("token create: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(filepath.Dir(p), "data", "socsync.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := st.TokenByValue(context.Background(), tok)
	st.Close()
	if err != nil || got.Name != "ci" || got.Role != "analyst" || len(got.Tenants) != 1 {
		t.Errorf("stored token = %+v, %v", got, err)
	}
	if code, _, stderr := run(t, secretEnv, "token", "create", "--config", p, "--name", "ci", "--role", "viewer", "--tenants", "11111111-1111-1111-1111-111111111111"); code != 2 || !strings.Contains(stderr, "exists") {
		t.Errorf("duplicate name: exit %d, %q", code, stderr)
	}
	for _, bad := range [][]string{
		{"--name", "x", "--role", "root"},
		{"--name", "x", "--role", "analyst"},
		{"--name", "x", "--role", "viewer", "--tenants", "22222222-2222-2222-2222-222222222222"},
		{"--name", "x", "--role", "admin", "--tenants", "11111111-1111-1111-1111-111111111111"},
	} {
		if code, _, _ := run(t, secretEnv, append([]string{"token", "create", "--config", p}, bad...)...); code != 2 {
			t.Errorf("%v: exit %d, want 2", bad, code)
		}
	}
}

func TestConsentURL_PrintsTheURLAndRefusesUnknownTenants(t *testing.T) {
	p := writeConfig(t, tenantConfig)
	code, stdout, _ := run(t, nil, "consent-url", "--config", p, "--tenant", "11111111-1111-1111-1111-111111111111")
	if code != 0 || !strings.Contains(stdout, "/11111111-1111-1111-1111-111111111111/adminconsent?client_id=55555555-5555-5555-5555-555555555555") {
		t.Errorf("consent-url: exit %d, %q", code, stdout)
	}
	if code, _, stderr := run(t, nil, "consent-url", "--config", p, "--tenant", "nope"); code != 2 || !strings.Contains(stderr, "not configured") {
		t.Errorf("unknown tenant: exit %d, %q", code, stderr)
	}
}
