// Package graph is socsync's thin client of the Microsoft Graph security incidents API (v1.0)
// for one tenant, and the normalisation of its payloads into incident.Observation.
//
// It rides on azcore's pipeline: bearer tokens for https://graph.microsoft.com/.default,
// requested for the client's tenant only, and no retries of its own — the transport given to
// New (socsync's throttle transport) paces, retries and reports *throttle.Throttled. Every
// request carries the budget key {API: "graph", Scope: tenant}.
package graph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"github.com/socsync/socsync/internal/incident"
	"github.com/socsync/socsync/internal/throttle"
)

const (
	// Scope is the token scope of Microsoft Graph.
	Scope = "https://graph.microsoft.com/.default"
	// MaxPageSize is the largest $top Graph accepts on incidents (more is a 400).
	MaxPageSize = 50

	incidentsPath = "/v1.0/security/incidents"
)

// Options configures a Client. The zero value is fine.
type Options struct {
	// PageSize is the $top of list requests, 1 to MaxPageSize (default MaxPageSize).
	PageSize int
	// Version is socsync's version, sent in the User-Agent as socsync/<version> (default "dev").
	Version string
	// Now is the clock that future timestamps are judged by (default time.Now).
	Now func() time.Time
	// MaxSkew is how far in the future a timestamp may be before it is flagged (default
	// DefaultMaxSkew).
	MaxSkew time.Duration
}

// Client talks to Graph for one tenant. It is safe for concurrent use.
type Client struct {
	base     *url.URL // the endpoint, without a trailing slash
	tenantID string
	top      int
	pl       runtime.Pipeline
	norm     Normalizer
	// tokenRefused is set when the remote answered 401: the next request asks Entra for a new
	// token instead of the SDK's cached one (see freshToken).
	tokenRefused atomic.Bool
}

// Page is one page of incidents. Incidents that could not be read are in Bad, so that one
// poisoned incident does not stall its tenant; Next is the link to the next page ("" on the
// last), to pass back to ListChanged.
type Page struct {
	Incidents []incident.Observation
	Bad       []BadItem
	Next      string
}

// BadItem is an incident of a page that could not be normalised.
type BadItem struct {
	ID  string // when the payload had a readable id
	Err error
	Raw json.RawMessage
}

// New returns a client for tenantID at endpoint (e.g. https://graph.microsoft.com). Tokens
// come from cred, always requested for tenantID; requests go through transport (nil: azcore's
// default).
func New(endpoint string, cred azcore.TokenCredential, transport policy.Transporter, tenantID string, opts *Options) (*Client, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	base, err := url.Parse(strings.TrimSuffix(endpoint, "/"))
	switch {
	case err != nil:
		return nil, fmt.Errorf("graph: endpoint %q: %w", endpoint, err)
	case base.Scheme != "https" || base.Host == "" || base.RawQuery != "" || base.User != nil:
		return nil, fmt.Errorf("graph: endpoint %q: want https://host[:port] (tokens are only sent over TLS)", endpoint)
	case cred == nil:
		return nil, errors.New("graph: a token credential is required")
	case strings.TrimSpace(tenantID) == "":
		return nil, errors.New("graph: a tenant id is required")
	}
	switch {
	case o.PageSize == 0:
		o.PageSize = MaxPageSize
	case o.PageSize < 0 || o.PageSize > MaxPageSize:
		return nil, fmt.Errorf("graph: page size %d: want 1 to %d", o.PageSize, MaxPageSize)
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	c := &Client{base: base, tenantID: tenantID, top: o.PageSize,
		norm: Normalizer{TenantID: tenantID, Now: o.Now, MaxSkew: o.MaxSkew}}
	bearer := runtime.NewBearerTokenPolicy(cred, []string{Scope}, &policy.BearerTokenOptions{
		AuthorizationHandler: policy.AuthorizationHandler{OnRequest: c.authorize},
	})
	c.pl = runtime.NewPipeline("socsync/graph", o.Version, runtime.PipelineOptions{
		PerCall:  []policy.Policy{userAgent("socsync/" + o.Version)},
		PerRetry: []policy.Policy{bearer},
	}, &policy.ClientOptions{
		Transport: transport,
		Retry:     policy.RetryOptions{MaxRetries: -1}, // retries belong to the throttle transport
		Telemetry: policy.TelemetryOptions{Disabled: true},
	})
	return c, nil
}

// TenantID returns the tenant the client works for.
func (c *Client) TenantID() string { return c.tenantID }

// authorize gets the token for the client's tenant, and only for requests to its endpoint: a
// second line behind followable, so that no code path can send the token elsewhere.
func (c *Client) authorize(req *policy.Request, authorize func(policy.TokenRequestOptions) error) error {
	u := req.Raw().URL
	if !strings.EqualFold(u.Scheme, c.base.Scheme) || !strings.EqualFold(u.Host, c.base.Host) {
		return fmt.Errorf("%w: refusing to send a token to %s", ErrForeignHost, u.Host)
	}
	tro := policy.TokenRequestOptions{Scopes: []string{Scope}, TenantID: c.tenantID}
	if c.tokenRefused.Swap(false) {
		tro.Claims = freshToken(time.Now())
	}
	if err := authorize(tro); err != nil {
		return &tokenError{err: err}
	}
	return nil
}

type userAgent string

func (ua userAgent) Do(req *policy.Request) (*http.Response, error) {
	req.Raw().Header.Set("User-Agent", string(ua))
	return req.Next()
}

// ListChanged returns one page of the incidents changed since since (lastUpdateDateTime ge
// since), alerts expanded. With next == "" it asks for the first page; otherwise it follows
// next, a Page.Next of an earlier call, as Graph gave it — after checking that it leads to the
// configured endpoint (ErrForeignHost). A zero since lists every incident. An incident of
// another tenant fails the whole page (ErrWrongTenant); other unreadable incidents go to
// Page.Bad.
func (c *Client) ListChanged(ctx context.Context, since time.Time, next string) (Page, error) {
	var u string
	if next == "" {
		q := []string{"$top=" + strconv.Itoa(c.top), "$expand=alerts"}
		if !since.IsZero() {
			// Unquoted DateTimeOffset literal, UTC, at most 7 fractional digits (.NET's
			// precision); truncating can only widen a "ge" window.
			ts := since.UTC().Truncate(100 * time.Nanosecond).Format("2006-01-02T15:04:05.9999999Z")
			q = append([]string{"$filter=" + escapeQuery("lastUpdateDateTime ge "+ts)}, q...)
		}
		u = c.base.String() + incidentsPath + "?" + strings.Join(q, "&")
	} else {
		var err error
		if u, err = followable(c.base, c.base.Path+incidentsPath, next); err != nil {
			return Page{}, fmt.Errorf("graph: list incidents: %w", err)
		}
	}
	body, err := c.send(ctx, http.MethodGet, u, nil)
	if err != nil {
		return Page{}, fmt.Errorf("graph: list incidents: %w", err)
	}
	p, err := c.norm.Page(body)
	if err != nil {
		return Page{}, fmt.Errorf("graph: list incidents: %w", err)
	}
	return p, nil
}

// Get returns one incident, alerts expanded.
func (c *Client) Get(ctx context.Context, id string) (incident.Observation, error) {
	if err := checkID(id); err != nil {
		return incident.Observation{}, fmt.Errorf("graph: get incident: %w", err)
	}
	body, err := c.send(ctx, http.MethodGet, c.incidentURL(id)+"?$expand=alerts", nil)
	if err != nil {
		return incident.Observation{}, fmt.Errorf("graph: get incident %s: %w", id, err)
	}
	o, err := c.norm.Incident(body)
	if err != nil {
		return incident.Observation{}, fmt.Errorf("graph: get incident %s: %w", id, err)
	}
	return o, nil
}

// Update PATCHes the set fields of p and returns the incident as Graph answers (200 with the
// full entity, without alerts: Observation.Alerts is nil). A value Graph cannot express fails
// with ErrNotWritable before anything is sent.
func (c *Client) Update(ctx context.Context, id string, p Patch) (incident.Observation, error) {
	if err := checkID(id); err != nil {
		return incident.Observation{}, fmt.Errorf("graph: update incident: %w", err)
	}
	b, err := p.body()
	if err != nil {
		return incident.Observation{}, fmt.Errorf("graph: update incident %s: %w", id, err)
	}
	body, err := c.send(ctx, http.MethodPatch, c.incidentURL(id), b)
	if err != nil {
		return incident.Observation{}, fmt.Errorf("graph: update incident %s: %w", id, err)
	}
	o, err := c.norm.Incident(body)
	if err != nil {
		return incident.Observation{}, fmt.Errorf("graph: update incident %s: %w", id, err)
	}
	return o, nil
}

// AddComment adds a comment and returns the incident's comments as Graph answers (200 with the
// whole list). Graph comments have no ids: a retried AddComment adds a second comment, so
// callers match comments by text and time before retrying.
func (c *Client) AddComment(ctx context.Context, id, text string) ([]incident.RemoteComment, error) {
	if err := checkID(id); err != nil {
		return nil, fmt.Errorf("graph: comment on incident: %w", err)
	}
	if strings.TrimSpace(text) == "" {
		return nil, fmt.Errorf("graph: comment on incident %s: %w: empty comment", id, ErrNotWritable)
	}
	body, err := c.send(ctx, http.MethodPost, c.incidentURL(id)+"/comments", map[string]any{
		"@odata.type": "microsoft.graph.security.alertComment",
		"comment":     text,
	})
	if err != nil {
		return nil, fmt.Errorf("graph: comment on incident %s: %w", id, err)
	}
	cs, err := c.norm.Comments(body)
	if err != nil {
		return nil, fmt.Errorf("graph: comment on incident %s: %w", id, err)
	}
	return cs, nil
}

// checkID refuses an empty incident id, which would address the collection instead.
func checkID(id string) error {
	if strings.TrimSpace(id) == "" {
		return errors.New("an incident id is required")
	}
	return nil
}

func (c *Client) incidentURL(id string) string {
	return c.base.String() + incidentsPath + "/" + url.PathEscape(id)
}

// send makes one request under the tenant's Graph budget and returns the body of a 2xx answer;
// any other answer is an *Error.
func (c *Client) send(ctx context.Context, method, u string, body any) ([]byte, error) {
	ctx = throttle.WithKey(ctx, throttle.Key{API: throttle.APIGraph, Scope: c.tenantID})
	req, err := runtime.NewRequest(ctx, method, u)
	if err != nil {
		return nil, err
	}
	h := req.Raw().Header
	h.Set("Accept", "application/json")
	// Evolvable enum members (awaitingAction, microsoftSentinel, …) instead of
	// unknownFutureValue: socsync keeps unknown values rather than losing them.
	h.Set("Prefer", "include-unknown-enum-members")
	if body != nil {
		if err := runtime.MarshalAsJSON(req, body); err != nil {
			return nil, err
		}
	}
	resp, err := c.pl.Do(req)
	if err != nil {
		return nil, err
	}
	payload, err := runtime.Payload(resp)
	if err != nil {
		return nil, fmt.Errorf("reading the response: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		if resp.StatusCode == http.StatusUnauthorized {
			c.tokenRefused.Store(true)
		}
		return nil, ParseError(resp.StatusCode, resp.Header, payload)
	}
	return payload, nil
}

// freshToken is the claims request that makes the credential get a new token rather than
// return its cached one (the SDK caches tokens by the local clock, so a token the remote
// already refuses — expired by the remote's clock, revoked — would be sent again until then):
// a token issued no earlier than now, as a continuous access evaluation challenge asks.
func freshToken(now time.Time) string {
	return fmt.Sprintf(`{"access_token":{"nbf":{"essential":true,"value":"%d"}}}`, now.Unix())
}
