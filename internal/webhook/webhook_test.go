package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/socsync/socsync/internal/config"
	"github.com/socsync/socsync/internal/forward"
	"github.com/socsync/socsync/internal/hub"
	"github.com/socsync/socsync/internal/hub/hubtest"
	"github.com/socsync/socsync/internal/incident"
	"github.com/socsync/socsync/internal/store"
	"github.com/socsync/socsync/internal/webhook"
)

// Secrets of the test webhook: distinctive, so that the log can be searched for them.
const (
	token      = "wh-tok-7f3a9c1e5b2d4f60a8e1c3b5d7f9a0b2"
	hmacSecret = "wh-hmac-0d2f4b6a8c1e3a5c7e9b1d3f5a7c9e0b"
	maxBody    = 8 << 10
)

type fixture struct {
	env    *hubtest.Env
	h      *hubtest.Running
	log    *hubtest.LogBuffer
	tenant string
}

// start runs a hub (against the emulator) with a Splunk webhook "splunk" for the second tenant,
// authenticated by token or HMAC, and its log captured at debug level.
func start(t *testing.T) *fixture {
	t.Helper()
	env := hubtest.New(t, hubtest.Options{Tenants: 2})
	tenant := strings.ToLower(env.Info.Tenants[1].TenantID)
	env.Config.Webhooks = []config.Webhook{{Name: "splunk", Kind: "splunk", Tenant: tenant,
		Token: "env:TEST_SPLUNK_TOKEN", HMACSecret: "env:TEST_SPLUNK_HMAC", MaxBody: maxBody}}
	secrets := map[string]string{"TEST_SPLUNK_TOKEN": token, "TEST_SPLUNK_HMAC": hmacSecret}
	lb := &hubtest.LogBuffer{}
	h := env.Start(t, hub.Options{Log: slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Getenv: func(k string) string { return secrets[k] }})
	return &fixture{env: env, h: h, log: lb, tenant: tenant}
}

// post delivers body to the webhook at path (with its query) and returns the status and the
// decoded answer.
func (f *fixture) post(t *testing.T, path string, body []byte, header http.Header) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+f.h.Addr+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("answer %d is not JSON: %s", resp.StatusCode, b)
	}
	return resp.StatusCode, m
}

func splunkAlert(sid string) []byte {
	return []byte(`{"result":{"sourcetype":"mongod","count":"8","urgency":"high","host":"db-01","_time":"1763800000"},
		"sid":"` + sid + `","results_link":"http://splunk.example.local:8000/app/search/@go?sid=` + sid + `",
		"search_name":"Brute force against mongod","owner":"admin","app":"search"}`)
}

func incidents(t *testing.T, st *store.Store) []store.StoredIncident {
	t.Helper()
	list, err := st.ListIncidents(context.Background(), store.AllTenants(), store.ListFilter{Source: "webhook"}, store.ListPage{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func TestWebhook_SplunkDeliveryCreatesOneIncidentAndAReplayChangesNothing(t *testing.T) {
	f := start(t)
	st := f.h.Hub.Store()
	ctx := context.Background()
	sid := "scheduler__admin__search__RMD5e461_at_1763800000_42"
	status, ans := f.post(t, "/api/v1/webhooks/splunk?token="+token, splunkAlert(sid), nil)
	if status != http.StatusCreated || ans["status"] != "created" {
		t.Fatalf("delivery: %d %v", status, ans)
	}
	id, _ := ans["incident_id"].(string)

	list := incidents(t, st)
	if len(list) != 1 || list[0].ID != id {
		t.Fatalf("webhook incidents: %+v", list)
	}
	inc := list[0]
	if inc.TenantID != f.tenant || inc.Title != "Brute force against mongod" || inc.Severity != incident.SeverityHigh ||
		inc.Status != incident.StatusNew || inc.AlertCount != 1 || len(inc.Sources) != 1 || inc.Sources[0] != incident.SourceWebhook || inc.Version != 1 {
		t.Errorf("incident %+v", inc)
	}
	links, _ := st.Links(ctx, inc.TenantID, inc.ID)
	if len(links) != 1 || links[0].Kind != store.LinkWebhook || links[0].ExternalID != sid || !strings.HasSuffix(links[0].URL, "sid="+sid) {
		t.Fatalf("links %+v", links)
	}
	var raw map[string]any
	if err := json.Unmarshal(links[0].Raw, &raw); err != nil || raw["result"].(map[string]any)["host"] != "db-01" {
		t.Errorf("the payload is not kept as the link's raw: %s", links[0].Raw)
	}

	// A replay of the same sid is acknowledged and changes nothing.
	status, ans = f.post(t, "/api/v1/webhooks/splunk?token="+token, splunkAlert(sid), nil)
	if status != http.StatusOK || ans["status"] != "duplicate" || ans["incident_id"] != id {
		t.Errorf("replay: %d %v", status, ans)
	}
	if again := incidents(t, st); len(again) != 1 || again[0].Version != 1 {
		t.Errorf("after the replay: %+v", again)
	}

	// Shown in the API like any incident, and forwarded once.
	api := f.h.Token(t, "viewer", "viewer", f.tenant)
	var page struct {
		Items []map[string]any `json:"items"`
	}
	if code := f.h.API(t, api, "GET", "/api/v1/incidents?source=webhook", "", &page); code != 200 || len(page.Items) != 1 || page.Items[0]["id"] != id {
		t.Errorf("API: %d %v", code, page.Items)
	}
	var rows []forward.Row
	hubtest.Eventually(t, "the incident is forwarded", func() bool {
		rows = rows[:0]
		for _, raw := range f.env.Emulator.Ingested(f.env.Info.LogsIngestion.Stream) {
			var r forward.Row
			json.Unmarshal(raw, &r)
			if r.IncidentKey == id {
				rows = append(rows, r)
			}
		}
		n, _ := st.OutboxPending(ctx)
		return len(rows) > 0 && n == 0
	})
	r := rows[0]
	if len(rows) != 1 || r.Source != "webhook" || r.WebhookName != "splunk" || r.WebhookAlertID != sid || r.Severity != "high" ||
		r.CustomerTenantID != f.tenant || len(r.ProductNames) != 1 || r.ProductNames[0] != "Splunk" || r.FirstActivityTime.Unix() != 1763800000 {
		t.Errorf("forwarded rows %+v", rows)
	}
}

func TestWebhook_RefusesBadDeliveriesWithTheRightStatusAndNeverLogsTheSecret(t *testing.T) {
	f := start(t)
	good := splunkAlert("sid-1")
	big := []byte(`{"sid":"sid-big","result":{"raw":"` + strings.Repeat("x", maxBody) + `"}}`)
	cases := []struct {
		name   string
		path   string
		body   []byte
		status int
		field  string
	}{
		{"unknown webhook", "/api/v1/webhooks/nosuch?token=" + token, good, 404, ""},
		{"wrong token", "/api/v1/webhooks/splunk?token=" + token + "x", good, 404, ""},
		{"token of another length", "/api/v1/webhooks/splunk?token=short", good, 404, ""},
		{"no token", "/api/v1/webhooks/splunk", good, 404, ""},
		{"body over max_body", "/api/v1/webhooks/splunk?token=" + token, big, 413, ""},
		{"body over max_body, no token", "/api/v1/webhooks/splunk", big, 413, ""},
		{"malformed JSON", "/api/v1/webhooks/splunk?token=" + token, []byte(`{"sid": "a",`), 400, ""},
		{"not an object", "/api/v1/webhooks/splunk?token=" + token, []byte(`["sid"]`), 400, ""},
		{"no sid", "/api/v1/webhooks/splunk?token=" + token, []byte(`{"search_name":"x"}`), 400, "sid"},
		{"sid not a string", "/api/v1/webhooks/splunk?token=" + token, []byte(`{"sid":42}`), 400, "sid"},
		{"result not an object", "/api/v1/webhooks/splunk?token=" + token, []byte(`{"sid":"s","result":"x"}`), 400, "result"},
	}
	answers := map[int]string{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, ans := f.post(t, c.path, c.body, nil)
			e, _ := ans["error"].(map[string]any)
			if status != c.status || e == nil || e["message"] == "" {
				t.Fatalf("%d %v, want %d with an error", status, ans, c.status)
			}
			if c.field != "" && e["field"] != c.field {
				t.Errorf("field %v, want %s", e["field"], c.field)
			}
			b, _ := json.Marshal(ans)
			if prev, ok := answers[status]; ok && status == 404 && prev != string(b) {
				t.Errorf("404 answers differ (%s vs %s): they must not tell an unknown name from a wrong token", prev, b)
			}
			answers[status] = string(b)
		})
	}
	if n := len(incidents(t, f.h.Hub.Store())); n != 0 {
		t.Errorf("%d incidents from refused deliveries", n)
	}
	// One good delivery, so that the log has the lines of a success too.
	if status, _ := f.post(t, "/api/v1/webhooks/splunk?token="+token, good, nil); status != 201 {
		t.Fatalf("good delivery: %d", status)
	}
	metrics := get(t, "http://"+f.h.Addr+"/metrics")
	log := f.log.String()
	if !strings.Contains(log, "webhook delivery refused") || !strings.Contains(log, "webhook alert taken") {
		t.Fatalf("the log lacks the deliveries:\n%s", log)
	}
	for _, secret := range []string{token, hmacSecret, token[:12]} {
		if strings.Contains(log, secret) {
			t.Errorf("the log holds a secret (%s…):\n%s", secret[:6], log)
		}
		if strings.Contains(metrics, secret) {
			t.Errorf("the metrics hold a secret (%s…)", secret[:6])
		}
	}
	if !strings.Contains(metrics, `socsync_webhook_deliveries_total{result="refused",webhook="splunk"} 3`) {
		t.Errorf("refusals not counted:\n%s", grep(metrics, "socsync_webhook"))
	}
}

func TestWebhook_HMACSignatureIsTakenWithinFiveMinutesOnly(t *testing.T) {
	f := start(t)
	body := splunkAlert("sid-signed")
	now := time.Now()
	sign := func(at time.Time, b []byte) http.Header {
		ts := strconv.FormatInt(at.Unix(), 10)
		return http.Header{webhook.HeaderTimestamp: {ts}, webhook.HeaderSignature: {webhook.Sign(hmacSecret, ts, b)}}
	}
	cases := []struct {
		name   string
		header http.Header
		status int
	}{
		{"signed ten minutes ago", sign(now.Add(-10*time.Minute), body), 404},
		{"signed ten minutes ahead", sign(now.Add(10*time.Minute), body), 404},
		{"signature of another body", sign(now, splunkAlert("other")), 404},
		{"signed with another secret", http.Header{webhook.HeaderTimestamp: {strconv.FormatInt(now.Unix(), 10)},
			webhook.HeaderSignature: {webhook.Sign("not-the-secret", strconv.FormatInt(now.Unix(), 10), body)}}, 404},
		{"no timestamp", http.Header{webhook.HeaderSignature: sign(now, body)[webhook.HeaderSignature]}, 404},
		{"signed now", sign(now, body), 201},
		{"signed a minute ago, replayed", sign(now.Add(-time.Minute), body), 200},
	}
	for _, c := range cases {
		if status, ans := f.post(t, "/api/v1/webhooks/splunk", body, c.header); status != c.status {
			t.Errorf("%s: %d %v, want %d", c.name, status, ans, c.status)
		}
	}
	if n := len(incidents(t, f.h.Hub.Store())); n != 1 {
		t.Errorf("%d incidents, want 1", n)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return fmt.Sprint(out)
}
