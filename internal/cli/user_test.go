package cli

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socsync/socsync/internal/store"
	"github.com/socsync/socsync/internal/web"
)

func storedUser(t *testing.T, configPath, name string) store.User {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(filepath.Dir(configPath), "data", "socsync.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	u, err := st.UserByName(context.Background(), name)
	if err != nil {
		t.Fatalf("user %s: %v", name, err)
	}
	return u
}

func TestUserCreate_GeneratesAPasswordPrintedOnceAndStoredHashed(t *testing.T) {
	p := writeConfig(t, tenantConfig)
	if code, _, stderr := run(t, secretEnv, "migrate", "--config", p); code != 0 {
		t.Fatal(stderr)
	}
	code, stdout, stderr := run(t, secretEnv, "user", "create", "--config", p, "--name", "Ana@MSSP.example", "--role", "admin")
	pw := strings.TrimSpace(stdout)
	if code != 0 || len(pw) < web.MinPasswordLen || strings.Contains(stderr, pw) || !strings.Contains(stderr, `"ana@mssp.example" (admin) created`) {
		t.Fatalf("user create: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	u := storedUser(t, p, "ana@mssp.example")
	if u.Role != "admin" || len(u.Tenants) != 0 || u.PasswordHash == pw || !web.CheckPassword(u.PasswordHash, pw) {
		t.Errorf("stored user = %+v; want an admin whose hash checks the printed password", u)
	}
	if code, _, stderr := run(t, secretEnv, "user", "create", "--config", p, "--name", "ANA@mssp.example", "--role", "admin"); code != 2 || !strings.Contains(stderr, "exists") {
		t.Errorf("duplicate name: exit %d, %q", code, stderr)
	}
}

func TestUserCreate_ReadsThePasswordFromStdin(t *testing.T) {
	p := writeConfig(t, tenantConfig)
	if code, _, stderr := run(t, secretEnv, "migrate", "--config", p); code != 0 {
		t.Fatal(stderr)
	}
	var out, errb syncBuffer
	e := env{getenv: func(k string) string { return secretEnv[k] }, stdout: &out, stderr: &errb,
		stdin: strings.NewReader("a long enough passphrase\n")}
	code := cmdUser(context.Background(), e, []string{"create", "--config", p, "--name", "bob", "--role", "viewer",
		"--tenants", "11111111-1111-1111-1111-111111111111", "--password-stdin"})
	if code != 0 || out.String() != "" {
		t.Fatalf("exit %d, stdout %q (want nothing printed), stderr %q", code, out.String(), errb.String())
	}
	u := storedUser(t, p, "bob")
	if u.Role != "viewer" || len(u.Tenants) != 1 || !web.CheckPassword(u.PasswordHash, "a long enough passphrase") {
		t.Errorf("stored user = %+v", u)
	}
	e.stdin = strings.NewReader("short\n")
	if code := cmdUser(context.Background(), e, []string{"create", "--config", p, "--name", "carl", "--role", "admin", "--password-stdin"}); code != 2 {
		t.Errorf("short password: exit %d, want 2", code)
	}
}

func TestUserCreate_RefusesBadRolesTenantsAndNames(t *testing.T) {
	p := writeConfig(t, tenantConfig)
	if code, _, stderr := run(t, secretEnv, "migrate", "--config", p); code != 0 {
		t.Fatal(stderr)
	}
	for _, bad := range [][]string{
		{"--name", "x", "--role", "root"},
		{"--name", "x", "--role", "analyst"},
		{"--name", "x", "--role", "viewer", "--tenants", "22222222-2222-2222-2222-222222222222"},
		{"--name", "x", "--role", "admin", "--tenants", "11111111-1111-1111-1111-111111111111"},
		{"--name", "two words", "--role", "admin"},
		{"--role", "admin"},
	} {
		if code, _, _ := run(t, secretEnv, append([]string{"user", "create", "--config", p}, bad...)...); code != 2 {
			t.Errorf("%v: exit %d, want 2", bad, code)
		}
	}
	if code, _, _ := run(t, secretEnv, "user", "delete"); code != 2 {
		t.Errorf("user delete: exit %d, want 2 (usage)", code)
	}
}
