package cli

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socsync/socsync/internal/store"
)

// serve refuses a database that exists but was never migrated (an empty SQLite file, a new
// PostgreSQL database) with exit 1 and the command to run, and leaves it unmigrated: only
// migrate changes the schema.
func TestServe_RefusesAnExistingUnmigratedDatabase(t *testing.T) {
	dbs := map[string]func(t *testing.T, dir string) string{
		"sqlite empty file": func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "empty.db")
			if err := os.WriteFile(p, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return "sqlite:" + p
		},
	}
	if base := os.Getenv("SOCSYNC_TEST_POSTGRES"); base != "" {
		dbs["postgres new database"] = func(t *testing.T, _ string) string { return freshPostgresDatabase(t, base) }
	}
	for name, newDB := range dbs {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			dsn := newDB(t, dir)
			p := filepath.Join(dir, "socsync.yaml")
			cfg := strings.Replace(tenantConfig, "database: sqlite:data/socsync.db", "database: "+dsn, 1)
			if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			code, _, stderr := run(t, secretEnv, "serve", "--config", p)
			if code != exitFailure || !strings.Contains(stderr, "not migrated") || !strings.Contains(stderr, "run socsync migrate") {
				t.Errorf("serve on an unmigrated database: exit %d, stderr %q; want 1 and the migrate hint", code, stderr)
			}
			if strings.Contains(stderr, "serving") {
				t.Errorf("serve started before refusing: %q", stderr)
			}
			ctx := context.Background()
			s, err := store.Open(ctx, dsn, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.CheckMigrated(ctx); !errors.Is(err, store.ErrNotMigrated) {
				t.Errorf("after serve refused, CheckMigrated = %v; want the database still unmigrated", err)
			}
			// And once migrated, the same database is accepted as far as the schema goes.
			if code, stdout, stderr := run(t, secretEnv, "migrate", "--config", p); code != 0 || !strings.Contains(stdout, "schema version") {
				t.Fatalf("migrate: exit %d, %q %q", code, stdout, stderr)
			}
			if err := s.CheckMigrated(ctx); err != nil {
				t.Errorf("after migrate, CheckMigrated = %v", err)
			}
		})
	}
}

// freshPostgresDatabase creates an empty database on the server of base (a URL) and returns its
// URL; the database is dropped when the test ends.
func freshPostgresDatabase(t *testing.T, base string) string {
	t.Helper()
	ctx := context.Background()
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	b := make([]byte, 6)
	rand.Read(b)
	name := "socsync_cli_" + hex.EncodeToString(b)
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("PostgreSQL at %s: %v", base, err)
	}
	t.Cleanup(func() {
		if _, err := admin.ExecContext(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}
