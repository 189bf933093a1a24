package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/socsync/socsync/internal/web"
)

func TestLogin_StartsASessionWithAFreshCookieAndLogoutEndsIt(t *testing.T) {
	f := newFixture(t)
	b := f.login(t, "Analyst-A") // names are case-insensitive
	u, _ := url.Parse(f.srv.URL)
	cookies := b.client.Jar.Cookies(u)
	if len(cookies) != 1 || cookies[0].Name != "socsync_session" || len(cookies[0].Value) < 40 {
		t.Fatalf("cookies after sign-in: %v", cookies)
	}
	queue := b.get("/incidents")
	if queue.status != 200 || !strings.Contains(queue.body, `id="user">analyst-a<`) {
		t.Fatalf("queue after sign-in: %d", queue.status)
	}
	sid := cookies[0].Value
	if _, err := f.store.SessionByID(context.Background(), sid); err != nil {
		t.Fatalf("the session is not stored: %v", err)
	}
	r := b.post("/logout", url.Values{"csrf": {b.csrf()}})
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/login" {
		t.Fatalf("sign-out: %d %s", r.status, r.header.Get("Location"))
	}
	if _, err := f.store.SessionByID(context.Background(), sid); err == nil {
		t.Error("the session outlived sign-out")
	}
	// The old cookie, replayed, no longer works.
	replay := f.browser(t)
	replay.client.Jar.SetCookies(u, []*http.Cookie{{Name: "socsync_session", Value: sid}})
	if r := replay.get("/incidents"); r.status != http.StatusSeeOther {
		t.Errorf("a signed-out session's cookie still opens the queue: %d", r.status)
	}
}

func TestSessionCookie_IsHttpOnlyAndSameSite(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	form := hidden(t, b.get("/login").body, "login")
	form.Set("name", "admin")
	form.Set("password", password)
	r := b.post("/login", form)
	var set string
	for _, c := range r.header.Values("Set-Cookie") {
		if strings.HasPrefix(c, "socsync_session=") {
			set = c
		}
	}
	if !strings.Contains(set, "HttpOnly") || !strings.Contains(set, "SameSite=Lax") || !strings.Contains(set, "Path=/") {
		t.Errorf("session cookie = %q; want HttpOnly, SameSite=Lax, Path=/", set)
	}
}

func TestLogin_WrongPasswordIsRefusedAlikeForUnknownUsers(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	for _, name := range []string{"admin", "nobody"} {
		form := hidden(t, b.get("/login").body, "login")
		form.Set("name", name)
		form.Set("password", "wrong password!")
		r := b.post("/login", form)
		if r.status != http.StatusUnauthorized || !strings.Contains(r.body, "Wrong user name or password.") {
			t.Errorf("%s with a wrong password: %d", name, r.status)
		}
	}
	u, _ := url.Parse(f.srv.URL)
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == "socsync_session" {
			t.Error("a failed sign-in set a session cookie")
		}
	}
}

func TestLogin_IsThrottledPerUserAndPerAddress(t *testing.T) {
	f := newFixture(t, func(d *web.Deps) { d.MaxFailuresPerUser, d.MaxFailuresPerAddress = 3, 5 })
	attempt := func(name, pw string) int {
		b := f.browser(t)
		form := hidden(t, b.get("/login").body, "login")
		form.Set("name", name)
		form.Set("password", pw)
		return b.post("/login", form).status
	}
	for range 3 {
		attempt("admin", "wrong password!")
	}
	// The right password no longer helps admin while the window lasts…
	if got := attempt("admin", password); got != http.StatusTooManyRequests {
		t.Fatalf("sign-in after 3 failures: %d, want 429", got)
	}
	// …and the window passing lets admin in again.
	f.clock.Advance(16 * time.Minute)
	if got := attempt("admin", password); got != http.StatusSeeOther {
		t.Fatalf("sign-in after the window: %d, want 303", got)
	}
	// Per address: failures spread over names add up.
	for _, name := range []string{"x1", "x2", "x3", "x4", "x5"} {
		attempt(name, "wrong password!")
	}
	if got := attempt("viewer-b", password); got != http.StatusTooManyRequests {
		t.Errorf("sign-in from an address with 5 failures: %d, want 429", got)
	}
}

func TestLogin_FormWithoutItsTokenIsForbidden(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	b.get("/login") // sets the token cookie
	r := b.post("/login", url.Values{"name": {"admin"}, "password": {password}, "csrf": {"forged"}})
	if r.status != http.StatusForbidden {
		t.Errorf("sign-in with a forged token: %d, want 403", r.status)
	}
	fresh := f.browser(t) // no token cookie at all
	if r := fresh.post("/login", url.Values{"name": {"admin"}, "password": {password}}); r.status != http.StatusForbidden {
		t.Errorf("sign-in without a token: %d, want 403", r.status)
	}
}

func TestLogin_RedirectsOnlyWithinTheSite(t *testing.T) {
	f := newFixture(t)
	for next, want := range map[string]string{
		"/incidents/x?y=1":   "/incidents/x?y=1",
		"//evil.example/":    "/incidents",
		"https://evil.ex/a":  "/incidents",
		"/\\evil.example":    "/incidents",
		"/login?next=/login": "/incidents",
	} {
		b := f.browser(t)
		form := hidden(t, b.get("/login?next="+url.QueryEscape(next)).body, "login")
		form.Set("name", "admin")
		form.Set("password", password)
		if got := b.post("/login", form).header.Get("Location"); got != want {
			t.Errorf("next=%q: redirected to %q, want %q", next, got, want)
		}
	}
}

func TestPages_WithoutASessionRedirectToLogin(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	for _, path := range []string{"/incidents", "/incidents/" + f.ids[tenantA][0], "/tenants", "/refinements?classification=true_positive"} {
		r := b.get(path)
		if r.status != http.StatusSeeOther || r.header.Get("Location") != "/login?next="+url.QueryEscape(path) {
			t.Errorf("GET %s: %d → %s", path, r.status, r.header.Get("Location"))
		}
	}
	if r := b.get("/"); r.status != http.StatusSeeOther || r.header.Get("Location") != "/login" {
		t.Errorf("GET /: %d → %s", r.status, r.header.Get("Location"))
	}
	r := b.post("/incidents/"+f.ids[tenantA][0], url.Values{"severity": {"low"}})
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/login" {
		t.Errorf("POST without a session: %d → %s", r.status, r.header.Get("Location"))
	}
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/incidents", nil)
	req.Header.Set("HX-Request", "true")
	if r := b.do(req); r.header.Get("HX-Redirect") != "/login?next=%2Fincidents" {
		t.Errorf("htmx request without a session: %d HX-Redirect %q", r.status, r.header.Get("HX-Redirect"))
	}
}

func TestAPI_WithoutCredentialsIs401(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/api/v1/incidents"},
		{http.MethodGet, "/api/v1/incidents/" + f.ids[tenantA][0]},
		{http.MethodPatch, "/api/v1/incidents/" + f.ids[tenantA][0]},
		{http.MethodPost, "/api/v1/incidents/" + f.ids[tenantA][0] + "/comments"},
		{http.MethodGet, "/api/v1/tenants"},
	} {
		if r := b.api(tc.method, tc.path, `{}`); r.status != http.StatusUnauthorized {
			t.Errorf("%s %s: %d, want 401", tc.method, tc.path, r.status)
		}
	}
	// A session cookie that is not (or no longer) a session is refused too.
	u, _ := url.Parse(f.srv.URL)
	b.client.Jar.SetCookies(u, []*http.Cookie{{Name: "socsync_session", Value: "made-up"}})
	if r := b.api(http.MethodGet, "/api/v1/incidents", ""); r.status != http.StatusUnauthorized {
		t.Errorf("unknown session cookie: %d, want 401", r.status)
	}
}

func TestSession_EndsWhenIdleOrExpired(t *testing.T) {
	f := newFixture(t, func(d *web.Deps) { d.IdleTimeout, d.SessionLifetime = 30*time.Minute, 2*time.Hour })
	b := f.login(t, "admin")
	f.clock.Advance(20 * time.Minute)
	if r := b.get("/incidents"); r.status != 200 {
		t.Fatalf("after 20 idle minutes: %d", r.status)
	}
	f.clock.Advance(31 * time.Minute)
	if r := b.get("/incidents"); r.status != http.StatusSeeOther {
		t.Errorf("after 31 idle minutes: %d, want the sign-in redirect", r.status)
	}
	b = f.login(t, "admin")
	for range 5 { // active every 25 minutes, but the lifetime is 2 hours
		f.clock.Advance(25 * time.Minute)
		b.get("/incidents")
	}
	if r := b.get("/incidents"); r.status != http.StatusSeeOther {
		t.Errorf("after the session's lifetime: %d, want the sign-in redirect", r.status)
	}
}

func TestPassword_HashIsSaltedArgon2idAndChecks(t *testing.T) {
	h1, err := web.HashPassword(password)
	if err != nil {
		t.Fatal(err)
	}
	h2, _ := web.HashPassword(password)
	if !strings.HasPrefix(h1, "$argon2id$v=19$m=19456,t=2,p=1$") || h1 == h2 {
		t.Errorf("hashes %q and %q: want argon2id, salted", h1, h2)
	}
	if !web.CheckPassword(h1, password) || web.CheckPassword(h1, password+"x") || web.CheckPassword("", password) {
		t.Error("CheckPassword accepts the wrong password or refuses the right one")
	}
	if web.CheckPassword("$argon2id$v=19$m=4294967295,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "x") {
		t.Error("a hash with absurd parameters must not be checked")
	}
	if _, err := web.HashPassword("short"); err == nil {
		t.Error("a short password was accepted")
	}
}
