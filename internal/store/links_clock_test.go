package store_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/socsync/socsync/internal/incident"
	"github.com/socsync/socsync/internal/store"
)

// TestUpsertLink_AChangeAfterTheRemoteClockIsCorrectedIsNotTakenForAStaleReRead: a remote
// incident stamped ten minutes in the future (the remote's clock ran ahead) changes again once
// the clock is right; its new change time is earlier than the stored one, yet it is the newer
// observation and must be stored. A genuinely older observation — of a stored time that was not
// in the future, or of two times both in the future — is still refused. (Found by R13: the
// change was dropped until the remote's clock caught up with the time it had stamped.)
func TestUpsertLink_AChangeAfterTheRemoteClockIsCorrectedIsNotTakenForAStaleReRead(t *testing.T) {
	eachDialect(t, testUpsertLinkAfterClockCorrected)
}

// eachDialect runs a test on SQLite, and on PostgreSQL where SOCSYNC_TEST_POSTGRES names a
// server (CI).
func eachDialect(t *testing.T, test func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) { test(t, "sqlite:"+filepath.Join(t.TempDir(), "c.db")) })
	if base := os.Getenv("SOCSYNC_TEST_POSTGRES"); base != "" {
		t.Run("postgres", func(t *testing.T) { test(t, PostgresDSN(base)(t)) })
	}
}

func testUpsertLinkAfterClockCorrected(t *testing.T, dsn string) {
	ctx := context.Background()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	st, incidentID := openSkewed(t, dsn, func() time.Time { return now })
	src := store.SourceID("t1", store.KindDefender, "")
	// upsert stores an observation of remote incident id with the given change time and
	// severity, and returns whether it changed the link and what the link holds now.
	upsert := func(id string, updated time.Time, severity string) (bool, store.Link) {
		t.Helper()
		obs, _ := json.Marshal(map[string]string{"severity": severity})
		l := store.Link{TenantID: "t1", IncidentID: incidentID, SourceID: src, Kind: store.LinkGraph, ExternalID: id, Observed: obs, RemoteUpdated: updated}
		var changed bool
		err := st.InTx(ctx, func(tx *store.Tx) (err error) {
			changed, err = tx.UpsertLink(ctx, &l)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		got, err := st.LinkByExternal(ctx, "t1", src, id)
		if err != nil {
			t.Fatal(err)
		}
		return changed, got
	}

	// Stamped ten minutes ahead, then — the clock corrected — changed a minute later.
	upsert("1", now.Add(10*time.Minute), "medium")
	now = now.Add(time.Minute)
	changed, l := upsert("1", now, "high")
	if !changed || !l.RemoteUpdated.Equal(now) || string(l.Observed) != `{"severity":"high"}` {
		t.Errorf("the change after the clock was corrected was dropped: changed %v, stored %s %s", changed, l.RemoteUpdated, l.Observed)
	}

	// An older version read late, of a time that was not in the future: refused.
	upsert("2", now.Add(-time.Minute), "high")
	if changed, l := upsert("2", now.Add(-2*time.Minute), "low"); changed || string(l.Observed) != `{"severity":"high"}` {
		t.Errorf("an older version replaced a newer one: changed %v, stored %s", changed, l.Observed)
	}
	// Two times both in the future (the clock still ahead): their order holds; refused.
	upsert("3", now.Add(10*time.Minute), "high")
	if changed, l := upsert("3", now.Add(9*time.Minute), "low"); changed || string(l.Observed) != `{"severity":"high"}` {
		t.Errorf("an older version (both stamped ahead) replaced a newer one: changed %v, stored %s", changed, l.Observed)
	}
}

// TestUpsertAlert_AChangeAfterTheRemoteClockIsCorrectedIsStored: the same for an alert, whose
// version is its remote change time: a version stamped ten minutes ahead does not block the
// alert's next change once the clock is right; an older version of a time that was not in the
// future, or of two times both ahead, is still refused.
func TestUpsertAlert_AChangeAfterTheRemoteClockIsCorrectedIsStored(t *testing.T) {
	eachDialect(t, testUpsertAlertAfterClockCorrected)
}

func testUpsertAlertAfterClockCorrected(t *testing.T, dsn string) {
	ctx := context.Background()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	st, incidentID := openSkewed(t, dsn, func() time.Time { return now })
	upsert := func(id string, version time.Time, status incident.AlertStatus) (bool, incident.AlertStatus) {
		t.Helper()
		a := incident.Alert{TenantID: "t1", RemoteID: id, IncidentID: incidentID, Title: "a", Status: status, Version: version}
		var changed bool
		err := st.InTx(ctx, func(tx *store.Tx) (err error) {
			changed, err = tx.UpsertAlert(ctx, a, nil, version)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		alerts, err := st.Alerts(ctx, "t1", incidentID)
		if err != nil {
			t.Fatal(err)
		}
		for _, got := range alerts {
			if got.RemoteID == id {
				return changed, got.Status
			}
		}
		t.Fatalf("alert %s not stored", id)
		return false, ""
	}
	upsert("1", now.Add(10*time.Minute), incident.AlertNew)
	now = now.Add(time.Minute)
	if changed, status := upsert("1", now, incident.AlertResolved); !changed || status != incident.AlertResolved {
		t.Errorf("the alert's change after the clock was corrected was dropped: changed %v, status %s", changed, status)
	}
	upsert("2", now.Add(-time.Minute), incident.AlertResolved)
	if changed, status := upsert("2", now.Add(-2*time.Minute), incident.AlertNew); changed || status != incident.AlertResolved {
		t.Errorf("an older alert version replaced a newer one: changed %v, status %s", changed, status)
	}
	upsert("3", now.Add(10*time.Minute), incident.AlertResolved)
	if changed, status := upsert("3", now.Add(9*time.Minute), incident.AlertNew); changed || status != incident.AlertResolved {
		t.Errorf("an older alert version (both stamped ahead) replaced a newer one: changed %v, status %s", changed, status)
	}
}

// openSkewed opens a migrated store on clock with tenant t1's Defender source and one
// incident in it, whose id it returns.
func openSkewed(t *testing.T, dsn string, clock func() time.Time) (*store.Store, string) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, dsn, store.Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.SyncTenants(ctx, []store.Tenant{{ID: "t1", Name: "t1"}}, []store.Source{{TenantID: "t1", Kind: store.KindDefender}}); err != nil {
		t.Fatal(err)
	}
	inc := &incident.Incident{TenantID: "t1", Title: "skewed", Fields: incident.Fields{Status: incident.StatusNew, Severity: incident.SeverityMedium}}
	if err := st.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.CreateIncident(ctx, inc, "skewed", store.Change{Summary: "test"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return st, inc.ID
}
