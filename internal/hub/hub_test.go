package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/socsync/socsync/internal/config"
	"github.com/socsync/socsync/internal/emulator"
	"github.com/socsync/socsync/internal/hub"
	"github.com/socsync/socsync/internal/hub/hubtest"
	"github.com/socsync/socsync/internal/incident"
	"github.com/socsync/socsync/internal/store"
)

// remoteIncidents is the emulator's own record of the incidents it created: one entry per real
// incident, with its Graph and/or Sentinel id.
func remoteIncidents(e *emulator.Emulator) []emulator.HistoryEntry {
	var out []emulator.HistoryEntry
	for _, h := range e.History() {
		if h.Field == "created" {
			out = append(out, h)
		}
	}
	return out
}

// hubIncidents counts the hub's incidents.
func hubIncidents(t *testing.T, st *store.Store) []store.StoredIncident {
	t.Helper()
	list, err := st.ListIncidents(context.Background(), store.AllTenants(), store.ListFilter{}, store.ListPage{}, 100000)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// TestHub_CollectsFiftyTenantsExactlyOnce: 50 tenants (Defender only, Defender mirrored into
// Sentinel, two workspaces): every incident is collected exactly once, a mirrored pair is one
// hub incident with two links, and Defender incidents merged remotely — in a Defender-only
// tenant before the hub starts, in tenants of every kind while it collects — show as merged
// into their target. (The merges while it collects come once every source has been polled: a
// Sentinel mirror first seen already redirected names the merge target, not its own Defender
// incident, and is not joined to it.)
func TestHub_CollectsFiftyTenantsExactlyOnce(t *testing.T) {
	env := hubtest.New(t, hubtest.Options{Tenants: 50, IncidentsPerTenant: 4})
	remote := remoteIncidents(env.Emulator)
	if len(remote) != 200 {
		t.Fatalf("emulator created %d incidents, want 200", len(remote))
	}
	// A pair of Defender incidents in each of the first tenants: the first is merged into the
	// second.
	type merge struct{ tenant, src, dst string }
	var before, during []merge
	for _, ti := range env.Info.Tenants[:6] {
		var ids []string
		for _, r := range remote {
			if r.Tenant == ti.TenantID && r.GraphID != "" {
				ids = append(ids, r.GraphID)
			}
		}
		switch m := (merge{ti.TenantID, "", ""}); {
		case len(ids) < 2:
		case len(before) == 0 && len(ti.Sentinel) == 0:
			m.src, m.dst = ids[0], ids[1]
			before = append(before, m)
		default:
			m.src, m.dst = ids[0], ids[1]
			during = append(during, m)
		}
	}
	if len(before) != 1 || len(during) < 3 {
		t.Fatalf("%d merges before and %d while collecting, want 1 and at least 3", len(before), len(during))
	}
	for _, m := range before {
		if err := env.Emulator.Merge(m.tenant, m.src, m.dst); err != nil {
			t.Fatal(err)
		}
	}
	h := env.Start(t, hub.Options{})
	st := h.Hub.Store()
	hubtest.Eventually(t, "every source is polled", func() bool {
		srcs, _ := st.Sources(context.Background(), store.AllTenants())
		for _, s := range srcs {
			if s.Polls == 0 {
				return false
			}
		}
		return len(srcs) > 0
	})
	for _, m := range during {
		if err := env.Emulator.Merge(m.tenant, m.src, m.dst); err != nil {
			t.Fatal(err)
		}
	}
	merges := append(before, during...)
	hubtest.Eventually(t, "every remote incident is in the hub", func() bool { return len(hubIncidents(t, st)) >= len(remote) })

	ctx := context.Background()
	mirrored := 0
	for _, r := range remote {
		var links []store.Link
		found := 0
		for _, si := range hubIncidents(t, st) {
			if si.TenantID != r.Tenant {
				continue
			}
			ls, _ := st.Links(ctx, si.TenantID, si.ID)
			for _, l := range ls {
				if (l.Kind == store.LinkGraph && l.ExternalID == r.GraphID) || (l.Kind == store.LinkSentinel && r.GraphID == "" && l.ExternalID == r.SentinelID) {
					found++
					links = ls
				}
			}
		}
		if found != 1 {
			t.Errorf("remote incident %s/%s/%s is in %d hub incidents, want 1", r.Tenant, r.GraphID, r.SentinelID, found)
			continue
		}
		if r.GraphID != "" && r.SentinelID != "" {
			mirrored++
			if len(links) != 2 {
				t.Errorf("mirrored incident %s has %d links, want 2", r.GraphID, len(links))
			}
		}
	}
	if got := len(hubIncidents(t, st)); got != len(remote) {
		t.Errorf("hub has %d incidents for %d remote ones", got, len(remote))
	}
	if mirrored == 0 {
		t.Error("the sample had no mirrored incidents to check")
	}

	// hubOf is the hub incident linked to a Graph incident.
	hubOf := func(tenant, graphID string) store.StoredIncident {
		for _, si := range hubIncidents(t, st) {
			if si.TenantID != tenant {
				continue
			}
			ls, _ := st.Links(ctx, si.TenantID, si.ID)
			for _, l := range ls {
				if l.Kind == store.LinkGraph && l.ExternalID == graphID {
					return si
				}
			}
		}
		return store.StoredIncident{}
	}
	hubtest.Eventually(t, "every merged incident shows as merged", func() bool {
		for _, m := range merges {
			if hubOf(m.tenant, m.src).Status != incident.StatusMerged {
				return false
			}
		}
		return true
	})
	for _, m := range merges {
		src, dst := hubOf(m.tenant, m.src), hubOf(m.tenant, m.dst)
		if dst.ID == "" || src.MergedInto != dst.ID {
			t.Errorf("tenant %s: incident %s merged into %q, want its target %s (%s)", m.tenant, m.src, src.MergedInto, m.dst, dst.ID)
		}
		if dst.Status == incident.StatusMerged {
			t.Errorf("tenant %s: the target %s shows as merged", m.tenant, m.dst)
		}
	}
	if got := len(hubIncidents(t, st)); got != len(remote) {
		t.Errorf("after the merges the hub has %d incidents for %d remote ones", got, len(remote))
	}
}

func TestHub_MergedIncidentsShowMergedIntoTheirTarget(t *testing.T) {
	env := hubtest.New(t, hubtest.Options{Tenants: 3})
	tenant := env.Info.Tenants[1].TenantID // Defender mirrored into Sentinel
	a, _ := env.Emulator.CreateIncident(tenant, emulator.NewIncident{Title: "source", Alerts: []emulator.NewAlert{{Title: "a"}}})
	b, _ := env.Emulator.CreateIncident(tenant, emulator.NewIncident{Title: "target", Alerts: []emulator.NewAlert{{Title: "b"}}})
	h := env.Start(t, hub.Options{})
	st := h.Hub.Store()
	hubtest.Eventually(t, "both incidents are collected", func() bool { return len(hubIncidents(t, st)) == 2 })
	if err := env.Emulator.Merge(tenant, a.GraphID, b.GraphID); err != nil {
		t.Fatal(err)
	}
	var src, dst store.StoredIncident
	hubtest.Eventually(t, "the source shows as merged", func() bool {
		for _, si := range hubIncidents(t, st) {
			switch si.Title {
			case "source":
				src = si
			case "target":
				dst = si
			}
		}
		return src.Status == incident.StatusMerged && src.MergedInto != ""
	})
	if src.MergedInto != dst.ID {
		t.Errorf("merged into %q, want the target %s", src.MergedInto, dst.ID)
	}
	if alerts, _ := st.Alerts(context.Background(), tenant, dst.ID); len(alerts) != 2 {
		t.Errorf("target has %d alerts, want both (the source's moved)", len(alerts))
	}
}

func TestHub_RevokedConsentDegradesOneTenantOnly(t *testing.T) {
	env := hubtest.New(t, hubtest.Options{Tenants: 3})
	revoked := env.Info.Tenants[0]
	if err := env.Emulator.SetConsent(revoked.TenantID, revoked.ClientID, false, nil); err != nil {
		t.Fatal(err)
	}
	for _, ti := range env.Info.Tenants {
		env.Emulator.CreateIncident(ti.TenantID, emulator.NewIncident{Title: "x-" + ti.Name})
	}
	h := env.Start(t, hub.Options{})
	st := h.Hub.Store()
	hubtest.Eventually(t, "the other tenants are collected", func() bool { return len(hubIncidents(t, st)) == 2 })
	hubtest.Eventually(t, "the revoked tenant is degraded", func() bool {
		srcs, _ := st.Sources(context.Background(), store.Tenants(revoked.TenantID))
		return len(srcs) == 1 && srcs[0].Degraded != ""
	})
	srcs, _ := st.Sources(context.Background(), store.Tenants(revoked.TenantID))
	if d := srcs[0].Degraded; d == "" || len(d) > 300 || strings.Contains(d, revoked.ClientSecret) {
		t.Errorf("degraded reason %q", d)
	}
	// Entra answers a revoked consent with AADSTS7000229 (the app has no service principal in
	// the tenant): the reason names it.
	if d := srcs[0].Degraded; !strings.Contains(d, "AADSTS7000229") {
		t.Errorf("degraded reason %q, want the AADSTS code AADSTS7000229", d)
	}
}

func TestHub_429StormCallsNeverBeforeRetryAfterAndLosesNothing(t *testing.T) {
	env := hubtest.New(t, hubtest.Options{Tenants: 3})
	err := env.Emulator.SetFaults(emulator.FaultProfile{Rules: []emulator.FaultRule{{API: "graph", Rate429: 0.3, RetryAfter: []int{1, 3}}}})
	if err != nil {
		t.Fatal(err)
	}
	h := env.Start(t, hub.Options{})
	st := h.Hub.Store()
	for i := range 12 {
		ti := env.Info.Tenants[i%3]
		env.Emulator.CreateIncident(ti.TenantID, emulator.NewIncident{Title: "storm", Where: "defender"})
	}
	hubtest.Eventually(t, "the storm threw 429s", func() bool {
		recs, _ := env.Emulator.RequestHistory()
		n := 0
		for _, r := range recs {
			if r.Status == 429 {
				n++
			}
		}
		return n >= 5
	})
	env.Emulator.SetFaults(emulator.FaultProfile{})
	hubtest.Eventually(t, "every incident is collected after the storm", func() bool { return len(hubIncidents(t, st)) == 12 })
	recs, _ := env.Emulator.RequestHistory()
	if v := emulator.RetryAfterViolations(recs); len(v) > 0 {
		t.Errorf("%d calls before Retry-After, first: %s", len(v), v[0])
	}
}

func TestHub_BusyTenantCostsAtMostOneAndATenthGraphCallPerChangedIncident(t *testing.T) {
	env := hubtest.New(t, hubtest.Options{Tenants: 1})
	h := env.Start(t, hub.Options{})
	st := h.Hub.Store()
	tenant := env.Info.Tenants[0].TenantID
	hubtest.Eventually(t, "the first poll", func() bool {
		srcs, _ := st.Sources(context.Background(), store.AllTenants())
		return len(srcs) == 1 && srcs[0].Polls > 0
	})
	env.Emulator.ResetRequests()
	var ids []string
	changes := 0
	changed := map[string]bool{} // the measure: Graph calls per changed incident
	for round := range 30 {
		c, _ := env.Emulator.CreateIncident(tenant, emulator.NewIncident{Title: "busy"})
		ids = append(ids, c.GraphID)
		changes++
		changed[c.GraphID] = true
		if round > 0 {
			env.Emulator.PatchIncident(tenant, ids[round-1], []byte(`{"severity":"high"}`))
			changes++
			changed[ids[round-1]] = true
		}
		time.Sleep(150 * time.Millisecond)
	}
	hubtest.Eventually(t, "every change is in the hub", func() bool {
		list := hubIncidents(t, st)
		high := 0
		for _, si := range list {
			if si.Severity == incident.SeverityHigh {
				high++
			}
		}
		return len(list) == 30 && high == 29
	})
	calls := 0
	for _, r := range env.Emulator.Requests() {
		if r.API == "graph" {
			calls += r.Count
		}
	}
	ratio := float64(calls) / float64(len(changed))
	t.Logf("%d Graph calls for %d changes of %d incidents: %.2f per changed incident", calls, changes, len(changed), ratio)
	if ratio > 1.1 {
		t.Errorf("%.2f Graph calls per changed incident, want at most 1.1", ratio)
	}
}

func TestHub_MetricsShowPollsRemoteCallsAndSourceHealth(t *testing.T) {
	env := hubtest.New(t, hubtest.Options{Tenants: 3})
	revoked := env.Info.Tenants[0]
	env.Emulator.SetConsent(revoked.TenantID, revoked.ClientID, false, nil)
	h := env.Start(t, hub.Options{})
	var body string
	hubtest.Eventually(t, "the metrics show a degraded source and polls", func() bool {
		resp, err := http.Get("http://" + h.Addr + "/metrics")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		return strings.Contains(body, `socsync_source_degraded{kind="defender",source="`+strings.ToLower(revoked.TenantID)+`/defender",tenant="`+strings.ToLower(revoked.TenantID)+`"} 1`) &&
			strings.Contains(body, `socsync_polls_total{kind="defender",outcome="ok"}`) &&
			strings.Contains(body, "socsync_source_lag_seconds") // once a poll's result is stored
	})
	for _, want := range []string{"socsync_remote_requests_total{api=\"graph\",status=\"200\"}", "socsync_source_lag_seconds", "socsync_poll_duration_seconds_bucket"} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(body, revoked.ClientSecret) {
		t.Error("a secret is in the metrics")
	}
}

// TestHub_FullResyncRepairsSilentDrift (R18): a change the hub missed without the remote's
// change time moving (simulated by making the hub's copy stale behind its back) is repaired by
// the periodic full re-read, not by incremental polls.
func TestHub_FullResyncRepairsSilentDrift(t *testing.T) {
	env := hubtest.New(t, hubtest.Options{Tenants: 1, Resync: "8s", Overlap: "1s"})
	tenant := env.Info.Tenants[0].TenantID
	env.Emulator.CreateIncident(tenant, emulator.NewIncident{Title: "drift", Severity: "high"})
	time.Sleep(1500 * time.Millisecond) // a later change moves the cursor past the first incident and its overlap
	env.Emulator.CreateIncident(tenant, emulator.NewIncident{Title: "later"})
	h := env.Start(t, hub.Options{})
	st := h.Hub.Store()
	hubtest.Eventually(t, "collected", func() bool { return len(hubIncidents(t, st)) == 2 })
	h.Stop()

	// Make the hub believe, consistently, that the incident is low.
	st2, err := store.Open(context.Background(), hub.DatabaseDSN(env.Config), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	drifted := func(st *store.Store) store.StoredIncident {
		for _, si := range hubIncidents(t, st) {
			if si.Title == "drift" {
				return si
			}
		}
		t.Fatal("no drift incident")
		return store.StoredIncident{}
	}
	err = st2.InTx(context.Background(), func(tx *store.Tx) error {
		si := drifted(st2)
		links, _ := tx.Links(context.Background(), tenant, si.ID)
		l := links[0]
		var obs incident.Observation
		json.Unmarshal(l.Observed, &obs)
		obs.Severity = incident.SeverityLow
		l.Observed, _ = json.Marshal(obs)
		if _, err := tx.UpsertLink(context.Background(), &l); err != nil {
			return err
		}
		base, _ := json.Marshal(obs.Fields)
		if err := tx.SetLinkSync(context.Background(), tenant, l.ID, base, "in_sync", ""); err != nil {
			return err
		}
		si.Severity = incident.SeverityLow
		return tx.UpdateIncident(context.Background(), &si.Incident, store.Change{Summary: "drift"})
	})
	st2.Close()
	if err != nil {
		t.Fatal(err)
	}
	h = env.Start(t, hub.Options{})
	st = h.Hub.Store()
	var polls int64
	hubtest.Eventually(t, "two incremental polls", func() bool {
		srcs, _ := st.Sources(context.Background(), store.AllTenants())
		if polls == 0 {
			polls = srcs[0].Polls
		}
		return srcs[0].Polls >= polls+2
	})
	if drifted(st).Severity != incident.SeverityLow {
		t.Fatal("an incremental poll re-read the drifted incident; the test does not test the full re-read")
	}
	hubtest.Eventually(t, "the full re-read repairs the drift", func() bool { return drifted(st).Severity == incident.SeverityHigh })
}

// TestHub_DetailReadsOverBudgetDelayAlertsButNotIncidents: when the Sentinel read budget runs
// out while a poll fetches alerts, the incidents are stored all the same and their alerts come
// with later polls.
func TestHub_DetailReadsOverBudgetDelayAlertsButNotIncidents(t *testing.T) {
	env := hubtest.New(t, hubtest.Options{Tenants: 3, Extra: "budgets:\n  sentinel-read: {burst: 2, per_second: 0.3}\n"})
	ti := env.Info.Tenants[2]
	for range 6 {
		env.Emulator.CreateIncident(ti.TenantID, emulator.NewIncident{Title: "dfc", Where: "sentinel", Workspace: ti.Sentinel[1].Workspace,
			Alerts: []emulator.NewAlert{{Title: "a", ServiceSource: "microsoftDefenderForCloud"}}})
	}
	h := env.Start(t, hub.Options{})
	st := h.Hub.Store()
	hubtest.Eventually(t, "every incident and every alert is in", func() bool {
		list := hubIncidents(t, st)
		if len(list) != 6 {
			return false
		}
		for _, si := range list {
			if a, _ := st.Alerts(context.Background(), si.TenantID, si.ID); len(a) != 1 {
				return false
			}
		}
		return true
	})
	throttled := false
	srcs, _ := st.Sources(context.Background(), store.Tenants(ti.TenantID))
	for _, s := range srcs {
		if s.Throttled > 0 {
			throttled = true
		}
	}
	if !throttled {
		t.Error("the budget never ran out; the test did not test the delay")
	}
}

// TestHub_ABudgetOfOneReadAtATimeStillFetchesAlertsAndComments: Sentinel-only incidents that
// need both their alerts and their comments read, under a read budget that refills one read
// at a time more slowly than a request may wait for it. Each poll used to spend its one read
// on the alerts and be refused the comments, then read the alerts again on the next poll: the
// comments never came. (Found by the chaos suite's R3.)
func TestHub_ABudgetOfOneReadAtATimeStillFetchesAlertsAndComments(t *testing.T) {
	env := hubtest.New(t, hubtest.Options{Tenants: 3, Extra: "budgets:\n  sentinel-read: {burst: 1, per_second: 0.3}\n"})
	ti := env.Info.Tenants[2]
	for i := range 3 {
		c, err := env.Emulator.CreateIncident(ti.TenantID, emulator.NewIncident{Title: fmt.Sprintf("dfc-%d", i), Where: "sentinel", Workspace: ti.Sentinel[1].Workspace,
			Alerts: []emulator.NewAlert{{Title: "a", ServiceSource: "microsoftDefenderForCloud"}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := env.Emulator.PatchIncident(ti.TenantID, c.SentinelID, []byte(`{"comment":"note"}`)); err != nil {
			t.Fatal(err)
		}
	}
	h := env.Start(t, hub.Options{})
	st := h.Hub.Store()
	defer func() {
		if t.Failed() {
			for _, si := range hubIncidents(t, st) {
				a, _ := st.Alerts(context.Background(), si.TenantID, si.ID)
				c, _ := st.Comments(context.Background(), si.TenantID, si.ID)
				links, _ := st.Links(context.Background(), si.TenantID, si.ID)
				t.Logf("%s: %d alerts, %d comments, link flags %q", si.Title, len(a), len(c), links[0].Flags)
			}
			srcs, _ := st.Sources(context.Background(), store.AllTenants())
			for _, s := range srcs {
				t.Logf("%s polls %d throttled %d err %q", s.ID, s.Polls, s.Throttled, s.LastError)
			}
		}
	}()
	hubtest.Eventually(t, "every incident's alert and comment is in", func() bool {
		list := hubIncidents(t, st)
		if len(list) != 3 {
			return false
		}
		for _, si := range list {
			a, _ := st.Alerts(context.Background(), si.TenantID, si.ID)
			c, _ := st.Comments(context.Background(), si.TenantID, si.ID)
			if len(a) != 1 || len(c) != 1 {
				return false
			}
		}
		return true
	})
}

// TestHub_SentinelRequestsCarryTheConfiguredAPIVersion: cloud.sentinel_api_version (here an
// older stable version, not the default) is the api-version of every Sentinel request the hub
// makes — lists, alerts and comments — as the emulator's request log shows. The versions the
// configuration accepts are the stable ones the emulator knows.
func TestHub_SentinelRequestsCarryTheConfiguredAPIVersion(t *testing.T) {
	if !slices.Equal(config.SentinelAPIVersions, emulator.SentinelAPIVersions) {
		t.Errorf("the configuration accepts api-versions %v, the emulator %v", config.SentinelAPIVersions, emulator.SentinelAPIVersions)
	}
	env := hubtest.New(t, hubtest.Options{Tenants: 3})
	const version = "2024-09-01"
	if version == config.DefaultSentinelAPIVersion {
		t.Fatal("the test needs a version other than the default")
	}
	env.Config.Cloud.SentinelAPIVersion = version
	ti := env.Info.Tenants[2]
	c, err := env.Emulator.CreateIncident(ti.TenantID, emulator.NewIncident{Title: "versioned", Where: "sentinel", Workspace: ti.Sentinel[1].Workspace,
		Alerts: []emulator.NewAlert{{Title: "a", ServiceSource: "microsoftDefenderForCloud"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Emulator.PatchIncident(ti.TenantID, c.SentinelID, []byte(`{"comment":"note"}`)); err != nil {
		t.Fatal(err)
	}
	h := env.Start(t, hub.Options{})
	st := h.Hub.Store()
	hubtest.Eventually(t, "the incident, its alert and its comment are in", func() bool {
		list := hubIncidents(t, st)
		if len(list) != 1 {
			return false
		}
		a, _ := st.Alerts(context.Background(), list[0].TenantID, list[0].ID)
		cm, _ := st.Comments(context.Background(), list[0].TenantID, list[0].ID)
		return len(a) == 1 && len(cm) == 1
	})
	recs, _ := env.Emulator.RequestHistory()
	routes := map[string]int{}
	for _, r := range recs {
		if r.API != "arm" || !strings.Contains(r.Route, "Microsoft.SecurityInsights") {
			continue
		}
		routes[r.Method+" "+r.Route]++
		if r.APIVersion != version {
			t.Errorf("%s %s: api-version %q, want the configured %s", r.Method, r.Path, r.APIVersion, version)
		}
	}
	if len(routes) < 3 {
		t.Errorf("Sentinel requests %v: want lists, alerts and comments", routes)
	}
}

// TestHub_TokensAreCached_ManyPollsCostOneTokenRequestPerTenantAndAPI: the hub polls each
// source many times with one token per tenant and API (Graph; Azure Resource Manager for a
// tenant with Sentinel workspaces, shared by its workspaces), as the emulator's request log
// counts.
func TestHub_TokensAreCached_ManyPollsCostOneTokenRequestPerTenantAndAPI(t *testing.T) {
	env := hubtest.New(t, hubtest.Options{Tenants: 3})
	h := env.Start(t, hub.Options{})
	st := h.Hub.Store()
	const polls = 6
	hubtest.Eventually(t, "every source is polled many times", func() bool {
		srcs, _ := st.Sources(context.Background(), store.AllTenants())
		for _, s := range srcs {
			if s.Polls < polls {
				return false
			}
		}
		return len(srcs) > 0
	})
	h.Stop()
	for _, ti := range env.Info.Tenants {
		want := 0
		if ti.Defender {
			want++
		}
		if len(ti.Sentinel) > 0 {
			want++
		}
		tokens := 0
		for _, r := range env.Emulator.Requests() {
			// Token requests proper: the credential's one look at the OpenID metadata is not one.
			if r.API == "token" && r.Method == http.MethodPost && r.Route == "/{tenant}/oauth2/v2.0/token" && strings.EqualFold(r.Tenant, ti.TenantID) {
				tokens += r.Count
			}
		}
		t.Logf("tenant %s (%d workspaces): %d token requests over at least %d polls of each source", ti.Name, len(ti.Sentinel), tokens, polls)
		if tokens != want {
			t.Errorf("tenant %s: %d token requests, want %d (one per API, cached across polls)", ti.Name, tokens, want)
		}
	}
}
