package store_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socsync/socsync/internal/store/storetest"
)

func TestSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) string {
		return "sqlite:" + filepath.Join(t.TempDir(), "socsync.db")
	})
}

// TestPostgres runs the suite on PostgreSQL. SOCSYNC_TEST_POSTGRES names the server (a URL);
// CI always sets it, so there the suite fails, never skips, when the server is unreachable.
func TestPostgres(t *testing.T) {
	t.Parallel()
	base := os.Getenv("SOCSYNC_TEST_POSTGRES")
	if base == "" {
		t.Skip("SOCSYNC_TEST_POSTGRES is not set (CI sets it; see .ci/run)")
	}
	newDSN := PostgresDSN(base)
	storetest.Run(t, func(t *testing.T) string { return newDSN(t) })
}

// PostgresDSN gives each test a fresh schema of the server at base, dropped afterwards.
func PostgresDSN(base string) func(t testing.TB) string {
	return func(t testing.TB) string {
		t.Helper()
		db, err := sql.Open("pgx", base)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		b := make([]byte, 6)
		rand.Read(b)
		schema := "t_" + hex.EncodeToString(b)
		if _, err := db.ExecContext(context.Background(), "CREATE SCHEMA "+schema); err != nil {
			t.Fatalf("PostgreSQL at %s: %v", base, err)
		}
		t.Cleanup(func() { db.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE") })
		sep := "?"
		if strings.Contains(base, "?") {
			sep = "&"
		}
		return base + sep + "search_path=" + schema
	}
}
