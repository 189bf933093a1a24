package web

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/socsync/socsync/internal/httpapi"
	"github.com/socsync/socsync/internal/store"
)

// session is a signed-in browser's session, as read for one request.
type session struct {
	store.Session
	id string // the cookie's value; the store knows only its hash
}

// principal is who the session acts for, with the same scope rules as API tokens.
func (s *session) principal() httpapi.Principal {
	u := s.User
	return httpapi.Principal{Name: u.Name, Role: u.Role, Scope: httpapi.ScopeOf(u.Role, u.Tenants)}
}

// Cookie names. Over TLS they carry the __Host- prefix: the browser then accepts them only
// Secure, for this host, with path /.
func (h *Handler) sessionCookie() string { return h.cookiePrefix() + "socsync_session" }
func (h *Handler) loginCookie() string   { return h.cookiePrefix() + "socsync_login" }

func (h *Handler) cookiePrefix() string {
	if h.secure {
		return "__Host-"
	}
	return ""
}

func (h *Handler) setCookie(w http.ResponseWriter, name, value string, maxAge int, sameSite http.SameSite) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true,
		Secure: h.secure, SameSite: sameSite})
}

// randomToken returns 32 random bytes, URL-safe: session ids and CSRF tokens.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand does not fail on supported platforms
	return base64.RawURLEncoding.EncodeToString(b)
}

// session returns the request's session, or nil when it has none: no cookie, or one that is
// unknown, expired, idle too long or of a disabled user.
func (h *Handler) session(r *http.Request) (*session, error) {
	c, err := r.Cookie(h.sessionCookie())
	if err != nil || c.Value == "" || len(c.Value) > 128 {
		return nil, nil
	}
	ctx := r.Context()
	s, err := h.store.SessionByID(ctx, c.Value)
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	idle := h.now().Sub(s.LastSeen)
	if idle > h.d.IdleTimeout {
		if err := h.store.DeleteSession(ctx, c.Value); err != nil {
			return nil, err
		}
		return nil, nil
	}
	if idle > time.Minute { // at most one write a minute per session
		if err := h.store.TouchSession(ctx, c.Value); err != nil {
			h.log.WarnContext(ctx, "could not record session use", "err", err)
		}
	}
	return &session{Session: s, id: c.Value}, nil
}

// Principal makes the UI's sessions a principal source of the REST API: a signed-in browser
// may call the API as its user. A state-changing call must carry the session's CSRF token in
// X-CSRF-Token, since the browser sends the cookie with any request.
func (h *Handler) Principal(r *http.Request) (httpapi.Principal, bool, error) {
	if _, err := r.Cookie(h.sessionCookie()); err != nil {
		return httpapi.Principal{}, false, nil
	}
	s, err := h.session(r)
	if err != nil {
		return httpapi.Principal{}, false, err
	}
	if s == nil {
		return httpapi.Principal{}, false, &httpapi.AuthError{Status: http.StatusUnauthorized, Code: "unauthenticated",
			Message: "the session has ended; sign in again or use an API token"}
	}
	if !safeMethod(r.Method) && (crossSite(r) || !validToken(r.Header.Get("X-CSRF-Token"), s.CSRFToken)) {
		return httpapi.Principal{}, false, &httpapi.AuthError{Status: http.StatusForbidden, Code: "csrf",
			Message: "a change made with a session cookie needs the session's CSRF token in X-CSRF-Token"}
	}
	return s.principal(), true, nil
}

var _ httpapi.PrincipalSource = (*Handler)(nil)

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// crossSite reports whether the browser says the request comes from another site.
func crossSite(r *http.Request) bool { return r.Header.Get("Sec-Fetch-Site") == "cross-site" }

// validToken compares a submitted token with the expected one in constant time.
func validToken(got, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

type sessionHandler func(w http.ResponseWriter, r *http.Request, s *session)

// page admits signed-in users and sends others to the sign-in page.
func (h *Handler) page(fn sessionHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := h.session(r)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		if s == nil {
			h.toLogin(w, r)
			return
		}
		fn(w, r, s)
	})
}

// form admits a state-changing form post of a signed-in user that carries the session's CSRF
// token (field csrf, or header X-CSRF-Token), and answers others 403.
func (h *Handler) form(fn sessionHandler) http.Handler {
	return h.page(func(w http.ResponseWriter, r *http.Request, s *session) {
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		if err := r.ParseForm(); err != nil {
			h.renderError(w, r, s, http.StatusBadRequest, "Bad request", "The form could not be read.")
			return
		}
		token := r.PostForm.Get("csrf")
		if token == "" {
			token = r.Header.Get("X-CSRF-Token")
		}
		if crossSite(r) || !validToken(token, s.CSRFToken) {
			h.log.WarnContext(r.Context(), "form refused: CSRF token missing or wrong", "user", s.User.Name, "path", r.URL.Path)
			h.renderError(w, r, s, http.StatusForbidden, "Forbidden",
				"This form did not come from your current socsync session (its security token is missing or out of date). Reload the page and try again.")
			return
		}
		fn(w, r, s)
	})
}

// toLogin sends a request without a session to the sign-in page, to come back afterwards.
func (h *Handler) toLogin(w http.ResponseWriter, r *http.Request) {
	target := "/login"
	if r.Method == http.MethodGet && r.URL.Path != "/" {
		target += "?next=" + url.QueryEscape(r.URL.RequestURI())
	}
	if r.Header.Get("HX-Request") == "true" {
		w.Header().Set("HX-Redirect", target) // htmx loads the page instead of swapping it in
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// safeNext returns next if it is a path on this site, and the queue otherwise: the sign-in page
// never redirects elsewhere.
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		strings.ContainsAny(next, "\r\n\t") {
		return "/incidents"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.Path == "/login" {
		return "/incidents"
	}
	return next
}

// clientIP is the address sign-ins are throttled by: the peer's. (Behind a reverse proxy every
// user shares the proxy's address; the per-user limit still applies to each name.)
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

type loginPage struct {
	pageData
	Next      string
	Name      string
	LoginCSRF string
}

// handleLoginForm serves the sign-in form. The form's token is also set in a short-lived
// cookie (double submit), so a sign-in cannot be forged from another site either.
func (h *Handler) handleLoginForm(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"))
	if s, err := h.session(r); err == nil && s != nil {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	h.renderLogin(w, r, http.StatusOK, next, "", "")
}

func (h *Handler) renderLogin(w http.ResponseWriter, r *http.Request, status int, next, name, msg string) {
	tok := randomToken()
	h.setCookie(w, h.loginCookie(), tok, 3600, http.SameSiteStrictMode)
	p := loginPage{pageData: h.base(nil, "Sign in", ""), Next: next, Name: name, LoginCSRF: tok}
	p.Error = msg
	h.render(w, r, status, "login", p)
}

// handleLogin checks a user name and password, throttled per name and per client address, and
// starts a session with a fresh id.
func (h *Handler) handleLogin(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		h.renderError(w, r, nil, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	c, err := r.Cookie(h.loginCookie())
	if crossSite(r) || err != nil || !validToken(r.PostForm.Get("csrf"), c.Value) {
		h.log.WarnContext(ctx, "sign-in refused: form token missing or wrong", "ip", clientIP(r))
		h.renderError(w, r, nil, http.StatusForbidden, "Forbidden",
			"The sign-in form expired or did not come from socsync. Open the sign-in page again.")
		return
	}
	name := store.NormalizeUserName(r.PostForm.Get("name"))
	password := r.PostForm.Get("password")
	ip := clientIP(r)
	now := h.now()
	byName, byIP, err := h.store.LoginFailures(ctx, name, ip, now.Add(-h.d.FailureWindow))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if byName >= h.d.MaxFailuresPerUser || byIP >= h.d.MaxFailuresPerAddress {
		h.log.WarnContext(ctx, "sign-in throttled", "user", name, "ip", ip, "failures_user", byName, "failures_ip", byIP)
		w.Header().Set("Retry-After", strconv.Itoa(int(h.d.FailureWindow.Seconds())))
		h.renderLogin(w, r, http.StatusTooManyRequests, next, name,
			"Too many failed sign-ins. Wait "+h.d.FailureWindow.String()+" and try again.")
		return
	}
	u, err := h.store.UserByName(ctx, name)
	if err != nil && !isNotFound(err) {
		h.fail(w, r, err)
		return
	}
	hash := dummyHash() // an unknown user costs the same time as a known one
	if err == nil && !u.Disabled && u.PasswordHash != "" {
		hash = u.PasswordHash
	}
	h.hashes <- struct{}{}
	ok := CheckPassword(hash, password) && hash != dummyHash()
	<-h.hashes
	if !ok {
		if err := h.store.RecordLoginFailure(ctx, name, ip); err != nil {
			h.fail(w, r, err)
			return
		}
		h.log.InfoContext(ctx, "sign-in failed", "user", name, "ip", ip)
		h.renderLogin(w, r, http.StatusUnauthorized, next, name, "Wrong user name or password.")
		return
	}
	if err := h.store.ClearLoginFailures(ctx, name, now.Add(-h.d.FailureWindow)); err != nil {
		h.fail(w, r, err)
		return
	}
	if old, _ := r.Cookie(h.sessionCookie()); old != nil && len(old.Value) <= 128 {
		_ = h.store.DeleteSession(ctx, old.Value) // a previous session of this browser ends
	}
	id := randomToken()
	if err := h.store.CreateSession(ctx, id, u.ID, randomToken(), now.Add(h.d.SessionLifetime), ip, r.UserAgent()); err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.InfoContext(ctx, "signed in", "user", u.Name, "role", u.Role, "ip", ip)
	h.setCookie(w, h.sessionCookie(), id, 0, http.SameSiteLaxMode)
	h.setCookie(w, h.loginCookie(), "", -1, http.SameSiteStrictMode)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// handleLogout ends the session.
func (h *Handler) handleLogout(w http.ResponseWriter, r *http.Request, s *session) {
	if err := h.store.DeleteSession(r.Context(), s.id); err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.InfoContext(r.Context(), "signed out", "user", s.User.Name)
	h.setCookie(w, h.sessionCookie(), "", -1, http.SameSiteLaxMode)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
