package check

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/socsync/socsync/internal/emulator"
	"github.com/socsync/socsync/internal/hub"
	"github.com/socsync/socsync/internal/hub/hubtest"
	"github.com/socsync/socsync/internal/store"
)

// remoteRef is one remote incident of the fixture and the hub incident holding it.
type remoteRef struct {
	tenant, remote, hub string
	kind                store.LinkKind
}

// fixture is a small real run the checkers' own tests break on purpose: three tenants with a
// Defender-only, a mirrored (Defender + Sentinel) and a Sentinel-only incident, each edited
// and commented by a remote analyst and commented in the hub, collected and written back by a
// hub that is then stopped (so nothing repairs what a test breaks). Every checker passes on it
// as it is: that is asserted first, so a test's violation is the one it made.
type fixture struct {
	env                              *hubtest.Env
	st                               *store.Store
	run                              Run
	defender, mirrored, sentinelOnly remoteRef
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	env := hubtest.New(t, hubtest.Options{Tenants: 3, Idle: "300ms", Hot: "100ms"})
	t0, t1, t2 := env.Info.Tenants[0], env.Info.Tenants[1], env.Info.Tenants[2]
	create := func(tenant string, in emulator.NewIncident) emulator.Created {
		t.Helper()
		c, err := env.Emulator.CreateIncident(tenant, in)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	f := &fixture{env: env}
	d := create(t0.TenantID, emulator.NewIncident{Title: "fx-defender", Where: "defender"})
	m := create(t1.TenantID, emulator.NewIncident{Title: "fx-mirrored", Where: "defender+sentinel"})
	s := create(t2.TenantID, emulator.NewIncident{Title: "fx-sentinel", Where: "sentinel", Workspace: t2.Sentinel[1].Workspace,
		Alerts: []emulator.NewAlert{{Title: "a", ServiceSource: "microsoftDefenderForCloud"}}})
	f.defender = remoteRef{tenant: t0.TenantID, remote: d.GraphID, kind: store.LinkGraph}
	f.mirrored = remoteRef{tenant: t1.TenantID, remote: m.GraphID, kind: store.LinkGraph}
	f.sentinelOnly = remoteRef{tenant: t2.TenantID, remote: s.SentinelID, kind: store.LinkSentinel}
	for _, p := range []struct {
		r    remoteRef
		body string
	}{
		{f.defender, `{"severity":"high","comment":"fx remote note"}`},
		{f.mirrored, `{"severity":"high","comment":"fx remote note"}`},
		{f.sentinelOnly, `{"severity":"High","comment":"fx remote note"}`},
	} {
		if err := env.Emulator.PatchIncident(p.r.tenant, p.r.remote, []byte(p.body)); err != nil {
			t.Fatal(err)
		}
	}
	r := env.Start(t, hub.Options{})
	token := r.Token(t, "admin", "admin")
	live := r.Hub.Store()
	for _, ref := range []*remoteRef{&f.defender, &f.mirrored, &f.sentinelOnly} {
		hubtest.Eventually(t, "remote incident "+ref.remote+" is in the hub", func() bool {
			list, err := live.ListIncidents(ctx, store.Tenants(ref.tenant), store.ListFilter{RemoteID: ref.remote}, store.ListPage{}, 10)
			if err != nil || len(list) != 1 || list[0].Severity != "high" {
				return false
			}
			ref.hub = list[0].ID
			return true
		})
		if code := r.API(t, token, "POST", "/api/v1/incidents/"+ref.hub+"/comments", `{"text":"fx hub note"}`, nil); code != 201 {
			t.Fatalf("hub comment: %d", code)
		}
	}
	if code := r.API(t, token, "PATCH", "/api/v1/incidents/"+f.defender.hub, fmt.Sprintf(`{"owner":%q,"tags":["fx"]}`, t0.Users[1].UPN), nil); code != 200 {
		t.Fatalf("hub edit: %d", code)
	}
	// Settled, then two more polls of every source (an echo or a late comment would show),
	// then settled again.
	hubtest.Eventually(t, "the hub settles", func() bool { return Settled(ctx, live) })
	before := map[string]int64{}
	srcs, _ := live.Sources(ctx, store.AllTenants())
	for _, s := range srcs {
		before[s.ID] = s.Polls
	}
	hubtest.Eventually(t, "every source polls twice more", func() bool {
		srcs, _ := live.Sources(ctx, store.AllTenants())
		for _, s := range srcs {
			if s.Polls < before[s.ID]+2 {
				return false
			}
		}
		return true
	})
	hubtest.Eventually(t, "the hub settles again", func() bool { return Settled(ctx, live) })
	r.Stop()
	st, err := store.Open(ctx, hub.DatabaseDSN(env.Config), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f.st = st
	f.run = Run{Emulator: env.Emulator, Store: st}
	if v := All(ctx, f.run, Options{}); v != nil {
		t.Fatalf("the fixture's own run breaks an invariant: %v", v)
	}
	return f
}

// ingest posts rows to the emulator's sink as the forwarder would (the home tenant's app,
// Logs Ingestion's API).
func (f *fixture) ingest(t *testing.T, rows ...json.RawMessage) {
	t.Helper()
	li := f.env.Info.LogsIngestion
	client := f.env.Server.Client()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {li.ClientID}, "client_secret": {li.ClientSecret},
		"scope": {"https://monitor.azure.com//.default"}}
	resp, err := client.PostForm(f.env.Info.BaseURL+"/"+li.TenantID+"/oauth2/v2.0/token", form)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if tok.AccessToken == "" {
		t.Fatalf("no ingestion token: %d", resp.StatusCode)
	}
	body, _ := json.Marshal(rows)
	req, _ := http.NewRequest("POST", li.Endpoint+"/dataCollectionRules/"+li.DCRImmutableID+"/streams/"+li.Stream+"?api-version=2023-01-01", strings.NewReader(string(body)))
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 204 {
		t.Fatalf("ingestion: %d %s", resp.StatusCode, b)
	}
}

// wantViolation fails unless v is a violation of inv whose message holds msg and whose
// history (the records that show it) holds each of history.
func wantViolation(t *testing.T, v *Violation, inv, msg string, history ...string) {
	t.Helper()
	if v == nil {
		t.Fatalf("no violation reported; want %s %q", inv, msg)
	}
	if v.Invariant != inv || !strings.Contains(v.Message, msg) {
		t.Fatalf("got %v; want %s %q", v, inv, msg)
	}
	h := strings.Join(v.History, "\n")
	for _, want := range history {
		if !strings.Contains(h, want) {
			t.Errorf("the violation's history lacks %q:\n%s", want, v)
		}
	}
	for _, line := range v.History {
		if !strings.Contains(v.Error(), line) {
			t.Errorf("the printed violation lacks its history line %q:\n%s", line, v)
		}
	}
}
