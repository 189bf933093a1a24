package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/socsync/socsync/internal/incident"
	"github.com/socsync/socsync/internal/store"
	"github.com/socsync/socsync/internal/store/storetest"
)

// The forwarder's outbox methods, on SQLite and (when SOCSYNC_TEST_POSTGRES is set) PostgreSQL.
func TestForwardOutbox(t *testing.T) {
	dbs := map[string]func(t *testing.T) string{
		"sqlite": func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "socsync.db") },
	}
	if base := os.Getenv("SOCSYNC_TEST_POSTGRES"); base != "" {
		newDSN := PostgresDSN(base)
		dbs["postgres"] = func(t *testing.T) string { return newDSN(t) }
	}
	for name, newDSN := range dbs {
		t.Run(name, func(t *testing.T) {
			t.Run("BatchAckAcknowledgesOnlyTheOwnersClaims", func(t *testing.T) { testAckBatch(t, newDSN(t)) })
			t.Run("ClaimsAreRenewedOnlyWhileHeld", func(t *testing.T) { testRenewClaims(t, newDSN(t)) })
			t.Run("ReleasedClaimsAreTakenAtOnce", func(t *testing.T) { testReleaseClaims(t, newDSN(t)) })
			t.Run("DeadLettersAreNotClaimedAgainAndAreListed", func(t *testing.T) { testDeadLetters(t, newDSN(t)) })
			t.Run("OutboxRecordsCarryTheAlertsProductNames", func(t *testing.T) { testProductNames(t, newDSN(t)) })
		})
	}
}

const fwdTenant = "11111111-1111-1111-1111-111111111111"

func openForward(t *testing.T, dsn string, clock *storetest.Clock, incidents int) *store.Store {
	t.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, dsn, store.Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.SyncTenants(ctx, []store.Tenant{{ID: fwdTenant, Name: "Contoso"}}, nil); err != nil {
		t.Fatal(err)
	}
	err = s.InTx(ctx, func(tx *store.Tx) error {
		for i := range incidents {
			inc := &incident.Incident{TenantID: fwdTenant, Title: "x", Fields: incident.Fields{Status: incident.StatusNew, Severity: incident.SeverityLow}}
			if _, err := tx.CreateIncident(ctx, inc, fmt.Sprintf("graph:%d", i), store.Change{}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func keysOf(rows []store.OutboxRow) []store.OutboxKey {
	var out []store.OutboxKey
	for _, r := range rows {
		out = append(out, store.OutboxKey{IncidentID: r.IncidentID, Version: r.Version})
	}
	return out
}

func sortKeys(k []store.OutboxKey) []store.OutboxKey {
	slices.SortFunc(k, func(a, b store.OutboxKey) int {
		if a.IncidentID < b.IncidentID {
			return -1
		}
		if a.IncidentID > b.IncidentID {
			return 1
		}
		return int(a.Version - b.Version)
	})
	return k
}

func testRenewClaims(t *testing.T, dsn string) {
	ctx := context.Background()
	clock := storetest.NewClock()
	s := openForward(t, dsn, clock, 4)
	r1, _ := s.ClaimOutbox(ctx, "r1", time.Minute, 4)
	if len(r1) != 4 {
		t.Fatalf("claimed %d", len(r1))
	}
	// Renewed in time, the claims hold against another replica past the first expiry.
	clock.Advance(50 * time.Second)
	held, err := s.RenewOutboxClaims(ctx, "r1", time.Minute)
	if err != nil || len(held) != 4 {
		t.Fatalf("renewed %d (%v), want 4", len(held), err)
	}
	clock.Advance(50 * time.Second)
	if r2, _ := s.ClaimOutbox(ctx, "r2", time.Minute, 10); len(r2) != 0 {
		t.Fatalf("r2 claimed %d rows r1 renewed", len(r2))
	}
	// Acked rows are no longer held; expired claims taken over are not either.
	if n, _ := s.AckOutbox(ctx, "r1", keysOf(r1[:1])); n != 1 {
		t.Fatal("ack failed")
	}
	clock.Advance(2 * time.Minute)
	r2, _ := s.ClaimOutbox(ctx, "r2", time.Minute, 1)
	held, _ = s.RenewOutboxClaims(ctx, "r1", time.Minute)
	want := sortKeys(keysOf(r1[1:]))
	want = slices.DeleteFunc(want, func(k store.OutboxKey) bool { return k == keysOf(r2)[0] })
	if got := sortKeys(held); !slices.Equal(got, want) {
		t.Errorf("r1 holds %v, want %v", got, want)
	}
}

func testReleaseClaims(t *testing.T, dsn string) {
	ctx := context.Background()
	clock := storetest.NewClock()
	s := openForward(t, dsn, clock, 3)
	if r1, _ := s.ClaimOutbox(ctx, "r1", time.Hour, 10); len(r1) != 3 {
		t.Fatal("claim failed")
	}
	if n, err := s.ReleaseOutbox(ctx, "r1"); n != 3 || err != nil {
		t.Fatalf("released %d (%v)", n, err)
	}
	if r2, _ := s.ClaimOutbox(ctx, "r2", time.Hour, 10); len(r2) != 3 {
		t.Errorf("r2 claimed %d released rows, want 3", len(r2))
	}
}

func testDeadLetters(t *testing.T, dsn string) {
	ctx := context.Background()
	clock := storetest.NewClock()
	s := openForward(t, dsn, clock, 3)
	rows, _ := s.ClaimOutbox(ctx, "r1", time.Minute, 10)
	k := keysOf(rows)[1]
	if ok, err := s.FailOutbox(ctx, "r2", k, "not r2's"); ok || err != nil {
		t.Fatalf("r2 set aside r1's row: %v %v", ok, err)
	}
	if ok, err := s.FailOutbox(ctx, "r1", k, "400 InvalidPayload: bad row"); !ok || err != nil {
		t.Fatalf("FailOutbox: %v %v", ok, err)
	}
	st, err := s.OutboxStats(ctx)
	if err != nil || st.Pending != 2 || st.Failed != 1 || !st.OldestPending.Equal(clock.Now()) {
		t.Errorf("stats %+v (%v), want 2 pending since now, 1 failed", st, err)
	}
	clock.Advance(time.Hour)
	again, _ := s.ClaimOutbox(ctx, "r3", time.Minute, 10)
	if slices.Contains(keysOf(again), k) || len(again) != 2 {
		t.Errorf("claimed again: %v", keysOf(again))
	}
	failed, err := s.OutboxFailures(ctx, 10)
	if err != nil || len(failed) != 1 || failed[0].IncidentID != k.IncidentID || failed[0].Reason != "400 InvalidPayload: bad row" || failed[0].TenantID != fwdTenant {
		t.Errorf("failures %+v (%v)", failed, err)
	}
}

func testProductNames(t *testing.T, dsn string) {
	ctx := context.Background()
	clock := storetest.NewClock()
	s := openForward(t, dsn, clock, 0)
	err := s.InTx(ctx, func(tx *store.Tx) error {
		inc := &incident.Incident{TenantID: fwdTenant, Title: "x", Fields: incident.Fields{Status: incident.StatusNew, Severity: incident.SeverityLow}}
		if _, err := tx.CreateIncident(ctx, inc, "graph:1", store.Change{}); err != nil {
			return err
		}
		for i, p := range []string{"Microsoft Defender for Endpoint", "", "Microsoft Defender for Endpoint", "Azure Sentinel"} {
			a := incident.Alert{TenantID: fwdTenant, RemoteID: fmt.Sprint(i), IncidentID: inc.ID, ProductName: p, Version: clock.Now()}
			if _, err := tx.UpsertAlert(ctx, a, nil, clock.Now()); err != nil {
				return err
			}
		}
		_, err := tx.UpsertLink(ctx, &store.Link{TenantID: fwdTenant, IncidentID: inc.ID, SourceID: fwdTenant + "/sentinel/s/r/w", Kind: store.LinkSentinel,
			ExternalID: "g", Observed: []byte(`{"product_names":["Microsoft Defender for Cloud"]}`)})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	rows, _ := s.ClaimOutbox(ctx, "r", time.Minute, 10)
	want := []string{"Azure Sentinel", "Microsoft Defender for Cloud", "Microsoft Defender for Endpoint"}
	if len(rows) != 1 || !slices.Equal(rows[0].Record.ProductNames, want) {
		t.Errorf("product names %v, want %v", rows[0].Record.ProductNames, want)
	}
}

func testAckBatch(t *testing.T, dsn string) {
	ctx := context.Background()
	clock := storetest.NewClock()
	s := openForward(t, dsn, clock, 1000)
	r1, _ := s.ClaimOutbox(ctx, "r1", time.Minute, 900)
	r2, _ := s.ClaimOutbox(ctx, "r2", time.Minute, 900)
	if len(r1) != 900 || len(r2) != 100 {
		t.Fatalf("claimed %d and %d", len(r1), len(r2))
	}
	if n, err := s.AckOutboxBatch(ctx, "r1", append(keysOf(r1), keysOf(r2)...)); n != 900 || err != nil {
		t.Errorf("acked %d (%v), want r1's 900", n, err)
	}
	if n, _ := s.AckOutboxBatch(ctx, "r1", keysOf(r1)); n != 0 {
		t.Errorf("acked %d again", n)
	}
	if n, _ := s.OutboxPending(ctx); n != 100 {
		t.Errorf("pending %d, want r2's 100", n)
	}
}
