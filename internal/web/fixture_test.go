package web_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/socsync/socsync/internal/config"
	"github.com/socsync/socsync/internal/httpapi"
	"github.com/socsync/socsync/internal/incident"
	"github.com/socsync/socsync/internal/store"
	"github.com/socsync/socsync/internal/store/storetest"
	"github.com/socsync/socsync/internal/web"
)

const (
	tenantA = "aaaaaaaa-0000-0000-0000-00000000000a"
	tenantB = "bbbbbbbb-0000-0000-0000-00000000000b"
	// password is every test user's password.
	password = "correct horse battery"
)

// fixture is the hub's HTTP handler (API with the UI mounted) over a real store: tenants Alpha
// (A) and Beta (B), three incidents of A and two of B, and the users admin, analyst-a
// (tenant A), viewer-b (tenant B) and analyst-b (tenant B).
type fixture struct {
	srv    *httptest.Server
	store  *store.Store
	clock  *storetest.Clock
	queue  *recordQueue
	ids    map[string][]string // tenant → incident ids, oldest first
	handle *web.Handler
}

type recordQueue struct {
	mu   sync.Mutex
	keys []store.IncidentKey
}

func (q *recordQueue) Enqueue(k store.IncidentKey) {
	q.mu.Lock()
	q.keys = append(q.keys, k)
	q.mu.Unlock()
}

func (q *recordQueue) queued() []store.IncidentKey {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]store.IncidentKey(nil), q.keys...)
}

var (
	hashOnce   sync.Once
	sharedHash string
)

// passwordHash hashes the test password once for all tests (argon2id is slow on purpose).
func passwordHash(t testing.TB) string {
	hashOnce.Do(func() {
		h, err := web.HashPassword(password)
		if err != nil {
			panic(err)
		}
		sharedHash = h
	})
	return sharedHash
}

func newFixture(t *testing.T, opts ...func(*web.Deps)) *fixture {
	t.Helper()
	ctx := context.Background()
	clock := storetest.NewClock()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "web.db"), store.Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	err = st.SyncTenants(ctx, []store.Tenant{{ID: tenantA, Name: "Alpha"}, {ID: tenantB, Name: "Beta"}},
		[]store.Source{{TenantID: tenantA, Kind: store.KindDefender}, {TenantID: tenantA, Kind: store.KindSentinel, Workspace: "sub/rg/ws"},
			{TenantID: tenantB, Kind: store.KindDefender}})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: st, clock: clock, queue: &recordQueue{}, ids: map[string][]string{}}
	for i, tenant := range []string{tenantA, tenantA, tenantA, tenantB, tenantB} {
		clock.Advance(time.Second)
		err := st.InTx(ctx, func(tx *store.Tx) error {
			inc := &incident.Incident{TenantID: tenant, Title: fmt.Sprintf("canary-%s-%d", tenant[:4], i),
				Fields:  incident.Fields{Status: incident.StatusNew, Severity: incident.SeverityHigh},
				Sources: []incident.Source{incident.SourceDefender}, AlertCount: 1}
			if i == 1 {
				inc.Severity = incident.SeverityLow
			}
			if _, err := tx.CreateIncident(ctx, inc, fmt.Sprintf("graph:%d", i), store.Change{}); err != nil {
				return err
			}
			f.ids[tenant] = append(f.ids[tenant], inc.ID)
			if _, err := tx.UpsertLink(ctx, &store.Link{TenantID: tenant, IncidentID: inc.ID, SourceID: store.SourceID(tenant, store.KindDefender, ""),
				Kind: store.LinkGraph, ExternalID: fmt.Sprint(i), URL: "https://security.microsoft.com/incidents/" + fmt.Sprint(i)}); err != nil {
				return err
			}
			_, err := tx.UpsertAlert(ctx, incident.Alert{TenantID: tenant, RemoteID: fmt.Sprintf("da%d", i), IncidentID: inc.ID,
				Title: "Suspicious process", Severity: incident.SeverityHigh, Status: incident.AlertNew, Version: clock.Now()},
				[]byte(`{"evidence":[{"@odata.type":"#microsoft.graph.security.deviceEvidence","deviceDnsName":"ws-`+fmt.Sprint(i)+`.contoso.com","verdict":"malicious"}]}`),
				clock.Now())
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	hash := passwordHash(t)
	for _, u := range []store.User{
		{Name: "admin", Role: httpapi.RoleAdmin},
		{Name: "analyst-a", Role: httpapi.RoleAnalyst, Tenants: []string{tenantA}},
		{Name: "viewer-b", Role: httpapi.RoleViewer, Tenants: []string{tenantB}},
		{Name: "analyst-b", Role: httpapi.RoleAnalyst, Tenants: []string{tenantB}},
	} {
		u.PasswordHash = hash
		if err := st.CreateUser(ctx, &u); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.CreateToken(ctx, &store.Token{Name: "analyst-a", Role: httpapi.RoleAnalyst, Tenants: []string{tenantA}}, "tok-analyst-a"); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{Server: config.Server{PublicURL: "http://socsync.example"}, Cloud: config.Cloud{Authority: config.DefaultAuthority},
		Tenants: []config.Tenant{{ID: tenantA, Name: "Alpha", Credential: config.Credential{ClientID: "55555555-5555-5555-5555-555555555555"}},
			{ID: tenantB, Name: "Beta", Credential: config.Credential{App: "shared"}}},
		Apps: []config.App{{Name: "shared", Credential: config.Credential{ClientID: "66666666-6666-6666-6666-666666666666"}}}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	d := web.Deps{Log: log, Store: st, Queue: f.queue, Config: cfg, Now: clock.Now,
		CredentialProblem: func(id string) error {
			if id == tenantB {
				return fmt.Errorf("entra: credential of tenant %s: tenants[1].credential: env:BETA_SECRET is not set", id)
			}
			return nil
		}}
	for _, o := range opts {
		o(&d)
	}
	f.handle = web.New(d)
	api := httpapi.New(httpapi.Deps{Log: log, Store: st, Metrics: prometheus.NewRegistry(), Queue: f.queue, Now: clock.Now,
		UI: f.handle, Principals: []httpapi.PrincipalSource{f.handle}})
	f.srv = httptest.NewServer(api)
	t.Cleanup(f.srv.Close)
	return f
}

// browser is an HTTP client with a cookie jar that does not follow redirects, like a browser
// session seen one response at a time.
type browser struct {
	t      *testing.T
	f      *fixture
	client *http.Client
}

func (f *fixture) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, f: f, client: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

type response struct {
	status int
	header http.Header
	body   string
}

func (b *browser) do(req *http.Request) response {
	b.t.Helper()
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: string(body)}
}

func (b *browser) get(path string) response {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.f.srv.URL+path, nil)
	return b.do(req)
}

func (b *browser) post(path string, form url.Values) response {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.f.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

func (b *browser) api(method, path, body string, header ...string) response {
	b.t.Helper()
	req, _ := http.NewRequest(method, b.f.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return b.do(req)
}

var hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// hidden returns the hidden inputs of the first form with that id on a page.
func hidden(t *testing.T, page, formID string) url.Values {
	t.Helper()
	i := strings.Index(page, `id="`+formID+`"`)
	if i < 0 {
		t.Fatalf("no form %q on the page", formID)
	}
	rest := page[i:]
	rest = rest[:strings.Index(rest, "</form>")]
	v := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(rest, -1) {
		v.Set(m[1], htmlUnescape(m[2]))
	}
	return v
}

func htmlUnescape(s string) string {
	return strings.NewReplacer("&amp;", "&", "&#43;", "+", "&#34;", `"`, "&#39;", "'", "&lt;", "<", "&gt;", ">").Replace(s)
}

// login signs a user in and returns the browser holding the session.
func (f *fixture) login(t *testing.T, name string) *browser {
	t.Helper()
	b := f.browser(t)
	page := b.get("/login")
	form := hidden(t, page.body, "login")
	form.Set("name", name)
	form.Set("password", password)
	r := b.post("/login", form)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/incidents" {
		t.Fatalf("sign-in of %s: %d %s\n%s", name, r.status, r.header.Get("Location"), r.body)
	}
	return b
}

// csrf returns the session's CSRF token as the pages carry it.
func (b *browser) csrf() string {
	b.t.Helper()
	page := b.get("/incidents")
	return hidden(b.t, page.body, "logout").Get("csrf")
}

func newIncident(tenant string, i int) *incident.Incident {
	return &incident.Incident{TenantID: tenant, Title: fmt.Sprintf("bulk %03d", i),
		Fields:  incident.Fields{Status: incident.StatusActive, Severity: []incident.Severity{incident.SeverityLow, incident.SeverityMedium, incident.SeverityHigh}[i%3]},
		Sources: []incident.Source{incident.SourceSentinel}}
}
