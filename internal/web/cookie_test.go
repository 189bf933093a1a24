package web_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/socsync/socsync/internal/config"
	"github.com/socsync/socsync/internal/web"
)

// setCookies parses a response's Set-Cookie headers by name.
func setCookies(t *testing.T, r response) map[string]*http.Cookie {
	t.Helper()
	out := map[string]*http.Cookie{}
	for _, line := range r.header.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		if err != nil {
			t.Fatalf("Set-Cookie %q: %v", line, err)
		}
		out[c.Name] = c
	}
	return out
}

// signInCookies signs admin in with b and returns the sign-in form's cookie and the session
// cookie as the server set them. The form's cookie is sent back by hand: a browser reaching a
// TLS-terminating proxy sends its Secure cookies, which Go's cookie jar keeps for https URLs.
func signInCookies(t *testing.T, b *browser) (login, session *http.Cookie, signedIn response) {
	t.Helper()
	page := b.get("/login")
	var prefixes []string
	for name, c := range setCookies(t, page) {
		if strings.HasSuffix(name, "socsync_login") {
			login = c
		}
		prefixes = append(prefixes, name)
	}
	if login == nil {
		t.Fatalf("the sign-in page set no sign-in cookie: %v", prefixes)
	}
	form := hidden(t, page.body, "login")
	form.Set("name", "admin")
	form.Set("password", password)
	req, _ := http.NewRequest(http.MethodPost, b.f.srv.URL+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if u, _ := url.Parse(b.f.srv.URL); len(b.client.Jar.Cookies(u)) == 0 {
		req.AddCookie(&http.Cookie{Name: login.Name, Value: login.Value})
	}
	signedIn = b.do(req)
	if signedIn.status != http.StatusSeeOther {
		t.Fatalf("sign-in: %d\n%s", signedIn.status, signedIn.body)
	}
	for name, c := range setCookies(t, signedIn) {
		if strings.HasSuffix(name, "socsync_session") {
			session = c
		}
	}
	if session == nil {
		t.Fatal("sign-in set no session cookie")
	}
	return login, session, signedIn
}

func TestSessionCookie_IsSecureWithTheHostPrefixOnlyWhenTheHubIsReachedOverTLS(t *testing.T) {
	cases := []struct {
		name   string
		server config.Server
		tls    bool // serve the handler over TLS
		secure bool
	}{
		{"plain HTTP", config.Server{PublicURL: "http://socsync.example"}, false, false},
		{"server.tls", config.Server{PublicURL: "https://socsync.example", TLS: config.TLS{CertFile: "hub.crt", KeyFile: "hub.key"}}, true, true},
		{"server.tls without a public URL", config.Server{TLS: config.TLS{CertFile: "hub.crt", KeyFile: "hub.key"}}, true, true},
		{"behind a TLS proxy (https public URL)", config.Server{PublicURL: "https://socsync.example"}, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, func(d *web.Deps) { d.Config.Server = c.server })
			if c.tls {
				srv := httptest.NewTLSServer(f.srv.Config.Handler)
				t.Cleanup(srv.Close)
				tf := *f
				tf.srv = srv
				f = &tf
			}
			b := f.browser(t)
			if c.tls {
				b.client.Transport = f.srv.Client().Transport
			}
			login, session, _ := signInCookies(t, b)
			prefix := ""
			if c.secure {
				prefix = "__Host-"
			}
			for _, k := range []struct {
				c        *http.Cookie
				name     string
				sameSite http.SameSite
			}{{login, prefix + "socsync_login", http.SameSiteStrictMode}, {session, prefix + "socsync_session", http.SameSiteLaxMode}} {
				if k.c.Name != k.name || k.c.Secure != c.secure || !k.c.HttpOnly || k.c.SameSite != k.sameSite || k.c.Path != "/" || k.c.Domain != "" {
					t.Errorf("cookie %s: Secure %v, HttpOnly %v, SameSite %v, Path %q, Domain %q; want %s, Secure %v, HttpOnly, SameSite %v, Path /, no Domain",
						k.c.Name, k.c.Secure, k.c.HttpOnly, k.c.SameSite, k.c.Path, k.c.Domain, k.name, c.secure, k.sameSite)
				}
			}
			if c.tls {
				// Over TLS the browser keeps the Secure cookie and sends it back: the session works.
				if r := b.get("/incidents"); r.status != http.StatusOK {
					t.Errorf("the queue over TLS with the session cookie: %d", r.status)
				}
			}
		})
	}
}
