package web_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/socsync/socsync/internal/httpapi"
	"github.com/socsync/socsync/internal/incident"
	"github.com/socsync/socsync/internal/store"
	"github.com/socsync/socsync/internal/store/storetest"
	"github.com/socsync/socsync/internal/web"
)

// BenchmarkQueue_FirstPageOf100kIncidents measures the queue page as a browser gets it (session
// check, query, template) over 100,000 incidents of 20 tenants: the first page newest first for
// an admin and for an analyst of two tenants, one tenant sorted by severity, a page 20 pages
// deep, and title searches (which scan: one whose matches are the newest incidents, one whose
// single match is among the oldest). The page must stay well under a second.
func BenchmarkQueue_FirstPageOf100kIncidents(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) {
		benchQueue(b, "sqlite:"+filepath.Join(b.TempDir(), "bench.db"))
	})
	b.Run("postgres", func(b *testing.B) {
		base := os.Getenv("SOCSYNC_TEST_POSTGRES")
		if base == "" {
			b.Skip("SOCSYNC_TEST_POSTGRES is not set")
		}
		benchQueue(b, postgresDSN(b, base))
	})
}

const (
	benchIncidents = 100_000
	benchTenants   = 20
)

func benchQueue(b *testing.B, dsn string) {
	ctx := context.Background()
	clock := storetest.NewClock()
	st, err := store.Open(ctx, dsn, store.Options{Now: clock.Now})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	var tenants []store.Tenant
	var sources []store.Source
	for i := range benchTenants {
		id := fmt.Sprintf("%08x-0000-0000-0000-%012x", i+1, i+1)
		tenants = append(tenants, store.Tenant{ID: id, Name: fmt.Sprintf("Customer %02d", i+1)})
		sources = append(sources, store.Source{TenantID: id, Kind: store.KindDefender})
	}
	if err := st.SyncTenants(ctx, tenants, sources); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	sevs := incident.Severities
	statuses := []incident.Status{incident.StatusNew, incident.StatusActive, incident.StatusInProgress, incident.StatusResolved}
	const batch = 2000
	for first := 0; first < benchIncidents; first += batch {
		clock.Advance(time.Second)
		err := st.InTx(ctx, func(tx *store.Tx) error {
			for i := first; i < first+batch; i++ {
				inc := &incident.Incident{TenantID: tenants[i%benchTenants].ID, Title: fmt.Sprintf("Suspicious sign-in activity %06d", i),
					Fields: incident.Fields{Status: statuses[i%len(statuses)], Severity: sevs[(i/7)%len(sevs)],
						Owner: fmt.Sprintf("analyst%d@mssp.example", i%13)},
					Sources: []incident.Source{incident.SourceDefender, incident.SourceSentinel}, AlertCount: 1 + i%5,
					CreatedAt: clock.Now().Add(-time.Duration(i) * time.Second), UpdatedAt: clock.Now().Add(time.Duration(i%batch) * time.Millisecond)}
				if _, err := tx.CreateIncident(ctx, inc, fmt.Sprintf("graph:%d", i), store.Change{}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("seeded %d incidents in %s", benchIncidents, time.Since(start).Round(time.Millisecond))

	hash, err := web.HashPassword(password)
	if err != nil {
		b.Fatal(err)
	}
	for _, u := range []store.User{{Name: "admin", Role: httpapi.RoleAdmin},
		{Name: "analyst", Role: httpapi.RoleAnalyst, Tenants: []string{tenants[3].ID, tenants[7].ID}}} {
		u.PasswordHash = hash
		if err := st.CreateUser(ctx, &u); err != nil {
			b.Fatal(err)
		}
		if err := st.CreateSession(ctx, "session-"+u.Name, u.ID, "csrf-"+u.Name, clock.Now().Add(time.Hour), "", ""); err != nil {
			b.Fatal(err)
		}
	}
	h := web.New(web.Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Store: st, Now: clock.Now})
	get := func(b *testing.B, user, path string) string {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.AddCookie(&http.Cookie{Name: "socsync_session", Value: "session-" + user})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("GET %s as %s: %d", path, user, rec.Code)
		}
		return rec.Body.String()
	}
	nextRE := regexp.MustCompile(`href="([^"]+)" rel="next"`)
	deep := "/incidents"
	for range 20 {
		m := nextRE.FindStringSubmatch(get(b, "admin", deep))
		if m == nil {
			b.Fatal("no next page")
		}
		deep = strings.ReplaceAll(m[1], "&amp;", "&")
	}
	for _, bc := range []struct{ name, user, path string }{
		{"admin_newest_first", "admin", "/incidents"},
		{"analyst_of_two_tenants", "analyst", "/incidents"},
		{"one_tenant_by_severity", "admin", "/incidents?sort=severity&tenant=" + tenants[5].ID},
		{"status_and_severity_filter", "admin", "/incidents?status=new&severity=high"},
		{"page_21", "admin", deep},
		{"title_search", "admin", "/incidents?q=activity+0999"},
		{"title_search_one_match", "admin", "/incidents?q=activity+000017"}, // reads every title
	} {
		b.Run(bc.name, func(b *testing.B) {
			if rows := strings.Count(get(b, bc.user, bc.path), `class="incident-row"`); rows == 0 {
				b.Fatalf("%s shows no incidents", bc.path)
			}
			b.ResetTimer()
			for b.Loop() {
				get(b, bc.user, bc.path)
			}
		})
	}
}

// postgresDSN gives the benchmark a fresh schema of the server at base, dropped afterwards.
func postgresDSN(b *testing.B, base string) string {
	schema := fmt.Sprintf("bench_web_%d", time.Now().UnixNano())
	if err := execSQL(base, "CREATE SCHEMA "+schema); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { execSQL(base, "DROP SCHEMA "+schema+" CASCADE") })
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + schema
}

func execSQL(dsn, stmt string) error {
	db, err := sql.Open("pgx", dsn) // the driver the store registers
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(context.Background(), stmt)
	return err
}
