package chaos

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/socsync/socsync/internal/config"
	"github.com/socsync/socsync/internal/emulator"
	"github.com/socsync/socsync/internal/hub"
	"github.com/socsync/socsync/internal/hub/hubtest"
	"github.com/socsync/socsync/internal/store"
	"github.com/socsync/socsync/internal/web"
)

// TestR20_SecretsInInputsAndConfigs_NeverInLogsMetricsErrorsOrPages (R20): a hub whose
// configuration holds every kind of secret (client secrets of each tenant and of the
// multi-tenant and ingestion apps, a webhook token), with a revoked consent and a full run of
// collection, edits, comments and forwarding, is probed with wrong secrets everywhere one can
// be given (a wrong password at the login, wrong bearer tokens, wrong webhook tokens in the
// header and the query string). Then its debug log, /metrics, every page, every API answer it
// gave, the audit and the sink rows are searched: none holds a secret, a wrong secret, a
// password hash or an Entra token. (Config commands: TestConfigShow_NeverPrintsSecrets,
// TestCheckResources_NamesUnresolvableSecretsAndFiles; Entra errors:
// TestFor_WrongSecretIsDegradedAndNeverPrinted.)
func TestR20_SecretsInInputsAndConfigs_NeverInLogsMetricsErrorsOrPages(t *testing.T) {
	t.Parallel()
	const (
		webhookToken  = "r20-webhook-token-5b1f0c7e9d2a4f68"
		password      = "r20-Correct-Horse-Battery-9f3e"
		wrongPassword = "r20-wrong-password-c4d8e1"
		wrongBearer   = "ssk_r20_wrong_bearer_0a9b8c7d6e5f"
		wrongHook     = "r20-wrong-webhook-token-77aa31"
	)
	secretFile := filepath.Join(t.TempDir(), "splunk.token")
	if err := os.WriteFile(secretFile, []byte(webhookToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := startRun(t, hubtest.Options{Tenants: 3}, func(env *hubtest.Env) {
		env.Config.Webhooks = append(env.Config.Webhooks, config.Webhook{Name: "splunk", Kind: "splunk",
			Tenant: env.Info.Tenants[0].TenantID, Token: config.SecretRef("file:" + secretFile)})
		revoked := env.Info.Tenants[2]
		if err := env.Emulator.SetConsent(revoked.TenantID, revoked.ClientID, false, nil); err != nil {
			t.Fatal(err)
		}
	}, hub.Options{})
	hash, err := web.HashPassword(password)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store().CreateUser(context.Background(), &store.User{Name: "r20", PasswordHash: hash, Role: "admin"}); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, ti := range f.env.Info.Tenants[:2] {
		c := f.create(ti.TenantID, emulator.NewIncident{Title: "r20-" + ti.Name, Where: where(ti)})
		id := f.hubID(ti.TenantID, c.GraphID)
		f.edit(id, `{"severity":"high"}`)
		f.comment(id, "r20 comment")
		ids = append(ids, id)
	}
	var seen []string // every answer socsync gave
	base := "http://" + f.hub.Addr
	do := func(c *http.Client, req *http.Request) (int, string) {
		t.Helper()
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		seen = append(seen, fmt.Sprintf("%s %s → %d %v\n%s", req.Method, req.URL.Path, resp.StatusCode, resp.Header, b))
		return resp.StatusCode, string(b)
	}
	get := func(c *http.Client, path, bearer string) (int, string) {
		req, _ := http.NewRequest("GET", base+path, nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		return do(c, req)
	}
	post := func(c *http.Client, path, contentType, body string, header http.Header) (int, string) {
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
		req.Header = header.Clone()
		if req.Header == nil {
			req.Header = http.Header{}
		}
		req.Header.Set("Content-Type", contentType)
		return do(c, req)
	}

	// Wrong secrets wherever one can be given.
	probes := 0
	for _, path := range []string{"/api/v1/incidents", "/api/v1/incidents/" + ids[0], "/api/v1/tenants"} {
		if code, _ := get(http.DefaultClient, path, wrongBearer); code != http.StatusUnauthorized {
			t.Errorf("GET %s with a wrong token: %d, want 401", path, code)
		}
		probes++
	}
	alert := `{"sid":"r20-sid","search_name":"R20","result":{"host":"h1"}}`
	for _, h := range []http.Header{{"Authorization": {"Bearer " + wrongHook}}, {"X-Socsync-Timestamp": {fmt.Sprint(time.Now().Unix())}, "X-Socsync-Signature": {"sha256=" + wrongHook}}, nil} {
		path := "/api/v1/webhooks/splunk"
		if h == nil {
			path += "?token=" + wrongHook
		}
		if code, _ := post(http.DefaultClient, path, "application/json", alert, h); code != http.StatusNotFound {
			t.Errorf("webhook with a wrong token: %d, want 404 (as for an unknown webhook)", code)
		}
		probes++
	}
	if code, _ := post(http.DefaultClient, "/api/v1/webhooks/splunk?token="+webhookToken, "application/json", alert, nil); code/100 != 2 {
		t.Errorf("webhook with its token: %d", code)
	}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	login := func(pw string) int {
		_, page := get(browser, "/login", "")
		form := url.Values{"name": {"r20"}, "password": {pw}}
		for _, m := range regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`).FindAllStringSubmatch(page, -1) {
			form.Set(m[1], strings.ReplaceAll(m[2], "&#43;", "+"))
		}
		code, _ := post(browser, "/login", "application/x-www-form-urlencoded", form.Encode(), nil)
		return code
	}
	if code, _ := get(browser, "/incidents", ""); code != http.StatusSeeOther {
		t.Fatalf("the queue without a session: %d, want a redirect to the login", code)
	}
	login(wrongPassword)
	probes++
	if code := login(password); code != http.StatusSeeOther {
		t.Fatalf("login: %d", code)
	}
	f.settle()

	// Everything socsync shows.
	pages := []string{"/incidents", "/tenants", "/incidents/" + ids[0], "/incidents/" + ids[1]}
	for _, p := range pages {
		if code, _ := get(browser, p, ""); code != http.StatusOK {
			t.Errorf("page %s: %d", p, code)
		}
	}
	for _, p := range []string{"/api/v1/incidents", "/api/v1/tenants", "/api/v1/incidents/" + ids[0], "/metrics"} {
		if code, _ := get(http.DefaultClient, p, f.token); code != http.StatusOK {
			t.Errorf("%s: %d", p, code)
		}
	}
	var audit []string
	list, _ := f.store().ListIncidents(context.Background(), store.AllTenants(), store.ListFilter{}, store.ListPage{}, 1000)
	for _, si := range list {
		h, _ := f.store().History(context.Background(), si.TenantID, si.ID)
		audit = append(audit, fmt.Sprint(h))
	}
	var rows []string
	for _, r := range f.env.Emulator.Ingested(f.run.Stream) {
		rows = append(rows, string(r))
	}
	if !strings.Contains(strings.Join(seen, "\n"), "AADSTS") && !strings.Contains(f.logs.String(), "AADSTS") {
		t.Error("the revoked consent shows nowhere; the test did not exercise an Entra error")
	}

	secrets := []string{webhookToken, password, wrongPassword, wrongBearer, wrongHook, f.token, hash, "$argon2id$",
		f.env.Info.MultiTenantApp.ClientSecret, f.env.Info.LogsIngestion.ClientSecret}
	for _, ti := range f.env.Info.Tenants {
		secrets = append(secrets, ti.ClientSecret)
	}
	places := map[string]string{
		"the hub's debug log":   f.logs.String(),
		"the answers and pages": strings.Join(seen, "\n"),
		"the audit":             strings.Join(audit, "\n"),
		"the sink rows":         strings.Join(rows, "\n"),
	}
	bytes := 0
	for where, text := range places {
		noTokensIn(t, where, text, secrets...)
		bytes += len(text)
	}
	t.Logf("R20 figures: %d secrets and wrong secrets, %d probes with wrong secrets, %d answers and pages, %d KB of logs, answers, audit and sink rows searched",
		len(secrets), probes, len(seen), bytes/1024)
}
