package chaos

import (
	"context"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/socsync/socsync/internal/emulator"
	"github.com/socsync/socsync/internal/hub"
	"github.com/socsync/socsync/internal/hub/hubtest"
	"github.com/socsync/socsync/internal/store"
)

var pollLogRE = regexp.MustCompile(`time=(\S+) level=DEBUG msg="poll (start|end)" source=(\S+) owner=(\S+) token=(\d+)`)

// sentinelListRoute is the emulator's route of a Sentinel workspace's incident list.
const sentinelListRoute = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.OperationalInsights/workspaces/{workspaceName}/providers/Microsoft.SecurityInsights/incidents"

type pollSpan struct {
	source, owner string
	start, end    time.Time
}

// spans reads each poll's start and end from a replica's debug log; a poll without an end is
// taken to end at openUntil.
func spans(log string, openUntil time.Time) []pollSpan {
	open := map[string]pollSpan{}
	var out []pollSpan
	for _, m := range pollLogRE.FindAllStringSubmatch(log, -1) {
		at, _ := time.Parse(time.RFC3339Nano, m[1])
		key := m[3] + "#" + m[5]
		if m[2] == "start" {
			open[key] = pollSpan{source: m[3], owner: m[4], start: at}
			continue
		}
		if s, ok := open[key]; ok {
			s.end = at
			out = append(out, s)
			delete(open, key)
		}
	}
	for _, s := range open {
		s.end = openUntil
		out = append(out, s)
	}
	return out
}

// TestThreeReplicasOnPostgres_NeverPollASourceTwiceAtOnceAndTakeOverADeadOnesSources runs
// three socsync processes on one PostgreSQL database: no source is ever polled by two of them
// at once (their poll spans, from their logs, never overlap for one source, and every list
// call the emulator received falls in one replica's span); after one is killed, its sources
// are polled by the others within two lease periods.
func TestThreeReplicasOnPostgres_NeverPollASourceTwiceAtOnceAndTakeOverADeadOnesSources(t *testing.T) {
	env := hubtest.New(t, hubtest.Options{Tenants: 6, Database: hubtest.PostgresDSN(t), Idle: "300ms", Hot: "150ms", Lease: "5s"})
	for _, ti := range env.Info.Tenants {
		env.Emulator.CreateIncident(ti.TenantID, emulator.NewIncident{Title: "r-" + ti.Name})
	}
	var replicas []*proc
	for range 3 {
		replicas = append(replicas, startServe(t, env.ConfigPath(), "SOCSYNC_LOG_LEVEL=debug"))
	}
	time.Sleep(3 * time.Second)

	// Kill one; the others take its sources over.
	replicas[0].kill()
	killedAt := time.Now()
	st, err := store.Open(context.Background(), hub.DatabaseDSN(env.Config), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	before := map[string]int64{}
	srcs, _ := st.Sources(context.Background(), store.AllTenants())
	for _, s := range srcs {
		before[s.ID] = s.Polls
	}
	hubtest.Eventually(t, "every source is polled again after the kill", func() bool {
		srcs, _ := st.Sources(context.Background(), store.AllTenants())
		for _, s := range srcs {
			if s.Polls <= before[s.ID] {
				return false
			}
		}
		return true
	})
	if took := time.Since(killedAt); took > 2*5*time.Second+2*time.Second {
		t.Errorf("take-over took %s, more than two lease periods", took)
	}
	time.Sleep(time.Second)
	for _, p := range replicas[1:] {
		p.stop(t)
	}

	var all []pollSpan
	owners := map[string]bool{}
	for _, p := range replicas {
		ss := p.spans()
		for _, s := range ss {
			owners[s.owner] = true
		}
		all = append(all, ss...)
	}
	if len(owners) != 3 {
		t.Fatalf("polls by %d replicas, want all 3 (logs parsed: %d spans)", len(owners), len(all))
	}
	bySource := map[string][]pollSpan{}
	for _, s := range all {
		bySource[s.source] = append(bySource[s.source], s)
	}
	for src, ss := range bySource {
		sort.Slice(ss, func(i, j int) bool { return ss[i].start.Before(ss[j].start) })
		for i := 1; i < len(ss); i++ {
			if ss[i].start.Before(ss[i-1].end) && ss[i].owner != ss[i-1].owner {
				t.Errorf("source %s polled by %s from %s while %s polled it until %s", src, ss[i].owner,
					ss[i].start.Format(time.RFC3339Nano), ss[i-1].owner, ss[i-1].end.Format(time.RFC3339Nano))
			}
		}
	}
	// Every list call the emulator received for a source came within one replica's poll of
	// that source: Graph's for a Defender source, ARM's for a Sentinel workspace.
	recs, _ := env.Emulator.RequestHistory()
	lists, unexplained := map[string]int{}, map[string]int{}
	for _, r := range recs {
		var src string
		switch {
		case r.API == "graph" && r.Route == "/v1.0/security/incidents":
			src = strings.ToLower(r.Tenant) + "/defender"
		case r.API == "arm" && r.Route == sentinelListRoute:
			// /subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.OperationalInsights/workspaces/{ws}/…
			p := strings.Split(r.Path, "/")
			src = store.SourceID(r.Tenant, store.KindSentinel, p[2]+"/"+p[4]+"/"+p[8])
		default:
			continue
		}
		lists[r.API]++
		in := 0
		for _, s := range bySource[src] {
			if !r.Time.Before(s.start.Add(-50*time.Millisecond)) && !r.Time.After(s.end.Add(50*time.Millisecond)) {
				in++
			}
		}
		if in == 0 {
			unexplained[r.API]++
		}
	}
	if lists["graph"] == 0 || lists["arm"] == 0 {
		t.Errorf("list calls %v: want Graph's and ARM's (Sentinel workspaces) to compare", lists)
	}
	for api, n := range unexplained {
		t.Errorf("%d of %d %s list calls fell outside every replica's poll of their source", n, lists[api], api)
	}
	t.Logf("%d polls by %d replicas over %d sources; list calls %v", len(all), len(owners), len(bySource), lists)
}
