package sentinel

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Errors callers branch on with errors.Is. A response error is an *Error, which matches the
// one of these that its status means; a *throttle.Throttled from the transport is passed
// through unchanged (wrapped), for errors.As.
var (
	// ErrNotFound: no such incident, comment, workspace, resource group or subscription (404).
	ErrNotFound = errors.New("not found")
	// ErrConflict: the incident changed since it was read — a PUT with a stale body etag (409
	// "Newer version of resource … exists"). Read it again, re-apply, retry.
	ErrConflict = errors.New("conflict: newer version exists")
	// ErrForbidden: the app lacks a role on the workspace (403), or the tenant has not
	// consented to it (the token request was refused with a consent error).
	ErrForbidden = errors.New("forbidden: missing permission or consent")
	// ErrUnauthorized: no usable token (401 — e.g. a token of another tenant than the
	// subscription's — or the token request failed otherwise).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrBadRequest: Sentinel refused the request (400), e.g. closing without a
	// classification; *Error.Message says why.
	ErrBadRequest = errors.New("bad request")
	// ErrThrottled: a 429 reached the client (the throttle transport normally turns those into
	// *throttle.Throttled first).
	ErrThrottled = errors.New("throttled")
	// ErrUnavailable: a 5xx; worth retrying later.
	ErrUnavailable = errors.New("service unavailable")
	// ErrForeignHost: a nextLink points away from the configured workspace; it is not
	// followed, so the tenant's token never leaves for another host.
	ErrForeignHost = errors.New("link to a foreign host refused")
	// ErrMalformed: a response that is not the JSON Sentinel documents.
	ErrMalformed = errors.New("malformed response")
)

// Error is an ARM error response: {"error":{"code","message"}}.
type Error struct {
	StatusCode int
	Code       string
	Message    string
	RequestID  string // x-ms-request-id
	// RetryAfter is the Retry-After of a 429 or 503, when given.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP %d", e.StatusCode)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.RequestID != "" {
		b.WriteString(" (x-ms-request-id " + e.RequestID + ")")
	}
	return b.String()
}

// Is maps the status to the package's error values.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrConflict:
		return e.StatusCode == http.StatusConflict
	case ErrForbidden:
		return e.StatusCode == http.StatusForbidden
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized
	case ErrBadRequest:
		return e.StatusCode == http.StatusBadRequest
	case ErrThrottled:
		return e.StatusCode == http.StatusTooManyRequests
	case ErrUnavailable:
		return e.StatusCode >= 500
	}
	return false
}

// ParseError builds the *Error of a non-2xx response from its status, headers and body. A
// body that is not ARM's envelope still gives an *Error, with the body's start as message.
func ParseError(status int, h http.Header, body []byte) *Error {
	e := &Error{StatusCode: status}
	var env struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &env) == nil && (env.Error.Code != "" || env.Error.Message != "") {
		e.Code, e.Message = env.Error.Code, env.Error.Message
	} else {
		e.Message = snippet(body)
	}
	if h != nil {
		e.RequestID = h.Get("x-ms-request-id")
		if s, err := strconv.Atoi(strings.TrimSpace(h.Get("Retry-After"))); err == nil && s >= 0 {
			e.RetryAfter = time.Duration(s) * time.Second
		}
	}
	return e
}

// snippet returns the start of a body for an error message.
func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// tokenError is a failed token request: the request was never sent.
type tokenError struct{ err error }

func (e *tokenError) Error() string { return "getting a token: " + e.err.Error() }
func (e *tokenError) Unwrap() error { return e.err }

// Is makes a token failure an ErrUnauthorized, or an ErrForbidden when Entra says the app is
// not consented in (or not known to) the tenant.
func (e *tokenError) Is(target error) bool {
	switch target {
	case ErrForbidden:
		return consentError(e.err)
	case ErrUnauthorized:
		return !consentError(e.err)
	}
	return false
}

// consentError recognises Entra's consent errors: AADSTS65001 (consent required), 7000229
// (no service principal in the tenant) and 700016 (app not found in the directory).
func consentError(err error) bool {
	msg := err.Error()
	for _, code := range []string{"AADSTS65001", "AADSTS7000229", "AADSTS700016"} {
		if strings.Contains(msg, code) {
			return true
		}
	}
	return false
}
