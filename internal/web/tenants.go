package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/socsync/socsync/internal/doctor"
	"github.com/socsync/socsync/internal/entra"
	"github.com/socsync/socsync/internal/httpapi"
	"github.com/socsync/socsync/internal/store"
)

type sourceView struct {
	Kind, Workspace, Health string
	LastPoll, LastSuccess   time.Time
	NextPoll                time.Time
	Lag                     time.Duration
	Polls, Calls, Throttled int64
	LastError, Degraded     string
}

// finding is one result of the tenant's checks.
type finding struct {
	OK   bool
	What string
}

type tenantView struct {
	ID, Name, Health string
	Sources          []sourceView
	ConsentURL       string
	Checks           []finding
	Doctor           *doctor.Report // the latest run of socsync doctor's checks, if any
}

type tenantsPage struct {
	pageData
	Admin     bool
	CanDoctor bool // the hub can run socsync doctor's checks
	Tenants   []tenantView
	Consent   string // the outcome of an admin consent that redirected back here
}

// handleTenants serves the health of each of the user's tenants' sources; admins also get the
// admin-consent link and the checks socsync can make without calling out (credentials,
// degraded sources, errors).
func (h *Handler) handleTenants(w http.ResponseWriter, r *http.Request, s *session) {
	ctx := r.Context()
	p := s.principal()
	tenants, err := h.store.Tenants(ctx, p.Scope)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	sources, err := h.store.Sources(ctx, p.Scope)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	page := tenantsPage{pageData: h.base(s, "Tenants", "tenants"), Admin: p.Role == httpapi.RoleAdmin, CanDoctor: h.d.Doctor != nil}
	if page.Admin {
		page.Consent = consentOutcome(r)
	}
	now := h.now()
	for _, t := range tenants {
		tv := tenantView{ID: t.ID, Name: t.Name, Health: "ok"}
		for _, src := range sources {
			if src.TenantID != t.ID {
				continue
			}
			sv := viewSource(src, now)
			tv.Sources = append(tv.Sources, sv)
			if sv.Health == "degraded" || (sv.Health == "failing" && tv.Health == "ok") {
				tv.Health = sv.Health
			}
		}
		if page.Admin {
			tv.ConsentURL, tv.Checks = h.consentLink(t.ID), h.checks(t.ID, tv.Sources)
			h.doctorMu.Lock()
			if rep, ok := h.reports[strings.ToLower(t.ID)]; ok {
				tv.Doctor = &rep
			}
			h.doctorMu.Unlock()
		}
		page.Tenants = append(page.Tenants, tv)
	}
	h.render(w, r, http.StatusOK, "tenants", page)
}

func viewSource(src store.Source, now time.Time) sourceView {
	sv := sourceView{Kind: string(src.Kind), Workspace: src.Workspace, LastPoll: src.LastPoll, LastSuccess: src.LastSuccess,
		NextPoll: src.NextPoll, Polls: src.Polls, Calls: src.Calls, Throttled: src.Throttled, LastError: src.LastError,
		Degraded: src.Degraded}
	if !src.LastSuccess.IsZero() {
		sv.Lag = now.Sub(src.LastSuccess).Round(time.Second)
	}
	switch { // as the API's /api/v1/tenants reports it
	case !src.Enabled:
		sv.Health = "disabled"
	case src.Degraded != "":
		sv.Health = "degraded"
	case src.LastError != "":
		sv.Health = "failing"
	case src.LastPoll.IsZero():
		sv.Health = "never polled"
	default:
		sv.Health = "ok"
	}
	return sv
}

// consentLink is the tenant's admin-consent URL (entra.ConsentURL), or "" without a
// configuration that names the tenant.
func (h *Handler) consentLink(tenantID string) string {
	if h.d.Config == nil {
		return ""
	}
	u, err := entra.ConsentURL(h.d.Config, tenantID)
	if err != nil {
		return ""
	}
	return u
}

// checks are what socsync knows of a tenant's setup without calling out: whether its
// credential can be built, and each source's degradation and last error. socsync doctor's
// checks (handleDoctor) call out for the rest: tokens, permissions, reachability.
func (h *Handler) checks(tenantID string, sources []sourceView) []finding {
	var out []finding
	if h.d.CredentialProblem != nil {
		if err := h.d.CredentialProblem(tenantID); err != nil {
			out = append(out, finding{What: "Credential: " + err.Error()})
		} else {
			out = append(out, finding{OK: true, What: "Credential: configured"})
		}
	}
	for _, s := range sources {
		name := s.Kind
		if s.Workspace != "" {
			name += " " + s.Workspace
		}
		switch {
		case s.Health == "disabled":
			out = append(out, finding{What: name + ": disabled (no longer in the configuration)"})
		case s.Degraded != "":
			out = append(out, finding{What: name + ": degraded: " + s.Degraded})
		case s.LastError != "":
			out = append(out, finding{What: name + ": last poll failed: " + s.LastError})
		case s.LastPoll.IsZero():
			out = append(out, finding{What: name + ": not polled yet"})
		default:
			out = append(out, finding{OK: true, What: name + ": polled successfully"})
		}
	}
	return out
}

// consentOutcome reads the parameters Entra ID adds when an admin consent redirects back.
func consentOutcome(r *http.Request) string {
	q := r.URL.Query()
	switch {
	case q.Get("error") != "":
		return "Admin consent for tenant " + q.Get("tenant") + " failed: " + q.Get("error") + " " + q.Get("error_description")
	case strings.EqualFold(q.Get("admin_consent"), "true"):
		return "Admin consent granted for tenant " + q.Get("tenant") + ". The next poll of its sources should succeed."
	}
	return ""
}

// doctorTimeout bounds one run of a tenant's checks from the tenants page.
const doctorTimeout = time.Minute

// handleDoctor runs socsync doctor's checks of one tenant (admins only) and shows them on the
// tenants page. The latest report of each tenant is kept in memory, on this replica.
func (h *Handler) handleDoctor(w http.ResponseWriter, r *http.Request, s *session) {
	p := s.principal()
	if p.Role != httpapi.RoleAdmin {
		h.renderError(w, r, s, http.StatusForbidden, "Forbidden", "Only admins may run a tenant's checks.")
		return
	}
	if h.d.Doctor == nil {
		h.renderError(w, r, s, http.StatusNotFound, "Not found", "This socsync cannot run checks.")
		return
	}
	id := r.PathValue("id")
	tenants, err := h.store.Tenants(r.Context(), p.Scope)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	found := false
	for _, t := range tenants {
		if strings.EqualFold(t.ID, id) {
			id, found = t.ID, true
		}
	}
	if !found {
		h.notFound(w, r, s)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), doctorTimeout)
	defer cancel()
	rep, err := h.d.Doctor(ctx, id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.doctorMu.Lock()
	h.reports[strings.ToLower(id)] = rep
	h.doctorMu.Unlock()
	h.log.InfoContext(r.Context(), "tenant checks run", "tenant", id, "user", s.User.Name, "ok", rep.OK)
	http.Redirect(w, r, "/tenants#tenant-"+url.PathEscape(id), http.StatusSeeOther)
}
