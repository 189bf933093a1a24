package httpapi

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"

	"github.com/socsync/socsync/internal/store"
)

// Roles.
const (
	RoleAdmin   = "admin"   // every tenant, every action
	RoleAnalyst = "analyst" // its tenants: read and change incidents
	RoleViewer  = "viewer"  // its tenants: read only
)

// Principal is who a request acts for.
type Principal struct {
	Name  string
	Role  string
	Scope store.Scope
}

// CanWrite reports whether the principal may change incidents.
func (p Principal) CanWrite() bool { return p.Role == RoleAdmin || p.Role == RoleAnalyst }

type principalKey struct{}

// principalFrom returns the request's principal; handlers behind requireAuth always have one.
func principalFrom(ctx context.Context) Principal {
	p, _ := ctx.Value(principalKey{}).(Principal)
	return p
}

// ScopeOf turns a token's role and tenants into the tenants it may see.
func ScopeOf(role string, tenants []string) store.Scope {
	if role == RoleAdmin {
		return store.AllTenants()
	}
	return store.Tenants(tenants...)
}

// requireAuth admits requests with a valid bearer API token, or without one those a principal
// source admits (the UI's session), and answers others 401. The token is compared by its hash
// in the store; it is never logged.
func (s *Server) requireAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearer(r)
		if !ok {
			// No API token: another source (the UI's session) may know the request.
			if p, ok := s.fromSources(w, r); ok {
				next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
			}
			return
		}
		t, err := s.store.TokenByValue(r.Context(), token)
		if errors.Is(err, store.ErrNotFound) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="socsync", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "unauthenticated", "the API token is not valid", "")
			return
		}
		if err != nil {
			s.internalError(w, r, err)
			return
		}
		p := Principal{Name: "token:" + t.Name, Role: t.Role, Scope: ScopeOf(t.Role, t.Tenants)}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(h) <= len(prefix) || subtle.ConstantTimeCompare([]byte(strings.ToLower(h[:len(prefix)])), []byte(prefix)) != 1 {
		return "", false
	}
	return strings.TrimSpace(h[len(prefix):]), true
}

func (s *Server) internalError(w http.ResponseWriter, r *http.Request, err error) {
	s.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	writeError(w, http.StatusInternalServerError, "internal", "internal error; see the server log", "")
}
