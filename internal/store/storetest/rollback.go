package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/socsync/socsync/internal/incident"
	"github.com/socsync/socsync/internal/store"
)

// testRollbackLeavesNoTrace: a transaction that fails after changing an incident, creating
// another and auditing leaves nothing behind — no outbox row, no version, no incident, no audit
// entry — and the next committed change takes the version the failed one would have had.
func testRollbackLeavesNoTrace(t *testing.T, newDSN NewDSN) {
	ctx := context.Background()
	clock := NewClock()
	s := open(t, newDSN(t), clock)
	seed(t, s)
	inc := newIncident(tenantA, "x")
	mustTx(t, s, func(tx *store.Tx) error {
		_, err := tx.CreateIncident(ctx, inc, "graph:1", store.Change{Summary: "created"})
		return err
	})
	before, err := s.Incident(ctx, tenantA, inc.ID)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)

	boom := errors.New("the remote write failed")
	other := newIncident(tenantB, "y")
	err = s.InTx(ctx, func(tx *store.Tx) error {
		changed := before.Incident
		changed.Status = incident.StatusActive
		if err := tx.UpdateIncident(ctx, &changed, store.Change{Summary: "status"}); err != nil {
			return err
		}
		if changed.Version != 2 {
			t.Errorf("version inside the transaction = %d, want 2", changed.Version)
		}
		if err := tx.Audit(ctx, store.AuditEntry{TenantID: tenantA, IncidentID: inc.ID, Actor: "ana", Action: "edit", Field: "status"}); err != nil {
			return err
		}
		if _, err := tx.CreateIncident(ctx, other, "graph:2", store.Change{}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx = %v, want the function's error", err)
	}
	got, err := s.Incident(ctx, tenantA, inc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 1 || got.Status != incident.StatusNew || !got.UpdatedAt.Equal(before.UpdatedAt) {
		t.Errorf("after the rollback: version %d, status %s, updated %v; want version 1, new, %v", got.Version, got.Status, got.UpdatedAt, before.UpdatedAt)
	}
	if _, err := s.Incident(ctx, tenantB, other.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the incident created in the rolled-back transaction: %v, want ErrNotFound", err)
	}
	if n, err := s.OutboxPending(ctx); err != nil || n != 1 {
		t.Errorf("outbox rows = %d (%v), want 1 (the creation's)", n, err)
	}
	if h, err := s.History(ctx, tenantA, inc.ID); err != nil || len(h) != 0 {
		t.Errorf("audit entries = %+v (%v), want none", h, err)
	}

	// The next change that commits is version 2, with its own outbox row and nothing of the
	// failed one.
	next := got.Incident
	next.Owner = "ana@x.com"
	mustTx(t, s, func(tx *store.Tx) error { return tx.UpdateIncident(ctx, &next, store.Change{Summary: "owner"}) })
	rows, err := s.ClaimOutbox(ctx, "r", time.Minute, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[1].Version != 2 || next.Version != 2 {
		t.Fatalf("%d outbox rows, last version %d; want v1 and v2", len(rows), next.Version)
	}
	if r := rows[1].Record; r.Change.Summary != "owner" || r.Incident.Status != incident.StatusNew || r.Incident.Owner != "ana@x.com" {
		t.Errorf("v2 record = %+v; want the owner change alone", r)
	}
}

// testPanicRollsBack: a function that panics inside a transaction (net/http recovers a
// handler's panic and carries on) rolls it back, so the write connection is free for the next
// one and nothing of the panicking one is stored.
func testPanicRollsBack(t *testing.T, newDSN NewDSN) {
	ctx := context.Background()
	s := open(t, newDSN(t), NewClock())
	seed(t, s)
	func() {
		defer func() {
			if p := recover(); p != "boom" {
				t.Errorf("recovered %v, want the function's panic", p)
			}
		}()
		_ = s.InTx(ctx, func(tx *store.Tx) error {
			if _, err := tx.CreateIncident(ctx, newIncident(tenantA, "lost"), "graph:1", store.Change{}); err != nil {
				return err
			}
			panic("boom")
		})
	}()
	// Without the rollback SQLite's one write connection stays held and this waits for ever.
	wait, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	inc := newIncident(tenantA, "kept")
	if err := s.InTx(wait, func(tx *store.Tx) error {
		_, err := tx.CreateIncident(wait, inc, "graph:1", store.Change{})
		return err
	}); err != nil {
		t.Fatalf("the next transaction: %v", err)
	}
	got, err := s.Incident(ctx, tenantA, inc.ID)
	if err != nil || got.Title != "kept" {
		t.Errorf("incident of graph:1 = %+v (%v), want the second transaction's", got.Incident, err)
	}
	if n, err := s.OutboxPending(ctx); err != nil || n != 1 {
		t.Errorf("outbox rows = %d (%v), want 1", n, err)
	}
}
