package chaos

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/socsync/socsync/internal/chaos/check"
	"github.com/socsync/socsync/internal/emulator"
	"github.com/socsync/socsync/internal/hub"
	"github.com/socsync/socsync/internal/hub/hubtest"
)

// TestR15_EchoTraps_ZeroWritesCausedByEchoes (R15): a Defender-only, a mirrored and a
// Sentinel-only incident are edited in the hub with values in untidy spelling (padded and
// differently cased tags, a duplicate tag, an owner in capitals with spaces), which socsync
// writes once per incident. Then remote analysts rewrite every value in another spelling that
// means the same (tags reordered and recased, owners in capitals, enums in other casing; the
// hub's "active" is Graph's inProgress). The only writes in the whole run are the three real
// ones, and the remote respellings make no new hub version (so no sink row). (The random version over 1,000 edits from every side:
// TestEcho_RandomEditsFromEverySideConvergeWithNoMoreWritesThanEdits; the planner's
// normalisation: the reconcile package's tests.)
func TestR15_EchoTraps_ZeroWritesCausedByEchoes(t *testing.T) {
	t.Parallel()
	f := startRun(t, hubtest.Options{Tenants: 3}, nil, hub.Options{})
	t0, t1, t2 := f.tenant(0), f.tenant(1), f.tenant(2)
	g := f.create(t0.TenantID, emulator.NewIncident{Title: "r15-defender"})
	m := f.create(t1.TenantID, emulator.NewIncident{Title: "r15-mirrored", Where: "defender+sentinel"})
	s := f.create(t2.TenantID, emulator.NewIncident{Title: "r15-sentinel", Where: "sentinel", Workspace: t2.Sentinel[1].Workspace})
	targets := []struct {
		tenant emulator.TenantInfo
		remote string
		hubID  string
	}{{tenant: t0, remote: g.GraphID}, {tenant: t1, remote: m.GraphID}, {tenant: t2, remote: s.SentinelID}}
	for i := range targets {
		targets[i].hubID = f.hubID(targets[i].tenant.TenantID, targets[i].remote)
	}
	f.collected(3)
	hubtest.Eventually(t, "the mirrored incident has both links", func() bool {
		links, err := f.store().Links(context.Background(), t1.TenantID, targets[1].hubID)
		return err == nil && len(links) == 2
	})
	f.settle()
	mark := len(f.requests())

	// The real changes, spelled untidily.
	for _, tg := range targets {
		upn := tg.tenant.Users[1].UPN
		f.edit(tg.hubID, fmt.Sprintf(`{"status":"active","severity":"high","owner":"  %s ","tags":["  Phishing ","ir-7","IR-7"]}`, strings.ToUpper(upn)))
	}
	f.settle()
	afterHub := f.requests()[mark:]
	if n := check.Writes(afterHub); n != len(targets) {
		t.Fatalf("%d writes for %d hub edits, want one each:\n%s", n, len(targets), writesOf(afterHub))
	}
	before := versions(t, f.store())
	quiet := f.env.Emulator.Now()
	audited := map[string]int{}
	for _, tg := range targets {
		h, _ := f.store().History(context.Background(), tg.tenant.TenantID, tg.hubID)
		audited[tg.hubID] = len(h)
	}

	// The traps: the same values, respelled by remote analysts.
	for _, tg := range targets {
		upn := tg.tenant.Users[1].UPN
		var err error
		switch {
		case tg.remote == s.SentinelID:
			err = f.env.Emulator.PatchIncident(tg.tenant.TenantID, tg.remote, []byte(fmt.Sprintf(
				`{"labels":["IR-7","phishing"],"owner":"%s","status":"Active","severity":"High"}`, strings.ToUpper(upn))))
		default:
			err = f.env.Emulator.PatchIncident(tg.tenant.TenantID, tg.remote, []byte(fmt.Sprintf(
				`{"customTags":["IR-7","PHISHING"],"assignedTo":" %s","status":"INPROGRESS","severity":"High"}`, strings.ToUpper(upn))))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := f.env.Emulator.PatchIncident(t1.TenantID, m.SentinelID, []byte(`{"view":"sentinel","labels":["phishing","Ir-7"]}`)); err != nil {
		t.Fatal(err)
	}
	f.polled(2)
	f.settle()
	run := f.requests()[mark:]
	if v := check.NoEcho(run, len(targets), quiet); v != nil {
		t.Fatal(v)
	}
	if after := versions(t, f.store()); after != before {
		t.Errorf("the respellings made %d new hub versions (sink rows), want none", after-before)
		for _, tg := range targets {
			h, _ := f.store().History(context.Background(), tg.tenant.TenantID, tg.hubID)
			for _, e := range h[audited[tg.hubID]:] {
				t.Logf("%s: %+v", tg.remote, e)
			}
			si, _ := f.store().Incident(context.Background(), tg.tenant.TenantID, tg.hubID)
			t.Logf("%s: v%d owner=%q tags=%q status=%s severity=%s", tg.remote, si.Version, si.Owner, si.Tags, si.Status, si.Severity)
		}
	}
	f.checkAll(check.Options{})
	traps := 0
	for _, h := range f.env.Emulator.History() {
		if h.Time.After(quiet) {
			traps++
		}
	}
	t.Logf("R15 figures: %d real hub edits → %d writes; %d remote respellings of the same values → %d writes, %d new versions",
		len(targets), check.Writes(afterHub), traps, check.Writes(run)-check.Writes(afterHub), versions(t, f.store())-before)
}

// writesOf lists the writes among records, one per line.
func writesOf(records []emulator.RequestRecord) string {
	var b strings.Builder
	for _, r := range records {
		if check.IsWrite(r) {
			fmt.Fprintf(&b, "  %s %s %d\n", r.Method, r.Path, r.Status)
		}
	}
	return b.String()
}
