package check

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/socsync/socsync/internal/emulator"
	"github.com/socsync/socsync/internal/store"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func rec(seq uint64, at time.Duration, tenant, api, method, route string, status, retryAfter int) emulator.RequestRecord {
	return emulator.RequestRecord{Seq: seq, Time: t0.Add(at), Tenant: tenant, API: api, Method: method, Route: route, Path: route,
		Status: status, RetryAfter: retryAfter, Principal: "app", Subscription: "sub"}
}

// The checkers must fire: each is shown a history that breaks its invariant.

func TestRetryAfter_FlagsACallBeforeTheRetryAfterOfItsScopeOnly(t *testing.T) {
	ok := []emulator.RequestRecord{
		rec(1, 0, "a", "graph", "GET", "/v1.0/security/incidents", 429, 2),
		rec(2, 5*time.Millisecond, "a", "graph", "GET", "/v1.0/security/incidents/{id}", 200, 0), // in flight
		rec(3, time.Second, "b", "graph", "GET", "/v1.0/security/incidents", 200, 0),             // another tenant
		rec(4, 2*time.Second, "a", "graph", "GET", "/v1.0/security/incidents", 200, 0),           // after
		rec(5, 3*time.Second, "a", "arm", "PUT", "/x/incidents/{id}", 429, 5),
		rec(6, 4*time.Second, "a", "arm", "GET", "/x/incidents", 200, 0), // reads are another ARM scope
	}
	if v := RetryAfter(ok, nil); v != nil {
		t.Fatalf("flagged a good history: %v", v)
	}
	bad := append(ok, rec(7, 5*time.Second, "a", "arm", "PUT", "/x/incidents/{id}/comments/{c}", 200, 0))
	v := RetryAfter(bad, nil)
	if v == nil || v.Invariant != "I7" || !strings.Contains(strings.Join(v.History, "\n"), "#5") {
		t.Fatalf("missed the early write: %v", v)
	}
}

func TestRetryAfter_InFlightWindowWidensByTheStallsBetweenOnly(t *testing.T) {
	recs := []emulator.RequestRecord{
		rec(1, 0, "a", "graph", "GET", "/v1.0/security/incidents", 429, 2),
		rec(2, 250*time.Millisecond, "a", "graph", "GET", "/v1.0/security/incidents/{id}", 200, 0),
	}
	if v := RetryAfter(recs, nil); v == nil {
		t.Fatal("a call 250 ms after the 429, with no stall between, was taken as in flight")
	}
	// One stall of 200 ms, from 10 ms after the 429.
	stallFrom, stallTo := t0.Add(10*time.Millisecond), t0.Add(210*time.Millisecond)
	stalled := func(from, to time.Time) time.Duration {
		lo, hi := max(from.UnixNano(), stallFrom.UnixNano()), min(to.UnixNano(), stallTo.UnixNano())
		return time.Duration(max(0, hi-lo))
	}
	if v := RetryAfter(recs, stalled); v != nil {
		t.Fatalf("a call 250 ms after the 429 with 200 ms of stalls between was flagged: %v", v)
	}
	late := append(recs, rec(3, time.Second, "a", "graph", "GET", "/v1.0/security/incidents", 200, 0))
	if v := RetryAfter(late, stalled); v == nil {
		t.Fatal("a call a second after the 429 was taken as in flight")
	}
}

func TestWithinBudget_FlagsABurstAboveTheBucket(t *testing.T) {
	var recs []emulator.RequestRecord
	for i := range 4 { // burst 2 (+1 slack), then 1/s: 4 at once is one too many
		recs = append(recs, rec(uint64(i), time.Duration(i)*time.Millisecond, "a", "arm", "PUT", "/x", 200, 0))
	}
	if v := WithinBudget(recs[:3], IsWrite, 2, 1); v != nil {
		t.Fatalf("flagged three: %v", v)
	}
	if v := WithinBudget(recs, IsWrite, 2, 1); v == nil {
		t.Fatal("missed a fourth write in the same millisecond")
	}
	spaced := []emulator.RequestRecord{rec(1, 0, "a", "arm", "PUT", "/x", 200, 0), rec(2, 0, "a", "arm", "PUT", "/x", 200, 0),
		rec(3, 0, "a", "arm", "PUT", "/x", 200, 0), rec(4, time.Second, "a", "arm", "PUT", "/x", 200, 0)}
	if v := WithinBudget(spaced, IsWrite, 2, 1); v != nil {
		t.Fatalf("flagged a write a second later: %v", v)
	}
}

func TestNoEcho_FlagsMoreWritesThanChangesAndWritesAfterQuiet(t *testing.T) {
	recs := []emulator.RequestRecord{
		rec(1, 0, "a", "graph", "PATCH", "/v1.0/security/incidents/{id}", 200, 0),
		rec(2, time.Second, "a", "graph", "GET", "/v1.0/security/incidents/{id}", 200, 0),
		rec(3, 2*time.Second, "a", "graph", "PATCH", "/v1.0/security/incidents/{id}", 500, 0), // not taken
	}
	if v := NoEcho(recs, 1, t0.Add(time.Second)); v == nil || !strings.Contains(v.Message, "after") {
		t.Fatalf("missed the write after quiet: %v", v)
	}
	if v := NoEcho(recs[:2], 1, t0.Add(time.Second)); v != nil {
		t.Fatal(v)
	}
	if v := NoEcho(recs[:2], 0, time.Time{}); v == nil {
		t.Fatal("missed a write without a change")
	}
}

func TestRequestsStayInTheirTenant_FlagsAForeignToken(t *testing.T) {
	r := rec(1, 0, "a", "graph", "GET", "/v1.0/security/incidents", 200, 0)
	r.PrincipalTenant = "a"
	if v := RequestsStayInTheirTenant([]emulator.RequestRecord{r}); v != nil {
		t.Fatal(v)
	}
	r.PrincipalTenant = "b"
	if v := RequestsStayInTheirTenant([]emulator.RequestRecord{r}); v == nil || v.Invariant != "I8" {
		t.Fatalf("missed tenant b's token on tenant a: %v", v)
	}
}

func TestCanaries_LeakOnlyOutsideTheirTenant(t *testing.T) {
	c := Canaries{"a": "CANARY-A", "b": "CANARY-B"}
	if v := c.Leak("a", "x", "title CANARY-A"); v != nil {
		t.Fatal(v)
	}
	if v := c.Leak("b", "x", "title CANARY-A"); v == nil {
		t.Fatal("missed a's canary in b's data")
	}
}

func TestCursors_FlagAStepBackAndAFutureCursor(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+t.TempDir()+"/c.db", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.SyncTenants(ctx, []store.Tenant{{ID: "t1", Name: "t1"}}, []store.Source{{TenantID: "t1", Kind: store.KindDefender}}); err != nil {
		t.Fatal(err)
	}
	setCursor := func(at time.Time) {
		t.Helper()
		leases, err := st.ClaimDue(ctx, "me", time.Minute, 1)
		if err != nil || len(leases) != 1 {
			t.Fatalf("claim: %v %v", leases, err)
		}
		err = st.InTx(ctx, func(tx *store.Tx) error {
			return tx.AdvanceCursor(ctx, leases[0], `{"v":1,"t":"`+at.Format(time.RFC3339Nano)+`"}`)
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Release(ctx, leases[0], store.PollResult{}); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	c := NewCursors()
	setCursor(now.Add(-time.Minute))
	c.Sample(ctx, st, now, now)
	setCursor(now.Add(-time.Second))
	c.Sample(ctx, st, now, now)
	if v, n := c.Check(); v != nil || n != 2 {
		t.Fatalf("%d samples, %v", n, v)
	}
	setCursor(now.Add(-2 * time.Minute))
	c.Sample(ctx, st, now, now)
	if v, _ := c.Check(); v == nil || !strings.Contains(v.Message, "went back") {
		t.Fatalf("missed the step back: %v", v)
	}
	c = NewCursors()
	setCursor(now.Add(10 * time.Minute))
	c.Sample(ctx, st, now.Add(10*time.Minute), now) // the server's clock is ahead: still not a cursor
	if v, _ := c.Check(); v == nil || !strings.Contains(v.Message, "future") {
		t.Fatalf("missed the future cursor: %v", v)
	}
}
