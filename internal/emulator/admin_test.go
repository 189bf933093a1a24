package emulator

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestAdminCreateIncident_WhereVariants(t *testing.T) {
	v := newEnv(t, Options{IncidentsPerTenant: -1})
	cases := []struct {
		tenant, where, ws       string
		wantGraph, wantSentinel bool
	}{
		{"0", "", "", true, false},
		{"1", "", "", true, true}, // default: mirrored into the first workspace
		{"1", "defender", "", true, false},
		{"2", "defender+sentinel", "", true, true},
		{"2", "sentinel", v.tenant(2).Sentinel[1].Workspace, false, true},
	}
	for _, c := range cases {
		status, m := v.admin("POST", "/tenants/"+c.tenant+"/incidents", map[string]any{"title": "t", "severity": "High", "where": c.where,
			"workspace": c.ws, "alerts": []any{map[string]any{"title": "a", "severity": "low", "status": "inProgress", "serviceSource": "microsoftDefenderForEndpoint", "detectionSource": "antivirus"}}})
		wantStatus(t, status, 201, m)
		_, hasG := m["graph_id"]
		_, hasS := m["sentinel_id"]
		if hasG != c.wantGraph || hasS != c.wantSentinel || len(m["alert_ids"].([]any)) != 1 {
			t.Errorf("%s/%q: %v", c.tenant, c.where, m)
		}
		id, _ := m["graph_id"].(string)
		if id == "" {
			id = m["sentinel_id"].(string)
		}
		status, views := v.admin("GET", "/tenants/"+c.tenant+"/incidents/"+id, nil)
		wantStatus(t, status, 200, views)
		if c.ws != "" && views["workspace"] != c.ws {
			t.Errorf("workspace %v", views["workspace"])
		}
		if c.wantSentinel && c.wantGraph {
			p := views["sentinel"].(map[string]any)["properties"].(map[string]any)
			if p["providerName"] != "Microsoft XDR" || p["providerIncidentId"] != id {
				t.Errorf("mirror: %v", p)
			}
		}
	}
	bad := []struct {
		tenant string
		body   map[string]any
		status int
		msg    string
	}{
		{"0", map[string]any{"severity": "high"}, 400, "title is required"},
		{"0", map[string]any{"title": "t", "where": "sentinel"}, 400, "has no Sentinel workspace"},
		{"0", map[string]any{"title": "t", "where": "elsewhere"}, 400, "where must be defender, defender+sentinel or sentinel"},
		{"1", map[string]any{"title": "t", "workspace": "nope", "where": "sentinel"}, 400, `has no workspace "nope"`},
		{"0", map[string]any{"title": "t", "severity": "critical"}, 400, `severity "critical" is not one of`},
		{"0", map[string]any{"title": "t", "alerts": []any{map[string]any{"status": "closed"}}}, 400, `alert status "closed"`},
		{"0", map[string]any{"title": "t", "alerts": []any{map[string]any{"serviceSource": "x"}}}, 400, `alert serviceSource "x"`},
		{"0", map[string]any{"title": "t", "extra": 1}, 400, `unknown field "extra"`},
		{"nobody", map[string]any{"title": "t"}, 404, `unknown tenant "nobody"`},
	}
	for _, c := range bad {
		status, m := v.admin("POST", "/tenants/"+c.tenant+"/incidents", c.body)
		wantStatus(t, status, c.status, m)
		if _, msg := errBody(t, m); !strings.Contains(msg, c.msg) {
			t.Errorf("%v: %q", c.body, msg)
		}
	}
	alerts := make([]any, 151)
	for i := range alerts {
		alerts[i] = map[string]any{}
	}
	status, m := v.admin("POST", "/tenants/0/incidents", map[string]any{"title": "t", "alerts": alerts})
	wantStatus(t, status, 400, m)
}

func TestAdminPatch_AsRemoteAnalyst_GraphAndSentinelNames(t *testing.T) {
	v := newEnv(t, Options{IncidentsPerTenant: -1})
	c, _ := v.e.CreateIncident("1", NewIncident{Title: "x"})
	v.e.Advance(time.Minute)
	u := v.tenant(1).Users[3]
	status, m := v.admin("PATCH", "/tenants/1/incidents/"+c.GraphID, map[string]any{"status": "inProgress", "assignedTo": u.UPN,
		"customTags": []string{"t1"}, "comment": "on it", "actor": u.UPN})
	wantStatus(t, status, 200, m)
	g := m["graph"].(map[string]any)
	if g["status"] != "inProgress" || g["lastModifiedBy"] != u.UPN || g["comments"].([]any)[0].(map[string]any)["createdByDisplayName"] != u.UPN ||
		g["lastUpdateDateTime"] != fmtTime(testBase.Add(time.Minute)) {
		t.Errorf("graph %v", g)
	}
	s := m["sentinel"].(map[string]any)["properties"].(map[string]any)
	if s["status"] != "Active" || s["owner"].(map[string]any)["objectId"] != u.ObjectID || s["labels"].([]any)[0].(map[string]any)["labelName"] != "t1" {
		t.Errorf("sentinel %v", s)
	}
	// Sentinel names on a Sentinel-only incident (partial change; closing rules apply).
	c2, _ := v.e.CreateIncident("2", NewIncident{Title: "dfc", Where: "sentinel"})
	status, m = v.admin("PATCH", "/tenants/2/incidents/"+c2.SentinelID, map[string]any{"status": "Closed"})
	wantStatus(t, status, 400, m)
	if _, msg := errBody(t, m); msg != "Incident with status 'Closed' must have classification." {
		t.Errorf("%q", msg)
	}
	status, m = v.admin("PATCH", "/tenants/2/incidents/"+c2.SentinelID, map[string]any{"status": "Closed", "classification": "BenignPositive"})
	wantStatus(t, status, 400, m)
	status, m = v.admin("PATCH", "/tenants/2/incidents/"+c2.SentinelID, map[string]any{"owner": v.tenant(2).Users[0].UPN,
		"severity": "High", "labels": []string{"l"}, "comment": "checked"})
	wantStatus(t, status, 200, m)
	s = m["sentinel"].(map[string]any)["properties"].(map[string]any)
	if s["severity"] != "High" || s["owner"].(map[string]any)["objectId"] != v.tenant(2).Users[0].ObjectID || s["additionalData"].(map[string]any)["commentsCount"] != float64(1) {
		t.Errorf("sentinel edit %v", s)
	}
	// A mirrored incident addressed by its Sentinel name still takes Graph names, unless the
	// body asks for the Sentinel view.
	status, m = v.admin("PATCH", "/tenants/1/incidents/"+c.SentinelID, map[string]any{"severity": "low"})
	wantStatus(t, status, 200, m)
	if m["graph"].(map[string]any)["severity"] != "low" {
		t.Errorf("graph names via Sentinel id: %v", m["graph"].(map[string]any)["severity"])
	}
	status, m = v.admin("PATCH", "/tenants/1/incidents/"+c.SentinelID, map[string]any{"view": "sentinel", "status": "New", "title": "renamed in Sentinel"})
	wantStatus(t, status, 200, m)
	if g := m["graph"].(map[string]any); g["status"] != "active" || g["displayName"] != "renamed in Sentinel" {
		t.Errorf("sentinel view edit: %v %v", g["status"], g["displayName"])
	}
	for _, bad := range []struct {
		id   string
		body map[string]any
		code int
	}{
		{c.GraphID, map[string]any{"view": "other"}, 400},
		{c2.SentinelID, map[string]any{"view": "graph", "status": "active"}, 400},
		{c.GraphID, map[string]any{"status": "nope"}, 400},
		{c.GraphID, map[string]any{"actor": "stranger@x"}, 400},
		{c2.SentinelID, map[string]any{"colour": "red"}, 400},
		{"404404", map[string]any{"status": "active"}, 404},
	} {
		tenant := "1"
		if bad.id == c2.SentinelID {
			tenant = "2"
		}
		status, m := v.admin("PATCH", "/tenants/"+tenant+"/incidents/"+bad.id, bad.body)
		wantStatus(t, status, bad.code, m)
	}
}

func TestAdminMerge_RedirectsSourceAndMovesAlerts(t *testing.T) {
	v := newEnv(t, Options{IncidentsPerTenant: -1})
	src, _ := v.e.CreateIncident("1", NewIncident{Title: "source", Alerts: []NewAlert{{}, {}}})
	dst, _ := v.e.CreateIncident("1", NewIncident{Title: "target"})
	v.e.Advance(time.Minute)
	status, m := v.admin("POST", "/tenants/1/incidents/"+src.GraphID+"/merge", map[string]any{"into": dst.GraphID})
	wantStatus(t, status, 200, m)
	g := m["graph"].(map[string]any)
	if g["status"] != "redirected" || g["redirectIncidentId"] != dst.GraphID || g["lastModifiedBy"] != "Microsoft 365 Defender-AlertCorrelation" || len(g["alerts"].([]any)) != 0 {
		t.Errorf("graph source %v", g)
	}
	s := m["sentinel"].(map[string]any)["properties"].(map[string]any)
	labels := s["labels"].([]any)
	if s["status"] != "Closed" || s["providerIncidentId"] != dst.GraphID || len(labels) != 1 ||
		labels[0].(map[string]any)["labelName"] != "Redirected" || labels[0].(map[string]any)["labelType"] != "AutoAssigned" ||
		s["additionalData"].(map[string]any)["alertsCount"] != float64(0) ||
		!strings.Contains(s["additionalData"].(map[string]any)["providerIncidentUrl"].(string), "/incident2/"+dst.GraphID+"/") {
		t.Errorf("sentinel source %v", s)
	}
	_, tv := v.admin("GET", "/tenants/1/incidents/"+dst.GraphID, nil)
	ta := tv["graph"].(map[string]any)["alerts"].([]any)
	if len(ta) != 3 || ta[1].(map[string]any)["incidentId"] != dst.GraphID {
		t.Errorf("target alerts %v", ta)
	}
	// Graph filter for redirected incidents, as integrations poll for them.
	_, list := v.doJSON("GET", incidentsPath+"?$filter=status%20eq%20'redirected'%20and%20lastUpdateDateTime%20ge%20"+fmtTime(testBase), v.graphToken(1), nil)
	if vals := list["value"].([]any); len(vals) != 1 || vals[0].(map[string]any)["id"] != src.GraphID {
		t.Errorf("redirected filter %v", vals)
	}
	for _, bad := range []struct {
		id, into string
		status   int
	}{
		{src.GraphID, dst.GraphID, 400}, // already merged
		{dst.GraphID, dst.GraphID, 400},
		{dst.GraphID, "", 400},
		{dst.GraphID, "nope", 404},
	} {
		status, m := v.admin("POST", "/tenants/1/incidents/"+bad.id+"/merge", map[string]any{"into": bad.into})
		wantStatus(t, status, bad.status, m)
	}
	// The history records the correlation.
	var fields []string
	for _, h := range v.e.History() {
		if h.GraphID == src.GraphID && h.Source == "correlation" {
			fields = append(fields, h.Field)
		}
	}
	for _, f := range []string{"status", "redirectIncidentId", "autoLabels", "providerIncidentId", "alert.incident"} {
		if !slices.Contains(fields, f) {
			t.Errorf("history lacks %s: %v", f, fields)
		}
	}
}

func TestAdminAlertStatus_DefenderBumpsIncident_SentinelOnlyDoesNot(t *testing.T) {
	v := newEnv(t, Options{IncidentsPerTenant: -1})
	d, _ := v.e.CreateIncident("2", NewIncident{Title: "defender"})
	s, _ := v.e.CreateIncident("2", NewIncident{Title: "cloud", Where: "sentinel"})
	v.e.Advance(time.Minute)
	status, m := v.admin("PATCH", "/tenants/2/alerts/"+d.AlertIDs[0], map[string]any{"status": "resolved"})
	wantStatus(t, status, 200, m)
	g := v.e.graphView(t, 2, d.GraphID)
	if g["lastUpdateDateTime"] != fmtTime(testBase.Add(time.Minute)) {
		t.Errorf("Defender incident not bumped: %v", g["lastUpdateDateTime"])
	}
	before, _ := v.e.IncidentViews("2", s.SentinelID)
	status, m = v.admin("PATCH", "/tenants/2/alerts/"+s.AlertIDs[0], map[string]any{"status": "Dismissed"})
	wantStatus(t, status, 200, m)
	after, _ := v.e.IncidentViews("2", s.SentinelID)
	if after["version"] != before["version"] {
		t.Error("Sentinel-only incident bumped by an alert change")
	}
	for _, bad := range []struct {
		id, status string
		code       int
	}{
		{d.AlertIDs[0], "dismissed", 400},
		{d.AlertIDs[0], "weird", 400},
		{"nope", "resolved", 404},
	} {
		status, m := v.admin("PATCH", "/tenants/2/alerts/"+bad.id, map[string]any{"status": bad.status})
		wantStatus(t, status, bad.code, m)
	}
	// More alerts can be added to an incident.
	status, m = v.admin("POST", "/tenants/2/incidents/"+d.GraphID+"/alerts", map[string]any{"alerts": []any{map[string]any{"title": "late"}}})
	wantStatus(t, status, 201, m)
	status, m = v.admin("POST", "/tenants/2/incidents/"+d.GraphID+"/alerts", map[string]any{"alerts": []any{}})
	wantStatus(t, status, 400, m)
}

func TestAdminRequests_CountsDetailAndReset(t *testing.T) {
	v := newEnv(t, Options{})
	v.e.ResetRequests()
	tok := v.graphToken(0)
	v.do("GET", incidentsPath, tok, nil)
	v.do("GET", incidentsPath, tok, nil)
	v.do("GET", incidentsPath+"/1", tok, nil)
	v.do("GET", incidentsPath+"?$top=99", tok, nil)
	status, m := v.admin("GET", "/requests", nil)
	wantStatus(t, status, 200, m)
	var rows []RequestCount
	b, _ := json.Marshal(m["requests"])
	json.Unmarshal(b, &rows)
	want := []RequestCount{
		{Tenant: v.tenant(0).TenantID, API: "graph", Method: "GET", Route: "/v1.0/security/incidents", Status: 200, Count: 2},
		{Tenant: v.tenant(0).TenantID, API: "graph", Method: "GET", Route: "/v1.0/security/incidents", Status: 400, Count: 1},
		{Tenant: v.tenant(0).TenantID, API: "graph", Method: "GET", Route: "/v1.0/security/incidents/{id}", Status: 404, Count: 1},
		{Tenant: v.tenant(0).TenantID, API: "token", Method: "POST", Route: "/{tenant}/oauth2/v2.0/token", Status: 200, Count: 1},
	}
	if !slices.Equal(rows, want) {
		t.Errorf("counts\n%+v\nwant\n%+v", rows, want)
	}
	_, m = v.admin("GET", "/requests?detail=1", nil)
	hist := m["history"].([]any)
	if len(hist) != 5 || hist[1].(map[string]any)["principal"] != v.tenant(0).ClientID || hist[1].(map[string]any)["time"] != "2026-03-01T12:00:00Z" {
		t.Errorf("history %v", hist)
	}
	resp, _ := v.do("DELETE", "/_emulator/requests", "", nil)
	if resp.StatusCode != 204 || len(v.e.Requests()) != 0 {
		t.Fatal("reset failed")
	}
	// ARM records carry the subscription.
	v.do("GET", v.wsPath(1, 0)+"/incidents"+apiV, v.armToken(1), nil)
	recs, _ := v.e.RequestHistory()
	if r := recs[len(recs)-1]; r.Subscription != v.tenant(1).Sentinel[0].SubscriptionID || r.Tenant != v.tenant(1).TenantID || r.API != "arm" {
		t.Errorf("arm record %+v", r)
	}
}

func TestAdminRequestHistory_IsBounded(t *testing.T) {
	v := newEnv(t, Options{MaxRequestHistory: 20})
	tok := v.graphToken(0)
	for range 30 {
		v.do("GET", incidentsPath+"?$top=1", tok, nil)
	}
	recs, dropped := v.e.RequestHistory()
	if len(recs) > 20 || dropped == 0 || len(recs)+dropped != 31 {
		t.Errorf("%d kept, %d dropped", len(recs), dropped)
	}
	total := 0
	for _, c := range v.e.Requests() {
		total += c.Count
	}
	if total != 31 {
		t.Errorf("counts lost requests: %d", total)
	}
}

func TestAdminHistoryClockConsentAndInfo(t *testing.T) {
	v := newEnv(t, Options{IncidentsPerTenant: -1})
	c, _ := v.e.CreateIncident("0", NewIncident{Title: "h"})
	status, m := v.admin("POST", "/clock", map[string]any{"advance": "90s"})
	wantStatus(t, status, 200, m)
	if m["now"] != "2026-03-01T12:01:30Z" {
		t.Errorf("now %v", m["now"])
	}
	v.doJSON("PATCH", incidentsPath+"/"+c.GraphID, v.graphToken(0), map[string]any{"severity": "high"})
	_, h := v.admin("GET", "/history?tenant="+v.tenant(0).TenantID, nil)
	entries := h["history"].([]any)
	last := entries[len(entries)-1].(map[string]any)
	if last["field"] != "severity" || last["old"] != "medium" || last["new"] != "high" || last["source"] != "graph" ||
		last["actor"] != "API-App:"+v.tenant(0).ClientID || last["time"] != "2026-03-01T12:01:30Z" || last["version"] != float64(2) {
		t.Errorf("history %v", last)
	}
	seq := int(last["seq"].(float64))
	_, h = v.admin("GET", "/history?since="+itoa(seq), nil)
	if len(h["history"].([]any)) != 0 {
		t.Errorf("since filter: %v", h)
	}
	for _, bad := range []any{map[string]any{"advance": "-1s"}, map[string]any{"advance": "soon"}} {
		status, m := v.admin("POST", "/clock", bad)
		wantStatus(t, status, 400, m)
	}
	// Consent revocation produces AADSTS7000229; granting it back works.
	status, m = v.admin("POST", "/tenants/0/consent", map[string]any{"granted": false})
	wantStatus(t, status, 200, m)
	ti := v.tenant(0)
	form := map[string][]string{"grant_type": {"client_credentials"}, "client_id": {ti.ClientID}, "client_secret": {ti.ClientSecret}, "scope": {"https://graph.microsoft.com/.default"}}
	if status, m := v.tokenResp(ti.TenantID, form); status != 400 || m["error_codes"].([]any)[0] != float64(7000229) {
		t.Fatalf("revoked: %d %v", status, m)
	}
	v.admin("POST", "/tenants/0/consent", map[string]any{"granted": true})
	if status, _ := v.tokenResp(ti.TenantID, form); status != 200 {
		t.Fatalf("re-granted: %d", status)
	}
	for _, bad := range []struct {
		body map[string]any
		code int
	}{{map[string]any{}, 400}, {map[string]any{"granted": true, "roles": []string{"Mail.Read"}}, 400}, {map[string]any{"granted": true, "client_id": "nope"}, 404}} {
		status, m := v.admin("POST", "/tenants/0/consent", bad.body)
		wantStatus(t, status, bad.code, m)
	}
	// Info over the admin API.
	status, m = v.admin("GET", "/info", nil)
	wantStatus(t, status, 200, m)
	for _, k := range []string{"base_url", "ca_file", "tenants", "logs_ingestion", "multi_tenant_app"} {
		if _, ok := m[k]; !ok {
			t.Errorf("info lacks %s", k)
		}
	}
	status, m = v.admin("GET", "/nothing", nil)
	wantStatus(t, status, 404, m)
}

func TestAdmin_LoopbackOnly(t *testing.T) {
	v := newEnv(t, Options{})
	req := httptest.NewRequest("GET", "/_emulator/requests", nil)
	req.RemoteAddr = "10.1.2.3:5555"
	w := httptest.NewRecorder()
	v.e.Handler().ServeHTTP(w, req)
	if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "loopback") {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
}

func TestInfo_StableShape(t *testing.T) {
	v := newEnv(t, Options{Tenants: 4})
	b, _ := json.Marshal(v.e.Info("https://127.0.0.1:1", "/tmp/ca.pem"))
	var m map[string]any
	json.Unmarshal(b, &m)
	if m["base_url"] != "https://127.0.0.1:1" || m["ca_file"] != "/tmp/ca.pem" {
		t.Errorf("%v", m)
	}
	tenants := m["tenants"].([]any)
	if len(tenants) != 4 {
		t.Fatalf("%d tenants", len(tenants))
	}
	for i, ti := range tenants {
		tm := ti.(map[string]any)
		for _, k := range []string{"tenant_id", "name", "client_id", "client_secret", "defender", "sentinel"} {
			if _, ok := tm[k]; !ok {
				t.Errorf("tenant %d lacks %s", i, k)
			}
		}
		wantWS := []int{0, 1, 2, 0}[i]
		if ws := tm["sentinel"].([]any); len(ws) != wantWS {
			t.Errorf("tenant %d: %d workspaces, want %d", i, len(ws), wantWS)
		} else {
			for _, w := range ws {
				for _, k := range []string{"subscription_id", "resource_group", "workspace"} {
					if w.(map[string]any)[k] == "" {
						t.Errorf("workspace lacks %s", k)
					}
				}
			}
		}
	}
	li := m["logs_ingestion"].(map[string]any)
	if li["endpoint"] != "https://127.0.0.1:1" || !strings.HasPrefix(li["dcr_immutable_id"].(string), "dcr-") || li["stream"] != "Custom-SocsyncIncidents" {
		t.Errorf("logs_ingestion %v", li)
	}
}
