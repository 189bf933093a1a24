package httpapi

import (
	"context"
	"errors"
	"net/http"
)

// PrincipalSource authenticates a request by a credential other than an API token: the web
// UI's session cookie, and later an OIDC bearer token. The API asks each configured source in
// turn when a request carries no API token.
type PrincipalSource interface {
	// Principal returns who the request acts for. found is false when the request carries no
	// credential of this kind, and the next source is asked. An error refuses the request: an
	// *AuthError with its status (401 for an unknown or expired credential, 403 for a
	// state-changing request without the session's CSRF token), any other error is a 500.
	Principal(r *http.Request) (p Principal, found bool, err error)
}

// AuthError refuses a request's credential.
type AuthError struct {
	Status  int    // 401 or 403
	Code    string // the API error code, e.g. "unauthenticated", "csrf"
	Message string
}

func (e *AuthError) Error() string { return e.Message }

// WithPrincipal returns a context carrying the principal, as the API's handlers read it.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal of a request authenticated by the API or by a
// PrincipalSource, and whether there is one.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// fromSources asks the server's principal sources about a request without an API token.
func (s *Server) fromSources(w http.ResponseWriter, r *http.Request) (Principal, bool) {
	for _, src := range s.sources {
		p, found, err := src.Principal(r)
		var ae *AuthError
		switch {
		case errors.As(err, &ae):
			if ae.Status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="socsync"`)
			}
			writeError(w, ae.Status, ae.Code, ae.Message, "")
			return Principal{}, false
		case err != nil:
			s.internalError(w, r, err)
			return Principal{}, false
		case found:
			return p, true
		}
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="socsync"`)
	writeError(w, http.StatusUnauthorized, "unauthenticated", "an API token is required (Authorization: Bearer …)", "")
	return Principal{}, false
}
