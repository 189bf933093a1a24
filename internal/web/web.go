// Package web is socsync's web UI for analysts: server-rendered pages (html/template) enhanced
// by htmx, both embedded in the binary, readable and usable without JavaScript. It serves the
// incident queue across the signed-in user's tenants, the incident page (triage, comments,
// alerts, per-link sync state, merges, audit history) and tenant health, behind local users
// with server-side sessions, CSRF tokens on every form, sign-in throttling and strict security
// headers. Every page and form checks the tenant of the object it touches: another tenant's
// incident is answered exactly like a missing one.
//
// Changes go through httpapi.Editor, the same validation, audit and reconciler queueing as the
// REST API's. The handler's Sessions is also an httpapi.PrincipalSource, so a signed-in browser
// may call the REST API (with its CSRF token in X-CSRF-Token for changes).
package web

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/socsync/socsync/internal/config"
	"github.com/socsync/socsync/internal/doctor"
	"github.com/socsync/socsync/internal/httpapi"
	"github.com/socsync/socsync/internal/incident"
	"github.com/socsync/socsync/internal/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Store is what the UI reads and writes: the hub's database.
type Store interface {
	Tenants(ctx context.Context, scope store.Scope) ([]store.Tenant, error)
	Sources(ctx context.Context, scope store.Scope) ([]store.Source, error)
	Queue(ctx context.Context, scope store.Scope, f store.ListFilter, order store.QueueOrder, after store.QueuePosition, limit int) ([]store.StoredIncident, error)
	IncidentInScope(ctx context.Context, scope store.Scope, id string) (store.StoredIncident, error)
	Links(ctx context.Context, tenantID, incidentID string) ([]store.Link, error)
	Alerts(ctx context.Context, tenantID, incidentID string) ([]incident.Alert, error)
	AlertPayloads(ctx context.Context, tenantID, incidentID string) (map[string]json.RawMessage, error)
	Comments(ctx context.Context, tenantID, incidentID string) ([]incident.Comment, error)
	History(ctx context.Context, tenantID, incidentID string) ([]store.AuditEntry, error)
	MergedFrom(ctx context.Context, tenantID, id string) ([]store.StoredIncident, error)
	InTx(ctx context.Context, fn func(tx *store.Tx) error) error

	UserByName(ctx context.Context, name string) (store.User, error)
	CreateSession(ctx context.Context, id, userID, csrfToken string, expires time.Time, ip, userAgent string) error
	SessionByID(ctx context.Context, id string) (store.Session, error)
	TouchSession(ctx context.Context, id string) error
	DeleteSession(ctx context.Context, id string) error
	RecordLoginFailure(ctx context.Context, name, ip string) error
	LoginFailures(ctx context.Context, name, ip string, since time.Time) (byName, byIP int, err error)
	ClearLoginFailures(ctx context.Context, name string, before time.Time) error
}

// Deps are the UI's dependencies.
type Deps struct {
	Log   *slog.Logger
	Store Store
	// Queue takes the incidents analysts changed, for the reconciler (the API's queue). Optional.
	Queue httpapi.Queue
	// Config supplies the tenants' apps (for the admin-consent link), server.public_url and
	// whether the hub serves TLS (Secure cookies). Optional.
	Config *config.Config
	// CredentialProblem reports why a tenant's credential cannot be built (nil when it can), for
	// the tenants page's checks. Its errors name configuration keys, never secrets. Optional.
	CredentialProblem func(tenantID string) error
	// Doctor runs socsync doctor's checks of a tenant, for the tenants page's "Run checks"
	// (admins only). Optional: without it the page offers none.
	Doctor func(ctx context.Context, tenantID string) (doctor.Report, error)
	Now    func() time.Time // default time.Now

	// Sessions last SessionLifetime from sign-in (default 12h) and end after IdleTimeout
	// without a request (default 2h).
	SessionLifetime time.Duration
	IdleTimeout     time.Duration
	// Sign-in throttling: within FailureWindow (default 15m), at most MaxFailuresPerUser failed
	// sign-ins per user name (default 5) and MaxFailuresPerAddress per client address (default
	// 20); further attempts are refused without checking the password until the window passes.
	FailureWindow         time.Duration
	MaxFailuresPerUser    int
	MaxFailuresPerAddress int
}

// Handler serves the UI. Build it with New; it holds no goroutines.
type Handler struct {
	d      Deps
	log    *slog.Logger
	store  Store
	editor httpapi.Editor
	now    func() time.Time
	secure bool // cookies are Secure: the hub is reached over TLS
	pages  map[string]*template.Template
	static http.Handler
	mux    *http.ServeMux
	hashes chan struct{} // bounds concurrent password hashes (each takes 19 MiB)

	doctorMu sync.Mutex
	reports  map[string]doctor.Report // the latest doctor report of each tenant, by lower-case id
}

// New returns the UI handler.
func New(d Deps) *Handler {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	def := func(v *time.Duration, x time.Duration) {
		if *v <= 0 {
			*v = x
		}
	}
	def(&d.SessionLifetime, 12*time.Hour)
	def(&d.IdleTimeout, 2*time.Hour)
	def(&d.FailureWindow, 15*time.Minute)
	if d.MaxFailuresPerUser <= 0 {
		d.MaxFailuresPerUser = 5
	}
	if d.MaxFailuresPerAddress <= 0 {
		d.MaxFailuresPerAddress = 20
	}
	h := &Handler{d: d, log: d.Log, store: d.Store, now: d.Now, mux: http.NewServeMux(),
		editor: httpapi.Editor{Store: d.Store, Queue: d.Queue}, hashes: make(chan struct{}, 4), reports: map[string]doctor.Report{}}
	if c := d.Config; c != nil {
		h.secure = c.Server.TLS.Enabled() || strings.HasPrefix(strings.ToLower(c.Server.PublicURL), "https://")
	}
	h.pages = h.parsePages()
	sub, _ := fs.Sub(staticFS, "static") // the directory is embedded: cannot fail
	h.static = http.StripPrefix("/static/", http.FileServerFS(sub))
	h.routes()
	return h
}

// routes registers every page of the UI.
func (h *Handler) routes() {
	h.mux.HandleFunc("GET /static/{file...}", h.handleStatic)
	h.mux.HandleFunc("GET /login", h.handleLoginForm)
	h.mux.HandleFunc("POST /login", h.handleLogin)
	h.mux.Handle("POST /logout", h.form(h.handleLogout))
	h.mux.Handle("GET /{$}", h.page(func(w http.ResponseWriter, r *http.Request, _ *session) {
		http.Redirect(w, r, "/incidents", http.StatusSeeOther)
	}))
	h.mux.Handle("GET /incidents", h.page(h.handleQueue))
	h.mux.Handle("GET /incidents/{id}", h.page(h.handleIncident))
	h.mux.Handle("POST /incidents/{id}", h.form(h.handleEdit))
	h.mux.Handle("POST /incidents/{id}/comments", h.form(h.handleComment))
	h.mux.Handle("GET /refinements", h.page(h.handleRefinements))
	h.mux.Handle("GET /tenants", h.page(h.handleTenants))
	h.mux.Handle("POST /tenants/{id}/doctor", h.form(h.handleDoctor))
	h.mux.HandleFunc("/", h.handleNotFound)
}

// ServeHTTP serves the UI with its security headers on every response.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w.Header(), h.secure)
	if !strings.HasPrefix(r.URL.Path, "/static/") {
		w.Header().Set("Cache-Control", "no-store") // pages hold incident data: never cached
	}
	h.mux.ServeHTTP(w, r)
}

func (h *Handler) handleStatic(w http.ResponseWriter, r *http.Request) {
	if f := r.PathValue("file"); f == "" || strings.HasSuffix(f, "/") {
		h.handleNotFound(w, r) // no directory listings
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=3600")
	h.static.ServeHTTP(w, r)
}

func (h *Handler) handleNotFound(w http.ResponseWriter, r *http.Request) {
	sess, _ := h.session(r) // a signed-in user gets the page with its navigation
	h.renderError(w, r, sess, http.StatusNotFound, "Not found", "There is no such page.")
}

// pageData is what every page's layout shows.
type pageData struct {
	Title string
	Nav   string // queue, incident, tenants
	User  *store.User
	CSRF  string
	Flash string
	Error string
}

func (h *Handler) base(sess *session, title, nav string) pageData {
	p := pageData{Title: title, Nav: nav}
	if sess != nil {
		u := sess.User
		p.User, p.CSRF = &u, sess.CSRFToken
	}
	return p
}

// render executes a page template into a buffer first, so that a template error becomes a
// 500 rather than half a page.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	t, ok := h.pages[name]
	if !ok {
		h.fail(w, r, fmt.Errorf("no template %q", name))
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
		h.fail(w, r, fmt.Errorf("render %s: %w", name, err))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Vary", "Cookie, HX-Request")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes()) // the client may be gone
}

type errorPage struct {
	pageData
	Status  int
	Message string
}

func (h *Handler) renderError(w http.ResponseWriter, r *http.Request, sess *session, status int, title, msg string) {
	h.render(w, r, status, "error", errorPage{pageData: h.base(sess, title, ""), Status: status, Message: msg})
}

// fail answers 500 and logs the cause; the page says only where to look.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	h.log.ErrorContext(r.Context(), "page failed", "method", r.Method, "path", r.URL.Path, "err", err)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusInternalServerError)
	_, _ = w.Write([]byte("internal error; see the server log\n"))
}

// notFound answers a missing incident, and identically one of another tenant.
func (h *Handler) notFound(w http.ResponseWriter, r *http.Request, sess *session) {
	h.renderError(w, r, sess, http.StatusNotFound, "Not found", "There is no such incident.")
}

// isNotFound reports whether err means "no such object in the principal's scope".
func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }
