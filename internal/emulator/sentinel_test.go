package emulator

import (
	"maps"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

const apiV = "?api-version=2025-12-01"

func TestSentinelGet_ShapeMatchesSpecExample(t *testing.T) {
	v := newEnv(t, Options{})
	sample := loadSample(t, "sentinel/2025-12-01_GetIncidentById.json")["responses"].(map[string]any)["200"].(map[string]any)["body"].(map[string]any)
	tok := v.armToken(1)
	status, list := v.doJSON("GET", v.wsPath(1, 0)+"/incidents"+apiV, tok, nil)
	wantStatus(t, status, 200, list)
	for _, it := range list["value"].([]any) {
		inc := it.(map[string]any)
		compareShape(t, "incident", sample, inc, true)
		props := inc["properties"].(map[string]any)
		want := maps.Clone(sample["properties"].(map[string]any))
		for _, k := range []string{"classification", "classificationReason", "classificationComment"} {
			if _, ok := props[k]; !ok && props["status"] != "Closed" {
				delete(want, k) // absent until the incident is classified
			}
		}
		compareShape(t, "properties", want, props, false)
		compareShape(t, "additionalData", sample["properties"].(map[string]any)["additionalData"].(map[string]any), props["additionalData"].(map[string]any), false)
		if !strings.HasPrefix(inc["etag"].(string), `"`) {
			t.Errorf("incident etag %v is not a quoted string", inc["etag"])
		}
		status, got := v.doJSON("GET", v.wsPath(1, 0)+"/incidents/"+inc["name"].(string)+apiV, tok, nil)
		wantStatus(t, status, 200, got)
		if got["etag"] != inc["etag"] || got["id"] != inc["id"] {
			t.Errorf("get differs from list: %v", got)
		}
	}
}

func TestSentinel_APIVersionAndResourceErrors(t *testing.T) {
	v := newEnv(t, Options{})
	tok := v.armToken(1)
	ws := v.wsPath(1, 0)
	bogusSub := strings.Replace(ws, v.tenant(1).Sentinel[0].SubscriptionID, "00000000-0000-0000-0000-000000000000", 1)
	cases := []struct {
		name, path   string
		status       int
		code, prefix string
	}{
		{"missing api-version", ws + "/incidents", 400, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests."},
		{"preview api-version", ws + "/incidents?api-version=2025-07-01-preview", 400, "InvalidApiVersionParameter", "The api-version '2025-07-01-preview' is invalid. The supported versions are '2025-12-01,"},
		{"unknown incident", ws + "/incidents/nope" + apiV, 404, "NotFound", "Incident 'nope' was not found"},
		{"unknown workspace", strings.Replace(ws, "/workspaces/law-fabrikam/", "/workspaces/law-other/", 1) + "/incidents" + apiV, 404, "ResourceNotFound", "The Resource 'Microsoft.OperationalInsights/workspaces/law-other' under resource group"},
		{"unknown resource group", strings.Replace(ws, "/resourceGroups/rg-sentinel-fabrikam/", "/resourceGroups/rg-x/", 1) + "/incidents" + apiV, 404, "ResourceGroupNotFound", "Resource group 'rg-x' could not be found."},
		{"unknown subscription", bogusSub + "/incidents" + apiV, 404, "SubscriptionNotFound", "The subscription '00000000-0000-0000-0000-000000000000' could not be found."},
		{"top above 1000", ws + "/incidents" + apiV + "&$top=1001", 400, "BadRequest", "The value '1001' of the $top query parameter is invalid."},
		{"bad filter", ws + "/incidents" + apiV + "&$filter=" + url.QueryEscape("properties/nope eq 1"), 400, "BadRequest", "Invalid $filter: Could not find a property named 'properties/nope'"},
		{"bad orderby", ws + "/incidents" + apiV + "&$orderby=" + url.QueryEscape("properties/title sideways"), 400, "BadRequest", "Invalid $orderby:"},
		{"bad skip token", ws + "/incidents" + apiV + "&$skipToken=!!!", 400, "BadRequest", "The $skipToken query parameter is invalid."},
		{"unknown resource type", ws + "/watchlists" + apiV, 404, "InvalidResourceType", "The resource type could not be found"},
	}
	for _, c := range cases {
		resp, b := v.do("GET", c.path, tok, nil)
		var m map[string]any
		jsonUnmarshal(b, &m)
		if resp.StatusCode != c.status {
			t.Errorf("%s: status %d, want %d: %s", c.name, resp.StatusCode, c.status, b)
			continue
		}
		if code, msg := errBody(t, m); code != c.code || !strings.HasPrefix(msg, c.prefix) {
			t.Errorf("%s: %q %q", c.name, code, msg)
		}
	}
}

func TestSentinelAuth_Errors(t *testing.T) {
	v := newEnv(t, Options{})
	path := v.wsPath(1, 0) + "/incidents" + apiV
	arm := v.armToken(1)
	cases := []struct{ name, token, code, prefix string }{
		{"missing", "", "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing."},
		{"garbage", "x.y.z", "InvalidAuthenticationToken", "The access token is invalid."},
		{"graph audience", v.graphToken(1), "InvalidAuthenticationTokenAudience", "The access token has been obtained for wrong audience or resource 'https://graph.microsoft.com'."},
		{"other tenant", v.armToken(2), "InvalidAuthenticationTokenTenant", "The access token is from the wrong issuer"},
	}
	for _, c := range cases {
		resp, b := v.do("GET", path, c.token, nil)
		var m map[string]any
		jsonUnmarshal(b, &m)
		wantStatus(t, resp.StatusCode, 401, m)
		if code, msg := errBody(t, m); code != c.code || !strings.HasPrefix(msg, c.prefix) {
			t.Errorf("%s: %q %q", c.name, code, msg)
		}
		if !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("%s: WWW-Authenticate %q", c.name, resp.Header.Get("WWW-Authenticate"))
		}
	}
	v.e.Advance(2 * time.Hour)
	status, m := v.doJSON("GET", path, arm, nil)
	wantStatus(t, status, 401, m)
	if code, msg := errBody(t, m); code != "ExpiredAuthenticationToken" || !strings.Contains(msg, "is earlier than current UTC time") {
		t.Errorf("expired: %q %q", code, msg)
	}
}

func TestSentinelList_FilterOrderTopSkipTokenAndUnescapedNextLink(t *testing.T) {
	v := newEnv(t, Options{IncidentsPerTenant: -1})
	var names []string
	for i := range 5 {
		v.e.Advance(time.Second)
		c, err := v.e.CreateIncident("1", NewIncident{Title: "n" + itoa(i), Severity: []string{"high", "low"}[i%2]})
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, c.SentinelID)
	}
	tok := v.armToken(1)
	filter := "properties/severity eq 'High' or properties/incidentNumber lt 0"
	next := v.wsPath(1, 0) + "/incidents" + apiV + "&$top=2&$orderby=" + url.QueryEscape("properties/createdTimeUtc asc") + "&$filter=" + url.QueryEscape(filter)
	var got []string
	for next != "" {
		status, m := v.doJSON("GET", next, tok, nil)
		wantStatus(t, status, 200, m)
		for _, it := range m["value"].([]any) {
			got = append(got, it.(map[string]any)["name"].(string))
		}
		next, _ = m["nextLink"].(string)
		if next != "" {
			if !strings.Contains(next, "$filter="+filter) {
				t.Fatalf("nextLink %q: the filter is not carried unescaped", next)
			}
			u, err := url.Parse(next)
			if err != nil || u.Query().Get("$filter") != filter || u.Query().Get("$orderby") != "properties/createdTimeUtc asc" {
				t.Fatalf("nextLink %q does not parse back: %v", next, err)
			}
			u.RawQuery = u.Query().Encode() // what a client must do
			next = u.String()
		}
	}
	want := []string{names[0], names[2], names[4]}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	// Default order: newest first.
	_, m := v.doJSON("GET", v.wsPath(1, 0)+"/incidents"+apiV, tok, nil)
	if first := m["value"].([]any)[0].(map[string]any)["name"]; first != names[4] {
		t.Errorf("default order starts with %v", first)
	}
}

func TestSentinelList_ClassificationUndeterminedFilterFindsNothing_KnownServiceBug(t *testing.T) {
	v := newEnv(t, Options{IncidentsPerTenant: -1})
	c, _ := v.e.CreateIncident("2", NewIncident{Title: "x", Where: "sentinel"})
	if err := v.e.PatchIncident("2", c.SentinelID, []byte(`{"status":"Closed","classification":"Undetermined"}`)); err != nil {
		t.Fatal(err)
	}
	tok := v.armToken(2)
	_, m := v.doJSON("GET", v.wsPath(2, 0)+"/incidents"+apiV+"&$filter="+url.QueryEscape("properties/classification eq 'Undetermined'"), tok, nil)
	if n := len(m["value"].([]any)); n != 0 {
		t.Errorf("filter on Undetermined found %d (the real service finds none)", n)
	}
	_, m = v.doJSON("GET", v.wsPath(2, 0)+"/incidents"+apiV+"&$filter="+url.QueryEscape("properties/status eq 'closed'"), tok, nil)
	if n := len(m["value"].([]any)); n != 1 {
		t.Errorf("filter on status found %d", n)
	}
}

func TestSentinelRawSpacesInURL_Return400InvalidURL(t *testing.T) {
	v := newEnv(t, Options{})
	// Over HTTP/2 (which httptest negotiates) a raw space reaches the handler.
	resp, b := v.do("GET", v.wsPath(1, 0)+"/incidents"+apiV+"&$filter=properties/status eq 'New'", v.armToken(1), nil)
	if resp.StatusCode != 400 || !strings.Contains(string(b), "HTTP Error 400. The request URL is invalid.") {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
}

func sentinelBody(props map[string]any) map[string]any { return map[string]any{"properties": props} }

func TestSentinelPut_CreateUpdateValidationAndEtag(t *testing.T) {
	v := newEnv(t, Options{IncidentsPerTenant: -1})
	tok := v.armToken(2)
	path := v.wsPath(2, 0) + "/incidents/73e01a99-5cd7-4139-a149-9f2736ff2ab5" + apiV
	create := loadSample(t, "sentinel/2025-12-01_CreateIncident.json")["parameters"].(map[string]any)["incident"].(map[string]any)
	props := create["properties"].(map[string]any)
	props["owner"] = map[string]any{"objectId": v.tenant(2).Users[0].ObjectID}
	status, m := v.doJSON("PUT", path, tok, create) // carries a (meaningless) etag: ignored on create
	wantStatus(t, status, 201, m)
	want := loadSample(t, "sentinel/2025-12-01_CreateIncident.json")["responses"].(map[string]any)["201"].(map[string]any)["body"].(map[string]any)
	compareShape(t, "create response", want, m, true)
	p := m["properties"].(map[string]any)
	if p["providerName"] != "Azure Sentinel" || p["status"] != "Closed" || p["classificationReason"] != "IncorrectAlertLogic" {
		t.Errorf("created %v", p)
	}
	owner := p["owner"].(map[string]any)
	u := v.tenant(2).Users[0]
	if owner["userPrincipalName"] != u.UPN || owner["assignedTo"] != u.DisplayName || owner["email"] != u.Email {
		t.Errorf("owner not filled from objectId: %v", owner)
	}
	etag1 := m["etag"].(string)

	// Update with the current etag: 200, new etag; readonly fields ignored.
	upd := sentinelBody(map[string]any{"title": "renamed", "severity": "low", "status": "active", "incidentNumber": 1,
		"additionalData": map[string]any{"alertsCount": 99}, "labels": []any{map[string]any{"labelName": "vip", "labelType": "User"}}})
	upd["etag"] = etag1
	v.e.Advance(time.Minute)
	status, m = v.doJSON("PUT", path, tok, upd)
	wantStatus(t, status, 200, m)
	p = m["properties"].(map[string]any)
	if m["etag"] == etag1 || p["severity"] != "Low" || p["status"] != "Active" || p["title"] != "renamed" ||
		p["incidentNumber"] == float64(1) || p["lastModifiedTimeUtc"] != fmtTime(testBase.Add(time.Minute)) {
		t.Errorf("update: %v", m)
	}
	// PUT replaces: the owner omitted above is now unassigned, classification cleared.
	if p["owner"].(map[string]any)["objectId"] != nil || p["classification"] != nil {
		t.Errorf("full replacement kept owner %v / classification %v", p["owner"], p["classification"])
	}
	// The stale etag is refused with the observed body.
	status, m = v.doJSON("PUT", path, tok, upd)
	wantStatus(t, status, 409, m)
	conflict := loadSample(t, "sentinel/observed_409_etag_conflict.json")
	compareShape(t, "409", conflict["error"].(map[string]any), m["error"].(map[string]any), true)
	if code, msg := errBody(t, m); code != "Conflict" || msg != "Newer version of resource '73e01a99-5cd7-4139-a149-9f2736ff2ab5' exists. Data was not saved" {
		t.Errorf("409: %q %q", code, msg)
	}

	cases := []struct {
		name  string
		props map[string]any
		msg   string
	}{
		{"missing title", map[string]any{"severity": "High", "status": "New"}, "The title field is required."},
		{"bad severity", map[string]any{"title": "t", "severity": "Critical", "status": "New"}, "The severity field is required and must be one of High, Medium, Low, Informational; got 'Critical'."},
		{"missing status", map[string]any{"title": "t", "severity": "High"}, "The status field is required and must be one of New, Active, Closed; got ''."},
		{"closed without classification", map[string]any{"title": "t", "severity": "High", "status": "Closed"}, "Incident with status 'Closed' must have classification."},
		{"closed BenignPositive without reason", map[string]any{"title": "t", "severity": "High", "status": "Closed", "classification": "BenignPositive"}, "classification 'BenignPositive' must have classificationReason."},
		{"closed TruePositive without reason", map[string]any{"title": "t", "severity": "High", "status": "Closed", "classification": "TruePositive"}, "classification 'TruePositive' must have classificationReason."},
		{"bad classification", map[string]any{"title": "t", "severity": "High", "status": "Closed", "classification": "Maybe"}, "The classification 'Maybe' is not valid."},
		{"long description", map[string]any{"title": "t", "severity": "High", "status": "New", "description": strings.Repeat("d", 5001)}, "The description exceeds the maximum length of 5000 characters."},
	}
	for _, c := range cases {
		status, m := v.doJSON("PUT", path, tok, sentinelBody(c.props))
		wantStatus(t, status, 400, m)
		if code, msg := errBody(t, m); code != "BadRequest" || !strings.HasPrefix(msg, c.msg) {
			t.Errorf("%s: %q %q", c.name, code, msg)
		}
	}
	// The message text of the reason rule is the observed one.
	obs, err := os.ReadFile(samplesDir + "/sentinel/observed_400_classification_reason_required.txt")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(obs), "[BadRequest 400] classification 'BenignPositive' must have classificationReason.") {
		t.Fatalf("observed sample changed: %s", obs)
	}
	// Undetermined closes without a reason.
	status, m = v.doJSON("PUT", path, tok, sentinelBody(map[string]any{"title": "t", "severity": "High", "status": "Closed", "classification": "undetermined"}))
	wantStatus(t, status, 200, m)
	status, m = v.doJSON("PUT", path, tok, "{")
	wantStatus(t, status, 400, m)
	if code, _ := errBody(t, m); code != "InvalidRequestContent" {
		t.Errorf("bad JSON: %q", code)
	}
	status, m = v.doJSON("PUT", path, tok, map[string]any{"etag": "x"})
	wantStatus(t, status, 400, m)

	// Delete: 200, then 204.
	resp, _ := v.do("DELETE", path, tok, nil)
	if resp.StatusCode != 200 {
		t.Errorf("delete: %d", resp.StatusCode)
	}
	resp, _ = v.do("DELETE", path, tok, nil)
	if resp.StatusCode != 204 {
		t.Errorf("second delete: %d", resp.StatusCode)
	}
}

func TestSentinelComments_PutListGetDeleteAndLimits(t *testing.T) {
	v := newEnv(t, Options{IncidentsPerTenant: -1, Limits: &Limits{ARMReadBurst: 1000, ARMReadPerSecond: 100, ARMWriteBurst: 1000, ARMWritePerSecond: 100}})
	c, _ := v.e.CreateIncident("1", NewIncident{Title: "x"})
	tok := v.armToken(1)
	base := v.wsPath(1, 0) + "/incidents/" + c.SentinelID + "/comments"
	sample := loadSample(t, "sentinel/2025-12-01_CreateIncidentComment.json")["responses"].(map[string]any)["201"].(map[string]any)["body"].(map[string]any)
	status, m := v.doJSON("PUT", base+"/c-1"+apiV, tok, sentinelBody(map[string]any{"message": "hello"}))
	wantStatus(t, status, 201, m)
	compareShape(t, "comment", sample, m, true)
	compareShape(t, "comment properties", sample["properties"].(map[string]any), m["properties"].(map[string]any), true)
	if strings.HasPrefix(m["etag"].(string), `"`) {
		t.Errorf("comment etag %v is quoted", m["etag"])
	}
	status, m = v.doJSON("PUT", base+"/c-1"+apiV, tok, sentinelBody(map[string]any{"message": "edited"}))
	wantStatus(t, status, 200, m)
	if m["properties"].(map[string]any)["message"] != "edited" {
		t.Errorf("edit: %v", m)
	}
	status, m = v.doJSON("GET", base+apiV, tok, nil)
	wantStatus(t, status, 200, m)
	compareShape(t, "comment list", loadSample(t, "sentinel/2025-12-01_GetAllIncidentComments.json")["responses"].(map[string]any)["200"].(map[string]any)["body"].(map[string]any), m, true)
	if g := v.e.graphView(t, 1, c.GraphID); g["comments"].([]any)[0].(map[string]any)["comment"] != "edited" {
		t.Errorf("Graph view: %v", g["comments"])
	}
	status, m = v.doJSON("GET", base+"/missing"+apiV, tok, nil)
	wantStatus(t, status, 404, m)
	for _, bad := range []struct {
		body any
		msg  string
	}{
		{sentinelBody(map[string]any{}), "The message field is required."},
		{sentinelBody(map[string]any{"message": strings.Repeat("x", 30_001)}), "The comment message has 30001 characters; the maximum is 30000."},
	} {
		status, m := v.doJSON("PUT", base+"/c-2"+apiV, tok, bad.body)
		wantStatus(t, status, 400, m)
		if _, msg := errBody(t, m); msg != bad.msg {
			t.Errorf("%q", msg)
		}
	}
	status, _ = v.doJSON("PUT", base+"/c-2"+apiV, tok, sentinelBody(map[string]any{"message": strings.Repeat("x", 30_000)}))
	wantStatus(t, status, 201, nil)
	for i := 3; i <= 100; i++ {
		status, m := v.doJSON("PUT", base+"/c-"+itoa(i)+apiV, tok, sentinelBody(map[string]any{"message": "m"}))
		wantStatus(t, status, 201, m)
	}
	status, m = v.doJSON("PUT", base+"/c-101"+apiV, tok, sentinelBody(map[string]any{"message": "one too many"}))
	wantStatus(t, status, 400, m)
	if _, msg := errBody(t, m); !strings.Contains(msg, "maximum of 100 comments") {
		t.Errorf("%q", msg)
	}
	resp, _ := v.do("DELETE", base+"/c-1"+apiV, tok, nil)
	if resp.StatusCode != 200 {
		t.Errorf("delete: %d", resp.StatusCode)
	}
	resp, _ = v.do("DELETE", base+"/c-1"+apiV, tok, nil)
	if resp.StatusCode != 204 {
		t.Errorf("delete again: %d", resp.StatusCode)
	}
}

func TestSentinelAlerts_ShapeAndDefenderForCloudStatuses(t *testing.T) {
	v := newEnv(t, Options{IncidentsPerTenant: -1})
	c, err := v.e.CreateIncident("2", NewIncident{Title: "dfc", Where: "sentinel", Workspace: v.tenant(2).Sentinel[1].Workspace,
		Alerts: []NewAlert{{Title: "a1"}, {Title: "a2"}}})
	if err != nil {
		t.Fatal(err)
	}
	tok := v.armToken(2)
	path := v.wsPath(2, 1) + "/incidents/" + c.SentinelID + "/alerts" + apiV
	status, m := v.doJSON("POST", path, tok, nil)
	wantStatus(t, status, 200, m)
	sample := loadSample(t, "sentinel/2025-12-01_GetAllIncidentAlerts.json")["responses"].(map[string]any)["200"].(map[string]any)["body"].(map[string]any)
	sa := sample["value"].([]any)[0].(map[string]any)
	for _, a := range m["value"].([]any) {
		am := a.(map[string]any)
		compareShape(t, "alert", sa, am, true)
		compareShape(t, "alert properties", sa["properties"].(map[string]any), am["properties"].(map[string]any), false)
		if am["properties"].(map[string]any)["productName"] != "Azure Security Center" {
			t.Errorf("productName %v", am["properties"].(map[string]any)["productName"])
		}
	}
	before, _ := v.e.IncidentViews("2", c.SentinelID)
	if err := v.e.SetAlertStatus("2", c.AlertIDs[0], "Dismissed", ""); err != nil {
		t.Fatal(err)
	}
	if err := v.e.SetAlertStatus("2", c.AlertIDs[1], "InProgress", ""); err != nil {
		t.Fatal(err)
	}
	_, m = v.doJSON("POST", path, tok, nil)
	var statuses []string
	for _, a := range m["value"].([]any) {
		statuses = append(statuses, a.(map[string]any)["properties"].(map[string]any)["status"].(string))
	}
	if !slices.Equal(statuses, []string{"Dismissed", "InProgress"}) {
		t.Errorf("statuses %v", statuses)
	}
	after, _ := v.e.IncidentViews("2", c.SentinelID)
	if after["version"] != before["version"] {
		t.Error("a Defender for Cloud alert change touched the Sentinel-only incident")
	}
	// Closing the incident resolves its open alerts (Defender for Cloud bi-directional sync).
	if err := v.e.PatchIncident("2", c.SentinelID, []byte(`{"status":"Closed","classification":"TruePositive","classificationReason":"SuspiciousActivity"}`)); err != nil {
		t.Fatal(err)
	}
	_, m = v.doJSON("POST", path, tok, nil)
	statuses = nil
	for _, a := range m["value"].([]any) {
		statuses = append(statuses, a.(map[string]any)["properties"].(map[string]any)["status"].(string))
	}
	if !slices.Equal(statuses, []string{"Dismissed", "Resolved"}) {
		t.Errorf("after close: %v", statuses)
	}
	status, m = v.doJSON("POST", v.wsPath(2, 1)+"/incidents/nope/alerts"+apiV, tok, nil)
	wantStatus(t, status, 404, m)
}

func TestMirroring_GraphChangesShowInSentinelAndBack(t *testing.T) {
	v := newEnv(t, Options{IncidentsPerTenant: -1})
	c, _ := v.e.CreateIncident("1", NewIncident{Title: "mirrored", Severity: "medium"})
	gtok, atok := v.graphToken(1), v.armToken(1)
	spath := v.wsPath(1, 0) + "/incidents/" + c.SentinelID + apiV
	_, s0 := v.doJSON("GET", spath, atok, nil)
	p := s0["properties"].(map[string]any)
	if p["providerName"] != "Microsoft XDR" || p["providerIncidentId"] != c.GraphID ||
		p["additionalData"].(map[string]any)["providerIncidentUrl"] != "https://security.microsoft.com/incident2/"+c.GraphID+"/overview?tid="+v.tenant(1).TenantID {
		t.Fatalf("mirror fields: %v", p)
	}
	v.e.Advance(time.Minute)
	u := v.tenant(1).Users[2]
	status, g := v.doJSON("PATCH", incidentsPath+"/"+c.GraphID, gtok, map[string]any{"status": "resolved", "classification": "falsePositive",
		"determination": "notEnoughDataToValidate", "assignedTo": u.UPN, "customTags": []string{"x"}, "resolvingComment": "fp"})
	wantStatus(t, status, 200, g)
	_, s1 := v.doJSON("GET", spath, atok, nil)
	p = s1["properties"].(map[string]any)
	owner := p["owner"].(map[string]any)
	if s1["etag"] == s0["etag"] || p["status"] != "Closed" || p["classification"] != "FalsePositive" || p["classificationReason"] != "InaccurateData" ||
		p["classificationComment"] != "fp" || owner["objectId"] != u.ObjectID || p["lastModifiedTimeUtc"] != g["lastUpdateDateTime"] {
		t.Fatalf("Sentinel view after Graph PATCH: %v", s1)
	}
	// Back: a Sentinel PUT reopens it and Graph shows it.
	v.e.Advance(time.Minute)
	body := map[string]any{"etag": s1["etag"], "properties": map[string]any{"title": "mirrored", "severity": "High", "status": "New",
		"owner": map[string]any{"objectId": u.ObjectID}, "labels": []any{map[string]any{"labelName": "x"}}}}
	status, s2 := v.doJSON("PUT", spath, atok, body)
	wantStatus(t, status, 200, s2)
	_, g2 := v.doJSON("GET", incidentsPath+"/"+c.GraphID, gtok, nil)
	if g2["status"] != "active" || g2["severity"] != "high" || g2["classification"] != "unknown" ||
		g2["lastModifiedBy"] != "API-App:"+v.tenant(1).ClientID || g2["lastUpdateDateTime"] != s2["properties"].(map[string]any)["lastModifiedTimeUtc"] {
		t.Fatalf("Graph view after Sentinel PUT: %v", g2)
	}
}
