package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/socsync/socsync/internal/incident"
	"github.com/socsync/socsync/internal/store"
)

func testUsersAndSessions(t *testing.T, newDSN NewDSN) {
	ctx := context.Background()
	clock := NewClock()
	s := open(t, newDSN(t), clock)
	seed(t, s)
	u := &store.User{Name: " Ana@MSSP.example ", PasswordHash: "$argon2id$v=19$m=1,t=1,p=1$c2FsdA$aGFzaA", Role: "analyst", Tenants: []string{"AAAAAAAA-0000-0000-0000-000000000001"}}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if u.ID == "" || u.Name != "ana@mssp.example" || u.Tenants[0] != tenantA {
		t.Errorf("created user = %+v", u)
	}
	if err := s.CreateUser(ctx, &store.User{Name: "ANA@mssp.example", Role: "viewer"}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("a second user of the same name (other case) = %v, want ErrConflict", err)
	}
	got, err := s.UserByName(ctx, "Ana@mssp.EXAMPLE")
	if err != nil || got.ID != u.ID || got.PasswordHash != u.PasswordHash || got.Role != "analyst" || !slices.Equal(got.Tenants, []string{tenantA}) {
		t.Fatalf("UserByName = %+v, %v", got, err)
	}
	if _, err := s.UserByName(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing user = %v", err)
	}

	const sid = "session-cookie-value"
	if err := s.CreateSession(ctx, sid, u.ID, "csrf-1", clock.Now().Add(time.Hour), "192.0.2.1", "test"); err != nil {
		t.Fatal(err)
	}
	sess, err := s.SessionByID(ctx, sid)
	if err != nil || sess.User.ID != u.ID || sess.CSRFToken != "csrf-1" || !sess.Expires.Equal(clock.Now().Add(time.Hour)) {
		t.Fatalf("SessionByID = %+v, %v", sess, err)
	}
	if again, _ := s.UserByName(ctx, u.Name); !again.LastLogin.Equal(clock.Now()) {
		t.Errorf("last sign-in = %v, want %v", again.LastLogin, clock.Now())
	}
	if _, err := s.SessionByID(ctx, store.HashToken(sid)); !errors.Is(err, store.ErrNotFound) {
		t.Error("the stored hash must not work as a session id")
	}
	clock.Advance(10 * time.Minute)
	if err := s.TouchSession(ctx, sid); err != nil {
		t.Fatal(err)
	}
	if sess, _ := s.SessionByID(ctx, sid); !sess.LastSeen.Equal(clock.Now()) {
		t.Errorf("last seen = %v, want %v", sess.LastSeen, clock.Now())
	}
	clock.Advance(time.Hour)
	if _, err := s.SessionByID(ctx, sid); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("expired session = %v, want ErrNotFound", err)
	}
	const sid2 = "second-session"
	if err := s.CreateSession(ctx, sid2, u.ID, "csrf-2", clock.Now().Add(time.Hour), "", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSession(ctx, sid2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SessionByID(ctx, sid2); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted session = %v, want ErrNotFound", err)
	}
}

func testLoginFailures(t *testing.T, newDSN NewDSN) {
	ctx := context.Background()
	clock := NewClock()
	s := open(t, newDSN(t), clock)
	start := clock.Now()
	for i := range 3 {
		if err := s.RecordLoginFailure(ctx, "Ana", fmt.Sprintf("192.0.2.%d", i%2)); err != nil {
			t.Fatal(err)
		}
	}
	mustNoErr := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	mustNoErr(s.RecordLoginFailure(ctx, "bob", "192.0.2.0"))
	byName, byIP, err := s.LoginFailures(ctx, "ana", "192.0.2.0", start)
	if err != nil || byName != 3 || byIP != 3 {
		t.Fatalf("failures = %d by name, %d by address, %v; want 3 and 3", byName, byIP, err)
	}
	clock.Advance(time.Minute)
	if n, _, _ := s.LoginFailures(ctx, "ana", "", clock.Now()); n != 0 {
		t.Errorf("failures before the window counted: %d", n)
	}
	mustNoErr(s.ClearLoginFailures(ctx, "ANA", start))
	byName, byIP, _ = s.LoginFailures(ctx, "ana", "192.0.2.0", start)
	if byName != 0 || byIP != 1 {
		t.Errorf("after clearing ana: %d by name, %d by address; want 0 and 1 (bob's)", byName, byIP)
	}
}

func testQueueOrders(t *testing.T, newDSN NewDSN) {
	ctx := context.Background()
	clock := NewClock()
	s := open(t, newDSN(t), clock)
	seed(t, s)
	sevs := []incident.Severity{incident.SeverityLow, incident.SeverityHigh, incident.SeverityMedium, incident.SeverityInformational, "graph:unknownFutureValue"}
	var target string
	for i := range 23 {
		clock.Advance(time.Second)
		mustTx(t, s, func(tx *store.Tx) error {
			inc := newIncident(tenantA, fmt.Sprintf("inc %02d", i))
			inc.Severity = sevs[i%len(sevs)]
			if i == 22 {
				inc.TenantID = tenantB
			}
			_, err := tx.CreateIncident(ctx, inc, fmt.Sprintf("graph:%d", i), store.Change{})
			if i == 0 {
				target = inc.ID
			}
			return err
		})
	}
	// Touch the oldest so that update order and creation order differ.
	clock.Advance(time.Second)
	mustTx(t, s, func(tx *store.Tx) error {
		si, err := tx.Incident(ctx, tenantA, target)
		if err != nil {
			return err
		}
		si.Owner = "ana@contoso.com"
		return tx.UpdateIncident(ctx, &si.Incident, store.Change{})
	})
	all := func(order store.QueueOrder, scope store.Scope, f store.ListFilter) []store.StoredIncident {
		t.Helper()
		var out []store.StoredIncident
		var pos store.QueuePosition
		for range 30 {
			page, err := s.Queue(ctx, scope, f, order, pos, 4)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, page...)
			if len(page) < 4 {
				return out
			}
			pos = order.PositionOf(page[len(page)-1])
		}
		t.Fatal("paging did not end")
		return nil
	}
	titles := func(list []store.StoredIncident) []string {
		var out []string
		for _, si := range list {
			out = append(out, si.Title)
		}
		return out
	}
	updated := all(store.QueueOrder{}, store.Tenants(tenantA), store.ListFilter{})
	if len(updated) != 22 || updated[0].ID != target || updated[1].Title != "inc 21" {
		t.Errorf("newest activity first: %v", titles(updated))
	}
	created := all(store.QueueOrder{Key: store.ByCreated, Asc: true}, store.Tenants(tenantA), store.ListFilter{})
	if len(created) != 22 || created[0].ID != target || created[21].Title != "inc 21" {
		t.Errorf("oldest first: %v", titles(created))
	}
	bySev := all(store.QueueOrder{Key: store.BySeverity}, store.AllTenants(), store.ListFilter{})
	if len(bySev) != 23 {
		t.Fatalf("by severity: %d incidents, want 23", len(bySev))
	}
	for i := 1; i < len(bySev); i++ {
		a, b := bySev[i-1], bySev[i]
		if a.Severity.Rank() < b.Severity.Rank() || (a.Severity == b.Severity && a.UpdatedAt.Before(b.UpdatedAt)) {
			t.Fatalf("by severity out of order at %d: %v", i, titles(bySev))
		}
	}
	if bySev[0].Severity != incident.SeverityHigh || bySev[22].Severity != "graph:unknownFutureValue" {
		t.Errorf("by severity: first %s, last %s", bySev[0].Severity, bySev[22].Severity)
	}
	lowFirst := all(store.QueueOrder{Key: store.BySeverity, Asc: true}, store.AllTenants(), store.ListFilter{Owner: "ANA@contoso.com"})
	if len(lowFirst) != 1 || lowFirst[0].ID != target {
		t.Errorf("owner filter: %v", titles(lowFirst))
	}
	if _, err := s.Queue(ctx, store.AllTenants(), store.ListFilter{}, store.QueueOrder{Key: "title"}, store.QueuePosition{}, 5); err == nil {
		t.Error("an unknown order must be refused")
	}

	// Merged-from and alert payloads.
	var merged string
	mustTx(t, s, func(tx *store.Tx) error {
		inc := newIncident(tenantA, "merged one")
		inc.Status, inc.MergedInto = incident.StatusMerged, target
		_, err := tx.CreateIncident(ctx, inc, "graph:merged", store.Change{})
		merged = inc.ID
		if err != nil {
			return err
		}
		_, err = tx.UpsertAlert(ctx, incident.Alert{TenantID: tenantA, RemoteID: "da1", IncidentID: target, Title: "a",
			Version: clock.Now()}, []byte(`{"evidence":[]}`), clock.Now())
		return err
	})
	from, err := s.MergedFrom(ctx, tenantA, target)
	if err != nil || len(from) != 1 || from[0].ID != merged {
		t.Errorf("MergedFrom = %v, %v", titles(from), err)
	}
	if from, _ := s.MergedFrom(ctx, tenantB, target); len(from) != 0 {
		t.Error("MergedFrom crossed tenants")
	}
	raws, err := s.AlertPayloads(ctx, tenantA, target)
	if err != nil || string(raws["da1"]) != `{"evidence":[]}` {
		t.Errorf("AlertPayloads = %v, %v", raws, err)
	}
}
