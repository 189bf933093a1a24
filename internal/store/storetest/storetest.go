// Package storetest is the acceptance suite every store database must pass, in the style of
// testing/fstest: the same tests run against SQLite and PostgreSQL.
package storetest

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socsync/socsync/internal/incident"
	"github.com/socsync/socsync/internal/store"
)

// Clock is a settable clock for stores under test.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock set to a fixed instant.
func NewClock() *Clock { return &Clock{t: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// NewDSN returns the DSN of a fresh, empty database for one test, dropped when the test ends.
type NewDSN func(t *testing.T) string

// Run runs the acceptance suite. newDSN gives each test its own database.
func Run(t *testing.T, newDSN NewDSN) {
	tests := []struct {
		name string
		fn   func(t *testing.T, newDSN NewDSN)
	}{
		{"MigrateIsIdempotentAndCheckedByServe", testMigrate},
		{"ConcurrentMigrationsAllSucceedAndApplyEachMigrationOnce", testConcurrentMigrate},
		{"SyncTenantsIsIdempotentAndDisablesRemovedSources", testSyncTenants},
		{"CreateIncidentOncePerCorrelationKey", testCreateIncidentIdempotent},
		{"UpdateIncidentRefusesAStaleVersionAndWritesNothing", testUpdateConflict},
		{"EveryIncidentVersionHasOneOutboxRow", testOutboxPerVersion},
		{"ATransactionGivesAnIncidentOneVersion", testOneVersionPerTx},
		{"ARolledBackTransactionLeavesNoOutboxRowNoVersionNoIncident", testRollbackLeavesNoTrace},
		{"APanicInATransactionRollsItBackAndFreesTheWriter", testPanicRollsBack},
		{"UpsertLinkIsIdempotentAndNeverGoesBackwards", testUpsertLink},
		{"AlertVersionsNeverGoBackwards", testAlertVersions},
		{"CursorCommitsWithTheDataOrNotAtAll", testCursorCommitsWithData},
		{"LeasesAreExclusiveAcrossConcurrentClaimers", testLeasesExclusive},
		{"StaleFencingTokenIsRejected", testStaleFencingToken},
		{"ExpiredLeaseIsTakenOver", testExpiredLeaseTakenOver},
		{"TenantsWithTheSameRemoteIDsStaySeparate", testTenantScoping},
		{"ListIncidentsPagesNewestFirstWithinScope", testListIncidents},
		{"OutboxRowsAreClaimedByOneOwnerAndAckedOnce", testOutboxClaims},
		{"CommentsAndDeliveriesAreStoredOnce", testCommentsAndDeliveries},
		{"TokensAreStoredHashed", testTokens},
		{"MergeTargetsWaitUntilCollected", testMergeTargets},
		{"NextDueIsTheEarliestClaimableTime", testNextDue},
		{"UsersAndSessionsAreStoredHashedAndExpire", testUsersAndSessions},
		{"LoginFailuresAreCountedPerNameAndAddress", testLoginFailures},
		{"QueueOrdersPageByPositionWithinScope", testQueueOrders},
		{"TextFilterFindsTheTitleSubstringLiterally", testTextFilter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newDSN) })
	}
}

const (
	tenantA = "aaaaaaaa-0000-0000-0000-000000000001"
	tenantB = "bbbbbbbb-0000-0000-0000-000000000002"
)

// open opens a migrated store with the clock, closed when the test ends.
func open(t *testing.T, dsn string, clock *Clock) *store.Store {
	t.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, dsn, store.Options{Now: clock.Now})
	if err != nil {
		t.Fatalf("open %s: %v", dsn, err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return s
}

// seed stores two tenants with a Defender source each and a Sentinel source for A.
func seed(t *testing.T, s *store.Store) {
	t.Helper()
	err := s.SyncTenants(context.Background(),
		[]store.Tenant{{ID: tenantA, Name: "Alpha"}, {ID: tenantB, Name: "Beta"}},
		[]store.Source{
			{TenantID: tenantA, Kind: store.KindDefender},
			{TenantID: tenantA, Kind: store.KindSentinel, Workspace: "sub/rg/ws1"},
			{TenantID: tenantB, Kind: store.KindDefender},
		})
	if err != nil {
		t.Fatal(err)
	}
}

func newIncident(tenant, title string) *incident.Incident {
	return &incident.Incident{TenantID: tenant, Title: title, Fields: incident.Fields{
		Status: incident.StatusNew, Severity: incident.SeverityMedium, Tags: []string{"b", "A"}}}
}

func mustTx(t *testing.T, s *store.Store, fn func(tx *store.Tx) error) {
	t.Helper()
	if err := s.InTx(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

func testMigrate(t *testing.T, newDSN NewDSN) {
	ctx := context.Background()
	dsn := newDSN(t)
	s, err := store.Open(ctx, dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CheckMigrated(ctx); !errors.Is(err, store.ErrNotMigrated) {
		t.Fatalf("CheckMigrated on an empty database = %v, want ErrNotMigrated", err)
	}
	v1, err := s.Migrate(ctx)
	if err != nil || v1 < 1 {
		t.Fatalf("Migrate = %d, %v", v1, err)
	}
	v2, err := s.Migrate(ctx)
	if err != nil || v2 != v1 {
		t.Fatalf("second Migrate = %d, %v; want %d", v2, err, v1)
	}
	if err := s.CheckMigrated(ctx); err != nil {
		t.Fatalf("CheckMigrated after Migrate = %v", err)
	}
}

// Replicas that start together each run Migrate on one database (on PostgreSQL under goose's
// advisory lock): every call succeeds, reports the same version, and each migration is applied
// once.
func testConcurrentMigrate(t *testing.T, newDSN NewDSN) {
	ctx := context.Background()
	dsn := newDSN(t)
	const replicas = 4
	stores := make([]*store.Store, replicas)
	for i := range stores {
		s, err := store.Open(ctx, dsn, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores[i] = s
	}
	versions := make([]int64, replicas)
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			versions[i], errs[i] = s.Migrate(ctx)
		}()
	}
	close(start)
	wg.Wait()
	for i := range stores {
		if errs[i] != nil || versions[i] < 1 || versions[i] != versions[0] {
			t.Errorf("replica %d: Migrate = %d, %v; want every replica at one version", i, versions[i], errs[i])
		}
	}
	if t.Failed() {
		return
	}
	if err := stores[0].CheckMigrated(ctx); err != nil {
		t.Fatalf("CheckMigrated after concurrent migrations = %v", err)
	}
	// goose records one row per applied migration: a migration run twice would show twice.
	db := rawDB(t, dsn)
	rows, err := db.QueryContext(ctx, "SELECT version_id, COUNT(*) FROM goose_db_version WHERE version_id > 0 GROUP BY version_id ORDER BY version_id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var applied []int64
	for rows.Next() {
		var v, n int64
		if err := rows.Scan(&v, &n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("migration %d recorded %d times, want once", v, n)
		}
		applied = append(applied, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if int64(len(applied)) != versions[0] || applied[len(applied)-1] != versions[0] {
		t.Errorf("applied migrations %v, want 1..%d once each", applied, versions[0])
	}
	// The schema works: a tenant can be stored and read back.
	seed(t, stores[replicas-1])
	if srcs, err := stores[0].Sources(ctx, store.AllTenants()); err != nil || len(srcs) != 3 {
		t.Errorf("sources after concurrent migrations = %d, %v; want 3", len(srcs), err)
	}
}

// rawDB opens the database of dsn without the store, for checks the store has no method for.
func rawDB(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	driver, name := "pgx", dsn
	if path, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
		driver, name = "sqlite", path
	}
	db, err := sql.Open(driver, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func testSyncTenants(t *testing.T, newDSN NewDSN) {
	ctx := context.Background()
	s := open(t, newDSN(t), NewClock())
	seed(t, s)
	seed(t, s)
	srcs, err := s.Sources(ctx, store.AllTenants())
	if err != nil || len(srcs) != 3 {
		t.Fatalf("sources = %d, %v; want 3", len(srcs), err)
	}
	// Drop tenant B's source from the configuration: it stays, disabled.
	err = s.SyncTenants(ctx, []store.Tenant{{ID: tenantA, Name: "Alpha 2"}},
		[]store.Source{{TenantID: tenantA, Kind: store.KindDefender}, {TenantID: tenantA, Kind: store.KindSentinel, Workspace: "sub/rg/ws1"}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Source(ctx, tenantB, store.SourceID(tenantB, store.KindDefender, ""))
	if err != nil || b.Enabled {
		t.Fatalf("removed source: %+v, %v; want it kept and disabled", b, err)
	}
	ts, err := s.Tenants(ctx, store.AllTenants())
	if err != nil || len(ts) != 2 || ts[0].Name != "Alpha 2" {
		t.Fatalf("tenants = %+v, %v", ts, err)
	}
}

func testCreateIncidentIdempotent(t *testing.T, newDSN NewDSN) {
	ctx := context.Background()
	s := open(t, newDSN(t), NewClock())
	seed(t, s)
	var first, second incident.Incident
	for i, dst := range []*incident.Incident{&first, &second} {
		mustTx(t, s, func(tx *store.Tx) error {
			inc := newIncident(tenantA, fmt.Sprintf("try %d", i))
			created, err := tx.CreateIncident(ctx, inc, "graph:42", store.Change{})
			if created != (i == 0) {
				t.Errorf("try %d: created = %v", i, created)
			}
			*dst = *inc
			return err
		})
	}
	if first.ID != second.ID || second.Title != "try 0" || second.Version != 1 {
		t.Fatalf("second create returned %+v, want the first (%s, try 0, v1)", second, first.ID)
	}
	got, err := s.Incident(ctx, tenantA, first.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !incident.EqualTags(got.Tags, []string{"a", "B"}) || got.SyncState != "in_sync" {
		t.Errorf("stored incident %+v", got)
	}
	if n, _ := s.OutboxPending(ctx); n != 1 {
		t.Errorf("outbox rows = %d, want 1", n)
	}
}

func testUpdateConflict(t *testing.T, newDSN NewDSN) {
	ctx := context.Background()
	clock := NewClock()
	s := open(t, newDSN(t), clock)
	seed(t, s)
	inc := newIncident(tenantA, "x")
	mustTx(t, s, func(tx *store.Tx) error { _, err := tx.CreateIncident(ctx, inc, "graph:1", store.Change{}); return err })
	stale := *inc
	clock.Advance(time.Second)
	inc.Status = incident.StatusActive
	mustTx(t, s, func(tx *store.Tx) error { return tx.UpdateIncident(ctx, inc, store.Change{Summary: "status"}) })
	if inc.Version != 2 {
		t.Fatalf("version after update = %d, want 2", inc.Version)
	}
	stale.Severity = incident.SeverityHigh
	err := s.InTx(ctx, func(tx *store.Tx) error { return tx.UpdateIncident(ctx, &stale, store.Change{}) })
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale update = %v, want ErrConflict", err)
	}
	got, _ := s.Incident(ctx, tenantA, inc.ID)
	if got.Version != 2 || got.Severity != incident.SeverityMedium || got.Status != incident.StatusActive {
		t.Errorf("after refused update: %+v", got.Incident)
	}
	if n, _ := s.OutboxPending(ctx); n != 2 {
		t.Errorf("outbox rows = %d, want 2 (create, one update)", n)
	}
}

func testOutboxPerVersion(t *testing.T, newDSN NewDSN) {
	ctx := context.Background()
	s := open(t, newDSN(t), NewClock())
	seed(t, s)
	inc := newIncident(tenantA, "x")
	mustTx(t, s, func(tx *store.Tx) error {
		if _, err := tx.CreateIncident(ctx, inc, "graph:7", store.Change{}); err != nil {
			return err
		}
		_, err := tx.UpsertLink(ctx, &store.Link{TenantID: tenantA, IncidentID: inc.ID, SourceID: store.SourceID(tenantA, store.KindDefender, ""),
			Kind: store.LinkGraph, ExternalID: "7", URL: "https://security.microsoft.com/incidents/7"})
		return err
	})
	for i := range 3 {
		mustTx(t, s, func(tx *store.Tx) error {
			inc.Owner = fmt.Sprintf("owner%d@x.com", i)
			return tx.UpdateIncident(ctx, inc, store.Change{Summary: "owner"})
		})
	}
	rows, err := s.ClaimOutbox(ctx, "r1", time.Minute, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 {
		t.Fatalf("outbox rows = %d, want 4 (v1..v4)", len(rows))
	}
	for i, r := range rows {
		if r.Version != int64(i+1) || r.Record.Incident.Version != r.Version {
			t.Errorf("row %d: version %d, record version %d", i, r.Version, r.Record.Incident.Version)
		}
	}
	if first := rows[0].Record; len(first.Links) != 1 {
		t.Errorf("v1 record has %d links; the link stored in the creating transaction must be in it", len(first.Links))
	}
	if last := rows[3].Record; last.Incident.Owner != "owner2@x.com" || len(last.Links) != 1 || last.Links[0].ExternalID != "7" {
		t.Errorf("last record = %+v", last)
	}
}

func testOneVersionPerTx(t *testing.T, newDSN NewDSN) {
	ctx := context.Background()
	s := open(t, newDSN(t), NewClock())
	seed(t, s)
	inc := newIncident(tenantA, "x")
	mustTx(t, s, func(tx *store.Tx) error {
		if _, err := tx.CreateIncident(ctx, inc, "graph:1", store.Change{Summary: "created"}); err != nil {
			return err
		}
		inc.Severity = incident.SeverityHigh
		return tx.UpdateIncident(ctx, inc, store.Change{Summary: "severity"})
	})
	mustTx(t, s, func(tx *store.Tx) error {
		inc.Status = incident.StatusActive
		if err := tx.UpdateIncident(ctx, inc, store.Change{Summary: "status"}); err != nil {
			return err
		}
		inc.Owner = "ana@x.com"
		return tx.UpdateIncident(ctx, inc, store.Change{Summary: "owner"})
	})
	rows, err := s.ClaimOutbox(ctx, "r", time.Minute, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || inc.Version != 2 {
		t.Fatalf("%d outbox rows, version %d; want 2 and 2", len(rows), inc.Version)
	}
	if r := rows[0].Record; r.Incident.Severity != incident.SeverityHigh || r.Change.Summary != "created; severity" {
		t.Errorf("v1 record = %+v", r)
	}
	if r := rows[1].Record; r.Incident.Owner != "ana@x.com" || r.Change.Summary != "status; owner" {
		t.Errorf("v2 record = %+v", r)
	}
}

func testUpsertLink(t *testing.T, newDSN NewDSN) {
	ctx := context.Background()
	clock := NewClock()
	s := open(t, newDSN(t), clock)
	seed(t, s)
	inc := newIncident(tenantA, "x")
	src := store.SourceID(tenantA, store.KindDefender, "")
	t0 := clock.Now().Add(-time.Hour)
	link := func(status string, at time.Time) *store.Link {
		return &store.Link{TenantID: tenantA, IncidentID: inc.ID, SourceID: src, Kind: store.LinkGraph, ExternalID: "9",
			Observed: json.RawMessage(`{"status":"` + status + `"}`), RemoteUpdated: at}
	}
	upsert := func(l *store.Link) bool {
		var changed bool
		mustTx(t, s, func(tx *store.Tx) error {
			var err error
			changed, err = tx.UpsertLink(ctx, l)
			return err
		})
		return changed
	}
	mustTx(t, s, func(tx *store.Tx) error { _, err := tx.CreateIncident(ctx, inc, "graph:9", store.Change{}); return err })
	if !upsert(link("active", t0)) {
		t.Error("first observation must be a change")
	}
	if upsert(link("active", t0)) {
		t.Error("the same observation again must not be a change")
	}
	if !upsert(link("resolved", t0.Add(time.Minute))) {
		t.Error("a newer observation must be a change")
	}
	late := link("active", t0)
	if upsert(late) {
		t.Error("an older observation arriving late must not be a change")
	}
	if string(late.Observed) != `{"status":"resolved"}` {
		t.Errorf("late observation left the link at %s, want the newer resolved", late.Observed)
	}
	links, _ := s.Links(ctx, tenantA, inc.ID)
	if len(links) != 1 || string(links[0].Observed) != `{"status":"resolved"}` {
		t.Fatalf("links = %+v", links)
	}
	mustTx(t, s, func(tx *store.Tx) error {
		return tx.SetLinkSync(ctx, tenantA, links[0].ID, json.RawMessage(`{"status":"resolved"}`), "in_sync", "")
	})
	links, _ = s.Links(ctx, tenantA, inc.ID)
	if string(links[0].Base) != `{"status":"resolved"}` {
		t.Errorf("base = %s", links[0].Base)
	}
	if err := s.InTx(ctx, func(tx *store.Tx) error {
		return tx.SetLinkSync(ctx, tenantB, links[0].ID, nil, "failed", "x")
	}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SetLinkSync through another tenant = %v, want ErrNotFound", err)
	}
}

func testAlertVersions(t *testing.T, newDSN NewDSN) {
	ctx := context.Background()
	clock := NewClock()
	s := open(t, newDSN(t), clock)
	seed(t, s)
	inc := newIncident(tenantA, "x")
	mustTx(t, s, func(tx *store.Tx) error { _, err := tx.CreateIncident(ctx, inc, "graph:1", store.Change{}); return err })
	t0 := clock.Now()
	cases := []struct {
		status  incident.AlertStatus
		version time.Time
		stored  bool
	}{
		{incident.AlertNew, t0, true},
		{incident.AlertNew, t0, false},                              // the same version from a second connector
		{incident.AlertResolved, t0.Add(time.Minute), true},         // newer
		{incident.AlertInProgress, t0.Add(30 * time.Second), false}, // older, late
		{incident.AlertResolved, t0.Add(time.Minute), false},        // equal
		{incident.AlertDismissed, t0.Add(2 * time.Minute), true},    // newer again
	}
	for i, c := range cases {
		a := incident.Alert{TenantID: tenantA, RemoteID: "da1", IncidentID: inc.ID, Title: "t", Status: c.status, Version: c.version}
		mustTx(t, s, func(tx *store.Tx) error {
			stored, err := tx.UpsertAlert(ctx, a, nil, tx.Now())
			if stored != c.stored {
				t.Errorf("case %d: stored = %v, want %v", i, stored, c.stored)
			}
			return err
		})
	}
	alerts, err := s.Alerts(ctx, tenantA, inc.ID)
	if err != nil || len(alerts) != 1 || alerts[0].Status != incident.AlertDismissed {
		t.Fatalf("alerts = %+v, %v; want one, dismissed", alerts, err)
	}

	// A merge moves the alert to another incident without a new version: the newer report wins,
	// a stale report from the old incident does not move it back.
	target := newIncident(tenantA, "target")
	mustTx(t, s, func(tx *store.Tx) error {
		_, err := tx.CreateIncident(ctx, target, "graph:2", store.Change{})
		return err
	})
	moved := incident.Alert{TenantID: tenantA, RemoteID: "da1", Title: "t", Status: incident.AlertDismissed, Version: t0.Add(2 * time.Minute)}
	for i, c := range []struct {
		incidentID string
		reported   time.Time
		stored     bool
	}{{target.ID, t0.Add(time.Hour), true}, {inc.ID, t0.Add(30 * time.Minute), false}} {
		moved.IncidentID = c.incidentID
		mustTx(t, s, func(tx *store.Tx) error {
			stored, err := tx.UpsertAlert(ctx, moved, nil, c.reported)
			if stored != c.stored {
				t.Errorf("move %d: stored = %v, want %v", i, stored, c.stored)
			}
			return err
		})
	}
	if a, _ := s.Alerts(ctx, tenantA, target.ID); len(a) != 1 {
		t.Errorf("the moved alert is not on the target: %+v", a)
	}
}

func claimOne(t *testing.T, s *store.Store, owner string) store.Lease {
	t.Helper()
	ls, err := s.ClaimDue(context.Background(), owner, time.Minute, 1)
	if err != nil || len(ls) != 1 {
		t.Fatalf("ClaimDue(%s) = %d leases, %v", owner, len(ls), err)
	}
	return ls[0]
}

func testCursorCommitsWithData(t *testing.T, newDSN NewDSN) {
	ctx := context.Background()
	s := open(t, newDSN(t), NewClock())
	seed(t, s)
	l := claimOne(t, s, "r1")
	boom := errors.New("page failed half-way")
	err := s.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.Fence(ctx, l); err != nil {
			return err
		}
		if _, err := tx.CreateIncident(ctx, newIncident(l.TenantID, "x"), "graph:1", store.Change{}); err != nil {
			return err
		}
		if err := tx.AdvanceCursor(ctx, l, "cursor-1"); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx = %v", err)
	}
	src, _ := s.Source(ctx, l.TenantID, l.ID)
	list, _ := s.ListIncidents(ctx, store.AllTenants(), store.ListFilter{}, store.ListPage{}, 10)
	if src.Cursor != "" || len(list) != 0 {
		t.Fatalf("after a failed page: cursor %q, %d incidents; want neither stored", src.Cursor, len(list))
	}
	mustTx(t, s, func(tx *store.Tx) error {
		if err := tx.Fence(ctx, l); err != nil {
			return err
		}
		if _, err := tx.CreateIncident(ctx, newIncident(l.TenantID, "x"), "graph:1", store.Change{}); err != nil {
			return err
		}
		return tx.AdvanceCursor(ctx, l, "cursor-1")
	})
	src, _ = s.Source(ctx, l.TenantID, l.ID)
	list, _ = s.ListIncidents(ctx, store.AllTenants(), store.ListFilter{}, store.ListPage{}, 10)
	if src.Cursor != "cursor-1" || len(list) != 1 {
		t.Fatalf("after a good page: cursor %q, %d incidents; want both stored", src.Cursor, len(list))
	}
}

func testLeasesExclusive(t *testing.T, newDSN NewDSN) {
	ctx := context.Background()
	dsn := newDSN(t)
	clock := NewClock()
	base := open(t, dsn, clock)
	const nTenants = 40
	var tenants []store.Tenant
	var sources []store.Source
	for i := range nTenants {
		id := fmt.Sprintf("cccccccc-0000-0000-0000-%012d", i)
		tenants = append(tenants, store.Tenant{ID: id, Name: id})
		sources = append(sources, store.Source{TenantID: id, Kind: store.KindDefender})
	}
	if err := base.SyncTenants(ctx, tenants, sources); err != nil {
		t.Fatal(err)
	}
	// Several replicas, each its own Store (own connections), several goroutines each.
	const replicas, perReplica = 3, 4
	var mu sync.Mutex
	claimed := map[string]string{}
	var wg sync.WaitGroup
	errs := make(chan error, replicas*perReplica)
	for r := range replicas {
		s := open(t, dsn, clock)
		for g := range perReplica {
			owner := fmt.Sprintf("replica%d-worker%d", r, g)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					ls, err := s.ClaimDue(ctx, owner, time.Minute, 3)
					if err != nil {
						errs <- err
						return
					}
					if len(ls) == 0 {
						return
					}
					mu.Lock()
					for _, l := range ls {
						if prev, dup := claimed[l.ID]; dup {
							errs <- fmt.Errorf("source %s claimed by %s and %s", l.ID, prev, owner)
						}
						claimed[l.ID] = owner
					}
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(claimed) != nTenants {
		t.Errorf("claimed %d sources, want all %d", len(claimed), nTenants)
	}
}

func testStaleFencingToken(t *testing.T, newDSN NewDSN) {
	ctx := context.Background()
	clock := NewClock()
	s := open(t, newDSN(t), clock)
	seed(t, s)
	l1 := claimOne(t, s, "paused-replica")
	clock.Advance(2 * time.Minute) // the lease expires while its holder is paused
	var l2 store.Lease
	for {
		l2 = claimOne(t, s, "live-replica")
		if l2.ID == l1.ID {
			break
		}
	}
	if l2.Token <= l1.Token {
		t.Fatalf("token did not increase: %d then %d", l1.Token, l2.Token)
	}
	// The paused replica resumes and tries to store its page: refused, nothing stored.
	err := s.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.Fence(ctx, l1); err != nil {
			return err
		}
		_, err := tx.CreateIncident(ctx, newIncident(l1.TenantID, "stale"), "graph:1", store.Change{})
		return err
	})
	if !errors.Is(err, store.ErrFenced) {
		t.Fatalf("stale Fence = %v, want ErrFenced", err)
	}
	if err := s.InTx(ctx, func(tx *store.Tx) error { return tx.AdvanceCursor(ctx, l1, "stale") }); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("stale AdvanceCursor = %v, want ErrFenced", err)
	}
	if err := s.Release(ctx, l1, store.PollResult{NextPoll: clock.Now()}); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("stale Release = %v, want ErrFenced", err)
	}
	if err := s.Renew(ctx, &l1, time.Minute); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("stale Renew = %v, want ErrFenced", err)
	}
	src, _ := s.Source(ctx, l2.TenantID, l2.ID)
	if src.Cursor != "" || src.LeaseOwner != "live-replica" {
		t.Errorf("source after stale writes: %+v", src)
	}
	list, _ := s.ListIncidents(ctx, store.AllTenants(), store.ListFilter{}, store.ListPage{}, 10)
	if len(list) != 0 {
		t.Errorf("stale replica stored %d incidents", len(list))
	}
	// The live holder's writes go through.
	if err := s.InTx(ctx, func(tx *store.Tx) error { return tx.AdvanceCursor(ctx, l2, "live") }); err != nil {
		t.Fatal(err)
	}
}

func testExpiredLeaseTakenOver(t *testing.T, newDSN NewDSN) {
	ctx := context.Background()
	clock := NewClock()
	s := open(t, newDSN(t), clock)
	seed(t, s)
	all, err := s.ClaimDue(ctx, "dead", time.Minute, 10)
	if err != nil || len(all) != 3 {
		t.Fatalf("claim all = %d, %v", len(all), err)
	}
	if ls, _ := s.ClaimDue(ctx, "other", time.Minute, 10); len(ls) != 0 {
		t.Fatalf("claimed %d held sources", len(ls))
	}
	// A renewed lease is kept; the others expire.
	clock.Advance(50 * time.Second)
	if err := s.Renew(ctx, &all[0], time.Minute); err != nil {
		t.Fatal(err)
	}
	clock.Advance(20 * time.Second)
	ls, err := s.ClaimDue(ctx, "other", time.Minute, 10)
	if err != nil || len(ls) != 2 {
		t.Fatalf("takeover claimed %d, %v; want the 2 unrenewed", len(ls), err)
	}
	for _, l := range ls {
		if l.ID == all[0].ID {
			t.Error("a renewed lease was taken over")
		}
	}
	// Releasing schedules the next poll: not claimable before it is due.
	if err := s.Release(ctx, ls[0], store.PollResult{NextPoll: clock.Now().Add(time.Minute), Calls: 2, Changed: 1}); err != nil {
		t.Fatal(err)
	}
	if again, _ := s.ClaimDue(ctx, "third", time.Minute, 10); len(again) != 0 {
		t.Fatalf("claimed %d sources before they were due", len(again))
	}
	src, _ := s.Source(ctx, ls[0].TenantID, ls[0].ID)
	if src.Calls != 2 || src.Polls != 1 || src.LastChange.IsZero() || src.LeaseOwner != "" {
		t.Errorf("released source = %+v", src)
	}
}

func testTenantScoping(t *testing.T, newDSN NewDSN) {
	ctx := context.Background()
	s := open(t, newDSN(t), NewClock())
	seed(t, s)
	ids := map[string]string{}
	for _, tenant := range []string{tenantA, tenantB} {
		mustTx(t, s, func(tx *store.Tx) error {
			inc := newIncident(tenant, "canary-"+tenant)
			if _, err := tx.CreateIncident(ctx, inc, "graph:29", store.Change{}); err != nil {
				return err
			}
			ids[tenant] = inc.ID
			_, err := tx.UpsertLink(ctx, &store.Link{TenantID: tenant, IncidentID: inc.ID,
				SourceID: store.SourceID(tenant, store.KindDefender, ""), Kind: store.LinkGraph, ExternalID: "29"})
			if err != nil {
				return err
			}
			_, err = tx.UpsertAlert(ctx, incident.Alert{TenantID: tenant, RemoteID: "da29", IncidentID: inc.ID, Title: "canary-" + tenant, Version: tx.Now()}, nil, tx.Now())
			return err
		})
	}
	if ids[tenantA] == ids[tenantB] {
		t.Fatal("two tenants with remote incident 29 share one hub incident")
	}
	for tenant, id := range ids {
		other := tenantA
		if tenant == tenantA {
			other = tenantB
		}
		if _, err := s.Incident(ctx, other, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("incident of %s read as %s: %v", tenant, other, err)
		}
		if _, err := s.IncidentInScope(ctx, store.Tenants(other), id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("incident of %s visible in scope of %s: %v", tenant, other, err)
		}
		if got, err := s.IncidentInScope(ctx, store.Tenants(tenant), id); err != nil || got.Title != "canary-"+tenant {
			t.Errorf("own incident: %+v, %v", got, err)
		}
		if l, _ := s.Links(ctx, other, id); len(l) != 0 {
			t.Errorf("links of %s's incident visible to %s", tenant, other)
		}
		if a, _ := s.Alerts(ctx, other, id); len(a) != 0 {
			t.Errorf("alerts of %s's incident visible to %s", tenant, other)
		}
		alerts, _ := s.Alerts(ctx, tenant, id)
		if len(alerts) != 1 || alerts[0].Title != "canary-"+tenant {
			t.Errorf("alerts of %s = %+v", tenant, alerts)
		}
		list, _ := s.ListIncidents(ctx, store.Tenants(other), store.ListFilter{}, store.ListPage{}, 10)
		for _, inc := range list {
			if inc.TenantID != other {
				t.Errorf("list for %s shows %s's incident", other, inc.TenantID)
			}
		}
	}
	if list, _ := s.ListIncidents(ctx, store.Scope{}, store.ListFilter{}, store.ListPage{}, 10); len(list) != 0 {
		t.Errorf("the empty scope sees %d incidents", len(list))
	}
}

func testListIncidents(t *testing.T, newDSN NewDSN) {
	ctx := context.Background()
	clock := NewClock()
	s := open(t, newDSN(t), clock)
	seed(t, s)
	for i := range 25 {
		clock.Advance(time.Second)
		tenant := tenantA
		if i%5 == 0 {
			tenant = tenantB
		}
		mustTx(t, s, func(tx *store.Tx) error {
			inc := newIncident(tenant, fmt.Sprintf("Phishing %02d", i))
			if i%2 == 0 {
				inc.Severity = incident.SeverityHigh
			}
			_, err := tx.CreateIncident(ctx, inc, fmt.Sprintf("graph:%d", i), store.Change{})
			return err
		})
	}
	var seen []string
	page := store.ListPage{}
	for {
		items, err := s.ListIncidents(ctx, store.AllTenants(), store.ListFilter{}, page, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			seen = append(seen, it.Title)
		}
		if len(items) < 10 {
			break
		}
		last := items[len(items)-1]
		page = store.ListPage{UpdatedAt: last.UpdatedAt, ID: last.ID}
	}
	if len(seen) != 25 || seen[0] != "Phishing 24" || seen[24] != "Phishing 00" {
		t.Fatalf("paged titles = %v", seen)
	}
	high, _ := s.ListIncidents(ctx, store.Tenants(tenantA), store.ListFilter{Severity: "high", Text: "PHISH"}, store.ListPage{}, 100)
	if len(high) != 10 { // even i, not a multiple of 5: 2,4,6,8,12,14,16,18,22,24
		t.Errorf("high in tenant A = %d, want 10", len(high))
	}
}

func testOutboxClaims(t *testing.T, newDSN NewDSN) {
	ctx := context.Background()
	clock := NewClock()
	s := open(t, newDSN(t), clock)
	seed(t, s)
	for i := range 5 {
		mustTx(t, s, func(tx *store.Tx) error {
			_, err := tx.CreateIncident(ctx, newIncident(tenantA, "x"), fmt.Sprintf("graph:%d", i), store.Change{})
			return err
		})
	}
	r1, _ := s.ClaimOutbox(ctx, "r1", time.Minute, 3)
	r2, _ := s.ClaimOutbox(ctx, "r2", time.Minute, 10)
	if len(r1) != 3 || len(r2) != 2 {
		t.Fatalf("claims r1=%d r2=%d, want 3 and 2", len(r1), len(r2))
	}
	keys := func(rows []store.OutboxRow) []store.OutboxKey {
		var k []store.OutboxKey
		for _, r := range rows {
			k = append(k, store.OutboxKey{IncidentID: r.IncidentID, Version: r.Version})
		}
		return k
	}
	if n, _ := s.AckOutbox(ctx, "r2", keys(r1)); n != 0 {
		t.Errorf("r2 acked %d of r1's rows", n)
	}
	if n, _ := s.AckOutbox(ctx, "r1", keys(r1)); n != 3 {
		t.Errorf("r1 acked %d, want 3", n)
	}
	if n, _ := s.AckOutbox(ctx, "r1", keys(r1)); n != 0 {
		t.Errorf("second ack counted %d", n)
	}
	// r2 dies; its claims expire and r3 takes them.
	clock.Advance(2 * time.Minute)
	r3, _ := s.ClaimOutbox(ctx, "r3", time.Minute, 10)
	if len(r3) != 2 {
		t.Fatalf("r3 claimed %d expired rows, want 2", len(r3))
	}
	if n, _ := s.AckOutbox(ctx, "r3", keys(r3)); n != 2 {
		t.Errorf("r3 acked %d", n)
	}
	if n, _ := s.OutboxPending(ctx); n != 0 {
		t.Errorf("pending = %d", n)
	}
}

func testCommentsAndDeliveries(t *testing.T, newDSN NewDSN) {
	ctx := context.Background()
	s := open(t, newDSN(t), NewClock())
	seed(t, s)
	inc := newIncident(tenantA, "x")
	mustTx(t, s, func(tx *store.Tx) error { _, err := tx.CreateIncident(ctx, inc, "graph:1", store.Change{}); return err })
	for i := range 2 {
		mustTx(t, s, func(tx *store.Tx) error {
			c := &incident.Comment{IncidentID: inc.ID, Origin: incident.OriginGraph, Author: "Ana", Text: "looked at it"}
			added, err := tx.AddComment(ctx, tenantA, c, "graph|ana|2026-11-02T09:00:00Z|looked at it")
			if added != (i == 0) {
				t.Errorf("delivery %d: added = %v", i, added)
			}
			return err
		})
	}
	cs, _ := s.Comments(ctx, tenantA, inc.ID)
	if len(cs) != 1 {
		t.Errorf("comments = %d, want 1", len(cs))
	}
	for i := range 2 {
		mustTx(t, s, func(tx *store.Tx) error {
			first, err := tx.RecordDelivery(ctx, "splunk", "sid-1", tenantA, inc.ID)
			if first != (i == 0) {
				t.Errorf("delivery %d: first = %v", i, first)
			}
			return err
		})
	}
	mustTx(t, s, func(tx *store.Tx) error {
		return tx.Audit(ctx, store.AuditEntry{TenantID: tenantA, IncidentID: inc.ID, Actor: "ana", Action: "edit", Field: "status", Before: "new", After: "active"})
	})
	h, _ := s.History(ctx, tenantA, inc.ID)
	if len(h) != 1 || h[0].After != "active" {
		t.Errorf("history = %+v", h)
	}
	if h, _ := s.History(ctx, tenantB, inc.ID); len(h) != 0 {
		t.Error("history visible to another tenant")
	}
}

func testTokens(t *testing.T, newDSN NewDSN) {
	ctx := context.Background()
	s := open(t, newDSN(t), NewClock())
	const secret = "ssk_example-token-value"
	tok := &store.Token{Name: "ci", Role: "analyst", Tenants: []string{tenantA}}
	if err := s.CreateToken(ctx, tok, secret); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateToken(ctx, &store.Token{Name: "ci", Role: "viewer"}, "other"); !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate name = %v, want ErrConflict", err)
	}
	got, err := s.TokenByValue(ctx, secret)
	if err != nil || got.Name != "ci" || got.Role != "analyst" || len(got.Tenants) != 1 {
		t.Fatalf("TokenByValue = %+v, %v", got, err)
	}
	if _, err := s.TokenByValue(ctx, "wrong"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("wrong token = %v", err)
	}
	if store.HashToken(secret) == secret || len(store.HashToken(secret)) != 64 {
		t.Error("tokens must be stored as a SHA-256 hash")
	}
}

func testMergeTargets(t *testing.T, newDSN NewDSN) {
	ctx := context.Background()
	s := open(t, newDSN(t), NewClock())
	seed(t, s)
	src := newIncident(tenantA, "source")
	mustTx(t, s, func(tx *store.Tx) error {
		if _, err := tx.CreateIncident(ctx, src, "graph:1", store.Change{}); err != nil {
			return err
		}
		return tx.AwaitMergeTarget(ctx, tenantA, src.ID, "graph:2")
	})
	mustTx(t, s, func(tx *store.Tx) error {
		if ids, err := tx.IncidentsAwaitingMerge(ctx, tenantB, "graph:2"); err != nil || len(ids) != 0 {
			t.Errorf("another tenant's wait = %v, %v", ids, err)
		}
		ids, err := tx.IncidentsAwaitingMerge(ctx, tenantA, "graph:2")
		if err != nil || len(ids) != 1 || ids[0] != src.ID {
			t.Errorf("awaiting graph:2 = %v, %v; want [%s]", ids, err, src.ID)
		}
		again, err := tx.IncidentsAwaitingMerge(ctx, tenantA, "graph:2")
		if len(again) != 0 {
			t.Errorf("the wait was not cleared: %v", again)
		}
		return err
	})
}

func testNextDue(t *testing.T, newDSN NewDSN) {
	ctx := context.Background()
	clock := NewClock()
	s := open(t, newDSN(t), clock)
	if next, err := s.NextDue(ctx); err != nil || !next.IsZero() {
		t.Fatalf("NextDue without sources = %v, %v", next, err)
	}
	seed(t, s)
	all, err := s.ClaimDue(ctx, "r", time.Minute, 10)
	if err != nil || len(all) != 3 {
		t.Fatal(len(all), err)
	}
	for i, l := range all {
		if err := s.Release(ctx, l, store.PollResult{NextPoll: clock.Now().Add(time.Duration(30+i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	next, err := s.NextDue(ctx)
	if err != nil || !next.Equal(clock.Now().Add(30*time.Second)) {
		t.Errorf("NextDue = %v, %v; want now+30s", next, err)
	}
}
