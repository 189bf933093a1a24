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

// TestObserve_AlertStatusChangesAreReportedForTheReconcilerWithoutAVersion: a Defender incident
// polled again with the same fields but its alerts resolved makes no new version, yet reports
// a change, so that the poller queues it for the reconciler and the alert rules act on the new
// statuses. (Found by the alert rules' configuration test: on a Defender incident the rules
// acted only at the incident's next unrelated change.)
func TestObserve_AlertStatusChangesAreReportedForTheReconcilerWithoutAVersion(t *testing.T) {
	st, src := newStore(t)
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	alerts := func(s incident.AlertStatus, v time.Time) []incident.ObservedAlert {
		var out []incident.ObservedAlert
		for _, id := range []string{"da1", "da2"} {
			out = append(out, incident.ObservedAlert{Alert: incident.Alert{RemoteID: id, Title: id, Status: s,
				ServiceSource: "microsoftDefenderForEndpoint", CreatedAt: at, Version: v}})
		}
		return out
	}
	obs := incident.Observation{System: incident.Graph, ExternalID: "8", Title: "x", UpdatedAt: at, CreatedAt: at,
		Fields: incident.Fields{Status: incident.StatusNew, Severity: incident.SeverityLow}, Alerts: alerts(incident.AlertNew, at), AlertCount: 2}
	first := observe(t, st, src, obs)
	obs.UpdatedAt = at.Add(time.Minute)
	if r := observe(t, st, src, obs); r.Changed {
		t.Error("an observation with the same fields and alerts reported a change")
	}
	obs.UpdatedAt, obs.Alerts = at.Add(2*time.Minute), alerts(incident.AlertResolved, at.Add(2*time.Minute))
	if r := observe(t, st, src, obs); !r.Changed {
		t.Error("an observation whose alerts were resolved reported no change: the alert rules would not look")
	}
	si, _ := st.Incident(context.Background(), tenant, first.IncidentID)
	if si.Version != 1 {
		t.Errorf("version %d, want 1 (the incident's fields did not change)", si.Version)
	}
	stored, _ := st.Alerts(context.Background(), tenant, first.IncidentID)
	for _, a := range stored {
		if a.Status != incident.AlertResolved {
			t.Errorf("alert %s stored %s, want resolved", a.RemoteID, a.Status)
		}
	}
}
