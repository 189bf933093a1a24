package chaos

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/socsync/socsync/internal/chaos/check"
	"github.com/socsync/socsync/internal/config"
	"github.com/socsync/socsync/internal/emulator"
	"github.com/socsync/socsync/internal/hub"
	"github.com/socsync/socsync/internal/hub/hubtest"
	"github.com/socsync/socsync/internal/store"
)

// TestR22_SoakWithRandomFaults_InvariantsHoldStateEqualMemoryAndGoroutinesFlat (R22): a steady
// random load — remote incidents created, remote analysts' edits and comments on Defender
// (Graph) and Sentinel-only incidents, analysts' edits and comments in the hub through its API —
// runs for the soak while fault phases rotate (each cycle a seeded shuffle of): a Graph 429 storm
// with Retry-After on some tenants (R1); 5xx bursts on ARM and Graph, writes applied but their
// answers cut off, failed sink uploads (R3); slow answers and hung reads ended by socsync's
// deadlines (R4); list pages and sink uploads cut off or reset (R5); the remote's clock days
// ahead (soakLead), so that every token socsync holds expires (the calls answer 401) and the
// remote's change times lie in the future, with half the token requests answered 429 (R6's
// expiry and throttled token endpoint; R13's future timestamps: flagged, never cursors; the
// clock is put right at the phase's end, and changes made then must not be taken for stale
// re-reads); and calm. Polls re-read their overlap all along (R11's duplicate deliveries).
// After the first third the faults stop, the run settles, every checker runs, and the baseline
// of goroutines and heap is taken; at the end the same again. Every invariant holds at both
// points (I1–I3 and I5–I9 by check.All and the cursor sampler, I4 by no write after the run
// settled, I7's limits by no limit 429), the final state is equal (every remote incident in one
// hub incident and no other hub incident, hub and remotes agree on every synced field, every
// comment on each side once), and the number of goroutines and the heap stay flat from the
// baseline to the end.
//
// Not in the mix: R6's revoked consent, R7–R10 (kill -9, database faults, paused replicas:
// other processes and their own tests), R12's late changes (a clock moved back seconds, which
// cannot be told apart on the emulator's request timeline) and R13's non-UTC timestamps (its
// golden payload tests). The clock phases move the emulator's request timeline too: the request
// checkers read it put back (soakDeskew), and the emulator's rate-limit buckets, last filled
// days ahead, are refilled when the clock is put right.
//
// The soak lasts 45 s (20 min with SOCSYNC_CHAOS_LONG=1); SOCSYNC_SOAK=<duration> (e.g. 30m)
// sets it, SOCSYNC_SOAK_SEED=<n> replays the choices of a logged seed (the hub's own timing
// still varies). A long soak needs go test's -timeout above it plus a few minutes.
//
// No t.Parallel(): goroutines and heap are process-wide, and the hubs of the parallel tests
// would make them anything but flat. Go runs the serial tests of a package before the parallel
// ones, so this one has the process to itself (and adds its time to the package's).
func TestR22_SoakWithRandomFaults_InvariantsHoldStateEqualMemoryAndGoroutinesFlat(t *testing.T) {
	const short = 45 * time.Second
	soak := pick(short, 20*time.Minute)
	if s := os.Getenv("SOCSYNC_SOAK"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 30*time.Second {
			t.Fatalf("SOCSYNC_SOAK=%q: want a Go duration of at least 30s", s)
		}
		soak = d
	}
	if deadline, ok := t.Deadline(); ok && soak > short && time.Until(deadline) < soak+4*time.Minute {
		t.Fatalf("a soak of %s needs go test -timeout of at least %s", soak, (soak + 5*time.Minute).Round(time.Minute))
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SOCSYNC_SOAK_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("SOCSYNC_SOAK_SEED=%q: want an unsigned integer", s)
		}
		seed = n
	}
	t.Logf("R22: seed %d (SOCSYNC_SOAK_SEED=%d replays it), soak %s", seed, seed, soak)
	rnd := rand.New(rand.NewPCG(seed, seed^0x5eed_22))
	began := time.Now()

	if soak > soakClockAhead/4 {
		t.Fatalf("a soak of %s: at most %s (the clock phases' records are told apart by their half days of lead)", soak, soakClockAhead/4)
	}
	logs := &soakLog{}
	ho := hub.Options{Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	clock := newSkewClock()
	f := startRun(t, hubtest.Options{Tenants: 6, Seed: int64(seed%1_000_000_007) + 1, Emulator: emulator.Options{Now: clock.Now}}, func(env *hubtest.Env) {
		env.Config.Polling.Timeout = config.Duration(5 * time.Second) // hung reads end in seconds (R4)
		for _, ti := range env.Info.Tenants {
			logs.secrets = append(logs.secrets, ti.ClientSecret)
		}
	}, ho)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the hub's last log lines:\n%s", logs.last(8<<10))
		}
	})
	phaseLen := min(max(soak/8, 4*time.Second), time.Minute)
	phases := int(soak / phaseLen)
	warm := (phases + 2) / 3
	load := &soakLoad{f: f, rnd: rnd}
	var (
		clockPhases  int // clock-ahead phases so far
		order        []soakPhase
		ran          []string
		trend        []string
		base         soakSample
		ingestionCut bool // a sink upload stored but its answer cut off: a repeated row is honest
	)
	deskew := func(recs []emulator.RequestRecord) []emulator.RequestRecord { return soakDeskew(recs, began) }
	opts := func() check.Options {
		if !ingestionCut {
			ingestionCut = count(f.requests(), func(r emulator.RequestRecord) bool { return r.API == "ingestion" && r.Fault == "truncate" }) > 0
		}
		if ingestionCut {
			return check.Options{RepeatedRows: -1, Records: deskew} // still: every repeat identical to the first
		}
		return check.Options{Records: deskew}
	}
	for p := range phases {
		if len(order) == 0 {
			order = append([]soakPhase(nil), soakPhases...)
			rnd.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		}
		ph := order[0]
		order = order[1:]
		mark := len(f.requests())
		flagged, _ := f.store().CountFlagged(context.Background(), "future-timestamp")
		f.faults(ph.rules(f, rnd)...)
		if ph.clockAhead {
			clockPhases++
		}
		ran = append(ran, ph.name)
		trend = append(trend, strconv.Itoa(runtime.NumGoroutine()))
		// The phase lasts phaseLen, and longer (up to three times) until it has injected each of
		// its faults at least once: every soak tests every fault it names.
		for start := time.Now(); ; {
			if ph.clockAhead {
				clock.Set(soakLead(clockPhases, time.Since(start) >= phaseLen/2))
			}
			load.step()
			time.Sleep(time.Duration(100+rnd.IntN(300)) * time.Millisecond)
			if time.Since(start) < phaseLen {
				continue
			}
			missing := soakMissing(f.requests()[mark:], ph.want)
			if ph.evidence != nil {
				missing = append(missing, ph.evidence(f, f.requests()[mark:], flagged)...)
			}
			if len(missing) == 0 {
				break
			}
			if time.Since(start) > 3*phaseLen {
				t.Errorf("phase %d (%s) injected no %s in %s", p, ph.name, strings.Join(missing, ", "), time.Since(start).Round(time.Second))
				break
			}
		}
		if ph.clockAhead {
			// The remote's clock is right again; its rate-limit buckets, last filled days
			// ahead, would not refill for days: refill them.
			clock.Set(0)
			if err := f.env.Emulator.SetLimits(f.env.Emulator.Limits()); err != nil {
				t.Fatal(err)
			}
		}
		if p == warm-1 {
			f.faults()
			f.settle()
			f.checkAll(opts())
			base = soakMeasure(f.env.Emulator)
			t.Logf("R22: baseline after %d phases (%s), %s: %d goroutines, heap %.1f MB (emulator records %.1f MB)",
				warm, strings.Join(ran, ", "), time.Since(began).Round(time.Second), base.goroutines, mb(base.heap), mb(uint64(base.retained)))
		}
	}
	f.faults()
	f.collected(len(load.incs))
	quiet := f.settle()
	o := opts()
	f.checkAll(o)
	f.polled(2) // two more polls of everything: an echo of the last writes would write now
	recs := deskew(f.requests())
	if v := check.NoEcho(recs, 1<<30, quiet); v != nil {
		t.Error(v)
	}
	if v := check.NoLimit429(recs); v != nil {
		t.Error(v)
	}
	hubIncidents, err := f.store().ListIncidents(context.Background(), store.AllTenants(), store.ListFilter{}, store.ListPage{}, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	if len(hubIncidents) != len(load.incs) {
		t.Errorf("the hub holds %d incidents for %d remote incidents", len(hubIncidents), len(load.incs))
	}
	if logs.leak() != "" {
		t.Error(logs.leak())
	}

	faults := map[string]int{}
	for _, r := range recs {
		if r.Fault != "" {
			faults[r.Fault]++
		}
	}
	for _, want := range []string{"429", "5xx", "truncate", "reset", "hang"} {
		if faults[want] == 0 {
			t.Errorf("no %s fault was injected: the soak did not test it", want)
		}
	}
	expired := count(recs, func(r emulator.RequestRecord) bool { return r.Status == 401 })
	token429 := count(recs, func(r emulator.RequestRecord) bool { return r.API == "token" && r.Fault == "429" })
	futureLinks, _ := f.store().CountFlagged(context.Background(), "future-timestamp")
	if expired == 0 || token429 == 0 || futureLinks == 0 {
		t.Errorf("%d calls with an expired token, %d token 429s, %d incidents stamped in the future: the soak did not test R6 and R13", expired, token429, futureLinks)
	}
	end := soakMeasure(f.env.Emulator)
	// Goroutines: polls, write-backs, uploads and connections in flight come and go (the samples
	// are the fewest of several); a leak of one per request, poll or connection grows by hundreds.
	if limit := base.goroutines + base.goroutines/2 + 50; end.goroutines > limit {
		t.Errorf("goroutines grew from %d to %d (limit %d): a leak\n%s", base.goroutines, end.goroutines, limit, soakStacks())
	}
	// Heap: a quarter more than the baseline and 4 MB, plus three times what the emulator
	// legitimately kept meanwhile (its request and change histories and sink rows, which the
	// checkers read, with the slack of growing slices and its copy of the incidents themselves).
	// A clean run grows by about 1 MB besides; the short soak (some 800 requests after the
	// baseline) catches a leak of some 6 KB per request, a long one far less.
	kept := max(0, end.retained-base.retained)
	if limit := base.heap + base.heap/4 + 4<<20 + 3*uint64(kept); end.heap > limit {
		t.Errorf("heap in use grew from %.1f MB to %.1f MB (limit %.1f MB, of which %.1f MB for %.1f MB the emulator kept): a leak",
			mb(base.heap), mb(end.heap), mb(limit), mb(3*uint64(kept)), mb(uint64(kept)))
	}
	rows, repeated := soakSinkRows(f.env.Emulator)
	t.Logf("R22 figures: seed %d, %s of soak in %d phases of %s (%s), %s in all; faults injected: %d 429 (%d of them on the token endpoint), %d 5xx, %d truncated, %d reset, %d hung, %d client gone, "+
		"%d calls with a token expired by the clock days ahead, %d incidents stamped in the future, in %d requests; "+
		"process stalls: %s; "+
		"%d remote incidents (%d Sentinel-only), %d remote edits (%d with a comment), %d hub edits, %d hub comments; %d sink rows checked (%d repeats, allowed: %v); "+
		"goroutines %d → %d (at each phase start: %s), heap in use %.1f → %.1f MB (emulator records %.1f → %.1f MB; %+d bytes per request since the baseline); hub log %.1f MB, %s",
		seed, soak, phases, phaseLen, strings.Join(ran, ", "), time.Since(began).Round(time.Second),
		faults["429"], token429, faults["5xx"], faults["truncate"], faults["reset"], faults["hang"], faults["client-gone"], expired, futureLinks, len(recs), f.stalls.summary(),
		len(load.incs), load.sentinelOnly, load.remoteEdits, load.remoteComments, load.hubEdits, load.hubComments, rows, repeated, o.RepeatedRows != 0,
		base.goroutines, end.goroutines, strings.Join(trend, " "), mb(base.heap), mb(end.heap), mb(uint64(base.retained)), mb(uint64(end.retained)),
		(int64(end.heap)-int64(base.heap))/int64(max(1, end.requests-base.requests)), mb(uint64(logs.size())), cmp.Or(logs.leak(), "no token or secret"))
}

// soakPhase is one fault phase of the soak: its fault rules, drawn afresh each time, the
// faults (emulator.RequestRecord.Fault) it must have injected before it ends, whether the
// remote's clock runs ahead during it (soakLead), and what else it must have shown (evidence:
// what is missing, given the phase's requests and the links flagged future-timestamp when it
// began).
type soakPhase struct {
	name       string
	want       []string
	rules      func(f *faultRun, rnd *rand.Rand) []emulator.FaultRule
	clockAhead bool
	evidence   func(f *faultRun, recs []emulator.RequestRecord, flaggedBefore int) []string
}

// soakClockAhead is the step of the remote clock's lead in the soak's clock phases: the k-th
// such phase runs k days ahead, and half a day more from its middle on — far past the 60–90
// minutes a token lives, so that the tokens socsync got in the phase's first half (or in an
// earlier phase) expire. The leads are whole half days, and a soak lasts less than half a day,
// so soakDeskew tells each record's lead by its time alone.
const soakClockAhead = 24 * time.Hour

// soakLead is the remote clock's lead in the k-th clock phase, in its second half or not.
func soakLead(k int, secondHalf bool) time.Duration {
	lead := time.Duration(k) * soakClockAhead
	if secondHalf {
		lead += soakClockAhead / 2
	}
	return lead
}

// soakDeskew returns the request records with the clock phases' leads taken off: a record
// stamped d after the soak began was stamped by a clock ⌊d / half a day⌋ half days ahead.
func soakDeskew(recs []emulator.RequestRecord, began time.Time) []emulator.RequestRecord {
	out := slices.Clone(recs)
	for i := range out {
		if m := out[i].Time.Sub(began) / (soakClockAhead / 2); m > 0 {
			out[i].Time = out[i].Time.Add(-m * (soakClockAhead / 2))
		}
	}
	return out
}

var soakPhases = []soakPhase{
	{"calm", nil, func(*faultRun, *rand.Rand) []emulator.FaultRule { return nil }, false, nil},
	{"graph-429-storm", []string{"429"}, func(f *faultRun, rnd *rand.Rand) []emulator.FaultRule {
		// Half the tenants or more (random ones), 30–50 % of their Graph calls, Retry-After 1–3 s
		// (1–20 s with SOCSYNC_CHAOS_LONG=1) (R1).
		var rules []emulator.FaultRule
		for _, i := range rnd.Perm(len(f.env.Info.Tenants))[:(len(f.env.Info.Tenants)+1)/2+rnd.IntN(len(f.env.Info.Tenants)/2+1)] {
			rules = append(rules, emulator.FaultRule{API: "graph", Tenant: f.tenant(i).TenantID, Rate429: 0.3 + 0.2*rnd.Float64(), RetryAfter: pick([]int{1, 3}, []int{1, 20})})
		}
		return rules
	}, false, nil},
	{"5xx-bursts", []string{"5xx", "truncate"}, func(f *faultRun, rnd *rand.Rand) []emulator.FaultRule {
		// 10–50 % 5xx on ARM (half that on Graph), 10–15 % of the writes applied but their answers
		// cut off, 20 % of the sink uploads failed (R3).
		rate := 0.1 + 0.4*rnd.Float64()
		return []emulator.FaultRule{
			{API: "arm", Method: "PUT", Rate5xx: rate, RateTruncate: 0.15},
			{API: "arm", Rate5xx: rate},
			{API: "graph", Method: "PATCH", Rate5xx: rate / 2, RateTruncate: 0.1},
			{API: "graph", Method: "POST", Rate5xx: rate / 2, RateTruncate: 0.1},
			{API: "graph", Rate5xx: rate / 2},
			{API: "ingestion", Rate5xx: 0.2},
		}
	}, false, nil},
	{"slow-and-hung", []string{"hang"}, func(f *faultRun, rnd *rand.Rand) []emulator.FaultRule {
		// Every answer 50–400 ms late (100–2000 ms with SOCSYNC_CHAOS_LONG=1); one tenant's Graph reads
		// hang a third of the time, and 5 % of the others' reads, until socsync's deadline ends
		// them (R4).
		lat := pick([]int{50, 400}, []int{100, 2000})
		return []emulator.FaultRule{
			{API: "graph", Method: "GET", Tenant: f.tenant(rnd.IntN(len(f.env.Info.Tenants))).TenantID, LatencyMs: lat, RateHang: 0.3},
			{API: "graph", Method: "GET", LatencyMs: lat, RateHang: 0.05},
			{API: "arm", Method: "GET", LatencyMs: lat, RateHang: 0.05},
			{LatencyMs: lat},
		}
	}, false, nil},
	{"cut-pages", []string{"truncate", "reset"}, func(f *faultRun, rnd *rand.Rand) []emulator.FaultRule {
		// 40 % of the list pages and 20 % of the sink uploads cut off halfway or reset (R5).
		return []emulator.FaultRule{
			{API: "graph", Route: "/v1.0/security/incidents", RateTruncate: 0.2, RateReset: 0.2},
			{API: "arm", Method: "GET", RateTruncate: 0.2, RateReset: 0.2},
			{API: "ingestion", RateTruncate: 0.1, RateReset: 0.1},
		}
	}, false, nil},
	{"clock-ahead-tokens-expire", []string{"429"}, func(f *faultRun, rnd *rand.Rand) []emulator.FaultRule {
		// The remote's clock days ahead (soakLead): every token expires, the calls answer 401,
		// and half of the token requests of every tenant (and of the sink's app) get 429 with
		// Retry-After 1–2 s (R6); every change made meanwhile is stamped in the future (R13).
		return []emulator.FaultRule{{API: "token", Rate429: 0.5, RetryAfter: []int{1, 2}}}
	}, true, func(f *faultRun, recs []emulator.RequestRecord, flaggedBefore int) []string {
		var missing []string
		if count(recs, func(r emulator.RequestRecord) bool { return r.Status == 401 }) == 0 {
			missing = append(missing, "call with an expired token (401)")
		}
		if count(recs, func(r emulator.RequestRecord) bool { return r.API == "token" && r.Status == 200 }) == 0 {
			missing = append(missing, "new token")
		}
		if n, _ := f.store().CountFlagged(context.Background(), "future-timestamp"); n <= flaggedBefore {
			missing = append(missing, "incident stamped in the future")
		}
		return missing
	}},
}

// soakMissing returns the faults of want that none of recs had.
func soakMissing(recs []emulator.RequestRecord, want []string) []string {
	var missing []string
	for _, w := range want {
		if count(recs, func(r emulator.RequestRecord) bool { return r.Fault == w }) == 0 {
			missing = append(missing, w)
		}
	}
	return missing
}

// soakIncident is a remote incident the soak created.
type soakIncident struct {
	ti     emulator.TenantInfo
	remote string // its Graph id, or the Sentinel name of a Sentinel-only incident
	graph  bool
	hub    string // the hub incident's id, once collected
}

// soakLoad makes the soak's random changes, remote and in the hub.
type soakLoad struct {
	f   *faultRun
	rnd *rand.Rand
	n   int

	incs, collected, uncollected              []*soakIncident
	sentinelOnly, remoteEdits, remoteComments int
	hubEdits, hubComments                     int
}

// step makes one random change.
func (l *soakLoad) step() {
	l.n++
	l.resolve()
	switch r := l.rnd.IntN(100); {
	case r < 15 || len(l.incs) < 8:
		l.create()
	case r < 45:
		l.remoteEdit(l.incs[l.rnd.IntN(len(l.incs))])
	case len(l.collected) == 0:
	case r < 80:
		l.hubEdit(l.collected[l.rnd.IntN(len(l.collected))])
	default:
		inc := l.collected[l.rnd.IntN(len(l.collected))]
		l.f.comment(inc.hub, fmt.Sprintf("r22 hub note %d", l.n))
		l.hubComments++
	}
}

// resolve looks up (without waiting) the hub ids of a few incidents not yet collected.
func (l *soakLoad) resolve() {
	var still []*soakIncident
	for i, inc := range l.uncollected {
		if i < 8 {
			list, err := l.f.store().ListIncidents(context.Background(), store.Tenants(inc.ti.TenantID), store.ListFilter{RemoteID: inc.remote}, store.ListPage{}, 10)
			if err == nil && len(list) == 1 {
				inc.hub = list[0].ID
				l.collected = append(l.collected, inc)
				continue
			}
		}
		still = append(still, inc)
	}
	l.uncollected = still
}

func (l *soakLoad) create() {
	ti := l.f.env.Info.Tenants[l.rnd.IntN(len(l.f.env.Info.Tenants))]
	title := fmt.Sprintf("r22-%d", l.n)
	var inc *soakIncident
	if len(ti.Sentinel) >= 2 && l.rnd.IntN(2) == 0 {
		c := l.f.create(ti.TenantID, emulator.NewIncident{Title: title, Where: "sentinel", Workspace: ti.Sentinel[l.rnd.IntN(len(ti.Sentinel))].Workspace,
			Alerts: []emulator.NewAlert{{Title: "a", ServiceSource: "microsoftDefenderForCloud"}}})
		inc = &soakIncident{ti: ti, remote: c.SentinelID}
		l.sentinelOnly++
	} else {
		w := where(ti)
		if l.rnd.IntN(4) == 0 {
			w = "defender"
		}
		c := l.f.create(ti.TenantID, emulator.NewIncident{Title: title, Where: w, Alerts: []emulator.NewAlert{{Title: "a"}}})
		inc = &soakIncident{ti: ti, remote: c.GraphID, graph: true}
	}
	l.incs = append(l.incs, inc)
	l.uncollected = append(l.uncollected, inc)
}

var soakTags = [][]string{nil, {"soak"}, {"r22", "phishing"}, {"Ir-7"}, {"soak", "long tag with spaces"}}

// remoteEdit changes 1–3 fields of a remote incident as one of its tenant's analysts would,
// sometimes with a comment: in Graph names for a Defender incident, in Sentinel names for a
// Sentinel-only one.
func (l *soakLoad) remoteEdit(inc *soakIncident) {
	body := map[string]any{}
	for range 1 + l.rnd.IntN(3) {
		switch l.rnd.IntN(5) {
		case 0:
			if inc.graph {
				body["severity"] = []string{"low", "medium", "high"}[l.rnd.IntN(3)]
			} else {
				body["severity"] = []string{"Low", "Medium", "High"}[l.rnd.IntN(3)]
			}
		case 1:
			switch {
			case inc.graph && l.rnd.IntN(5) == 0:
				body["status"], body["classification"], body["determination"] = "resolved", "truePositive", "malware"
			case inc.graph:
				body["status"] = []string{"active", "inProgress"}[l.rnd.IntN(2)]
			case l.rnd.IntN(5) == 0:
				body["status"], body["classification"], body["classificationReason"] = "Closed", "TruePositive", "SuspiciousActivity"
			default:
				body["status"] = "Active"
			}
		case 2:
			upn := inc.ti.Users[l.rnd.IntN(len(inc.ti.Users))].UPN
			if inc.graph {
				body["assignedTo"] = upn
			} else {
				body["owner"] = upn
			}
		case 3:
			tags := soakTags[l.rnd.IntN(len(soakTags))]
			if inc.graph {
				body["customTags"] = tags
			} else {
				body["labels"] = tags
			}
		case 4:
			body["comment"] = fmt.Sprintf("r22 remote note %d", l.n)
		}
	}
	if _, ok := body["comment"]; ok {
		l.remoteComments++
	}
	b, _ := json.Marshal(body)
	if err := l.f.env.Emulator.PatchIncident(inc.ti.TenantID, inc.remote, b); err != nil {
		l.f.t.Fatalf("remote edit of %s: %s: %v", inc.remote, b, err)
	}
	l.remoteEdits++
}

// hubEdit changes 1–3 fields of a hub incident through the API, as an analyst would.
func (l *soakLoad) hubEdit(inc *soakIncident) {
	body := map[string]any{}
	for range 1 + l.rnd.IntN(3) {
		switch l.rnd.IntN(4) {
		case 0:
			body["severity"] = []string{"low", "medium", "high"}[l.rnd.IntN(3)]
		case 1:
			if l.rnd.IntN(5) == 0 {
				body["status"], body["classification"] = "resolved", "true_positive"
			} else {
				body["status"] = []string{"active", "in_progress"}[l.rnd.IntN(2)]
			}
		case 2:
			body["owner"] = inc.ti.Users[l.rnd.IntN(len(inc.ti.Users))].UPN
		case 3:
			tags := soakTags[l.rnd.IntN(len(soakTags))]
			if tags == nil {
				tags = []string{}
			}
			body["tags"] = tags
		}
	}
	b, _ := json.Marshal(body)
	l.f.edit(inc.hub, string(b))
	l.hubEdits++
}

// soakSample is the process's goroutines and heap at one point, and what the emulator keeps.
type soakSample struct {
	goroutines int
	heap       uint64 // HeapInuse after a collection
	retained   int64  // soakRetained
	requests   int    // the emulator's requests so far
}

// soakMeasure samples goroutines ten times over two seconds and keeps the fewest (work in
// flight comes and goes), then collects garbage and reads the heap in use.
func soakMeasure(e *emulator.Emulator) soakSample {
	s := soakSample{goroutines: runtime.NumGoroutine()}
	s.retained, s.requests = soakRetained(e)
	for range 10 {
		time.Sleep(200 * time.Millisecond)
		s.goroutines = min(s.goroutines, runtime.NumGoroutine())
	}
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s.heap = ms.HeapInuse
	return s
}

// soakRetained estimates the bytes the emulator keeps of its histories and sink rows: what
// grows with the work done by design (the checkers read it), not a leak.
func soakRetained(e *emulator.Emulator) (n int64, requests int) {
	recs, dropped := e.RequestHistory()
	for _, r := range recs {
		n += int64(unsafe.Sizeof(r)) + int64(len(r.Path)+len(r.Principal)+len(r.PrincipalTenant)+len(r.Subscription))
	}
	for _, h := range e.History() {
		n += int64(unsafe.Sizeof(h)) + int64(len(h.Tenant)+len(h.GraphID)+len(h.SentinelID)+len(h.AlertID)+len(h.Actor)+len(h.Old)+len(h.New))
	}
	for _, row := range e.Ingested("Custom-SocsyncIncidents") {
		n += int64(len(row)) + 24
	}
	return n, len(recs) + dropped
}

// soakSinkRows counts the sink rows and those repeating an earlier (incident, version).
func soakSinkRows(e *emulator.Emulator) (rows, repeated int) {
	seen := map[string]bool{}
	for _, b := range e.Ingested("Custom-SocsyncIncidents") {
		var r struct {
			IncidentKey string
			Version     int64
		}
		json.Unmarshal(b, &r)
		k := fmt.Sprintf("%s/%d", r.IncidentKey, r.Version)
		if seen[k] {
			repeated++
		}
		seen[k] = true
		rows++
	}
	return rows, repeated
}

// soakStacks returns the goroutines' stacks, grouped by where they were created, most first.
func soakStacks() string {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	by := map[string]int{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		key := g
		if i := strings.Index(g, "created by "); i >= 0 {
			key = g[i:]
		}
		by[key]++
	}
	type kv struct {
		k string
		n int
	}
	var out []kv
	for k, n := range by {
		out = append(out, kv{k, n})
	}
	slices.SortFunc(out, func(a, b kv) int { return b.n - a.n })
	var b strings.Builder
	for i, e := range out {
		if i == 15 {
			break
		}
		fmt.Fprintf(&b, "%d × %s\n", e.n, e.k)
	}
	return b.String()
}

func mb(n uint64) float64 { return float64(n) / (1 << 20) }

// soakLog takes the hub's debug log without keeping it (a soak's log is large): it scans every
// line for token bytes and the tenants' secrets, counts its size, and keeps the last lines.
type soakLog struct {
	mu      sync.Mutex
	secrets []string
	n       int64
	tail    []byte
	first   string
}

func (l *soakLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n += int64(len(p))
	if l.first == "" {
		if i := bytes.Index(p, []byte("eyJ")); i >= 0 {
			l.first = fmt.Sprintf("the hub's log holds a JWT: …%s…", p[max(0, i-80):min(len(p), i+80)])
		}
		for _, s := range l.secrets {
			if s != "" && bytes.Contains(p, []byte(s)) {
				l.first = fmt.Sprintf("the hub's log holds a secret (%d characters, starting %q)", len(s), s[:min(4, len(s))])
			}
		}
	}
	l.tail = append(l.tail, p...)
	if len(l.tail) > 128<<10 {
		l.tail = append(l.tail[:0], l.tail[len(l.tail)-64<<10:]...)
	}
	return len(p), nil
}

func (l *soakLog) leak() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.first
}

func (l *soakLog) last(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.tail[max(0, len(l.tail)-n):])
}

func (l *soakLog) size() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}
