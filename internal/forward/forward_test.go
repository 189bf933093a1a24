package forward_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/socsync/socsync/internal/emulator"
	"github.com/socsync/socsync/internal/forward"
	"github.com/socsync/socsync/internal/hub/hubtest"
	"github.com/socsync/socsync/internal/incident"
	"github.com/socsync/socsync/internal/store"
)

// The documented limit of one Logs Ingestion request, compressed and uncompressed.
const oneMB = 1 << 20

func TestForward_TenThousandChangesGoOutInRequestsUnderOneMBWithOversizeFieldsCut(t *testing.T) {
	t.Parallel()
	r := newRig(t, hubtest.Options{Tenants: 4})
	big := strings.Repeat("oversized description ", 10_000) // 220 KB
	ids := fillOutbox(t, r, 2000, 5, func(inc *incident.Incident, i, v int) {
		inc.Description = fmt.Sprintf("incident %d at version %d: %s", i, v, strings.Repeat("details ", 40))
		if i%200 == 0 {
			inc.Description = big
			inc.Title = strings.Repeat("T", 70_000)
		}
	})
	if n := pending(t, r.st); n != 10_000 {
		t.Fatalf("outbox holds %d rows, want 10,000", n)
	}
	r.run(t, forward.Options{})
	eventually(t, "the outbox is drained", func() bool { return pending(t, r.st) == 0 })

	rows := ingested(t, r.env)
	counts := byRecord(rows)
	if len(rows) != 10_000 || len(counts) != 10_000 {
		t.Fatalf("%d rows ingested for %d records, want 10,000 of each", len(rows), len(counts))
	}
	for _, id := range ids {
		for v := 1; v <= 5; v++ {
			if counts[fmt.Sprintf("%s:%d", id, v)] != 1 {
				t.Fatalf("%s v%d ingested %d times", id, v, counts[fmt.Sprintf("%s:%d", id, v)])
			}
		}
	}
	sent := r.wire.sent()
	maxJSON, maxGzip := 0, 0
	for _, req := range sent {
		maxJSON, maxGzip = max(maxJSON, req.json), max(maxGzip, req.gzip)
		if req.json > forward.DefaultMaxBatchBytes || req.gzip > forward.DefaultMaxBatchBytes {
			t.Errorf("a request of %d bytes (%d gzip) is over the %d-byte batch bound", req.json, req.gzip, forward.DefaultMaxBatchBytes)
		}
	}
	if st := statuses(r.env); st[413] != 0 || st[204] != len(sent) {
		t.Errorf("emulator answered %v to %d requests, want only 204s", st, len(sent))
	}
	t.Logf("10,000 rows in %d requests; largest %d bytes of JSON (%d gzip); limit %d", len(sent), maxJSON, maxGzip, oneMB)

	// The oversize values were cut by socsync, not by the service: no value is over 64 KB, and
	// the rows say what was cut.
	cut := 0
	for _, raw := range r.env.Emulator.Ingested(r.env.Info.LogsIngestion.Stream) {
		var m map[string]json.RawMessage
		json.Unmarshal(raw, &m)
		for k, v := range m {
			if len(v) > forward.FieldLimit {
				t.Fatalf("column %s holds %d bytes", k, len(v))
			}
		}
	}
	for _, row := range rows {
		if len(row.TruncatedFields) > 0 {
			cut++
			if !slices.Equal(row.TruncatedFields, []string{"IncidentTitle", "Description"}) || !strings.HasPrefix(big, row.Description) {
				t.Errorf("%s: TruncatedFields %v", row.RecordKey, row.TruncatedFields)
			}
		}
	}
	if cut != 10*5 {
		t.Errorf("%d rows flagged as cut, want 50", cut)
	}
}

func TestForward_Survives413And429StormsWithNothingLost(t *testing.T) {
	t.Parallel() // it mostly waits out Retry-Afters
	r := newRig(t, hubtest.Options{Tenants: 3})
	fillOutbox(t, r, 3000, 1, func(inc *incident.Incident, i, v int) {
		inc.Description = strings.Repeat(fmt.Sprintf("row %d/%d ", i, v), 150) // ~2 KB each
	})
	// 429s with Retry-After 1 s on 30 % of the requests, injected 413s on 10 %, 5xx, resets
	// and hangs on some more; and a batch bound four times the service's, so that the
	// emulator also answers 413s for batches that are too large.
	if err := r.env.Emulator.SetFaults(emulator.FaultProfile{Rules: []emulator.FaultRule{
		{API: "ingestion", Rate429: 0.3, RetryAfter: []int{1, 1}, Rate413: 0.1, Rate5xx: 0.1, RateReset: 0.05, RateHang: 0.02},
	}}); err != nil {
		t.Fatal(err)
	}
	// The request timeout ends the hung requests; it must not end one the emulator is still
	// storing (a 1 MB upload under -race on two loaded cores took over 2 s): that answer would
	// be lost, and the batch sent again — an honest repeat, but not what this test is about.
	r.run(t, forward.Options{MaxBatchBytes: 8 * oneMB, ClaimLimit: 3000, RequestTimeout: 10e9, MinBackoff: 50e6, MaxBackoff: 500e6})
	eventually(t, "the outbox is drained", func() bool { return pending(t, r.st) == 0 })

	rows := ingested(t, r.env)
	counts := byRecord(rows)
	if len(counts) != 3000 {
		t.Errorf("%d records ingested, want 3,000", len(counts))
	}
	for k, n := range counts {
		if n != 1 {
			t.Errorf("%s ingested %d times", k, n)
		}
	}
	st := statuses(r.env)
	if st[413] == 0 || st[429] == 0 {
		t.Errorf("emulator answered %v: the storm had no 413s or no 429s", st)
	}
	if n := counter(t, r.reg, "socsync_forward_splits_total", map[string]string{"status": "413"}); n == 0 {
		t.Error("no 413 splits counted")
	}
	history, dropped := r.env.Emulator.RequestHistory()
	if v := emulator.RetryAfterViolations(history); len(v) > 0 || dropped > 0 {
		t.Errorf("requests before Retry-After: %v (history dropped %d)", v, dropped)
	}
	injected, oversize := 0, 0
	for _, h := range history {
		switch {
		case h.API != "ingestion" || h.Status != 413:
		case h.Fault == "413":
			injected++
		default:
			oversize++
		}
	}
	if injected == 0 || oversize == 0 {
		t.Errorf("413s: %d injected by the fault profile, %d for oversize batches; want both", injected, oversize)
	}
	if failed, err := r.st.OutboxFailures(context.Background(), 10); err != nil || len(failed) != 0 {
		t.Errorf("dead letters after the storm: %+v (%v)", failed, err)
	}
	for _, req := range r.wire.sent() {
		if req.status == 204 && (req.json > oneMB || req.gzip > oneMB) {
			t.Errorf("a %d-byte request (%d gzip) was taken", req.json, req.gzip)
		}
	}
	t.Logf("emulator answers: %v (413s: %d injected, %d for oversize batches)", st, injected, oversize)
}

func TestForward_RowRefusedAloneIsSetAsideAndTheOthersAreSent(t *testing.T) {
	r := newRig(t, hubtest.Options{Tenants: 2})
	ids := makeChanges(t, r.st, tenantIDs(r.env), 300, 1, func(inc *incident.Incident, i, v int) {
		if i == 137 {
			inc.Title = "poison"
		}
	})
	r.wire.refuse = func(rows []map[string]any) bool {
		return slices.ContainsFunc(rows, func(m map[string]any) bool { return m["IncidentTitle"] == "poison" })
	}
	r.run(t, forward.Options{MaxBatchBytes: 64 << 10})
	eventually(t, "the outbox is drained", func() bool { return pending(t, r.st) == 0 })

	counts := byRecord(ingested(t, r.env))
	if len(counts) != 299 || counts[ids[137]+":1"] != 0 {
		t.Errorf("%d records ingested (poison row: %d), want the 299 others", len(counts), counts[ids[137]+":1"])
	}
	failed, err := r.st.OutboxFailures(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(failed) != 1 || failed[0].IncidentID != ids[137] || !strings.Contains(failed[0].Reason, "400 InvalidPayload") {
		t.Errorf("dead letters: %+v", failed)
	}
	if n := counter(t, r.reg, "socsync_forward_rows_total", map[string]string{"result": "failed"}); n != 1 {
		t.Errorf("failed rows counted: %v", n)
	}
}

func TestForward_RefusingEveryRowSetsNothingAsideAndSendsThemLater(t *testing.T) {
	r := newRig(t, hubtest.Options{Tenants: 2})
	makeChanges(t, r.st, tenantIDs(r.env), 40, 1, nil)
	refusing := make(chan bool, 1)
	refusing <- true
	r.wire.refuse = func([]map[string]any) bool {
		on := <-refusing
		refusing <- on
		return on
	}
	r.run(t, forward.Options{MinBackoff: 20e6, MaxBackoff: 100e6})
	eventually(t, "some uploads are refused", func() bool {
		return counter(t, r.reg, "socsync_forward_requests_total", map[string]string{"outcome": "rejected"}) > 100
	})
	if failed, _ := r.st.OutboxFailures(context.Background(), 10); len(failed) != 0 || pending(t, r.st) != 40 {
		t.Fatalf("with every row refused: %d dead letters, %d pending; want 0 and 40", len(failed), pending(t, r.st))
	}
	<-refusing
	refusing <- false // the rule is fixed
	eventually(t, "the outbox is drained", func() bool { return pending(t, r.st) == 0 })
	if n := len(byRecord(ingested(t, r.env))); n != 40 {
		t.Errorf("%d records ingested, want 40", n)
	}
}

func TestForward_TwoReplicasSendEachRowOnce(t *testing.T) {
	r := newRig(t, hubtest.Options{Tenants: 3})
	fillOutbox(t, r, 1000, 3, nil)
	// A second replica: its own connection to the same database, its own owner.
	other, err := store.Open(context.Background(), "sqlite:"+r.env.Dir+"/hub.db", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	r.run(t, forward.Options{Owner: "r1", ClaimLimit: 100, MaxBatchBytes: 64 << 10})
	r2 := *r
	r2.st = other
	r2.run(t, forward.Options{Owner: "r2", ClaimLimit: 100, MaxBatchBytes: 64 << 10, Registerer: prometheus.NewRegistry()})
	eventually(t, "the outbox is drained", func() bool { return pending(t, r.st) == 0 })
	counts := byRecord(ingested(t, r.env))
	if len(counts) != 3000 {
		t.Errorf("%d records, want 3,000", len(counts))
	}
	for k, n := range counts {
		if n != 1 {
			t.Errorf("%s sent %d times", k, n)
		}
	}
}
