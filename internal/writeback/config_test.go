package writeback_test

import (
	"context"
	"fmt"
	"os"
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

// The sync section's options, each set in the configuration file as an operator would and
// checked end to end against the emulator.

// configuredFixture is newFixture with the configuration file's sync section replaced by
// syncYAML (the lines under "sync:", indented by two spaces), loaded as `socsync serve` loads it.
func configuredFixture(t *testing.T, syncYAML string) *fixture {
	t.Helper()
	env := hubtest.New(t, hubtest.Options{Tenants: 3})
	path := env.ConfigPath()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const written = "sync:\n  alert_rules:\n    refresh: 1s\n" // what hubtest writes
	if !strings.Contains(string(b), written) {
		t.Fatalf("%s has no sync section %q to replace:\n%s", path, written, b)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), written, "sync:\n"+syncYAML, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if env.Config, err = config.Load(path, os.Getenv); err != nil {
		t.Fatalf("the configuration with sync:\n%s: %v", syncYAML, err)
	}
	r := env.Start(t, hub.Options{})
	return &fixture{env: env, hub: r, token: r.Token(t, "admin", "admin")}
}

// TestMerge_WithRaiseMergeTargetSeverityOffLeavesTheTargetsSeverity: with
// sync.raise_merge_target_severity false, a high-severity incident merged into a low one is
// closed as merged and noted on both, but the target keeps its low severity, in the hub and in
// Defender. (TestMerge_ClosesTheSourceAsMergedNotesBothAndNeverReopens checks the default,
// which raises it.)
func TestMerge_WithRaiseMergeTargetSeverityOffLeavesTheTargetsSeverity(t *testing.T) {
	f := configuredFixture(t, "  raise_merge_target_severity: false\n  alert_rules:\n    refresh: 1s\n")
	a, _ := f.env.Emulator.CreateIncident(f.tenant(0), emulator.NewIncident{Title: "keep-source", Severity: "high"})
	b, _ := f.env.Emulator.CreateIncident(f.tenant(0), emulator.NewIncident{Title: "keep-target", Severity: "low"})
	f.find(t, "keep-source")
	dst := f.find(t, "keep-target")
	if err := f.env.Emulator.Merge(f.tenant(0), a.GraphID, b.GraphID); err != nil {
		t.Fatal(err)
	}
	hubtest.Eventually(t, "the merge is handled on both incidents", func() bool {
		src := f.find(t, "keep-source")
		d := f.get(t, dst.ID)
		return src.Status == "merged" && src.MergedInto == dst.ID && len(d.Comments) == 1 && d.SyncState == "in_sync"
	})
	f.settle(t)
	d := f.get(t, dst.ID)
	if d.Severity != "low" {
		t.Errorf("the merge target's severity is %s in the hub, want its own low", d.Severity)
	}
	if g := f.env.Views(t, f.tenant(0), b.GraphID)["graph"]; g["severity"] != "low" {
		t.Errorf("the merge target's severity is %v in Defender, want low", g["severity"])
	}
	if !strings.Contains(d.Comments[0].Text, "Absorbed") {
		t.Errorf("the target's note: %q", d.Comments[0].Text)
	}
}

// resolveAll resolves every alert as Defender would and waits until the hub has stored them
// resolved, so that what the rules then do (or not) follows from what the hub knows.
func (f *fixture) resolveAll(t *testing.T, tenant, hubID string, alertIDs []string) {
	t.Helper()
	for _, id := range alertIDs {
		if err := f.env.Emulator.SetAlertStatus(tenant, id, "resolved", ""); err != nil {
			t.Fatal(err)
		}
	}
	hubtest.Eventually(t, "the hub has the alerts of "+hubID+" resolved", func() bool {
		alerts, err := f.hub.Hub.Store().Alerts(context.Background(), tenant, hubID)
		if err != nil || len(alerts) != len(alertIDs) {
			return false
		}
		for _, a := range alerts {
			if a.Status != incident.AlertResolved {
				return false
			}
		}
		return true
	})
}

// TestAlertRules_DisabledResolvingEveryAlertDoesNotCloseTheIncident: with
// sync.alert_rules.enabled false, a Defender incident whose Defender for Cloud alerts are all
// resolved (and stored so in the hub) stays open, and socsync writes nothing for it.
func TestAlertRules_DisabledResolvingEveryAlertDoesNotCloseTheIncident(t *testing.T) {
	f := configuredFixture(t, "  alert_rules:\n    enabled: false\n    refresh: 1s\n")
	c, err := f.env.Emulator.CreateIncident(f.tenant(0), emulator.NewIncident{Title: "rules-off", Where: "defender",
		Alerts: []emulator.NewAlert{{Title: "a1", ServiceSource: "microsoftDefenderForCloud", Status: "new"},
			{Title: "a2", ServiceSource: "microsoftDefenderForCloud", Status: "new"}}})
	if err != nil {
		t.Fatal(err)
	}
	d := f.find(t, "rules-off")
	f.waitInSync(t, d.ID)
	before := f.env.Writes()
	f.resolveAll(t, f.tenant(0), d.ID, c.AlertIDs)
	f.settle(t)
	got := f.get(t, d.ID)
	if got.Status != "new" || got.Classification == "true_positive" || len(got.Comments) != 0 {
		t.Errorf("with the rules off the incident became %s/%s with comments %+v, want it still new", got.Status, got.Classification, got.Comments)
	}
	if g := f.env.Views(t, f.tenant(0), c.GraphID)["graph"]; g["status"] != "active" {
		t.Errorf("Defender status %v, want active (untouched)", g["status"])
	}
	for _, h := range got.History {
		if h.Action == "rule" {
			t.Errorf("a rule ran: %+v", h)
		}
	}
	if w := diff(f.env.Writes(), before); len(w) != 0 {
		t.Errorf("writes with the rules off: %v", w)
	}
}

// TestAlertRules_LimitedToProductsActOnlyOnIncidentsOfThoseProducts: with
// sync.alert_rules.products set to Defender for Endpoint, an incident whose Defender for
// Endpoint alerts are all resolved is closed by the rule, and one whose Defender for Cloud
// alerts (the default products) are all resolved is not.
func TestAlertRules_LimitedToProductsActOnlyOnIncidentsOfThoseProducts(t *testing.T) {
	f := configuredFixture(t, "  alert_rules:\n    products: [microsoftDefenderForEndpoint]\n    refresh: 1s\n")
	alerts := func(source string) []emulator.NewAlert {
		return []emulator.NewAlert{{Title: "a1", ServiceSource: source, Status: "new"}, {Title: "a2", ServiceSource: source, Status: "new"}}
	}
	mde, err := f.env.Emulator.CreateIncident(f.tenant(0), emulator.NewIncident{Title: "rules-mde", Where: "defender", Alerts: alerts("microsoftDefenderForEndpoint")})
	if err != nil {
		t.Fatal(err)
	}
	mdc, err := f.env.Emulator.CreateIncident(f.tenant(0), emulator.NewIncident{Title: "rules-mdc", Where: "defender", Alerts: alerts("microsoftDefenderForCloud")})
	if err != nil {
		t.Fatal(err)
	}
	in, out := f.find(t, "rules-mde"), f.find(t, "rules-mdc")
	f.waitInSync(t, in.ID)
	f.waitInSync(t, out.ID)
	f.resolveAll(t, f.tenant(0), out.ID, mdc.AlertIDs)
	f.resolveAll(t, f.tenant(0), in.ID, mde.AlertIDs)
	// The rule's close is in the hub (and shown in sync) a moment before its write reaches
	// Defender: wait for both.
	hubtest.Eventually(t, "the rule closed the Defender for Endpoint incident, in the hub and in Defender", func() bool {
		got := f.get(t, in.ID)
		g := f.env.Views(t, f.tenant(0), mde.GraphID)["graph"]
		return got.Status == "resolved" && got.Classification == "true_positive" && got.SyncState == "in_sync" &&
			g["status"] == "resolved" && g["classification"] == "truePositive"
	})
	if got := f.get(t, in.ID); len(got.Comments) != 1 || !strings.Contains(got.Comments[0].Text, "all-alerts-resolved") {
		t.Errorf("no closing comment naming the rule: %+v", got.Comments)
	}
	f.settle(t)
	if got := f.get(t, out.ID); got.Status != "new" || len(got.Comments) != 0 {
		t.Errorf("the Defender for Cloud incident, outside the configured products, became %s with comments %+v; want it still new", got.Status, got.Comments)
	}
	if g := f.env.Views(t, f.tenant(0), mdc.GraphID)["graph"]; g["status"] != "active" {
		t.Errorf("Defender status of the Defender for Cloud incident %v, want active (untouched)", g["status"])
	}
}

// hubEdit changes an incident's fields in the hub's database while the hub is stopped, as an
// analyst's edit the hub has not written yet.
func hubEdit(t *testing.T, env *hubtest.Env, tenant, id string, edit func(*incident.Fields)) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, hub.DatabaseDSN(env.Config), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	err = st.InTx(ctx, func(tx *store.Tx) error {
		si, err := tx.Incident(ctx, tenant, id)
		if err != nil {
			return err
		}
		edit(&si.Fields)
		if err := tx.UpdateIncident(ctx, &si.Incident, store.Change{Summary: "test edit", Actor: "analyst", HubEdit: true}); err != nil {
			return err
		}
		return tx.SetSyncState(ctx, si.TenantID, si.ID, "pending", tx.Now())
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestConflicts_PerFieldHubWinsAndRemoteWinsDecideAsConfiguredAndAreAudited: with
// sync.policy.fields severity: hub_wins and tags: remote_wins (default latest_wins), the hub
// and Defender both change the severity and the tags of two incidents — on one the remote's
// change is the later, on the other the hub's — while the hub is stopped. Whichever is later,
// the hub's severity and the remote's tags win, in the hub and in Defender (latest_wins would
// have given one field of each incident to the other side), and the audit records both
// conflicts with the configured rule and the winner.
func TestConflicts_PerFieldHubWinsAndRemoteWinsDecideAsConfiguredAndAreAudited(t *testing.T) {
	f := configuredFixture(t, "  policy:\n    default: latest_wins\n    fields:\n      severity: hub_wins\n      tags: remote_wins\n  alert_rules:\n    refresh: 1s\n")
	remoteLater, _ := f.env.Emulator.CreateIncident(f.tenant(0), emulator.NewIncident{Title: "policy-remote-later", Severity: "medium"})
	hubLater, _ := f.env.Emulator.CreateIncident(f.tenant(0), emulator.NewIncident{Title: "policy-hub-later", Severity: "medium"})
	rl, hl := f.find(t, "policy-remote-later"), f.find(t, "policy-hub-later")
	f.waitInSync(t, rl.ID)
	f.waitInSync(t, hl.ID)
	f.hub.Stop()
	edit := func(f *incident.Fields) { f.Severity, f.Tags = incident.SeverityHigh, []string{"hub-tag"} }
	remote := []byte(`{"severity":"low","customTags":["remote-tag"]}`)
	hubEdit(t, f.env, f.tenant(0), rl.ID, edit)
	time.Sleep(20 * time.Millisecond) // the remote's change is the later one
	if err := f.env.Emulator.PatchIncident(f.tenant(0), remoteLater.GraphID, remote); err != nil {
		t.Fatal(err)
	}
	if err := f.env.Emulator.PatchIncident(f.tenant(0), hubLater.GraphID, remote); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // the hub's change is the later one
	hubEdit(t, f.env, f.tenant(0), hl.ID, edit)
	f.hub = f.env.Start(t, hub.Options{})

	for _, c := range []struct {
		name, hubID, graphID string
	}{{"remote later", rl.ID, remoteLater.GraphID}, {"hub later", hl.ID, hubLater.GraphID}} {
		var got hubIncident
		hubtest.Eventually(t, c.name+": both conflicts are decided and written", func() bool {
			got = f.get(t, c.hubID)
			return got.SyncState == "in_sync" && fmt.Sprint(got.Tags) == "[remote-tag]" && got.Severity == "high" &&
				f.env.Views(t, f.tenant(0), c.graphID)["graph"]["severity"] == "high"
		})
		g := f.env.Views(t, f.tenant(0), c.graphID)["graph"]
		if tags, _ := g["customTags"].([]any); len(tags) != 1 || tags[0] != "remote-tag" {
			t.Errorf("%s: Defender tags %v, want the remote's (remote_wins)", c.name, g["customTags"])
		}
		want := map[string]string{"severity": "hub_wins won by hub", "tags": "remote_wins won by graph:"}
		for _, h := range got.History {
			if h.Action != "conflict" {
				continue
			}
			if w, ok := want[h.Field]; ok && strings.HasPrefix(h.Detail+" "+h.Result, w) {
				delete(want, h.Field)
			}
		}
		if len(want) != 0 {
			t.Errorf("%s: the audit lacks the conflicts %v: %+v", c.name, want, got.History)
		}
	}
}
