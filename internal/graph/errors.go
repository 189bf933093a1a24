package graph

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
	// ErrNotFound: the incident does not exist in this tenant (404).
	ErrNotFound = errors.New("not found")
	// ErrForbidden: the app lacks a permission (403), or the tenant has not consented to it
	// (the token request was refused with a consent error).
	ErrForbidden = errors.New("forbidden: missing permission or consent")
	// ErrUnauthorized: no usable token (401, or the token request failed otherwise).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrBadRequest: Graph refused the request (400); *Error.Message says why.
	ErrBadRequest = errors.New("bad request")
	// ErrThrottled: a 429 reached the client (the throttle transport normally turns those into
	// *throttle.Throttled first).
	ErrThrottled = errors.New("throttled")
	// ErrUnavailable: a 5xx; worth retrying later.
	ErrUnavailable = errors.New("service unavailable")
	// ErrForeignHost: a nextLink points away from the configured Graph endpoint; it is not
	// followed, so the tenant's token never leaves for another host.
	ErrForeignHost = errors.New("link to a foreign host refused")
	// ErrWrongTenant: Graph answered with another tenant's incident (a credential of the
	// wrong tenant); nothing of that answer is returned.
	ErrWrongTenant = errors.New("incident of another tenant")
	// ErrNotWritable: a Patch holds a value Graph cannot express (such as a Sentinel owner
	// known only by object id); nothing was sent.
	ErrNotWritable = errors.New("value not writable to Graph")
	// ErrMalformed: a response that is not the JSON Graph documents.
	ErrMalformed = errors.New("malformed response")
)

// Error is an error response from Graph: {"error":{"code","message","innerError":{…}}}.
type Error struct {
	StatusCode int
	Code       string // may be empty: Graph's OData layer sends "" (e.g. for $top > 50)
	Message    string
	RequestID  string
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
		b.WriteString(" (request-id " + e.RequestID + ")")
	}
	return b.String()
}

// Is maps the status to the package's error values.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
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
// body that is not Graph's envelope still gives an *Error, with the body's start as message.
func ParseError(status int, h http.Header, body []byte) *Error {
	e := &Error{StatusCode: status}
	var env struct {
		Error struct {
			Code       string `json:"code"`
			Message    string `json:"message"`
			InnerError struct {
				RequestID string `json:"request-id"`
			} `json:"innerError"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &env) == nil && (env.Error.Code != "" || env.Error.Message != "") {
		e.Code, e.Message, e.RequestID = env.Error.Code, env.Error.Message, env.Error.InnerError.RequestID
	} else {
		e.Message = snippet(body)
	}
	if h != nil {
		if e.RequestID == "" {
			e.RequestID = h.Get("request-id")
		}
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
