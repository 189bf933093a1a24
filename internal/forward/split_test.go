package forward_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"log/slog"
	"math/bits"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socsync/socsync/internal/forward"
	"github.com/socsync/socsync/internal/hub/hubtest"
	"github.com/socsync/socsync/internal/incident"
)

// noise returns n random letters, digits, '-' and '_': JSON keeps them as they are and gzip
// keeps about three quarters of them (no text valid as JSON compresses to more than itself, so
// an "incompressible" row is one gzip shrinks least).
func noise(rnd *rand.Rand, n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[rnd.IntN(len(alphabet))]
	}
	return string(b)
}

func gzipLen(t *testing.T, b []byte) int {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	return buf.Len()
}

// After a 413 the batch bound is half the refused batch, and the batch is halved by rows, not
// bytes: a half of big, barely compressible rows is then over the bound even after gzip. It is
// split again before it is sent, never sent over the bound.
func TestForward_AHalfOverTheLoweredBoundEvenAfterGzipIsSplitBeforeItIsSent(t *testing.T) {
	t.Parallel()
	r := newRig(t, hubtest.Options{Tenants: 2})
	rnd := rand.New(rand.NewPCG(6, 413))
	// Eight rows of 110 KB of noise, then eight small rows: one batch of about 900 KB.
	fillOutbox(t, r, 16, 1, func(inc *incident.Incident, i, v int) {
		if i < 8 {
			inc.Title, inc.Description = noise(rnd, 55_000), noise(rnd, 55_000)
		}
	})
	var refused atomic.Bool
	r.wire.tooLarge = func([]map[string]any) bool { return refused.CompareAndSwap(false, true) } // the first request only
	r.run(t, forward.Options{})
	eventually(t, "the outbox is drained", func() bool { return pending(t, r.st) == 0 })

	sent := r.wire.sent()
	if len(sent) == 0 || sent[0].status != 413 || len(sent[0].keys) != 16 {
		t.Fatalf("first request: %+v; want the 16 rows in one batch, refused with 413", sent[0])
	}
	bound := sent[0].json / 2 // the bound after the 413
	rows := ingested(t, r.env)
	counts := byRecord(rows)
	if len(rows) != 16 || len(counts) != 16 {
		t.Fatalf("%d rows ingested for %d records, want 16 of each", len(rows), len(counts))
	}
	// The test is about that branch: the first half, as one request, would be over the bound.
	raw := r.env.Emulator.Ingested(r.env.Info.LogsIngestion.Stream)
	byKey := map[string][]byte{}
	for i, row := range rows {
		byKey[row.RecordKey] = raw[i]
	}
	var half [][]byte
	for _, k := range sent[0].keys[:8] {
		half = append(half, byKey[k])
	}
	halfGzip := gzipLen(t, append(append([]byte("["), bytes.Join(half, []byte(","))...), ']'))
	if halfGzip <= bound {
		t.Fatalf("the first half is %d bytes gzipped, within the lowered bound %d: the rows are too compressible for this test", halfGzip, bound)
	}
	for i, req := range sent[1:] {
		if req.status != 204 || req.gzip > bound || req.json > sent[0].json/2+1 {
			t.Errorf("request %d after the 413: %d bytes JSON, %d gzip, status %d; want 204s within the lowered bound of %d", i+1, req.json, req.gzip, req.status, bound)
		}
	}
	if len(sent) != 4 {
		t.Errorf("%d requests; want the refused batch, then the first half in two quarters and the second half", len(sent))
	}
	t.Logf("refused batch %d bytes JSON (%d gzip); first half %d gzip over the bound %d; then %d requests", sent[0].json, sent[0].gzip, halfGzip, bound, len(sent)-1)
}

// A row that the service refuses with 413 even alone is rebuilt with its largest values cut
// further, half the budget each time down to 16 KiB, and then set aside as a dead letter —
// logged, counted and listed — while every other row is sent; nothing loops.
func TestForward_RowTooLargeEvenAloneIsCutThenSetAsideAndTheOthersAreSent(t *testing.T) {
	t.Parallel()
	r := newRig(t, hubtest.Options{Tenants: 2})
	rnd := rand.New(rand.NewPCG(7, 413))
	ids := fillOutbox(t, r, 200, 1, func(inc *incident.Incident, i, v int) {
		if i == 137 {
			inc.Title, inc.Description = "poison", noise(rnd, 200_000)
		}
	})
	poison := ids[137] + ":1"
	r.wire.tooLarge = func(rows []map[string]any) bool {
		return slices.ContainsFunc(rows, func(m map[string]any) bool { return m["IncidentTitle"] == "poison" })
	}
	var logs hubtest.LogBuffer
	r.run(t, forward.Options{Log: slog.New(slog.NewJSONHandler(&logs, nil))})
	eventually(t, "the outbox is drained", func() bool { return pending(t, r.st) == 0 })

	counts := byRecord(ingested(t, r.env))
	if len(counts) != 199 || counts[poison] != 0 {
		t.Errorf("%d records ingested (the refused row: %d), want the 199 others", len(counts), counts[poison])
	}
	for k, n := range counts {
		if n != 1 {
			t.Errorf("%s ingested %d times", k, n)
		}
	}
	// Set aside, with the reason, and visible: listed, counted, logged, and in the gauge.
	failed, err := r.st.OutboxFailures(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(failed) != 1 || failed[0].IncidentID != ids[137] || failed[0].Version != 1 ||
		!strings.Contains(failed[0].Reason, "413 ContentLengthLimitExceeded") || !strings.Contains(failed[0].Reason, "16384") {
		t.Errorf("dead letters: %+v; want the refused row, with the 413 and the last budget (16384)", failed)
	}
	if n := counter(t, r.reg, "socsync_forward_rows_total", map[string]string{"result": "failed"}); n != 1 {
		t.Errorf("failed rows counted: %v, want 1", n)
	}
	if l := logs.String(); !strings.Contains(l, `"level":"ERROR","msg":"forward: Logs Ingestion refuses a row; it is set aside as a dead letter`) ||
		!strings.Contains(l, ids[137]) {
		t.Errorf("no error-level log line names the dead letter:\n%s", l)
	}
	eventually(t, "the dead-letter gauge shows the row", func() bool { return gauge(t, r.reg, "socsync_forward_dead_letters") == 1 })

	// Cut further: alone, the row went out smaller and smaller, the last time within 16 KiB,
	// at most once per halving of the 512 KiB row budget; with other rows, once per halving of
	// the batch.
	var alone []int
	together := 0
	for _, req := range r.wire.sent() {
		if !slices.Contains(req.keys, poison) {
			if req.status != 204 {
				t.Errorf("a request without the refused row got %d", req.status)
			}
			continue
		}
		if req.status != 413 {
			t.Errorf("a request with the refused row got %d", req.status)
		}
		if len(req.keys) == 1 {
			alone = append(alone, req.json)
		} else {
			together++
		}
	}
	halvings := bits.Len(uint(forward.DefaultMaxRowBytes/(16<<10))) - 1 // 512 KiB → 16 KiB
	if len(alone) < 2 || len(alone) > halvings+1 || alone[len(alone)-1] > 16<<10 || alone[len(alone)-1] >= alone[0] {
		t.Errorf("the row alone was sent as %v bytes; want it cut down to at most 16384 bytes in at most %d tries", alone, halvings+1)
	}
	for i := 1; i < len(alone); i++ {
		if alone[i] > alone[i-1] {
			t.Errorf("the row grew between tries: %v", alone)
		}
	}
	if together > bits.Len(200) {
		t.Errorf("the row was sent with others %d times; want at most one per halving of the 200-row batch", together)
	}
	// Nothing loops: once it is set aside, no more requests.
	n := len(r.wire.sent())
	time.Sleep(1500 * time.Millisecond)
	if m := len(r.wire.sent()); m != n {
		t.Errorf("%d more requests after the outbox was drained", m-n)
	}
	t.Logf("the row alone: %v bytes; with others: %d requests", alone, together)
}
