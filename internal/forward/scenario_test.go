package forward_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/socsync/socsync/internal/emulator"
	"github.com/socsync/socsync/internal/forward"
	"github.com/socsync/socsync/internal/hub"
	"github.com/socsync/socsync/internal/hub/hubtest"
	"github.com/socsync/socsync/internal/incident"
	"github.com/socsync/socsync/internal/store"
)

// sameAsHub says how the row differs from the hub's incident ("" when it does not).
func sameAsHub(row forward.Row, si store.StoredIncident, tenantName string) string {
	var diffs []string
	check := func(name string, got, want any) {
		if fmt.Sprint(got) != fmt.Sprint(want) {
			diffs = append(diffs, fmt.Sprintf("%s %v ≠ hub %v", name, got, want))
		}
	}
	sources := make([]string, 0, len(si.Sources))
	for _, s := range si.Sources {
		sources = append(sources, string(s))
	}
	slices.Sort(sources)
	check("Version", row.Version, si.Version)
	check("CustomerTenantId", row.CustomerTenantID, si.TenantID)
	check("CustomerTenantName", row.CustomerTenantName, tenantName)
	check("IncidentTitle", row.IncidentTitle, si.Title)
	check("Description", row.Description, si.Description)
	check("Status", row.Status, si.Status)
	check("Severity", row.Severity, si.Severity)
	check("Owner", row.Owner, si.Owner)
	check("Classification", row.Classification, si.Classification)
	check("Determination", row.Determination, si.Determination)
	check("ClassificationReason", row.ClassificationReason, si.ClassificationReason)
	check("ClassificationComment", row.ClassificationComment, si.ClassificationComment)
	check("Tags", row.Tags, incident.NormalizeTags(si.Tags))
	check("AlertCount", row.AlertCount, si.AlertCount)
	check("MergedIntoKey", row.MergedIntoKey, si.MergedInto)
	check("Sources", row.Sources, sources)
	check("UpdatedTime", row.UpdatedTime.UnixMilli(), si.UpdatedAt.UnixMilli())
	return strings.Join(diffs, "; ")
}

func TestForward_ScenarioAcrossTwentyTenantsGivesOneRowPerVersionAndTheHubsState(t *testing.T) {
	t.Parallel()
	env := hubtest.New(t, hubtest.Options{Tenants: 20, IncidentsPerTenant: 2})
	h := env.Start(t, hub.Options{})
	st := h.Hub.Store()
	ctx := context.Background()
	all := func() []store.StoredIncident {
		list, err := st.ListIncidents(ctx, store.AllTenants(), store.ListFilter{}, store.ListPage{}, 100000)
		if err != nil {
			t.Fatal(err)
		}
		return list
	}
	hubtest.Eventually(t, "the sample incidents are collected", func() bool { return len(all()) >= 40 })
	samples := all() // the emulator's sample incidents: only the hub edits them below

	// Creates in every tenant (Defender, mirrored where the tenant has Sentinel, and
	// Sentinel-only where it has Defender for Cloud), edits and comments by remote analysts,
	// and merges.
	type made struct {
		tenant, graphID, sentinelID string
	}
	var created []made
	for i, ti := range env.Info.Tenants {
		for j := range 3 {
			c, err := env.Emulator.CreateIncident(ti.TenantID, emulator.NewIncident{Title: fmt.Sprintf("t%d incident %d", i, j), Severity: "medium",
				Description: "scenario", Alerts: []emulator.NewAlert{{Title: fmt.Sprintf("alert %d/%d", i, j)}}})
			if err != nil {
				t.Fatal(err)
			}
			created = append(created, made{ti.TenantID, c.GraphID, c.SentinelID})
		}
		if i%3 == 2 {
			c, err := env.Emulator.CreateIncident(ti.TenantID, emulator.NewIncident{Title: fmt.Sprintf("t%d cloud incident", i), Where: "sentinel",
				Workspace: ti.Sentinel[len(ti.Sentinel)-1].Workspace, Alerts: []emulator.NewAlert{{Title: "storage anomaly", ServiceSource: "microsoftDefenderForCloud"}}})
			if err != nil {
				t.Fatal(err)
			}
			created = append(created, made{ti.TenantID, "", c.SentinelID})
		}
	}
	hubtest.Eventually(t, "the new incidents are collected", func() bool { return len(all()) >= 40+len(created) })
	edited := map[string]bool{}
	for k, c := range created {
		ti := env.Info.Tenants[0]
		for _, x := range env.Info.Tenants {
			if x.TenantID == c.tenant {
				ti = x
			}
		}
		switch {
		case c.graphID != "" && k%3 == 0:
			body := fmt.Sprintf(`{"status":"inProgress","assignedTo":%q,"severity":"high","customTags":["scenario"],"comment":"looking at it"}`, ti.Users[0].UPN)
			if err := env.Emulator.PatchIncident(c.tenant, c.graphID, []byte(body)); err != nil {
				t.Fatal(err)
			}
			edited[c.tenant+"/"+c.graphID] = true
		case c.graphID != "" && k%3 == 1:
			if err := env.Emulator.PatchIncident(c.tenant, c.graphID, []byte(`{"comment":"first note"}`)); err != nil {
				t.Fatal(err)
			}
		case c.graphID == "":
			if err := env.Emulator.PatchIncident(c.tenant, c.sentinelID, []byte(`{"status":"Active","comment":"cloud note"}`)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// In every tenant, the third new Defender incident is merged into the second.
	byTenant := map[string][]made{}
	for _, c := range created {
		if c.graphID != "" {
			byTenant[c.tenant] = append(byTenant[c.tenant], c)
		}
	}
	for tenant, cs := range byTenant {
		if err := env.Emulator.Merge(tenant, cs[2].graphID, cs[1].graphID); err != nil {
			t.Fatal(err)
		}
	}
	// And analysts edit some in the hub (written back by the reconciler).
	token := h.Token(t, "analyst", "admin")
	hubEdits := 0
	for _, si := range samples {
		if !si.Status.Closed() && hubEdits < 10 {
			if code := h.API(t, token, "PATCH", "/api/v1/incidents/"+si.ID, `{"severity":"low","tags":["hub-edit"]}`, nil); code != 200 {
				t.Fatalf("PATCH %s: %d", si.ID, code)
			}
			hubEdits++
		}
	}

	tenantNames := map[string]string{}
	ts, _ := st.Tenants(ctx, store.AllTenants())
	for _, tn := range ts {
		tenantNames[tn.ID] = tn.Name
	}
	eventuallyWhy(t, "every hub incident's latest row is its current state", func() (ok bool, why string) {
		if n := pending(t, st); n != 0 {
			return false, fmt.Sprintf("%d rows in the outbox", n)
		}
		incs := all()
		merged, inProgress, hubEdited := 0, 0, 0
		for _, si := range incs {
			if slices.Contains(si.Tags, "hub-edit") && si.Severity == incident.SeverityLow {
				hubEdited++
			}
			if si.Status == incident.StatusMerged && si.MergedInto != "" {
				merged++
			}
			if si.Status == incident.StatusInProgress && si.Owner != "" {
				inProgress++
			}
		}
		if merged < len(byTenant) || inProgress < len(edited) || hubEdited < hubEdits {
			return false, fmt.Sprintf("hub not caught up: %d of %d merged, %d of %d remote edits, %d of %d hub edits",
				merged, len(byTenant), inProgress, len(edited), hubEdited, hubEdits)
		}
		all := ingested(t, env)
		counts := byRecord(all)
		rows := latest(all)
		for _, si := range incs {
			for v := int64(1); v <= si.Version; v++ {
				if counts[fmt.Sprintf("%s:%d", si.ID, v)] == 0 {
					return false, fmt.Sprintf("%s v%d not forwarded", si.ID, v)
				}
			}
			row, ok := rows[si.ID]
			if !ok {
				return false, si.ID + " has no row"
			}
			if d := sameAsHub(row, si, tenantNames[si.TenantID]); d != "" {
				return false, si.ID + ": " + d
			}
		}
		return true, ""
	})

	// Exactly one row per (IncidentKey, Version) (no version missing: checked above).
	rows := ingested(t, env)
	counts := byRecord(rows)
	for k, n := range counts {
		if n != 1 {
			t.Errorf("%s ingested %d times", k, n)
		}
	}
	comments, merges := 0, 0
	for _, r := range rows {
		if strings.Contains(r.ChangeSummary, "comment") {
			comments++
		}
		if r.MergedIntoKey != "" {
			merges++
		}
	}
	if comments == 0 || merges == 0 {
		t.Errorf("%d rows with comments, %d merged: the scenario did not exercise them", comments, merges)
	}
	t.Logf("%d incidents in 20 tenants, %d rows, one per (IncidentKey, Version) (%d with comments, %d merged)", len(all()), len(rows), comments, merges)
}
