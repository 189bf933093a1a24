package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socsync/socsync/internal/chaos/check"
	"github.com/socsync/socsync/internal/config"
	"github.com/socsync/socsync/internal/emulator"
	"github.com/socsync/socsync/internal/hub"
	"github.com/socsync/socsync/internal/hub/hubtest"
	"github.com/socsync/socsync/internal/store"
)

// versions sums the hub's incident versions (every hub change is one version).
func versions(t *testing.T, st *store.Store) int64 {
	t.Helper()
	list, err := st.ListIncidents(context.Background(), store.AllTenants(), store.ListFilter{}, store.ListPage{}, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, si := range list {
		n += si.Version
	}
	return n
}

// TestR11_DuplicateDeliveries_OneHubChangeAndOneSinkRowPerVersion (R11): every poll re-reads
// the last 30 s (the overlap), so each change is delivered again and again, and each Splunk
// alert is delivered three times, concurrently. Every (incident, version) reaches the sink
// exactly once, and re-reads and replays make no new version. (Webhook replays in isolation:
// TestWebhook_SplunkDeliveryCreatesOneIncidentAndAReplayChangesNothing; pages that overlap:
// TestPoll_CollectsEveryIncidentOnceJoinsMirrorsAndRecordsMerges.)
func TestR11_DuplicateDeliveries_OneHubChangeAndOneSinkRowPerVersion(t *testing.T) {
	t.Parallel()
	secret := filepath.Join(t.TempDir(), "splunk.token")
	if err := os.WriteFile(secret, []byte("r11-webhook-token-0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := startRun(t, hubtest.Options{Tenants: 3, Overlap: "30s"}, func(env *hubtest.Env) {
		env.Config.Webhooks = append(env.Config.Webhooks, config.Webhook{Name: "splunk", Kind: "splunk",
			Tenant: env.Info.Tenants[0].TenantID, Token: config.SecretRef("file:" + secret)})
	}, hub.Options{})
	for i := range 10 {
		for _, ti := range f.env.Info.Tenants {
			c := f.create(ti.TenantID, emulator.NewIncident{Title: fmt.Sprintf("r11-%d", i), Where: where(ti), Alerts: []emulator.NewAlert{{Title: "a"}}})
			if i%2 == 0 {
				f.env.Emulator.PatchIncident(ti.TenantID, c.GraphID, []byte(`{"severity":"high","comment":"again"}`))
			}
		}
	}
	deliveries := 0
	for i := range 8 {
		body := fmt.Sprintf(`{"sid":"r11-sid-%d","search_name":"R11 alert %d","result":{"urgency":"high"}}`, i, i)
		var wg sync.WaitGroup
		for range 3 {
			wg.Add(1)
			deliveries++
			go func() {
				defer wg.Done()
				resp, err := http.Post("http://"+f.hub.Addr+"/api/v1/webhooks/splunk?token=r11-webhook-token-0123456789abcdef", "application/json", strings.NewReader(body))
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != 200 && resp.StatusCode != 201 {
					t.Errorf("delivery: %d", resp.StatusCode)
				}
			}()
		}
		wg.Wait()
	}
	f.collected(30 + 8)
	f.settle()
	before, rows := versions(t, f.store()), f.env.Emulator.IngestedTotal("Custom-SocsyncIncidents")
	f.polled(4) // four more re-reads of everything in the overlap
	f.settle()
	if after := versions(t, f.store()); after != before {
		t.Errorf("re-reads made %d new versions", after-before)
	}
	f.checkAll(check.Options{})
	t.Logf("R11 figures: %d webhook deliveries of 8 alerts; %d sink rows for %d versions, none repeated; %d requests", deliveries, rows, before, len(f.requests()))
}

// TestR12_LateChanges_CaughtWithinTheOverlapAndRepairedByTheFullResync (R12): two changes
// become visible late, with change times before the source's cursor (the remote's clock is
// moved back for them, to times after each incident's previous change): one 2 s before the
// cursor (within the 4 s overlap), one 7 s before it (beyond). First the full resync is pushed
// out of the way (polling.resync 1 h: it runs at the first poll and not again), so the overlap is
// tested alone: the first change is collected by incremental polls, the second is not after
// three more polls, and no resync ran. Then the hub is restarted on the same database with a
// resync every 2 s, and the full re-read (R18's repair, TestR18_SilentDrift…) collects the
// second; in the end every checker passes.
func TestR12_LateChanges_CaughtWithinTheOverlapAndRepairedByTheFullResync(t *testing.T) {
	t.Parallel()
	clock := newSkewClock()
	f := startRun(t, hubtest.Options{Tenants: 1, Overlap: "4s", Resync: "1h", Emulator: emulator.Options{Now: clock.Now}}, nil, hub.Options{})
	ti := f.tenant(0)
	a := f.create(ti.TenantID, emulator.NewIncident{Title: "r12-within"})
	b := f.create(ti.TenantID, emulator.NewIncident{Title: "r12-beyond"})
	aID, bID := f.hubID(ti.TenantID, a.GraphID), f.hubID(ti.TenantID, b.GraphID)
	time.Sleep(8 * time.Second)
	f.create(ti.TenantID, emulator.NewIncident{Title: "r12-later"}) // moves the cursor 8 s on
	f.collected(3)
	f.polled(2)
	source := func() store.Source {
		src, err := f.store().Source(context.Background(), ti.TenantID, store.SourceID(ti.TenantID, store.KindDefender, ""))
		if err != nil {
			t.Fatal(err)
		}
		return src
	}
	cursor := func() (at, resynced time.Time) {
		src := source()
		var c struct {
			T time.Time `json:"t"`
			R time.Time `json:"r"`
		}
		if err := json.Unmarshal([]byte(src.Cursor), &c); err != nil {
			t.Fatalf("cursor %q: %v", src.Cursor, err)
		}
		return c.T, c.R
	}
	cur, r0 := cursor()
	if r0.IsZero() {
		t.Fatal("the first poll was no full read")
	}
	// The remote's clock, moved back for one change at a time.
	at := func(when time.Time, id, body string) {
		clock.Set(time.Until(when))
		err := f.env.Emulator.PatchIncident(ti.TenantID, id, []byte(body))
		clock.Set(0)
		if err != nil {
			t.Fatal(err)
		}
	}
	at(cur.Add(-2*time.Second), a.GraphID, `{"severity":"high"}`)
	at(cur.Add(-7*time.Second), b.GraphID, `{"severity":"high"}`)
	polls := source().Polls
	hubtest.Eventually(t, "the change 2 s before the cursor is collected", func() bool {
		si, _ := f.store().Incident(context.Background(), ti.TenantID, aID)
		return si.Severity == "high"
	})
	f.polled(3) // three more incremental polls, each re-reading its overlap
	if si, _ := f.store().Incident(context.Background(), ti.TenantID, bID); si.Severity == "high" {
		t.Error("the change 7 s before the cursor, beyond the 4 s overlap, was collected by an incremental poll")
	}
	if _, r := cursor(); !r.Equal(r0) {
		t.Errorf("a full resync ran (%s → %s) with polling.resync 1h", r0, r)
	}
	missedPolls := source().Polls - polls

	// The same database, a hub with a full resync every 2 s.
	f.env.Config.Polling.Resync = config.Duration(2 * time.Second)
	f = f.restart(hub.Options{})
	hubtest.Eventually(t, "the full resync repairs the change 7 s before the cursor", func() bool {
		si, _ := f.store().Incident(context.Background(), ti.TenantID, bID)
		return si.Severity == "high"
	})
	if _, r := cursor(); !r.After(r0) {
		t.Errorf("the change beyond the overlap was collected, but no full resync ran (resynced %s)", r)
	}
	f.settle()
	f.checkAll(check.Options{})
	t.Logf("R12 figures: a change 2 s before the cursor caught by the 4 s overlap; one 7 s before it missed by %d incremental polls (resync 1 h), then repaired by a full resync (every 2 s after a restart); checkers passed; %d requests", missedPolls, len(f.requests()))
}

// TestR13_ClockSkew_FutureTimestampsFlaggedNeverCursors (R13): the remote's clock runs ten
// minutes ahead of socsync's while incidents change; their change times are in socsync's
// future: kept, flagged "future-timestamp", never used as a cursor (the cursor sampler checks
// every cursor against socsync's clock all along). When the clock is right again, later
// normal changes are collected, and so are changes of the incidents stamped in the future —
// whose new change times are earlier than the ones the hub holds (a regression:
// TestUpsertLink_AChangeAfterTheRemoteClockIsCorrectedIsNotTakenForAStaleReRead). (Odd and non-UTC timestamps in payloads:
// TestGolden_OddAndMalformedPayloads in internal/graph and internal/sentinel.)
func TestR13_ClockSkew_FutureTimestampsFlaggedNeverCursors(t *testing.T) {
	t.Parallel()
	clock := newSkewClock()
	f := startRun(t, hubtest.Options{Tenants: 3, Emulator: emulator.Options{Now: clock.Now}}, nil, hub.Options{})
	t0, t2 := f.tenant(0), f.tenant(2)
	f.create(t0.TenantID, emulator.NewIncident{Title: "r13-before"})
	f.collected(1)
	f.polled(1)
	clock.Set(10 * time.Minute)
	g := f.create(t0.TenantID, emulator.NewIncident{Title: "r13-future-g"})
	s := f.create(t2.TenantID, emulator.NewIncident{Title: "r13-future-s", Where: "sentinel", Workspace: t2.Sentinel[1].Workspace})
	gID, sID := f.hubID(t0.TenantID, g.GraphID), f.hubID(t2.TenantID, s.SentinelID)
	for _, l := range []struct{ tenant, id string }{{t0.TenantID, gID}, {t2.TenantID, sID}} {
		links, _ := f.store().Links(context.Background(), l.tenant, l.id)
		if len(links) == 0 || !strings.Contains(links[0].Flags, "future-timestamp") {
			t.Errorf("incident %s: flags %q, want future-timestamp", l.id, links[0].Flags)
		}
	}
	f.polled(3)
	clock.Set(0)
	f.create(t0.TenantID, emulator.NewIncident{Title: "r13-after-g"})
	f.create(t2.TenantID, emulator.NewIncident{Title: "r13-after-s", Where: "sentinel", Workspace: t2.Sentinel[1].Workspace})
	// The incidents stamped in the future change again once the clock is right: their new
	// change times are earlier than the ones the hub holds, and must not be taken for stale
	// re-reads.
	f.env.Emulator.PatchIncident(t0.TenantID, g.GraphID, []byte(`{"severity":"high"}`))
	f.env.Emulator.PatchIncident(t2.TenantID, s.SentinelID, []byte(`{"severity":"High"}`))
	for _, l := range []struct{ tenant, id string }{{t0.TenantID, gID}, {t2.TenantID, sID}} {
		hubtest.Eventually(t, "a change after the clock is right, of an incident stamped in the future, is collected", func() bool {
			si, _ := f.store().Incident(context.Background(), l.tenant, l.id)
			return si.Severity == "high"
		})
	}
	f.collected(5)
	f.settle()
	f.checkAll(check.Options{})
	_, samples := f.cursors.Check()
	t.Logf("R13 figures: remote clock 10 minutes ahead for 2 new incidents (flagged, never cursors), both changed again after the clock was right and collected; %d cursor samples, none past socsync's clock + 5 min; %d requests", samples, len(f.requests()))
}

// TestR17_PagingOverAThousandResultsWithChangesDuringPaging (R17): more than 1,000 incidents
// in one Defender tenant (Graph pages of 50) and in one Sentinel workspace, first collected
// while pages are slow and incidents change between the pages. Nothing is missed: every
// incident is in the hub once with its latest state. The Sentinel detail-read budget is raised
// on both sides: at the documented 100 reads per 5 minutes the alerts of 1,050 new incidents
// take 50 minutes to fetch, which is R2's subject, not paging's.
func TestR17_PagingOverAThousandResultsWithChangesDuringPaging(t *testing.T) {
	t.Parallel()
	n := pick(1050, 3000)
	limits := emulator.DefaultLimits()
	limits.SentinelReadsPer5Min = 100_000
	o := hubtest.Options{Tenants: 3, Emulator: emulator.Options{Limits: &limits},
		Extra: "budgets:\n  sentinel-read: {burst: 1000, per_second: 300}\n"}
	f := startRun(t, o, func(env *hubtest.Env) {
		env.Emulator.SetFaults(emulator.FaultProfile{Rules: []emulator.FaultRule{{Method: "GET", LatencyMs: []int{5, 30}}}})
	}, hub.Options{})
	t0, t2 := f.tenant(0), f.tenant(2)
	var graphIDs, sentinelIDs []string
	for i := range n {
		g := f.create(t0.TenantID, emulator.NewIncident{Title: fmt.Sprintf("r17-g-%d", i)})
		s := f.create(t2.TenantID, emulator.NewIncident{Title: fmt.Sprintf("r17-s-%d", i), Where: "sentinel", Workspace: t2.Sentinel[1].Workspace})
		graphIDs, sentinelIDs = append(graphIDs, g.GraphID), append(sentinelIDs, s.SentinelID)
	}
	// Change incidents while the first polls page through them.
	rnd := rand.New(rand.NewPCG(17, 17))
	changes := 0
	deadline := time.Now().Add(pick(8*time.Second, 30*time.Second))
	for time.Now().Before(deadline) {
		i := rnd.IntN(n)
		f.env.Emulator.PatchIncident(t0.TenantID, graphIDs[i], []byte(`{"severity":"high"}`))
		f.env.Emulator.PatchIncident(t2.TenantID, sentinelIDs[rnd.IntN(n)], []byte(`{"severity":"High"}`))
		changes += 2
		time.Sleep(20 * time.Millisecond)
	}
	f.faults()
	start := time.Now()
	f.collectedWithin(2*n, 8*time.Minute) // 2,100 incidents under -race, beside every other test
	t.Logf("collected in %s", time.Since(start))
	f.settle()
	t.Logf("settled in %s", time.Since(start))
	f.checkAll(check.Options{})
	t.Logf("checked in %s", time.Since(start))
	pages := count(f.requests(), func(r emulator.RequestRecord) bool {
		return r.Method == "GET" && (r.Route == "/v1.0/security/incidents" || strings.HasSuffix(r.Route, "SecurityInsights/incidents"))
	})
	t.Logf("R17 figures: %d Defender and %d Sentinel incidents, %d changes during paging, %d list pages read, %d requests", n, n, changes, pages, len(f.requests()))
}

// TestR19_TenantCanaries_NeverCrossTenants (R19): each tenant's incidents carry a canary
// string of their own (title, description, comments), and the tenants' Graph incident ids are
// the same numbers. Analysts of each tenant list, open and probe by id every incident of the
// others: another tenant's incident is 404 on GET, PATCH and comment, and no response, no sink
// row, no hub record, no remote incident and no log line scoped to a tenant holds another
// tenant's canary. (Store, API and web IDOR suites: storetest's scope tests,
// TestAPI_AnotherTenantsIncidentIsNotFoundLikeAMissingOne,
// TestIncident_AnotherTenantsIncidentIsNotFoundByURLAPIAndFormPost.)
func TestR19_TenantCanaries_NeverCrossTenants(t *testing.T) {
	t.Parallel()
	f := startRun(t, hubtest.Options{Tenants: 3}, nil, hub.Options{})
	canaries := check.Canaries{}
	tokens := map[string]string{}
	hubIDs := map[string][]string{}
	for i, ti := range f.env.Info.Tenants {
		canary := fmt.Sprintf("CANARY-%d-%s", i, ti.TenantID[:8])
		canaries[ti.TenantID] = canary
		tokens[ti.TenantID] = f.hub.Token(t, fmt.Sprintf("analyst-%d", i), "analyst", ti.TenantID)
		for j := range 3 {
			c := f.create(ti.TenantID, emulator.NewIncident{Title: fmt.Sprintf("%s incident %d", canary, j), Description: "about " + canary, Where: where(ti)})
			f.env.Emulator.PatchIncident(ti.TenantID, c.GraphID, []byte(`{"comment":"remote note `+canary+`"}`))
			id := f.hubID(ti.TenantID, c.GraphID)
			hubIDs[ti.TenantID] = append(hubIDs[ti.TenantID], id)
			f.comment(id, "hub note "+canary)
		}
	}
	f.settle()
	probes, reads := 0, 0
	for tenant, tok := range tokens {
		var list struct {
			Items []struct {
				ID string `json:"id"`
			} `json:"items"`
		}
		var raw json.RawMessage
		f.hub.API(t, tok, "GET", "/api/v1/incidents?limit=500", "", &raw)
		json.Unmarshal(raw, &list)
		reads++
		if v := canaries.Leak(tenant, "the incident list", string(raw)); v != nil {
			t.Fatal(v)
		}
		if len(list.Items) != 3 {
			t.Errorf("tenant %s's analyst sees %d incidents, want 3", tenant, len(list.Items))
		}
		for _, it := range list.Items {
			var d json.RawMessage
			f.hub.API(t, tok, "GET", "/api/v1/incidents/"+it.ID, "", &d)
			reads++
			if v := canaries.Leak(tenant, "incident "+it.ID, string(d)); v != nil {
				t.Fatal(v)
			}
		}
		var tenants json.RawMessage
		f.hub.API(t, tok, "GET", "/api/v1/tenants", "", &tenants)
		if v := canaries.Leak(tenant, "the tenants list", string(tenants)); v != nil {
			t.Fatal(v)
		}
		for other, ids := range hubIDs {
			if other == tenant {
				continue
			}
			for _, id := range ids {
				var body json.RawMessage
				for _, p := range []struct{ method, path, body string }{
					{"GET", "/api/v1/incidents/" + id, ""},
					{"PATCH", "/api/v1/incidents/" + id, `{"severity":"low"}`},
					{"POST", "/api/v1/incidents/" + id + "/comments", `{"text":"probe"}`},
					{"GET", "/api/v1/incidents?remote_id=" + id, ""},
				} {
					body = nil
					code := f.hub.API(t, tok, p.method, p.path, p.body, &body)
					probes++
					if p.method == "GET" && strings.Contains(p.path, "remote_id") {
						if bytes.Contains(body, []byte(id)) {
							t.Errorf("tenant %s's analyst found %s by remote id", tenant, id)
						}
						continue
					}
					if code != http.StatusNotFound {
						t.Errorf("tenant %s's analyst: %s %s = %d, want 404", tenant, p.method, p.path, code)
					}
					if v := canaries.Leak(tenant, p.method+" "+p.path, string(body)); v != nil {
						t.Fatal(v)
					}
				}
			}
		}
	}
	if v := check.Isolation(context.Background(), f.run, canaries); v != nil {
		t.Fatal(v)
	}
	// Log lines scoped to a tenant hold only that tenant's data.
	lines := 0
	for _, line := range strings.Split(f.logs.String(), "\n") {
		for tenant := range canaries {
			if strings.Contains(line, tenant) {
				lines++
				if v := canaries.Leak(tenant, "a log line of tenant "+tenant, line); v != nil {
					t.Fatal(v)
				}
			}
		}
	}
	f.checkAll(check.Options{})
	t.Logf("R19 figures: 3 tenants with colliding Graph ids, %d reads and %d cross-tenant probes (all 404 or empty), %d tenant log lines checked; %d requests", reads, probes, lines, len(f.requests()))
}
