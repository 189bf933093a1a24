package emulator

import (
	"net/url"
	"sync/atomic"
	"testing"
	"time"
)

// TestDriftIncident_ChangesValuesButNotTheChangeTimeSoOnlyAFullReadSeesIt: the admin API's
// silent change (R18's drift) changes a mirrored and a Sentinel-only incident without moving
// lastUpdateDateTime / lastModifiedTimeUtc or lastModifiedBy: a Graph list filtered on the
// change time leaves it out, a full list shows the new value; the etag moves; History records
// source "drift"; a comment is refused; an analyst's ordinary change afterwards moves the time.
func TestDriftIncident_ChangesValuesButNotTheChangeTimeSoOnlyAFullReadSeesIt(t *testing.T) {
	var offset atomic.Int64
	v := newEnv(t, Options{Tenants: 3, IncidentsPerTenant: -1, Now: func() time.Time { return testBase.Add(time.Duration(offset.Load())) }})
	mirrored, err := v.e.CreateIncident(v.tenant(1).TenantID, NewIncident{Title: "drift-mirrored", Severity: "low", Where: "defender+sentinel"})
	if err != nil {
		t.Fatal(err)
	}
	sentinelOnly, err := v.e.CreateIncident(v.tenant(2).TenantID, NewIncident{Title: "drift-sentinel", Where: "sentinel", Workspace: v.tenant(2).Sentinel[1].Workspace})
	if err != nil {
		t.Fatal(err)
	}
	before := driftViews(t, v.e, v.tenant(1).TenantID, mirrored.GraphID)
	beforeS := driftViews(t, v.e, v.tenant(2).TenantID, sentinelOnly.SentinelID)
	offset.Store(int64(time.Hour))

	status, m := v.admin("PATCH", "/tenants/"+v.tenant(1).TenantID+"/incidents/"+mirrored.GraphID+"/drift", map[string]any{"severity": "high"})
	wantStatus(t, status, 200, m)
	if g := m["graph"].(map[string]any); g["severity"] != "high" {
		t.Fatalf("severity %v after the drift, want high", g["severity"])
	}
	status, m = v.admin("PATCH", "/tenants/"+v.tenant(2).TenantID+"/incidents/"+sentinelOnly.SentinelID+"/drift", map[string]any{"labels": []string{"drifted"}})
	wantStatus(t, status, 200, m)

	after := driftViews(t, v.e, v.tenant(1).TenantID, mirrored.GraphID)
	afterS := driftViews(t, v.e, v.tenant(2).TenantID, sentinelOnly.SentinelID)
	g0, g1 := before["graph"].(map[string]any), after["graph"].(map[string]any)
	if g1["lastUpdateDateTime"] != g0["lastUpdateDateTime"] || g1["lastModifiedBy"] != g0["lastModifiedBy"] {
		t.Errorf("Graph change time %v → %v, modified by %v → %v: a silent change moved them", g0["lastUpdateDateTime"], g1["lastUpdateDateTime"], g0["lastModifiedBy"], g1["lastModifiedBy"])
	}
	for _, p := range []struct {
		what          string
		before, after map[string]any
	}{{"mirrored", before, after}, {"Sentinel-only", beforeS, afterS}} {
		s0, s1 := sentinelProps(t, p.before), sentinelProps(t, p.after)
		if s1["lastModifiedTimeUtc"] != s0["lastModifiedTimeUtc"] {
			t.Errorf("%s: Sentinel change time %v → %v: a silent change moved it", p.what, s0["lastModifiedTimeUtc"], s1["lastModifiedTimeUtc"])
		}
		if p.after["sentinel"].(map[string]any)["etag"] == p.before["sentinel"].(map[string]any)["etag"] {
			t.Errorf("%s: the etag did not move: the resource changed", p.what)
		}
	}
	if labels := sentinelProps(t, afterS)["labels"].([]any); len(labels) != 1 || labels[0].(map[string]any)["labelName"] != "drifted" {
		t.Errorf("Sentinel-only labels after the drift: %v", labels)
	}

	// What a poll sees: changed since the creation — nothing; everything — the new value.
	tok := v.graphToken(1)
	_, list := v.doJSON("GET", incidentsPath+"?$filter="+url.QueryEscape("lastUpdateDateTime gt "+g0["lastUpdateDateTime"].(string)), tok, nil)
	if n := len(list["value"].([]any)); n != 0 {
		t.Errorf("a list of what changed after the creation returned %d incidents; the change was silent", n)
	}
	_, list = v.doJSON("GET", incidentsPath, tok, nil)
	found := false
	for _, it := range list["value"].([]any) {
		if inc := it.(map[string]any); inc["id"] == mirrored.GraphID {
			found = inc["severity"] == "high"
		}
	}
	if !found {
		t.Error("a full list does not show the drifted severity")
	}

	h := v.e.History()
	if last := h[len(h)-1]; last.Source != "drift" || last.Field != "tags" {
		t.Errorf("the last history entry is %+v, want the drift's tags change with source drift", last)
	}
	status, m = v.admin("PATCH", "/tenants/"+v.tenant(1).TenantID+"/incidents/"+mirrored.GraphID+"/drift", map[string]any{"comment": "x"})
	wantStatus(t, status, 400, m)

	// An ordinary change afterwards moves the time as always.
	if err := v.e.PatchIncident(v.tenant(1).TenantID, mirrored.GraphID, []byte(`{"severity":"medium"}`)); err != nil {
		t.Fatal(err)
	}
	later := driftViews(t, v.e, v.tenant(1).TenantID, mirrored.GraphID)
	if later["graph"].(map[string]any)["lastUpdateDateTime"] == g0["lastUpdateDateTime"] {
		t.Error("an analyst's change after the drift did not move the change time")
	}
}

// driftViews returns an incident's views as JSON objects.
func driftViews(t *testing.T, e *Emulator, tenant, id string) map[string]any {
	t.Helper()
	v, err := e.IncidentViews(tenant, id)
	if err != nil {
		t.Fatal(err)
	}
	b, err := jsonMarshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	jsonUnmarshal(b, &m)
	return m
}

func sentinelProps(t *testing.T, views map[string]any) map[string]any {
	t.Helper()
	return views["sentinel"].(map[string]any)["properties"].(map[string]any)
}
