package emulator

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// errorShape is the envelope an API's errors come in.
type errorShape int

const (
	graphShape errorShape = iota // {"error":{"code","message","innerError":{"date","request-id","client-request-id"}}} (+ "details" on OData query errors)
	armShape                     // {"error":{"code","message"}} (CloudError)
	entraShape                   // {"error","error_description","error_codes",…} (the token endpoint's)
	plainShape                   // not JSON: a path no API serves
)

// checkErrorBody checks an error answer's status and body: the envelope of its API, with code
// and message exactly (for entraShape: error and the prefix of error_description).
func checkErrorBody(t *testing.T, status int, b []byte, wantStatus int, shape errorShape, code, msg string) {
	t.Helper()
	if status != wantStatus {
		t.Fatalf("status %d, want %d; body %s", status, wantStatus, b)
	}
	if shape == plainShape {
		if string(b) != msg {
			t.Errorf("body %q, want %q", b, msg)
		}
		return
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("body is not JSON: %s", b)
	}
	if shape == entraShape {
		desc, _ := m["error_description"].(string)
		codes, _ := m["error_codes"].([]any)
		if m["error"] != code || !strings.HasPrefix(desc, msg) || len(codes) != 1 || m["trace_id"] == nil || m["correlation_id"] == nil || m["timestamp"] == nil {
			t.Errorf("body %s\nwant error %q, error_description starting %q, error_codes, trace_id, correlation_id, timestamp", b, code, msg)
		}
		compareShape(t, "Entra error", loadSample(t, "entra_token_error_response_400.json"), m, false)
		return
	}
	gotCode, gotMsg := errBody(t, m)
	if gotCode != code || gotMsg != msg {
		t.Errorf("error %q %q\nwant %q %q", gotCode, gotMsg, code, msg)
	}
	e := m["error"].(map[string]any)
	switch shape {
	case graphShape:
		inner, _ := e["innerError"].(map[string]any)
		if inner == nil || inner["request-id"] == nil || inner["date"] == nil || inner["client-request-id"] == nil {
			t.Errorf("Graph error without innerError {date, request-id, client-request-id}: %s", b)
		}
		compareShape(t, "Graph error", loadSample(t, "graph_error_response_example.json")["error"].(map[string]any), e, false)
	case armShape:
		compareShape(t, "ARM error", map[string]any{"code": "", "message": ""}, e, true)
	}
}

// Error answers of every API, status and body, as the real services send them (per
// shared/reference/api-contracts.md and api-samples where they say).
func TestErrorBodies_StatusAndBodyPerAPI(t *testing.T) {
	v := newEnv(t, Options{IncidentsPerTenant: -1, CertTenants: -1})
	c, err := v.e.CreateIncident("1", NewIncident{Title: "x", Alerts: []NewAlert{{Severity: "high"}}})
	if err != nil {
		t.Fatal(err)
	}
	gtok, atok := v.graphToken(1), v.armToken(1)
	huge := strings.Repeat("x", 5<<20)
	const missing = "00000000-0000-0000-0000-000000000000"
	ws := v.tenant(1).Sentinel[0].Workspace
	tests := []struct {
		name, method, path, token string
		body                      any
		status                    int
		shape                     errorShape
		code, msg                 string
	}{
		// Graph comments: only "comment" is a parameter, and it must say something.
		{"Graph comment empty", "POST", incidentsPath + "/" + c.GraphID + "/comments", gtok, `{"comment":""}`,
			400, graphShape, "BadRequest", "The 'comment' property is required and must be a non-empty string."},
		{"Graph comment missing", "POST", incidentsPath + "/" + c.GraphID + "/comments", gtok, `{"@odata.type":"microsoft.graph.security.alertComment"}`,
			400, graphShape, "BadRequest", "The 'comment' property is required and must be a non-empty string."},
		{"Graph comment unknown property", "POST", incidentsPath + "/" + c.GraphID + "/comments", gtok, `{"comment":"x","createdBy":"me"}`,
			400, graphShape, "BadRequest", "The property 'createdBy' does not exist on type 'microsoft.graph.security.alertComment'. Make sure to only use property names that are defined by the type or mark the type as open type."},
		{"Graph comment too large", "POST", incidentsPath + "/" + c.GraphID + "/comments", gtok, `{"comment":"` + huge + `"}`,
			413, graphShape, "RequestEntityTooLarge", "The request body is too large."},
		{"Graph PATCH unknown incident", "PATCH", incidentsPath + "/424242", gtok, `{"status":"active"}`,
			404, graphShape, "NotFound", "Incident with id '424242' was not found."},
		{"Graph PATCH too large", "PATCH", incidentsPath + "/" + c.GraphID, gtok, `{"description":"` + huge + `"}`,
			413, graphShape, "RequestEntityTooLarge", "The request body is too large."},
		{"alerts_v2 unknown alert", "GET", "/v1.0/security/alerts_v2/nope", gtok, nil,
			404, graphShape, "NotFound", "Alert with id 'nope' was not found."},
		{"alerts_v2 $top over 2000", "GET", "/v1.0/security/alerts_v2?$top=2001", gtok, nil,
			400, graphShape, "", "The query specified in the URI is not valid. The limit of '2000' for Top query has been exceeded. The value from the incoming request is '2001'."},
		{"Graph unknown segment", "GET", "/v1.0/security/nothing", gtok, nil,
			400, graphShape, "BadRequest", "Resource not found for the segment 'nothing'."},
		// Sentinel (ARM CloudError).
		{"Sentinel PUT without properties", "PUT", v.wsPath(1, 0) + "/incidents/" + c.SentinelID + apiV, atok, `{"etag":"\"1\""}`,
			400, armShape, "BadRequest", "The properties field is required."},
		{"Sentinel PUT too large", "PUT", v.wsPath(1, 0) + "/incidents/" + c.SentinelID + apiV, atok, `{"properties":{"description":"` + huge + `"}}`,
			413, armShape, "RequestEntityTooLarge", "The request content is too large."},
		{"Sentinel comment on an unknown incident", "PUT", v.wsPath(1, 0) + "/incidents/" + missing + "/comments/c1" + apiV, atok, `{"properties":{"message":"m"}}`,
			404, armShape, "NotFound", "Incident '" + missing + "' was not found in workspace '" + ws + "'."},
		{"Sentinel ListAlerts of an unknown incident", "POST", v.wsPath(1, 0) + "/incidents/" + missing + "/alerts" + apiV, atok, nil,
			404, armShape, "NotFound", "Incident '" + missing + "' was not found in workspace '" + ws + "'."},
		{"Sentinel unknown resource type", "GET", v.wsPath(1, 0) + "/watchlists" + apiV, atok, nil,
			404, armShape, "InvalidResourceType", "The resource type could not be found in the namespace 'Microsoft.SecurityInsights' for api version '2025-12-01'."},
		{"Sentinel api-version not supported", "GET", v.wsPath(1, 0) + "/incidents?api-version=2019-01-01", atok, nil,
			400, armShape, "InvalidApiVersionParameter", "The api-version '2019-01-01' is invalid. The supported versions are '2025-12-01,2025-09-01,2025-06-01,2025-03-01,2024-09-01,2024-03-01,2023-11-01,2021-10-01,2021-04-01'."},
		// Entra and the rest.
		{"OpenID discovery of an unknown tenant", "GET", "/nope.onmicrosoft.com/v2.0/.well-known/openid-configuration", "", nil,
			400, entraShape, "invalid_tenant", "AADSTS90002: Tenant 'nope.onmicrosoft.com' not found."},
		{"a path no API serves", "GET", "/somewhere/else", "", nil,
			404, plainShape, "", "404 page not found\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, b := v.do(tt.method, tt.path, tt.token, tt.body)
			checkErrorBody(t, resp.StatusCode, b, tt.status, tt.shape, tt.code, tt.msg)
		})
	}
	// None of the refused writes changed anything.
	if g := v.e.graphView(t, 1, c.GraphID); g["description"] == huge || len(g["comments"].([]any)) != 0 {
		t.Errorf("a refused write changed the incident: %d comments", len(g["comments"].([]any)))
	}
}

// Prefer: include-unknown-enum-members governs the evolvable enum members on every Graph read,
// not only the list: the incident by id (and its expanded alerts) and alerts_v2, by id and
// listed. Without it they read unknownFutureValue; with it their names, and the answer says
// Preference-Applied.
func TestGraphPrefer_EvolvableMembersOnGetByIDAndAlertsV2(t *testing.T) {
	v := newEnv(t, Options{IncidentsPerTenant: -1})
	c, err := v.e.CreateIncident("0", NewIncident{Title: "experts", Alerts: []NewAlert{{ServiceSource: "microsoftDefenderForCloud", DetectionSource: "microsoftDefenderForServers"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.e.PatchIncident("0", c.GraphID, []byte(`{"status":"awaitingAction"}`)); err != nil {
		t.Fatal(err)
	}
	tok := v.graphToken(0)
	// alert returns the alert of an answer: the entity, the first of a list, or the first
	// expanded alert of an incident.
	alertOf := func(m map[string]any) map[string]any {
		if vals, ok := m["value"].([]any); ok && len(vals) > 0 {
			m = vals[0].(map[string]any)
		}
		if as, ok := m["alerts"].([]any); ok && len(as) > 0 {
			return as[0].(map[string]any)
		}
		return m
	}
	tests := []struct {
		name, path string
		prefer     bool
		status     any // the incident's status; nil for alerts_v2
		service    string
		detection  string
	}{
		{"incident by id", incidentsPath + "/" + c.GraphID + "?$expand=alerts", false, "unknownFutureValue", "unknownFutureValue", "unknownFutureValue"},
		{"incident by id, Prefer", incidentsPath + "/" + c.GraphID + "?$expand=alerts", true, "awaitingAction", "microsoftDefenderForCloud", "microsoftDefenderForServers"},
		{"alerts_v2 by id", "/v1.0/security/alerts_v2/" + c.AlertIDs[0], false, nil, "unknownFutureValue", "unknownFutureValue"},
		{"alerts_v2 by id, Prefer", "/v1.0/security/alerts_v2/" + c.AlertIDs[0], true, nil, "microsoftDefenderForCloud", "microsoftDefenderForServers"},
		{"alerts_v2 list", "/v1.0/security/alerts_v2", false, nil, "unknownFutureValue", "unknownFutureValue"},
		{"alerts_v2 list, Prefer", "/v1.0/security/alerts_v2", true, nil, "microsoftDefenderForCloud", "microsoftDefenderForServers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var headers []string
			if tt.prefer {
				headers = []string{"Prefer", "include-unknown-enum-members"}
			}
			resp, b := v.do("GET", tt.path, tok, nil, headers...)
			var m map[string]any
			json.Unmarshal(b, &m)
			if resp.StatusCode != 200 {
				t.Fatalf("%d %s", resp.StatusCode, b)
			}
			if applied := resp.Header.Get("Preference-Applied") == "include-unknown-enum-members"; applied != tt.prefer {
				t.Errorf("Preference-Applied %q with Prefer %v", resp.Header.Get("Preference-Applied"), tt.prefer)
			}
			if tt.status != nil && m["status"] != tt.status {
				t.Errorf("incident status %v, want %v", m["status"], tt.status)
			}
			a := alertOf(m)
			if a["serviceSource"] != tt.service || a["detectionSource"] != tt.detection {
				t.Errorf("alert serviceSource %v detectionSource %v, want %s %s", a["serviceSource"], a["detectionSource"], tt.service, tt.detection)
			}
		})
	}
}

// Every stable api-version of the contracts that has Incidents (2.1) is served: list, get,
// update and comment answer as with 2025-12-01.
func TestSentinel_EveryStableAPIVersionIsServed(t *testing.T) {
	v := newEnv(t, Options{IncidentsPerTenant: -1})
	c, err := v.e.CreateIncident("1", NewIncident{Title: "versions", Where: "sentinel"})
	if err != nil {
		t.Fatal(err)
	}
	tok := v.armToken(1)
	inc := v.wsPath(1, 0) + "/incidents/" + c.SentinelID
	for i, ver := range []string{"2025-12-01", "2025-09-01", "2025-06-01", "2025-03-01", "2024-09-01", "2024-03-01", "2023-11-01", "2021-10-01", "2021-04-01"} {
		t.Run(ver, func(t *testing.T) {
			q := "?api-version=" + ver
			status, list := v.doJSON("GET", v.wsPath(1, 0)+"/incidents"+q, tok, nil)
			wantStatus(t, status, 200, list)
			if vals, _ := list["value"].([]any); len(vals) != 1 {
				t.Errorf("list: %v", list)
			}
			status, got := v.doJSON("GET", inc+q, tok, nil)
			wantStatus(t, status, 200, got)
			props := got["properties"].(map[string]any)
			props["severity"] = []string{"Low", "High"}[i%2]
			status, put := v.doJSON("PUT", inc+q, tok, map[string]any{"etag": got["etag"], "properties": props})
			wantStatus(t, status, 200, put)
			if put["properties"].(map[string]any)["severity"] != props["severity"] {
				t.Errorf("PUT answered %v", put["properties"])
			}
			status, cm := v.doJSON("PUT", inc+"/comments/c-"+ver+q, tok, sentinelBody(map[string]any{"message": "from " + ver}))
			wantStatus(t, status, 201, cm)
			status, al := v.doJSON("POST", inc+"/alerts"+q, tok, nil)
			wantStatus(t, status, 200, al)
		})
	}
}

// A string literal in $filter must be quoted: unquoted, OData reads it as a property name, and
// Graph answers 400 with its error body naming it.
func TestGraphList_UnquotedStringLiteralIs400(t *testing.T) {
	v := newEnv(t, Options{})
	tok := v.graphToken(0)
	for _, f := range []struct{ filter, word string }{
		{"status eq active", "active"},
		{"assignedTo eq bob", "bob"},
		{"severity eq high and status eq 'active'", "high"},
	} {
		t.Run(f.filter, func(t *testing.T) {
			resp, b := v.do("GET", incidentsPath+"?$filter="+url.QueryEscape(f.filter), tok, nil)
			checkErrorBody(t, resp.StatusCode, b, 400, graphShape, "",
				"The query specified in the URI is not valid. Could not find a property named '"+f.word+"' on type 'microsoft.graph.security.incident'.")
		})
	}
}

// le compares like ge and lt do, on dates and on the severity order, through paging.
func TestGraphList_FilterLessOrEqual(t *testing.T) {
	v := newEnv(t, Options{IncidentsPerTenant: -1})
	ids := createN(t, v, 5) // one second apart, severity low
	if err := v.e.PatchIncident("0", ids[4], []byte(`{"severity":"high"}`)); err != nil {
		t.Fatal(err)
	}
	tok := v.graphToken(0)
	created := func(i int) string { return v.e.graphView(t, 0, ids[i])["createdDateTime"].(string) }
	cases := []struct {
		filter string
		want   []string // newest first
	}{
		{"createdDateTime le " + created(2), []string{ids[2], ids[1], ids[0]}},
		{"createdDateTime le " + created(0), []string{ids[0]}},
		{"createdDateTime le 2000-01-01T00:00:00Z", nil},
		{"createdDateTime ge " + created(1) + " and createdDateTime le " + created(3), []string{ids[3], ids[2], ids[1]}},
		{"lastUpdateDateTime le " + testBase.Add(time.Hour).Format(time.RFC3339), []string{ids[4], ids[3], ids[2], ids[1], ids[0]}},
		{"severity le 'medium'", []string{ids[3], ids[2], ids[1], ids[0]}},
	}
	for _, c := range cases {
		t.Run(c.filter, func(t *testing.T) {
			var got []string
			next := incidentsPath + "?$top=2&$filter=" + url.QueryEscape(c.filter)
			for next != "" {
				status, m := v.doJSON("GET", next, tok, nil)
				wantStatus(t, status, 200, m)
				for _, it := range m["value"].([]any) {
					got = append(got, it.(map[string]any)["id"].(string))
				}
				next, _ = m["@odata.nextLink"].(string)
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
}
