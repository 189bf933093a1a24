package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/socsync/socsync/internal/chaos/check"
	"github.com/socsync/socsync/internal/emulator"
	"github.com/socsync/socsync/internal/hub"
	"github.com/socsync/socsync/internal/hub/hubtest"
	"github.com/socsync/socsync/internal/store"
)

// kills is how many times the crash loops kill socsync: at least 50 in CI; SOCSYNC_CHAOS_KILLS
// asks for more (the long run, e.g. 200 for R7).
func kills(t *testing.T) int {
	n := 50
	if v, err := strconv.Atoi(os.Getenv("SOCSYNC_CHAOS_KILLS")); err == nil && v > 0 {
		n = v
	}
	return n
}

type cursorJSON struct {
	T time.Time `json:"t"`
}

// restartBound is how soon after its start a restarted socsync must be ready (GET /readyz
// 200): R7's "restart fast", as a generous bound — a start takes well under a second.
const restartBound = 10 * time.Second

// TestKillDuringPolling_LosesNoChangeAndDuplicatesNothing (R7) kills socsync with SIGKILL at
// random points while it collects and forwards, with incidents created and changed remotely
// all along, and checks that every restart was ready within restartBound, that in the end
// every remote incident is in the hub exactly once with its latest state, that cursors never
// went backwards, that the database is intact, and that every checker passes over the whole
// run — collected, converged, one sink row per (incident, version) with every repeat identical
// to its first and at most one run of repeated rows (a batch sent again) per kill.
func TestKillDuringPolling_LosesNoChangeAndDuplicatesNothing(t *testing.T) {
	env := hubtest.New(t, hubtest.Options{Tenants: 3, Idle: "300ms", Hot: "100ms", Emulator: emulator.Options{MaxRequestHistory: 2_000_000}})
	rnd := rand.New(rand.NewPCG(3, 5))
	dsn := hub.DatabaseDSN(env.Config)
	cursors := map[string]time.Time{}
	var created []emulator.Created
	var tenantsOf []string
	var readyIn []time.Duration // how long each start took to be ready
	n := kills(t)
	for i := range n {
		// Remote activity while socsync runs and between its lives.
		ti := env.Info.Tenants[rnd.IntN(len(env.Info.Tenants))]
		where := "defender"
		if len(ti.Sentinel) > 0 && rnd.IntN(2) == 0 {
			where = []string{"defender+sentinel", "sentinel"}[rnd.IntN(2)]
		}
		c, err := env.Emulator.CreateIncident(ti.TenantID, emulator.NewIncident{Title: fmt.Sprintf("kill-%d", i), Where: where,
			Alerts: []emulator.NewAlert{{Title: "a"}}})
		if err != nil {
			t.Fatal(err)
		}
		created, tenantsOf = append(created, c), append(tenantsOf, ti.TenantID)
		p := startServe(t, env.ConfigPath())
		readyIn = append(readyIn, p.ready(t, restartBound))
		if len(created) > 1 { // change an older one while socsync runs
			j := rnd.IntN(len(created))
			id := created[j].GraphID
			if id == "" {
				env.Emulator.PatchIncident(tenantsOf[j], created[j].SentinelID, []byte(`{"severity":"High"}`))
			} else {
				env.Emulator.PatchIncident(tenantsOf[j], id, []byte(`{"severity":"high"}`))
			}
		}
		time.Sleep(time.Duration(20+rnd.IntN(400)) * time.Millisecond)
		p.kill()

		// Cursors are monotonic across crashes.
		st, err := store.Open(context.Background(), dsn, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		srcs, _ := st.Sources(context.Background(), store.AllTenants())
		st.Close()
		for _, s := range srcs {
			var c cursorJSON
			if s.Cursor != "" {
				if err := json.Unmarshal([]byte(s.Cursor), &c); err != nil {
					t.Fatalf("cursor of %s unreadable: %q", s.ID, s.Cursor)
				}
			}
			if c.T.Before(cursors[s.ID]) {
				t.Errorf("kill %d: cursor of %s went back from %s to %s", i, s.ID, cursors[s.ID], c.T)
			}
			cursors[s.ID] = c.T
		}
	}

	// A last, undisturbed run collects everything.
	p := startServe(t, env.ConfigPath())
	readyIn = append(readyIn, p.ready(t, restartBound))
	st, err := store.Open(context.Background(), dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	remote := 0
	for _, h := range env.Emulator.History() {
		if h.Field == "created" {
			remote++
		}
	}
	// remoteSeverity is each created incident's severity in the emulator, by title.
	remoteSeverity := map[string]string{}
	for j, c := range created {
		id := c.GraphID
		if id == "" {
			id = c.SentinelID
		}
		v := env.Views(t, tenantsOf[j], id)
		if g, ok := v["graph"]; ok {
			remoteSeverity[fmt.Sprintf("kill-%d", j)] = fmt.Sprint(g["severity"])
		} else {
			remoteSeverity[fmt.Sprintf("kill-%d", j)] = fmt.Sprint(v["sentinel"]["properties"].(map[string]any)["severity"])
		}
	}
	caughtUp := func() bool {
		list, _ := st.ListIncidents(context.Background(), store.AllTenants(), store.ListFilter{}, store.ListPage{}, 100000)
		if len(list) < remote {
			return false
		}
		for _, si := range list {
			if want, ok := remoteSeverity[si.Title]; ok && !strings.EqualFold(string(si.Severity), want) {
				return false
			}
		}
		return true
	}
	hubtest.Eventually(t, "every remote incident is in the hub with its latest state", caughtUp)
	hubtest.Eventually(t, "the last run settles (the outbox drained)", func() bool { return check.Settled(context.Background(), st) })
	p.stop(t)
	list, _ := st.ListIncidents(context.Background(), store.AllTenants(), store.ListFilter{}, store.ListPage{}, 100000)
	if len(list) != remote {
		t.Errorf("%d hub incidents for %d remote ones after %d kills", len(list), remote, n)
	}
	seen := map[string]int{}
	for _, si := range list {
		links, _ := st.Links(context.Background(), si.TenantID, si.ID)
		for _, l := range links {
			seen[l.TenantID+"/"+string(l.Kind)+"/"+l.ExternalID]++
		}
	}
	for k, v := range seen {
		if v != 1 {
			t.Errorf("remote incident %s is linked %d times", k, v)
		}
	}
	// The latest remote state is in: every incident changed remotely shows its change.
	for j, c := range created {
		id := c.GraphID
		if id == "" {
			id = c.SentinelID
		}
		v := env.Views(t, tenantsOf[j], id)
		var sev string
		if g, ok := v["graph"]; ok {
			sev = fmt.Sprint(g["severity"])
		} else {
			sev = fmt.Sprint(v["sentinel"]["properties"].(map[string]any)["severity"])
		}
		found := false
		for _, si := range list {
			if si.Title == fmt.Sprintf("kill-%d", j) {
				found = true
				if !strings.EqualFold(string(si.Severity), sev) {
					t.Errorf("kill-%d: hub severity %s, remote %s", j, si.Severity, sev)
				}
			}
		}
		if !found {
			t.Errorf("kill-%d is missing", j)
		}
	}
	if s := st.Dialect(); s == store.SQLite {
		if err := integrityCheck(dsn); err != nil {
			t.Error(err)
		}
	}
	// Every checker over the whole run, the sink included: every repeated row identical to its
	// first, and at most one batch sent again per kill.
	if v := check.All(context.Background(), check.Run{Emulator: env.Emulator, Store: st}, check.Options{RepeatedRows: -1}); v != nil {
		t.Fatal(v)
	}
	rows := env.Emulator.Ingested("Custom-SocsyncIncidents")
	repeats, runs := repeatedRuns(rows)
	if runs > n {
		t.Errorf("%d runs of repeated sink rows after %d kills: more than one batch sent again per kill", runs, n)
	}
	slices.Sort(readyIn)
	t.Logf("R7 figures: %d SIGKILLs while collecting and forwarding; %d starts each ready within %s (median %s, bound %s); %d remote incidents, each in the hub once with its latest severity; "+
		"%d cursors monotonic across every kill; database intact; %d sink rows checked (%d repeats in %d runs, at most %d allowed); every checker passed",
		n, len(readyIn), readyIn[len(readyIn)-1].Round(time.Millisecond), readyIn[len(readyIn)/2].Round(time.Millisecond), restartBound, remote,
		len(cursors), len(rows), repeats, runs, n)
}

// repeatedRuns counts the sink rows that repeat an earlier (incident, version), and the runs of
// consecutive such rows: a batch sent again after a kill is one run (or part of one).
func repeatedRuns(rows []json.RawMessage) (repeats, runs int) {
	seen := map[string]bool{}
	inRun := false
	for _, b := range rows {
		var r struct {
			IncidentKey string
			Version     int64
		}
		json.Unmarshal(b, &r)
		k := fmt.Sprintf("%s/%d", r.IncidentKey, r.Version)
		switch {
		case seen[k] && !inRun:
			repeats, runs, inRun = repeats+1, runs+1, true
		case seen[k]:
			repeats++
		default:
			inRun = false
		}
		seen[k] = true
	}
	return repeats, runs
}
