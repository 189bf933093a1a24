package writeback_test

import (
	"strings"
	"testing"

	"github.com/socsync/socsync/internal/emulator"
	"github.com/socsync/socsync/internal/hub/hubtest"
)

// Graph's assignedTo is free text the hub keeps lower-cased (owners compare case-insensitively).
// A remote analyst's mixed-case assignedTo must not look like a change to write back: it
// causes no write, and a later hub edit of another field leaves the remote's spelling alone.
func TestRemoteOwner_MixedCaseAssignedToCausesNoWriteBack(t *testing.T) {
	f := newFixture(t)
	upn := f.env.Info.Tenants[1].Users[0].UPN
	mixed := strings.ToUpper(upn[:1]) + upn[1:strings.Index(upn, "@")+1] + strings.ToUpper(upn[strings.Index(upn, "@")+1:])
	tests := []struct {
		name, tenant, where, assignedTo string
	}{
		{"Defender only, free text", f.tenant(0), "defender", "SOC Tier 2 Night Shift"},
		{"Defender only, a UPN in mixed case", f.tenant(0), "defender", "Some.Analyst@Contoso.COM"},
		{"mirrored pair, a UPN in mixed case", f.tenant(1), "defender+sentinel", "Some.Analyst@Contoso.COM"},
		// Defender spells a directory user's UPN its own way; socsync still writes nothing.
		{"mirrored pair, a directory user's UPN in mixed case", f.tenant(1), "defender+sentinel", mixed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			title := "owner-case-" + strings.NewReplacer(" ", "-", ",", "").Replace(tt.name)
			c, err := f.env.Emulator.CreateIncident(tt.tenant, emulator.NewIncident{Title: title, Where: tt.where})
			if err != nil {
				t.Fatal(err)
			}
			d := f.waitInSync(t, f.find(t, title).ID)
			before := f.env.Writes()
			if err := f.env.Emulator.PatchIncident(tt.tenant, c.GraphID, []byte(`{"assignedTo":"`+tt.assignedTo+`"}`)); err != nil {
				t.Fatal(err)
			}
			remote, _ := f.env.Views(t, tt.tenant, c.GraphID)["graph"]["assignedTo"].(string)
			if !strings.EqualFold(remote, tt.assignedTo) {
				t.Fatalf("Defender's assignedTo = %q after the analyst's edit, want %q in some case", remote, tt.assignedTo)
			}
			hubtest.Eventually(t, "the remote owner is in the hub", func() bool {
				d = f.get(t, d.ID)
				return d.Owner == strings.ToLower(tt.assignedTo)
			})
			f.settle(t)
			if w := diff(f.env.Writes(), before); len(w) != 0 {
				t.Errorf("a mixed-case assignedTo caused writes back: %v", w)
			}
			if got := f.env.Views(t, tt.tenant, c.GraphID)["graph"]["assignedTo"]; got != remote {
				t.Errorf("Defender's assignedTo = %v, want %q as it was", got, remote)
			}

			// A hub edit of another field is one PATCH, and leaves the owner's spelling alone.
			before = f.env.Writes()
			if code := f.hub.API(t, f.token, "PATCH", "/api/v1/incidents/"+d.ID, `{"severity":"high"}`, nil); code != 200 {
				t.Fatalf("PATCH severity: %d", code)
			}
			f.waitInSync(t, d.ID)
			f.settle(t)
			want := map[string]int{"graph PATCH /v1.0/security/incidents/{id}": 1}
			if w := diff(f.env.Writes(), before); len(w) != 1 || w["graph PATCH /v1.0/security/incidents/{id}"] != 1 {
				t.Errorf("writes after a severity edit = %v, want %v", w, want)
			}
			g := f.env.Views(t, tt.tenant, c.GraphID)["graph"]
			if g["assignedTo"] != remote || g["severity"] != "high" {
				t.Errorf("Defender after the hub's severity edit: assignedTo %v, severity %v; want %q, high", g["assignedTo"], g["severity"], remote)
			}
		})
	}
}
