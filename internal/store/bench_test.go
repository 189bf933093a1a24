package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socsync/socsync/internal/incident"
	"github.com/socsync/socsync/internal/store"
)

// BenchmarkUpsertIncidents measures the ingest path: each op stores one new remote incident
// (hub incident, its link and its first outbox row), in transactions of 100 as a poll page
// would, from as many writers as a replica runs pollers (SQLite serialises them; PostgreSQL
// runs them in parallel). Reported as upserts/s.
func BenchmarkUpsertIncidents(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) {
		benchUpserts(b, "sqlite:"+filepath.Join(b.TempDir(), "bench.db"))
	})
	b.Run("postgres", func(b *testing.B) {
		base := os.Getenv("SOCSYNC_TEST_POSTGRES")
		if base == "" {
			b.Skip("SOCSYNC_TEST_POSTGRES is not set")
		}
		benchUpserts(b, PostgresDSN(base)(b))
	})
}

func benchUpserts(b *testing.B, dsn string) {
	ctx := context.Background()
	s, err := store.Open(ctx, dsn, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	const tenant = "dddddddd-0000-0000-0000-000000000001"
	if err := s.SyncTenants(ctx, []store.Tenant{{ID: tenant, Name: "bench"}},
		[]store.Source{{TenantID: tenant, Kind: store.KindDefender}}); err != nil {
		b.Fatal(err)
	}
	src := store.SourceID(tenant, store.KindDefender, "")
	observed := json.RawMessage(`{"status":"active","severity":"high","assignedTo":"ana@contoso.com"}`)
	const batch, writers = 100, 8
	var next atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				first := next.Add(batch) - batch
				if first >= int64(b.N) {
					return
				}
				err := s.InTx(ctx, func(tx *store.Tx) error {
					for j := first; j < min(first+batch, int64(b.N)); j++ {
						id := fmt.Sprintf("%d", j)
						inc := &incident.Incident{TenantID: tenant, Title: "bench " + id, Fields: incident.Fields{
							Status: incident.StatusNew, Severity: incident.SeverityHigh}}
						if _, err := tx.CreateIncident(ctx, inc, "graph:"+id, store.Change{}); err != nil {
							return err
						}
						if _, err := tx.UpsertLink(ctx, &store.Link{TenantID: tenant, IncidentID: inc.ID, SourceID: src,
							Kind: store.LinkGraph, ExternalID: id, Observed: observed, Raw: observed, RemoteUpdated: time.Now()}); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "upserts/s")
}
