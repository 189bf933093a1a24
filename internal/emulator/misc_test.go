package emulator

import (
	"net/http"
	"strings"
	"testing"
)

func TestMiscErrorPaths(t *testing.T) {
	v := newEnv(t, Options{IncidentsPerTenant: -1, CertTenants: -1, MaxHistory: 10, MaxIngestedRows: 2})
	c, _ := v.e.CreateIncident("1", NewIncident{Title: "x"})
	gtok, atok := v.graphToken(1), v.armToken(1)
	huge := strings.Repeat("x", 5<<20)

	// Bodies too large.
	status, m := v.doJSON("PATCH", incidentsPath+"/"+c.GraphID, gtok, `{"description":"`+huge+`"}`)
	wantStatus(t, status, 413, m)
	if code, _ := errBody(t, m); code != "RequestEntityTooLarge" {
		t.Errorf("graph 413 code %q", code)
	}
	status, m = v.doJSON("PUT", v.wsPath(1, 0)+"/incidents/"+c.SentinelID+apiV, atok, `{"properties":{"description":"`+huge+`"}}`)
	wantStatus(t, status, 413, m)

	// Methods a resource does not support.
	status, m = v.doJSON("PATCH", v.wsPath(1, 0)+"/incidents/"+c.SentinelID+apiV, atok, `{}`)
	wantStatus(t, status, 405, m)
	if code, _ := errBody(t, m); code != "MethodNotAllowed" {
		t.Errorf("arm 405 code %q", code)
	}
	status, m = v.doJSON("GET", "/"+v.tenant(0).TenantID+"/oauth2/v2.0/token", "", nil)
	wantStatus(t, status, 405, m)
	if m["error"] != "invalid_request" || !strings.HasPrefix(m["error_description"].(string), "AADSTS900561: The endpoint only accepts POST requests. Received a GET request.") {
		t.Errorf("token 405 %v", m)
	}
	resp, _ := v.do("GET", "/somewhere/else", "", nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown path: %d", resp.StatusCode)
	}
	status, m = v.doJSON("GET", "/nope.onmicrosoft.com/discovery/v2.0/keys", "", nil)
	wantStatus(t, status, 400, m)
	status, m = v.doJSON("GET", "/"+v.tenant(0).TenantID+"/discovery/v2.0/keys", "", nil)
	wantStatus(t, status, 200, m)

	// Sentinel label without a name; comment body that is not JSON.
	status, m = v.doJSON("PUT", v.wsPath(1, 0)+"/incidents/"+c.SentinelID+apiV, atok,
		sentinelBody(map[string]any{"title": "t", "severity": "Low", "status": "New", "labels": []any{map[string]any{"labelName": " "}}}))
	wantStatus(t, status, 400, m)
	if _, msg := errBody(t, m); msg != "The labelName field of a label is required." {
		t.Errorf("%q", msg)
	}
	status, m = v.doJSON("PUT", v.wsPath(1, 0)+"/incidents/"+c.SentinelID+"/comments/x"+apiV, atok, "[")
	wantStatus(t, status, 400, m)
	if code, _ := errBody(t, m); code != "InvalidRequestContent" {
		t.Errorf("%q", code)
	}

	// No certificate credential when Options.CertTenants is negative.
	status, m = v.admin("GET", "/tenants/0/certificate", nil)
	wantStatus(t, status, 400, m)

	// The change history and the ingested rows are bounded.
	for range 20 {
		v.doJSON("PATCH", incidentsPath+"/"+c.GraphID, gtok, map[string]any{"severity": []string{"low", "high"}[len(v.e.History())%2]})
	}
	_, h := v.admin("GET", "/history", nil)
	if n := len(h["history"].([]any)); n > 10 || h["dropped"].(float64) == 0 {
		t.Errorf("history kept %d, dropped %v", n, h["dropped"])
	}
	itok := v.ingestionToken()
	for range 3 {
		v.do("POST", v.ingestPath(), itok, []byte(`[{"a":1},{"a":2}]`))
	}
	_, rows := v.admin("GET", "/ingested/"+v.info.LogsIngestion.Stream, nil)
	if len(rows["rows"].([]any)) != 2 || rows["total"] != float64(6) {
		t.Errorf("ingested %v", rows)
	}
}
