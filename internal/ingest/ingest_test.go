package ingest

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/socsync/socsync/internal/incident"
	"github.com/socsync/socsync/internal/reconcile"
	"github.com/socsync/socsync/internal/store"
)

const tenant = "aaaaaaaa-0000-0000-0000-000000000001"

func newStore(t *testing.T) (*store.Store, Source) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "s.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.SyncTenants(ctx, []store.Tenant{{ID: tenant, Name: "A"}}, []store.Source{{TenantID: tenant, Kind: store.KindDefender}}); err != nil {
		t.Fatal(err)
	}
	return st, Source{ID: store.SourceID(tenant, store.KindDefender, ""), TenantID: tenant, Kind: store.KindDefender, DefenderPolled: true}
}

func observe(t *testing.T, st *store.Store, src Source, obs incident.Observation) Result {
	t.Helper()
	ing := &Ingester{Policy: reconcile.DefaultPolicy()}
	var r Result
	if err := st.InTx(context.Background(), func(tx *store.Tx) error {
		var err error
		r, err = ing.Observe(context.Background(), tx, src, obs)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return r
}

// Regression (found by the benchmark): activity times finer than the store's milliseconds made
// every later merge look like a change of the activity window, and forwarded a spurious version.
func TestObserve_SubMillisecondActivityTimesDoNotMakeVersions(t *testing.T) {
	st, src := newStore(t)
	at := time.Date(2026, 11, 2, 9, 0, 0, 123456789, time.UTC)
	obs := incident.Observation{System: incident.Graph, ExternalID: "7", Title: "x", UpdatedAt: at, CreatedAt: at,
		FirstActivityAt: at.Add(-time.Hour), LastActivityAt: at,
		Fields: incident.Fields{Status: incident.StatusNew, Severity: incident.SeverityLow}}
	first := observe(t, st, src, obs)
	if !first.Created {
		t.Fatal("the first observation did not create an incident")
	}
	obs.LastModifiedBy = "someone" // the link changes, the incident's fields do not
	obs.UpdatedAt = at.Add(time.Second)
	if r := observe(t, st, src, obs); r.Changed {
		t.Error("an observation with the same fields and activity window made a new version")
	}
	si, _ := st.Incident(context.Background(), tenant, first.IncidentID)
	if si.Version != 1 {
		t.Errorf("version %d, want 1", si.Version)
	}
}
