package chaos

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/socsync/socsync/internal/chaos/check"
	"github.com/socsync/socsync/internal/emulator"
	"github.com/socsync/socsync/internal/hub"
	"github.com/socsync/socsync/internal/hub/hubtest"
	"github.com/socsync/socsync/internal/store"
)

// TestR16_MergeAndRedirect_SourceClosedAndLinkedNeverReopenedPendingWorkMoved (R16): an
// analyst assigns a Defender incident and tags it in the hub while Defender refuses every
// write (503), so the change stays pending; then Defender's correlation merges the incident
// into another. In a second tenant a mirrored incident is merged too, so its Sentinel copy is
// closed with the label Redirected. The sources become merged and point at their targets; the
// pending owner and tags move to the target and reach Defender there; remote analysts who then
// reopen the sources (in Defender and in Sentinel) reopen nothing in the hub, and socsync never
// writes to a merged source. (The in-process version without pending work:
// TestMerge_ClosesTheSourceAsMergedNotesBothAndNeverReopens.)
func TestR16_MergeAndRedirect_SourceClosedAndLinkedNeverReopenedPendingWorkMoved(t *testing.T) {
	t.Parallel()
	f := startRun(t, hubtest.Options{Tenants: 3}, nil, hub.Options{})
	t0, t1 := f.tenant(0), f.tenant(1)
	src := f.create(t0.TenantID, emulator.NewIncident{Title: "r16-source"})
	dst := f.create(t0.TenantID, emulator.NewIncident{Title: "r16-target"})
	msrc := f.create(t1.TenantID, emulator.NewIncident{Title: "r16-mirrored-source", Where: "defender+sentinel"})
	mdst := f.create(t1.TenantID, emulator.NewIncident{Title: "r16-mirrored-target", Where: "defender+sentinel"})
	srcID, dstID := f.hubID(t0.TenantID, src.GraphID), f.hubID(t0.TenantID, dst.GraphID)
	msrcID, mdstID := f.hubID(t1.TenantID, msrc.GraphID), f.hubID(t1.TenantID, mdst.GraphID)
	f.settle()

	// Pending work on the source: Defender refuses every write of tenant 0.
	f.faults(emulator.FaultRule{API: "graph", Tenant: t0.TenantID, Method: "PATCH", Rate5xx: 1, Statuses: []int{503}})
	owner := t0.Users[1].UPN
	f.edit(srcID, fmt.Sprintf(`{"owner":%q,"tags":["r16-moved"]}`, owner))
	hubtest.Eventually(t, "the write was refused and is pending", func() bool {
		refused := count(f.requests(), func(r emulator.RequestRecord) bool {
			return r.Method == "PATCH" && strings.Contains(r.Path, src.GraphID) && r.Status == 503
		})
		si, err := f.store().Incident(context.Background(), t0.TenantID, srcID)
		return refused > 0 && err == nil && si.SyncState == "pending"
	})

	// The correlation merges both sources.
	for _, m := range []struct {
		tenant, from, into string
	}{{t0.TenantID, src.GraphID, dst.GraphID}, {t1.TenantID, msrc.GraphID, mdst.GraphID}} {
		if err := f.env.Emulator.Merge(m.tenant, m.from, m.into); err != nil {
			t.Fatal(err)
		}
	}
	mergedAt := f.env.Emulator.Now()
	for _, m := range []struct{ tenant, src, dst string }{{t0.TenantID, srcID, dstID}, {t1.TenantID, msrcID, mdstID}} {
		hubtest.Eventually(t, "the source is merged into its target", func() bool {
			si, err := f.store().Incident(context.Background(), m.tenant, m.src)
			return err == nil && si.Status == "merged" && si.MergedInto == m.dst
		})
	}
	f.faults()
	hubtest.Eventually(t, "the pending owner and tags reach Defender on the target", func() bool {
		g := f.env.Views(t, t0.TenantID, dst.GraphID)["graph"]
		tags, _ := g["customTags"].([]any)
		return strings.EqualFold(fmt.Sprint(g["assignedTo"]), owner) && slices.Contains(tags, any("r16-moved"))
	})
	sv := f.env.Views(t, t1.TenantID, msrc.SentinelID)["sentinel"]["properties"].(map[string]any)
	if sv["status"] != "Closed" || !strings.Contains(fmt.Sprint(sv["labels"]), "Redirected") {
		t.Errorf("the mirrored source's Sentinel copy: status %v, labels %v; want Closed with Redirected", sv["status"], sv["labels"])
	}
	f.settle()

	// Remote analysts reopen the sources.
	reopenedAt := f.env.Emulator.Now()
	if err := f.env.Emulator.PatchIncident(t0.TenantID, src.GraphID, []byte(`{"status":"active"}`)); err != nil {
		t.Fatal(err)
	}
	if err := f.env.Emulator.PatchIncident(t1.TenantID, msrc.SentinelID, []byte(`{"view":"sentinel","status":"Active"}`)); err != nil {
		t.Fatal(err)
	}
	f.polled(2)
	f.settle()
	for _, m := range []struct{ tenant, id string }{{t0.TenantID, srcID}, {t1.TenantID, msrcID}} {
		si, _ := f.store().Incident(context.Background(), m.tenant, m.id)
		if si.Status != "merged" {
			t.Errorf("a remote reopen reopened merged incident %s: %s", m.id, si.Status)
		}
	}
	for _, r := range f.requests() {
		if check.IsWrite(r) && r.Time.After(mergedAt) && r.Status/100 == 2 &&
			(strings.Contains(r.Path, "/incidents/"+src.GraphID) || strings.Contains(r.Path, "/incidents/"+msrc.GraphID) || strings.Contains(r.Path, msrc.SentinelID)) {
			t.Errorf("socsync wrote to a merged source: %s %s", r.Method, r.Path)
		}
	}
	target, _ := f.store().Incident(context.Background(), t0.TenantID, dstID)
	if !strings.EqualFold(target.Owner, owner) || !slices.Contains(target.Tags, "r16-moved") {
		t.Errorf("target: owner %q tags %v; want the source's pending %q and r16-moved", target.Owner, target.Tags, owner)
	}
	for _, id := range []string{srcID, dstID} {
		h, _ := f.store().History(context.Background(), t0.TenantID, id)
		if !slices.ContainsFunc(h, func(e store.AuditEntry) bool { return e.Action == "merge" }) {
			t.Errorf("incident %s: no merge in its audit", id)
		}
	}
	f.checkAll(check.Options{})
	t.Logf("R16 figures: 2 merges (one with a pending owner and tag moved to the target), 2 remote reopens of merged sources after %s ignored, 0 writes to merged sources; %d requests",
		reopenedAt.Sub(mergedAt).Round(1e8), len(f.requests()))
}
