package writeback

import (
	"context"
	"testing"
	"time"

	"github.com/socsync/socsync/internal/incident"
	"github.com/socsync/socsync/internal/reconcile"
	"github.com/socsync/socsync/internal/store"
)

// An incident changed while its plan was being written (an analyst's edit through the API, a
// merge target's new severity — neither holds the reconciler's claim on the incident) has a
// change that plan did not write: recording the plan's outcome must leave it pending, in the
// durable backlog, not mark it in sync. (It showed in sync until the in-process queue ran it
// again, and a stop in between left the change unwritten.)
func TestRecord_AChangeMadeWhileThePlanWasWrittenStaysPending(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	st, src, si := collected(t, incident.Observation{System: incident.Graph, ExternalID: "7", Title: "x", UpdatedAt: at, CreatedAt: at,
		Fields: incident.Fields{Status: incident.StatusActive, Severity: incident.SeverityLow}})
	stored, err := st.Links(ctx, si.TenantID, si.ID)
	if err != nil {
		t.Fatal(err)
	}
	links, err := reconcile.DecodeLinks(stored)
	if err != nil {
		t.Fatal(err)
	}
	plan := reconcile.Plan(reconcile.InputFor(si, links, src.Owners, src.DefenderPolled, reconcile.DefaultPolicy()))
	if !plan.Empty() {
		t.Fatalf("the collected incident has a plan: %+v", plan)
	}

	edited := si.Incident
	edited.Severity = incident.SeverityHigh
	if err := st.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.UpdateIncident(ctx, &edited, store.Change{Summary: "severity", Actor: "ana", HubEdit: true}); err != nil {
			return err
		}
		return tx.SetSyncState(ctx, si.TenantID, si.ID, "pending", tx.Now())
	}); err != nil {
		t.Fatal(err)
	}

	e := &Engine{store: st, now: time.Now}
	if err := e.record(ctx, si, links, plan, map[string]linkResult{}, src, nil); err != nil {
		t.Fatal(err)
	}
	got, err := st.Incident(ctx, si.TenantID, si.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.SyncState != "pending" {
		t.Errorf("after recording the older plan: %s, want pending (severity %s not written)", got.SyncState, got.Severity)
	}
	assertDue(t, st, got)

	// Recorded against the incident as it now is, the same empty outcome is in sync.
	if err := e.record(ctx, got, links, plan, map[string]linkResult{}, src, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.Incident(ctx, si.TenantID, si.ID); got.SyncState != "in_sync" {
		t.Errorf("recorded against the current version: %s, want in_sync", got.SyncState)
	}
}
