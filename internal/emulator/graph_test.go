package emulator

import (
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

const incidentsPath = "/v1.0/security/incidents"

func TestGraphList_ShapeMatchesThe2026Sample(t *testing.T) {
	v := newEnv(t, Options{})
	sample := loadSample(t, "graph_v1_list_incidents_response_2026.json")
	status, got := v.doJSON("GET", incidentsPath, v.graphToken(0), nil)
	wantStatus(t, status, 200, got)
	compareShape(t, "list envelope", map[string]any{"@odata.context": "", "value": []any{}}, got, true)
	if !strings.HasSuffix(got["@odata.context"].(string), "/v1.0/$metadata#security/incidents") {
		t.Errorf("@odata.context = %v", got["@odata.context"])
	}
	want := sample["value"].([]any)[0].(map[string]any)
	items := got["value"].([]any)
	if len(items) == 0 {
		t.Fatal("no incidents")
	}
	for _, it := range items {
		compareShape(t, "incident", want, it.(map[string]any), true)
	}
	// The resource representation lists the same properties (plus @odata.type, which list
	// responses do not carry).
	rep := loadSample(t, "graph_v1_incident_resource_json_representation.json")
	delete(rep, "@odata.type")
	for k := range rep {
		if _, ok := items[0].(map[string]any)[k]; !ok {
			t.Errorf("incident lacks resource property %q", k)
		}
	}
}

func TestGraphList_ExpandAlerts_ShapeMatchesSampleAlertsAndEvidence(t *testing.T) {
	v := newEnv(t, Options{})
	sample := loadSample(t, "graph_v1_list_incidents_expand_alerts_response_2022.json")
	sAlert := sample["value"].([]any)[0].(map[string]any)["alerts"].([]any)[0].(map[string]any)
	sEvidence := map[string]map[string]any{}
	for _, ev := range sAlert["evidence"].([]any) {
		m := ev.(map[string]any)
		sEvidence[m["@odata.type"].(string)] = m
	}
	status, got := v.doJSON("GET", incidentsPath+"?$expand=alerts", v.graphToken(0), nil)
	wantStatus(t, status, 200, got)
	if !strings.HasSuffix(got["@odata.context"].(string), "#security/incidents(alerts())") {
		t.Errorf("@odata.context = %v", got["@odata.context"])
	}
	seen := map[string]bool{}
	for _, it := range got["value"].([]any) {
		inc := it.(map[string]any)
		alerts, ok := inc["alerts"].([]any)
		if !ok || len(alerts) == 0 {
			t.Fatalf("incident %v has no alerts array", inc["id"])
		}
		for _, a := range alerts {
			am := a.(map[string]any)
			compareShape(t, "alert", sAlert, am, false)
			if am["incidentId"] != inc["id"] {
				t.Errorf("alert incidentId %v != incident id %v", am["incidentId"], inc["id"])
			}
			for _, ev := range am["evidence"].([]any) {
				em := ev.(map[string]any)
				typ := em["@odata.type"].(string)
				if want, ok := sEvidence[typ]; ok {
					compareShape(t, typ, want, em, false)
					seen[typ] = true
				}
			}
		}
	}
	for typ := range sEvidence {
		if !seen[typ] {
			t.Errorf("no %s evidence in any alert", typ)
		}
	}
}

func TestGraphList_Top100_Returns400WithObservedMessage(t *testing.T) {
	v := newEnv(t, Options{})
	sample := loadSample(t, "graph_v1_list_incidents_top100_error_400_observed.json")
	status, got := v.doJSON("GET", incidentsPath+"?$top=100", v.graphToken(0), nil)
	wantStatus(t, status, 400, got)
	se, ge := sample["error"].(map[string]any), got["error"].(map[string]any)
	if ge["code"] != "" || ge["message"] != se["message"] {
		t.Fatalf("error = %v, want code \"\" and message %q", ge, se["message"])
	}
	compareShape(t, "top error", se, ge, true)
	compareShape(t, "innerError", se["innerError"].(map[string]any), ge["innerError"].(map[string]any), true)
}

func TestGraphList_Top50Accepted(t *testing.T) {
	v := newEnv(t, Options{})
	status, got := v.doJSON("GET", incidentsPath+"?$top=50", v.graphToken(0), nil)
	wantStatus(t, status, 200, got)
}

// createN creates n Defender incidents in tenant 0, one second apart.
func createN(t *testing.T, v *testEnv, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		v.e.Advance(time.Second)
		c, err := v.e.CreateIncident("0", NewIncident{Title: "incident " + string(rune('A'+i%26)), Severity: "low"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.GraphID)
	}
	return ids
}

func TestGraphList_PagesWithSkipNextLinkNewestFirst(t *testing.T) {
	v := newEnv(t, Options{IncidentsPerTenant: -1})
	ids := createN(t, v, 12)
	tok := v.graphToken(0)
	var got []string
	next := incidentsPath + "?$top=5&$count=true&$filter=" + url.QueryEscape("severity eq 'low'")
	pages := 0
	for next != "" {
		status, m := v.doJSON("GET", next, tok, nil)
		wantStatus(t, status, 200, m)
		if m["@odata.count"] != float64(12) {
			t.Fatalf("@odata.count = %v, want 12", m["@odata.count"])
		}
		for _, it := range m["value"].([]any) {
			got = append(got, it.(map[string]any)["id"].(string))
		}
		next, _ = m["@odata.nextLink"].(string)
		if next != "" {
			u, err := url.Parse(next)
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query()
			if q.Get("$filter") != "severity eq 'low'" || q.Get("$top") != "5" || q.Get("$skip") == "" {
				t.Fatalf("nextLink %s lost the original query", next)
			}
		}
		pages++
	}
	slices.Reverse(ids)
	if !slices.Equal(got, ids) || pages != 3 {
		t.Fatalf("paged ids %v in %d pages, want %v (newest first) in 3", got, pages, ids)
	}
}

func TestGraphList_DefaultPageIs50WithNextLink(t *testing.T) {
	v := newEnv(t, Options{IncidentsPerTenant: -1})
	createN(t, v, 55)
	status, m := v.doJSON("GET", incidentsPath, v.graphToken(0), nil)
	wantStatus(t, status, 200, m)
	if n := len(m["value"].([]any)); n != 50 {
		t.Fatalf("page has %d items, want 50", n)
	}
	next := m["@odata.nextLink"].(string)
	if !strings.HasSuffix(next, "/v1.0/security/incidents?$skip=50") {
		t.Fatalf("nextLink = %s", next)
	}
	_, m = v.doJSON("GET", next, v.graphToken(0), nil)
	if n := len(m["value"].([]any)); n != 5 || m["@odata.nextLink"] != nil {
		t.Fatalf("second page: %d items, nextLink %v", n, m["@odata.nextLink"])
	}
}

func TestGraphList_Filter(t *testing.T) {
	v := newEnv(t, Options{IncidentsPerTenant: -1})
	ids := createN(t, v, 4)
	tok := v.graphToken(0)
	// Shape the data: ids[0] resolved+assigned, ids[1] redirected into ids[2], ids[3] high.
	if err := v.e.PatchIncident("0", ids[0], []byte(`{"status":"resolved","assignedTo":"alexw@contoso.onmicrosoft.com","classification":"truePositive","determination":"malware"}`)); err != nil {
		t.Fatal(err)
	}
	if err := v.e.Merge("0", ids[1], ids[2]); err != nil {
		t.Fatal(err)
	}
	if err := v.e.PatchIncident("0", ids[3], []byte(`{"severity":"high"}`)); err != nil {
		t.Fatal(err)
	}
	created1 := v.e.graphView(t, 0, ids[1])["createdDateTime"].(string)
	cases := []struct {
		filter string
		want   []string
	}{
		{"status eq 'resolved'", []string{ids[0]}},
		{"status ne 'redirected'", []string{ids[3], ids[2], ids[0]}},
		{"assignedTo eq null", []string{ids[3], ids[2], ids[1]}},
		{"assignedTo eq 'AlexW@contoso.onmicrosoft.com'", []string{ids[0]}},
		{"classification eq 'truePositive' and determination eq 'malware'", []string{ids[0]}},
		{"severity eq 'high' or (status eq 'redirected' and assignedTo eq null)", []string{ids[3], ids[1]}},
		{"createdDateTime ge " + created1, []string{ids[3], ids[2], ids[1]}},
		{"createdDateTime gt " + created1, []string{ids[3], ids[2]}},
		{"lastUpdateDateTime ge 2000-01-01T00:00:00Z and createdDateTime lt " + created1, []string{ids[0]}},
		{"severity ge 'medium'", []string{ids[3]}},
	}
	for _, c := range cases {
		status, m := v.doJSON("GET", incidentsPath+"?$filter="+url.QueryEscape(c.filter), tok, nil)
		wantStatus(t, status, 200, m)
		var got []string
		for _, it := range m["value"].([]any) {
			got = append(got, it.(map[string]any)["id"].(string))
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("$filter=%s: got %v, want %v", c.filter, got, c.want)
		}
	}
}

// graphView returns the Graph view of an incident (test helper).
func (e *Emulator) graphView(t *testing.T, tenant int, id string) map[string]any {
	t.Helper()
	v, err := e.IncidentViews(itoa(tenant), id)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := jsonMarshal(v["graph"])
	var m map[string]any
	jsonUnmarshal(b, &m)
	return m
}

func TestGraphList_BadQueries_Return400GraphErrors(t *testing.T) {
	v := newEnv(t, Options{})
	tok := v.graphToken(0)
	cases := []struct{ query, msg string }{
		{"$filter=" + url.QueryEscape("displayName eq 'x'"), "The query specified in the URI is not valid. Could not find a property named 'displayName' on type 'microsoft.graph.security.incident'."},
		{"$filter=" + url.QueryEscape("status eq"), "The query specified in the URI is not valid. Syntax error at position 9 in 'status eq'."},
		{"$filter=" + url.QueryEscape("status eq 'Active'"), "The query specified in the URI is not valid. The string 'Active' is not a valid enumeration type constant."},
		{"$filter=" + url.QueryEscape("status eq 'awaitingAction'"), "The query specified in the URI is not valid. The string 'awaitingAction' is not a valid enumeration type constant."},
		{"$filter=" + url.QueryEscape("createdDateTime ge '2026-01-01T00:00:00Z'"), "The query specified in the URI is not valid. A binary operator with incompatible types was detected. Found operand types 'Edm.DateTimeOffset' and 'Edm.String' for operator kind 'GreaterThanOrEqual'."},
		{"$filter=" + url.QueryEscape("contains(assignedTo, 'x')"), "The query specified in the URI is not valid. An unknown function with name 'contains' was found. This may also be a function import or a key lookup on a navigation property, which is not allowed."},
		{"$top=-1", "The query specified in the URI is not valid. Invalid value '-1' for $top query option found. The $top query option requires a non-negative integer value."},
		{"$top=abc", "The query specified in the URI is not valid. Invalid value 'abc' for $top query option found. The $top query option requires a non-negative integer value."},
		{"$skip=x", "The query specified in the URI is not valid. Invalid value 'x' for $skip query option found. The $skip query option requires a non-negative integer value."},
		{"$count=maybe", "The query specified in the URI is not valid. 'maybe' is not a valid count option."},
		{"$expand=comments", "The query specified in the URI is not valid. Could not find a property named 'comments' on type 'microsoft.graph.security.incident'."},
		{"$search=x", "The query specified in the URI is not valid. Query option 'search' is not allowed. To allow it, set the 'AllowedQueryOptions' property on EnableQueryAttribute or QueryValidationSettings."},
		{"$orderby=" + url.QueryEscape("nope desc"), "The query specified in the URI is not valid. Could not find a property named 'nope' on type 'microsoft.graph.security.incident'."},
	}
	for _, c := range cases {
		status, m := v.doJSON("GET", incidentsPath+"?"+c.query, tok, nil)
		wantStatus(t, status, 400, m)
		code, msg := errBody(t, m)
		if code != "" || msg != c.msg {
			t.Errorf("%s: got code %q message %q, want \"\" %q", c.query, code, msg, c.msg)
		}
	}
}

func TestGraphList_PreferHeaderGovernsEvolvableEnumMembers(t *testing.T) {
	v := newEnv(t, Options{IncidentsPerTenant: -1})
	c, err := v.e.CreateIncident("0", NewIncident{Title: "experts", Alerts: []NewAlert{{ServiceSource: "microsoftSentinel", DetectionSource: "scheduledAlerts"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.e.PatchIncident("0", c.GraphID, []byte(`{"status":"awaitingAction"}`)); err != nil {
		t.Fatal(err)
	}
	tok := v.graphToken(0)
	_, m := v.doJSON("GET", incidentsPath+"?$expand=alerts", tok, nil)
	inc := m["value"].([]any)[0].(map[string]any)
	alert := inc["alerts"].([]any)[0].(map[string]any)
	if inc["status"] != "unknownFutureValue" || alert["serviceSource"] != "unknownFutureValue" || alert["detectionSource"] != "unknownFutureValue" {
		t.Fatalf("without Prefer: status %v serviceSource %v detectionSource %v", inc["status"], alert["serviceSource"], alert["detectionSource"])
	}
	resp, b := v.do("GET", incidentsPath+"?$expand=alerts&$filter="+url.QueryEscape("status eq 'awaitingAction'"), tok, nil, "Prefer", "include-unknown-enum-members")
	if resp.StatusCode != 200 || resp.Header.Get("Preference-Applied") != "include-unknown-enum-members" {
		t.Fatalf("with Prefer: %d %s", resp.StatusCode, b)
	}
	var m2 map[string]any
	jsonUnmarshal(b, &m2)
	inc = m2["value"].([]any)[0].(map[string]any)
	alert = inc["alerts"].([]any)[0].(map[string]any)
	if inc["status"] != "awaitingAction" || alert["serviceSource"] != "microsoftSentinel" || alert["detectionSource"] != "scheduledAlerts" {
		t.Fatalf("with Prefer: status %v serviceSource %v detectionSource %v", inc["status"], alert["serviceSource"], alert["detectionSource"])
	}
}

func TestGraphGet_ReturnsEntityOr404(t *testing.T) {
	v := newEnv(t, Options{})
	tok := v.graphToken(0)
	_, list := v.doJSON("GET", incidentsPath, tok, nil)
	id := list["value"].([]any)[0].(map[string]any)["id"].(string)
	status, m := v.doJSON("GET", incidentsPath+"/"+id, tok, nil)
	wantStatus(t, status, 200, m)
	sample := loadSample(t, "graph_v1_update_incident_response_2026.json")
	compareShape(t, "get incident", sample, m, true)
	if !strings.HasSuffix(m["@odata.context"].(string), "#security/incidents/$entity") {
		t.Errorf("context %v", m["@odata.context"])
	}
	status, m = v.doJSON("GET", incidentsPath+"/"+id+"?$expand=alerts", tok, nil)
	if status != 200 || m["alerts"] == nil {
		t.Fatalf("get with $expand=alerts: %d %v", status, m["alerts"])
	}
	status, m = v.doJSON("GET", incidentsPath+"/999999999", tok, nil)
	wantStatus(t, status, 404, m)
	if code, msg := errBody(t, m); code != "NotFound" || msg != "Incident with id '999999999' was not found." {
		t.Errorf("404 body %q %q", code, msg)
	}
	compareShape(t, "404 error", loadSample(t, "graph_error_response_example.json")["error"].(map[string]any), m["error"].(map[string]any), false)
}

func TestGraphGet_OtherTenantsIncidentIsInvisible(t *testing.T) {
	v := newEnv(t, Options{IncidentsPerTenant: -1})
	c0, _ := v.e.CreateIncident("0", NewIncident{Title: "tenant zero secret"})
	c1, _ := v.e.CreateIncident("1", NewIncident{Title: "tenant one"})
	if c0.GraphID != c1.GraphID {
		t.Fatalf("tenants should reuse the same id space: %s vs %s", c0.GraphID, c1.GraphID)
	}
	_, m := v.doJSON("GET", incidentsPath+"/"+c1.GraphID, v.graphToken(1), nil)
	if m["displayName"] != "tenant one" || m["tenantId"] != v.tenant(1).TenantID {
		t.Fatalf("tenant 1 sees %v / %v", m["displayName"], m["tenantId"])
	}
	_, list := v.doJSON("GET", incidentsPath, v.graphToken(1), nil)
	for _, it := range list["value"].([]any) {
		if it.(map[string]any)["displayName"] == "tenant zero secret" {
			t.Fatal("tenant 1 listed tenant 0's incident")
		}
	}
}

func TestGraphPatch_UpdatesFieldsAndReturnsFullEntity(t *testing.T) {
	v := newEnv(t, Options{IncidentsPerTenant: -1})
	c, _ := v.e.CreateIncident("0", NewIncident{Title: "to patch"})
	v.e.Advance(time.Minute)
	tok := v.graphToken(0)
	req := loadSample(t, "graph_v1_update_incident_request.json") // PascalCase enums
	req["assignedTo"] = "meganb@contoso.onmicrosoft.com"
	req["status"] = "InProgress"
	req["severity"] = "HIGH"
	req["resolvingComment"] = "looked at it"
	status, m := v.doJSON("PATCH", incidentsPath+"/"+c.GraphID, tok, req)
	wantStatus(t, status, 200, m)
	compareShape(t, "patch response", loadSample(t, "graph_v1_update_incident_response_2026.json"), m, true)
	want := map[string]any{"classification": "truePositive", "determination": "multiStagedAttack", "status": "inProgress",
		"severity": "high", "assignedTo": "meganb@contoso.onmicrosoft.com", "resolvingComment": "looked at it",
		"lastModifiedBy": "API-App:" + v.tenant(0).ClientID, "lastUpdateDateTime": fmtTime(testBase.Add(time.Minute))}
	for k, w := range want {
		if m[k] != w {
			t.Errorf("%s = %v, want %v", k, m[k], w)
		}
	}
	if tags := m["customTags"].([]any); len(tags) != 1 || tags[0] != "Demo" {
		t.Errorf("customTags = %v", tags)
	}
	// customTags replaces the array; [] clears it.
	_, m = v.doJSON("PATCH", incidentsPath+"/"+c.GraphID, tok, map[string]any{"customTags": []string{"a", "b"}})
	if tags := m["customTags"].([]any); len(tags) != 2 {
		t.Errorf("customTags = %v", tags)
	}
	_, m = v.doJSON("PATCH", incidentsPath+"/"+c.GraphID, tok, map[string]any{"customTags": []string{}})
	if tags := m["customTags"].([]any); len(tags) != 0 {
		t.Errorf("customTags = %v", tags)
	}
	// Legacy determination spellings are accepted.
	_, m = v.doJSON("PATCH", incidentsPath+"/"+c.GraphID, tok, map[string]any{"determination": "compromisedUser"})
	if m["determination"] != "compromisedAccount" {
		t.Errorf("determination = %v", m["determination"])
	}
}

func TestGraphPatch_InvalidBodies_Return400(t *testing.T) {
	v := newEnv(t, Options{IncidentsPerTenant: -1})
	c, _ := v.e.CreateIncident("0", NewIncident{Title: "x"})
	tok := v.graphToken(0)
	cases := []struct {
		body any
		msg  string
	}{
		{map[string]any{"status": "closed"}, "Cannot convert the literal 'closed' to the expected type 'microsoft.graph.security.incidentStatus'."},
		{map[string]any{"classification": "Nope"}, "Cannot convert the literal 'Nope' to the expected type 'microsoft.graph.security.alertClassification'."},
		{map[string]any{"severity": "critical"}, "Cannot convert the literal 'critical' to the expected type 'microsoft.graph.security.alertSeverity'."},
		{map[string]any{"status": "awaitingAction"}, "The status 'awaitingAction' can only be set by Microsoft Defender Experts."},
		{map[string]any{"owner": "x"}, "The property 'owner' does not exist on type 'microsoft.graph.security.incident'. Make sure to only use property names that are defined by the type or mark the type as open type."},
		{map[string]any{"customTags": "x"}, "Cannot convert the value of property 'customTags' to a collection of Edm.String."},
		{"{not json", "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format."},
	}
	for _, tc := range cases {
		status, m := v.doJSON("PATCH", incidentsPath+"/"+c.GraphID, tok, tc.body)
		wantStatus(t, status, 400, m)
		if code, msg := errBody(t, m); code != "BadRequest" || msg != tc.msg {
			t.Errorf("%v: got %q %q, want BadRequest %q", tc.body, code, msg, tc.msg)
		}
	}
	status, m := v.doJSON("PATCH", incidentsPath+"/424242", tok, map[string]any{"status": "active"})
	wantStatus(t, status, 404, m)
	// A failed PATCH changes nothing.
	if g := v.e.graphView(t, 0, c.GraphID); g["status"] != "active" {
		t.Errorf("status changed to %v", g["status"])
	}
}

func TestGraphPostComment_Returns200WithWholeList(t *testing.T) {
	v := newEnv(t, Options{IncidentsPerTenant: -1})
	c, _ := v.e.CreateIncident("0", NewIncident{Title: "x"})
	if err := v.e.PatchIncident("0", c.GraphID, []byte(`{"comment":"analyst note"}`)); err != nil {
		t.Fatal(err)
	}
	tok := v.graphToken(0)
	status, m := v.doJSON("POST", incidentsPath+"/"+c.GraphID+"/comments", tok, loadSample(t, "graph_v1_post_incident_comment_request.json"))
	wantStatus(t, status, 200, m)
	sample := loadSample(t, "graph_v1_post_incident_comment_response.json")
	compareShape(t, "comments envelope", sample, m, true)
	vals := m["value"].([]any)
	if len(vals) != 2 {
		t.Fatalf("want the whole list of 2 comments, got %v", vals)
	}
	compareShape(t, "comment", sample["value"].([]any)[0].(map[string]any), vals[1].(map[string]any), true)
	first, second := vals[0].(map[string]any), vals[1].(map[string]any)
	if first["createdByDisplayName"] != "alexw@contoso.onmicrosoft.com" || second["comment"] != "Demo for docs" || second["createdByDisplayName"] != "socsync" {
		t.Errorf("comments = %v", vals)
	}
	for _, body := range []any{map[string]any{"comment": ""}, map[string]any{}, map[string]any{"comment": "x", "createdBy": "me"}} {
		status, m := v.doJSON("POST", incidentsPath+"/"+c.GraphID+"/comments", tok, body)
		wantStatus(t, status, 400, m)
		if code, _ := errBody(t, m); code != "BadRequest" {
			t.Errorf("%v: code %q", body, code)
		}
	}
	status, m = v.doJSON("POST", incidentsPath+"/4242/comments", tok, map[string]any{"comment": "x"})
	wantStatus(t, status, 404, m)
}

func TestGraphAlerts_ListFilterAndGet(t *testing.T) {
	v := newEnv(t, Options{IncidentsPerTenant: -1})
	c, _ := v.e.CreateIncident("0", NewIncident{Title: "x", Alerts: []NewAlert{{Severity: "high"}, {Severity: "low", Status: "resolved"}}})
	tok := v.graphToken(0)
	status, m := v.doJSON("GET", "/v1.0/security/alerts_v2?$filter="+url.QueryEscape("status eq 'resolved'"), tok, nil)
	wantStatus(t, status, 200, m)
	vals := m["value"].([]any)
	if len(vals) != 1 || vals[0].(map[string]any)["id"] != c.AlertIDs[1] {
		t.Fatalf("filtered alerts = %v", vals)
	}
	status, m = v.doJSON("GET", "/v1.0/security/alerts_v2/"+c.AlertIDs[0], tok, nil)
	wantStatus(t, status, 200, m)
	if m["severity"] != "high" || m["incidentId"] != c.GraphID {
		t.Errorf("alert = %v", m)
	}
	status, m = v.doJSON("GET", "/v1.0/security/alerts_v2/nope", tok, nil)
	wantStatus(t, status, 404, m)
	status, m = v.doJSON("GET", "/v1.0/security/alerts_v2?$top=2001", tok, nil)
	wantStatus(t, status, 400, m)
}

func TestGraphAuth_Errors(t *testing.T) {
	v := newEnv(t, Options{})
	graph := v.graphToken(0)
	arm := v.armToken(0)
	other := foreignToken(t, v.tenant(0)) // a well-formed token signed by another emulator
	cases := []struct {
		name, token string
		status      int
		code, msg   string
	}{
		{"missing", "", 401, "InvalidAuthenticationToken", "Access token is empty."},
		{"garbage", "abc.def", 401, "InvalidAuthenticationToken", "Access token validation failure. Invalid signature."},
		{"foreign", other, 401, "InvalidAuthenticationToken", "Access token validation failure. Invalid signature."},
		{"wrong audience", arm, 401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience."},
	}
	for _, c := range cases {
		resp, b := v.do("GET", incidentsPath, c.token, nil)
		var m map[string]any
		jsonUnmarshal(b, &m)
		wantStatus(t, resp.StatusCode, c.status, m)
		if code, msg := errBody(t, m); code != c.code || msg != c.msg {
			t.Errorf("%s: %q %q", c.name, code, msg)
		}
		if resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: no WWW-Authenticate", c.name)
		}
	}
	v.e.Advance(91 * time.Minute)
	status, m := v.doJSON("GET", incidentsPath, graph, nil)
	wantStatus(t, status, 401, m)
	if _, msg := errBody(t, m); msg != "Lifetime validation failed, the token is expired." {
		t.Errorf("expired: %q", msg)
	}
}

func TestGraphAuth_ReadOnlyConsentForbidsPatch(t *testing.T) {
	v := newEnv(t, Options{IncidentsPerTenant: -1})
	c, _ := v.e.CreateIncident("0", NewIncident{Title: "x"})
	if err := v.e.SetConsent("0", v.tenant(0).ClientID, true, []string{"SecurityIncident.Read.All"}); err != nil {
		t.Fatal(err)
	}
	tok := v.graphToken(0)
	if status, m := v.doJSON("GET", incidentsPath+"/"+c.GraphID, tok, nil); status != 200 {
		t.Fatalf("read: %d %v", status, m)
	}
	status, m := v.doJSON("PATCH", incidentsPath+"/"+c.GraphID, tok, map[string]any{"status": "resolved"})
	wantStatus(t, status, 403, m)
	if code, msg := errBody(t, m); code != "Forbidden" || !strings.HasPrefix(msg, "Missing application roles. API required roles: SecurityIncident.ReadWrite.All.") {
		t.Errorf("%q %q", code, msg)
	}
}

func TestGraph_UnknownPathAndMethod(t *testing.T) {
	v := newEnv(t, Options{})
	tok := v.graphToken(0)
	status, m := v.doJSON("GET", "/v1.0/security/nothing", tok, nil)
	wantStatus(t, status, 400, m)
	if _, msg := errBody(t, m); msg != "Resource not found for the segment 'nothing'." {
		t.Errorf("msg %q", msg)
	}
	status, m = v.doJSON("DELETE", incidentsPath+"/1", tok, nil)
	wantStatus(t, status, 405, m)
}
