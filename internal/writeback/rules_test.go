package writeback

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/socsync/socsync/internal/incident"
	"github.com/socsync/socsync/internal/ingest"
	"github.com/socsync/socsync/internal/reconcile"
	"github.com/socsync/socsync/internal/store"
)

func TestDecideAlertRule(t *testing.T) {
	alerts := func(statuses ...incident.AlertStatus) []incident.Alert {
		out := make([]incident.Alert, len(statuses))
		for i, s := range statuses {
			out[i] = incident.Alert{RemoteID: string(rune('a' + i)), Status: s}
		}
		return out
	}
	const (
		n, p, r, d = incident.AlertNew, incident.AlertInProgress, incident.AlertResolved, incident.AlertDismissed
	)
	tests := []struct {
		name     string
		status   incident.Status
		alerts   []incident.Alert
		prev     map[string]incident.AlertStatus
		wantRule string
		want     incident.Status
	}{
		{name: "all resolved closes as true positive", status: incident.StatusActive, alerts: alerts(r, r), wantRule: "all-alerts-resolved", want: incident.StatusResolved},
		{name: "all dismissed closes as benign positive", status: incident.StatusNew, alerts: alerts(d, d), wantRule: "all-alerts-dismissed", want: incident.StatusResolved},
		{name: "one still new keeps it open", status: incident.StatusActive, alerts: alerts(r, n), want: incident.StatusActive},
		{name: "in progress sets a new incident active", status: incident.StatusNew, alerts: alerts(p), wantRule: "alert-in-progress", want: incident.StatusActive},
		{name: "an alert resolved before and open now reactivates", status: incident.StatusResolved, alerts: alerts(r, p),
			prev: map[string]incident.AlertStatus{"a": r, "b": r}, wantRule: "alert-reopened", want: incident.StatusActive},
		{name: "a new open alert after the last look reactivates", status: incident.StatusResolved, alerts: alerts(r, n),
			prev: map[string]incident.AlertStatus{"a": r}, wantRule: "alert-reopened", want: incident.StatusActive},
		// Regression: an analyst closed the incident while its alert was open, before the rules had
		// looked at it; the rules then reopened it at once and overruled the analyst.
		{name: "an analyst's close with alerts open all along stands (never looked)", status: incident.StatusResolved, alerts: alerts(n), want: incident.StatusResolved},
		{name: "an analyst's close with alerts open all along stands (looked before)", status: incident.StatusResolved, alerts: alerts(n, p),
			prev: map[string]incident.AlertStatus{"a": n, "b": n}, want: incident.StatusResolved},
		{name: "an unknown status counts as open", status: incident.StatusActive, alerts: alerts(r, "Escalated"), want: incident.StatusActive},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next, rule, text := decideAlertRule(incident.Incident{Fields: incident.Fields{Status: tt.status}}, tt.alerts, tt.prev)
			if rule != tt.wantRule || next.Status != tt.want {
				t.Errorf("rule %q → %s, want %q → %s", rule, next.Status, tt.wantRule, tt.want)
			}
			if (rule == "") != (text == "") {
				t.Errorf("rule %q with comment %q", rule, text)
			}
		})
	}
}

func TestFingerprintRoundTrips(t *testing.T) {
	al := []incident.Alert{{RemoteID: "x", Status: incident.AlertResolved}, {RemoteID: "w", Status: "SomethingNew"}}
	got := parseFingerprint(fingerprint(al))
	if len(got) != 2 || got["x"] != incident.AlertResolved || got["w"] != "SomethingNew" {
		t.Errorf("parseFingerprint(fingerprint) = %v", got)
	}
}

// TestAlertRule_ChangeIsPendingUntilWritten: a rule that closes an incident leaves it pending,
// as an analyst's edit does, so that it is shown as not yet written and swept again if the
// process stops before the write. (Found by the alert rules' configuration test: the incident
// showed resolved and in sync while Defender still had it active; had the process stopped
// there, the close was never written, since the rule does not fire twice for the same alert
// statuses.)
func TestAlertRule_ChangeIsPendingUntilWritten(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	obs := incident.Observation{System: incident.Graph, ExternalID: "9", Title: "dfc", UpdatedAt: at, CreatedAt: at, AlertCount: 2,
		Fields: incident.Fields{Status: incident.StatusNew, Severity: incident.SeverityLow}}
	for _, id := range []string{"a1", "a2"} {
		obs.Alerts = append(obs.Alerts, incident.ObservedAlert{Alert: incident.Alert{RemoteID: id, Title: id, Status: incident.AlertResolved,
			ServiceSource: "microsoftDefenderForCloud", CreatedAt: at, Version: at}})
	}
	st, _, si := collected(t, obs)
	e := &Engine{cfg: Config{AlertRules: []string{"microsoftDefenderForCloud"}}, store: st}
	changed, err := e.applyAlertRules(ctx, si)
	if err != nil || !changed {
		t.Fatalf("the rule did not close the incident: changed %v, %v", changed, err)
	}
	si, _ = st.Incident(ctx, si.TenantID, si.ID)
	if si.Status != incident.StatusResolved || si.SyncState != "pending" {
		t.Errorf("after the rule: %s, %s; want resolved and pending until written", si.Status, si.SyncState)
	}
	assertDue(t, st, si)
}

// collected stores obs as a poll of a Defender source of a fresh store would, and returns the
// store, the source and the hub incident, checked in sync.
func collected(t *testing.T, obs incident.Observation) (*store.Store, ingest.Source, store.StoredIncident) {
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
	const tenant = "aaaaaaaa-0000-0000-0000-000000000001"
	if err := st.SyncTenants(ctx, []store.Tenant{{ID: tenant, Name: "A"}}, []store.Source{{TenantID: tenant, Kind: store.KindDefender}}); err != nil {
		t.Fatal(err)
	}
	src := ingest.Source{ID: store.SourceID(tenant, store.KindDefender, ""), TenantID: tenant, Kind: store.KindDefender, DefenderPolled: true}
	var res ingest.Result
	if err := st.InTx(ctx, func(tx *store.Tx) error {
		res, err = (&ingest.Ingester{Policy: reconcile.DefaultPolicy()}).Observe(ctx, tx, src, obs)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	si, err := st.Incident(ctx, tenant, res.IncidentID)
	if err != nil {
		t.Fatal(err)
	}
	if si.SyncState != "in_sync" {
		t.Fatalf("the collected incident is %s, want in_sync", si.SyncState)
	}
	return st, src, si
}

// assertDue fails the test unless si is in the reconciler's durable backlog.
func assertDue(t *testing.T, st *store.Store, si store.StoredIncident) {
	t.Helper()
	due, err := st.DueSyncs(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(due, store.IncidentKey{TenantID: si.TenantID, ID: si.ID}) {
		t.Errorf("incident %s is not in the reconcile backlog %v", si.ID, due)
	}
}
