package emulator

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"
)

func gzipBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	return buf.Bytes()
}

// ingestionToken gets a token for the Logs Ingestion audience, as azlogs asks for it.
func (v *testEnv) ingestionToken() string {
	v.t.Helper()
	li := v.info.LogsIngestion
	status, m := v.tokenResp(li.TenantID, url.Values{"grant_type": {"client_credentials"}, "client_id": {li.ClientID},
		"client_secret": {li.ClientSecret}, "scope": {"https://monitor.azure.com//.default"}})
	if status != 200 {
		v.t.Fatalf("ingestion token: %d %v", status, m)
	}
	return m["access_token"].(string)
}

func (v *testEnv) ingestPath() string {
	li := v.info.LogsIngestion
	return "/dataCollectionRules/" + li.DCRImmutableID + "/streams/" + li.Stream + "?api-version=2023-01-01"
}

func TestIngestion_AcceptsArraysPlainAndGzip_Returns204(t *testing.T) {
	v := newEnv(t, Options{})
	tok := v.ingestionToken()
	sample, err := json.Marshal(loadSample(t, "logs_ingestion/2023-01-01_post_IngestUsingDataCollectionRule.json")["parameters"].(map[string]any)["body"])
	if err != nil {
		t.Fatal(err)
	}
	resp, b := v.do("POST", v.ingestPath(), tok, sample)
	if resp.StatusCode != 204 || len(b) != 0 {
		t.Fatalf("plain: %d %s", resp.StatusCode, b)
	}
	resp, b = v.do("POST", v.ingestPath(), tok, gzipBytes(t, sample), "Content-Encoding", "gzip")
	if resp.StatusCode != 204 {
		t.Fatalf("gzip: %d %s", resp.StatusCode, b)
	}
	status, m := v.admin("GET", "/ingested/"+v.info.LogsIngestion.Stream, nil)
	wantStatus(t, status, 200, m)
	rows := m["rows"].([]any)
	if len(rows) != 4 || rows[0].(map[string]any)["Computer"] != "Computer1" {
		t.Fatalf("rows %v", rows)
	}
	resp, _ = v.do("DELETE", "/_emulator/ingested/"+v.info.LogsIngestion.Stream, "", nil)
	if resp.StatusCode != 204 || len(v.e.Ingested(v.info.LogsIngestion.Stream)) != 0 {
		t.Fatal("DELETE did not clear the rows")
	}
}

func TestIngestion_TruncatesFieldsAbove64KB(t *testing.T) {
	v := newEnv(t, Options{})
	long := strings.Repeat("é", 40_000) // 80,000 bytes
	body, _ := json.Marshal([]map[string]any{{"Long": long, "Nested": map[string]any{"x": strings.Repeat("a", 70_000)}, "Short": "s"}})
	resp, b := v.do("POST", v.ingestPath(), v.ingestionToken(), body)
	if resp.StatusCode != 204 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	var row map[string]any
	json.Unmarshal(v.e.Ingested(v.info.LogsIngestion.Stream)[0], &row)
	if s := row["Long"].(string); len(s) > 65536 || len(s) < 65530 || !strings.HasPrefix(long, s) {
		t.Errorf("Long kept %d bytes", len(s))
	}
	if s, ok := row["Nested"].(string); !ok || len(s) > 65536 {
		t.Errorf("Nested: %T %d", row["Nested"], len(s))
	}
	if row["Short"] != "s" {
		t.Errorf("Short = %v", row["Short"])
	}
}

func TestIngestion_Errors(t *testing.T) {
	v := newEnv(t, Options{})
	tok := v.ingestionToken()
	li := v.info.LogsIngestion
	big := []byte(`[{"x":"` + strings.Repeat("a", 1<<20) + `"}]`)
	random := make([]byte, 1<<20+10)
	rand.Read(random)
	cases := []struct {
		name         string
		path, token  string
		body         []byte
		headers      []string
		status       int
		code, prefix string
	}{
		{"object not array", v.ingestPath(), tok, []byte(`{"a":1}`), nil, 400, "InvalidPayload", "The request body must be a JSON array of objects."},
		{"array of scalars", v.ingestPath(), tok, []byte(`[1,2]`), nil, 400, "InvalidPayload", "The request body must be a JSON array of objects."},
		{"not json", v.ingestPath(), tok, []byte(`nope`), nil, 400, "InvalidPayload", "The request body must be a JSON array of objects."},
		{"unknown stream", "/dataCollectionRules/" + li.DCRImmutableID + "/streams/Custom-Other?api-version=2023-01-01", tok, []byte(`[]`), nil, 400, "InvalidStream", "Stream 'Custom-Other' is not declared"},
		{"unknown rule", "/dataCollectionRules/dcr-00000000000000000000000000000000/streams/" + li.Stream + "?api-version=2023-01-01", tok, []byte(`[]`), nil, 404, "NotFound", "Data collection rule with immutable Id 'dcr-00000000000000000000000000000000' not found."},
		{"bad api-version", "/dataCollectionRules/" + li.DCRImmutableID + "/streams/" + li.Stream + "?api-version=2020-01-01", tok, []byte(`[]`), nil, 400, "InvalidApiVersion", "The api-version '2020-01-01' is not supported."},
		{"over 1 MB uncompressed", v.ingestPath(), tok, big, nil, 413, "ContentLengthLimitExceeded", "Maximum allowed content length: 1048576 bytes (1 MB)."},
		{"over 1 MB compressed", v.ingestPath(), tok, random, []string{"Content-Encoding", "gzip"}, 413, "ContentLengthLimitExceeded", "Maximum allowed content length: 1048576 bytes (1 MB)."},
		{"over 1 MB once decompressed", v.ingestPath(), tok, gzipBytes(t, big), []string{"Content-Encoding", "gzip"}, 413, "ContentLengthLimitExceeded", "Maximum allowed content length: 1048576 bytes (1 MB)."},
		{"bad gzip", v.ingestPath(), tok, []byte("not gzip"), []string{"Content-Encoding", "gzip"}, 400, "InvalidContentEncoding", "The request body is not valid gzip data."},
		{"no token", v.ingestPath(), "", []byte(`[]`), nil, 401, "InvalidToken", "Authorization header is missing or empty."},
		{"graph audience", v.ingestPath(), v.graphToken(0), []byte(`[]`), nil, 401, "InvalidToken", "The audience 'https://graph.microsoft.com' of the authentication token is invalid"},
		{"customer tenant's token", v.ingestPath(), v.token(0, "https://monitor.azure.com/.default"), []byte(`[]`), nil, 403, "OperationFailed", "The authentication token provided does not have access to ingest data for the data collection rule with immutable Id '" + li.DCRImmutableID + "'."},
	}
	for _, c := range cases {
		resp, b := v.do("POST", c.path, c.token, c.body, c.headers...)
		var m map[string]any
		json.Unmarshal(b, &m)
		if resp.StatusCode != c.status {
			t.Errorf("%s: status %d, want %d: %.300s", c.name, resp.StatusCode, c.status, b)
			continue
		}
		code, msg := errBody(t, m)
		if code != c.code || !strings.HasPrefix(msg, c.prefix) || resp.Header.Get("x-ms-error-code") != c.code {
			t.Errorf("%s: %q %q (x-ms-error-code %q)", c.name, code, msg, resp.Header.Get("x-ms-error-code"))
		}
	}
	if n := len(v.e.Ingested(li.Stream)); n != 0 {
		t.Fatalf("failed uploads stored %d rows", n)
	}
	for _, c := range []struct{ name, token, msg string }{
		{"garbage token", "a.b.c", "The provided authentication token is invalid."},
		{"expired token", tok, "The provided authentication token has expired."},
	} {
		v.e.Advance(2 * time.Hour)
		status, m := v.doJSON("POST", v.ingestPath(), c.token, []byte(`[]`))
		wantStatus(t, status, 401, m)
		if code, msg := errBody(t, m); code != "InvalidToken" || msg != c.msg {
			t.Errorf("%s: %q %q", c.name, code, msg)
		}
	}
}
