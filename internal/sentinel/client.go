// Package sentinel is socsync's thin client of Microsoft Sentinel incidents (Azure Resource
// Manager, Microsoft.SecurityInsights, api-version 2025-12-01 by default) for one tenant's
// workspace, the normalisation of its payloads into incident.Observation, and Apply, which
// writes hub changes into a Sentinel incident by Sentinel's rules.
//
// It rides on azcore's ARM pipeline (arm/runtime.NewPipeline, resource provider registration
// off): bearer tokens for https://management.azure.com/.default, requested for the client's
// tenant only, and no retries of its own — the transport given to New (socsync's throttle
// transport) paces, retries and reports *throttle.Throttled. Budget keys (Scope: the
// subscription): incident GETs and lists "arm-read"; comment GETs and the alerts POST
// "sentinel-read"; incident and comment PUTs "sentinel-write".
package sentinel

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	armruntime "github.com/Azure/azure-sdk-for-go/sdk/azcore/arm/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"

	"github.com/socsync/socsync/internal/incident"
	"github.com/socsync/socsync/internal/throttle"
)

const (
	// Scope is the token scope of Azure Resource Manager.
	Scope = "https://management.azure.com/.default"
	// DefaultAPIVersion is the newest stable Microsoft.SecurityInsights api-version.
	DefaultAPIVersion = "2025-12-01"
	// DefaultPageSize is the $top of list requests unless configured.
	DefaultPageSize = 200
	// MaxPageSize is the largest $top Sentinel accepts.
	MaxPageSize = 1000

	// maxCommentPages bounds the pages of one incident's comments (Sentinel keeps at most 100
	// comments per incident), so that a server repeating a nextLink cannot loop the client.
	maxCommentPages = 100
)

// Workspace names a Sentinel workspace.
type Workspace struct {
	SubscriptionID string
	ResourceGroup  string
	Workspace      string
}

var (
	reWorkspace = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,88}[A-Za-z0-9]$`)
	reSegment   = regexp.MustCompile(`^[A-Za-z0-9._()-]{1,90}$`)
)

func (w Workspace) validate() error {
	switch {
	case !reSegment.MatchString(w.SubscriptionID):
		return fmt.Errorf("subscription id %q is not valid", w.SubscriptionID)
	case !reSegment.MatchString(w.ResourceGroup):
		return fmt.Errorf("resource group %q is not valid", w.ResourceGroup)
	case !reWorkspace.MatchString(w.Workspace):
		return fmt.Errorf("workspace name %q is not valid", w.Workspace)
	}
	return nil
}

// Options configures a Client. The zero value is fine.
type Options struct {
	// APIVersion of Microsoft.SecurityInsights (default DefaultAPIVersion).
	APIVersion string
	// PageSize is the $top of list requests, 1 to MaxPageSize (default DefaultPageSize).
	PageSize int
	// Owners maps owner UPNs to object ids for this tenant (from configuration).
	Owners incident.Owners
	// Version is socsync's version, sent in the User-Agent as socsync/<version> (default "dev").
	Version string
	// Now is the clock that future timestamps are judged by (default time.Now).
	Now func() time.Time
	// MaxSkew is how far in the future a timestamp may be before it is flagged (default
	// DefaultMaxSkew).
	MaxSkew time.Duration
}

// Client talks to one Sentinel workspace of one tenant. It is safe for concurrent use.
type Client struct {
	base       *url.URL // the ARM endpoint, without a trailing slash
	tenantID   string
	ws         Workspace
	apiVersion string
	top        int
	// workspacePath and collection are the paths of the workspace and its incidents.
	workspacePath, collection string
	pl                        runtime.Pipeline
	norm                      Normalizer
	// tokenRefused is set when the remote answered 401: the next request asks Entra for a new
	// token instead of the SDK's cached one (see freshToken).
	tokenRefused atomic.Bool
}

// Page is one page of incidents. Incidents that could not be read are in Bad, so that one
// poisoned incident does not stall its workspace; Next is the link to the next page ("" on
// the last), to pass back to ListChanged.
type Page struct {
	Incidents []incident.Observation
	Bad       []BadItem
	Next      string
}

// BadItem is an incident of a page that could not be normalised.
type BadItem struct {
	ID  string // the incident name, when readable
	Err error
	Raw json.RawMessage
}

// New returns a client for workspace ws of tenantID at endpoint (e.g.
// https://management.azure.com). Tokens come from cred, always requested for tenantID;
// requests go through transport (nil: azcore's default).
func New(endpoint string, cred azcore.TokenCredential, transport policy.Transporter, tenantID string, ws Workspace, opts *Options) (*Client, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	base, err := url.Parse(strings.TrimSuffix(endpoint, "/"))
	switch {
	case err != nil:
		return nil, fmt.Errorf("sentinel: endpoint %q: %w", endpoint, err)
	case base.Scheme != "https" || base.Host == "" || base.RawQuery != "" || base.User != nil:
		return nil, fmt.Errorf("sentinel: endpoint %q: want https://host[:port] (tokens are only sent over TLS)", endpoint)
	case cred == nil:
		return nil, errors.New("sentinel: a token credential is required")
	case strings.TrimSpace(tenantID) == "":
		return nil, errors.New("sentinel: a tenant id is required")
	}
	if err := ws.validate(); err != nil {
		return nil, fmt.Errorf("sentinel: %w", err)
	}
	switch {
	case o.PageSize == 0:
		o.PageSize = DefaultPageSize
	case o.PageSize < 0 || o.PageSize > MaxPageSize:
		return nil, fmt.Errorf("sentinel: page size %d: want 1 to %d", o.PageSize, MaxPageSize)
	}
	if o.APIVersion == "" {
		o.APIVersion = DefaultAPIVersion
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	c := &Client{base: base, tenantID: tenantID, ws: ws, apiVersion: o.APIVersion, top: o.PageSize,
		norm: Normalizer{TenantID: tenantID, Owners: o.Owners, Now: o.Now, MaxSkew: o.MaxSkew}}
	c.workspacePath = base.Path + "/subscriptions/" + url.PathEscape(ws.SubscriptionID) +
		"/resourceGroups/" + url.PathEscape(ws.ResourceGroup) +
		"/providers/Microsoft.OperationalInsights/workspaces/" + url.PathEscape(ws.Workspace)
	c.collection = c.workspacePath + "/providers/Microsoft.SecurityInsights/incidents"
	// azcore's ARM pipeline: its bearer token policy asks for the Resource Manager audience of
	// the cloud configuration below (Scope) and caches the token; tenantCredential makes every
	// token one of the client's tenant, and hostGuard, which runs before it, refuses to let a
	// token go anywhere but the endpoint. Resource provider registration is off: socsync reads
	// and writes incidents in customers' subscriptions and must never register providers there
	// (it has no right to, and it would be calls the budgets do not know of).
	pl, err := armruntime.NewPipeline("socsync/sentinel", o.Version, tenantCredential{cred: cred, c: c}, runtime.PipelineOptions{
		PerCall:  []policy.Policy{userAgent("socsync/" + o.Version)},
		PerRetry: []policy.Policy{hostGuard{c}},
	}, &arm.ClientOptions{
		ClientOptions: policy.ClientOptions{
			Cloud: cloud.Configuration{Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
				cloud.ResourceManager: {Endpoint: base.String(), Audience: strings.TrimSuffix(Scope, "/.default")},
			}},
			Transport: transport,
			Retry:     policy.RetryOptions{MaxRetries: -1}, // retries belong to the throttle transport
			Telemetry: policy.TelemetryOptions{Disabled: true},
		},
		DisableRPRegistration: true,
	})
	if err != nil {
		return nil, fmt.Errorf("sentinel: %w", err)
	}
	c.pl = pl
	return c, nil
}

// Workspace returns the workspace the client works on.
func (c *Client) Workspace() Workspace { return c.ws }

// TenantID returns the tenant the client works for.
func (c *Client) TenantID() string { return c.tenantID }

// hostGuard lets requests go only to the client's endpoint, before the pipeline's bearer token
// policy adds a token: a second line behind followable, so that no code path can send the
// token elsewhere.
type hostGuard struct{ c *Client }

func (g hostGuard) Do(req *policy.Request) (*http.Response, error) {
	u := req.Raw().URL
	if !strings.EqualFold(u.Scheme, g.c.base.Scheme) || !strings.EqualFold(u.Host, g.c.base.Host) {
		return nil, fmt.Errorf("%w: refusing to send a token to %s", ErrForeignHost, u.Host)
	}
	return req.Next()
}

// tenantCredential is the credential the pipeline's bearer token policy gets its tokens from:
// always for the client's tenant, a fresh one (not the SDK's cached one) after the remote
// refused a token, and its failures a *tokenError.
type tenantCredential struct {
	cred azcore.TokenCredential
	c    *Client
}

func (t tenantCredential) GetToken(ctx context.Context, tro policy.TokenRequestOptions) (azcore.AccessToken, error) {
	tro.TenantID = t.c.tenantID
	if t.c.tokenRefused.Swap(false) && tro.Claims == "" {
		tro.Claims = freshToken(time.Now())
	}
	tk, err := t.cred.GetToken(ctx, tro)
	if err != nil {
		return tk, &tokenError{err: err}
	}
	return tk, nil
}

type userAgent string

func (ua userAgent) Do(req *policy.Request) (*http.Response, error) {
	req.Raw().Header.Set("User-Agent", string(ua))
	return req.Next()
}

// ListChanged returns one page of the incidents changed since since
// (properties/lastModifiedTimeUtc ge since), oldest change first. With next == "" it asks for
// the first page; otherwise it follows next, a Page.Next of an earlier call — after checking
// that it leads to this workspace's incidents on the configured endpoint (ErrForeignHost) and
// re-encoding its query, which Sentinel sends unescaped. A zero since lists every incident.
func (c *Client) ListChanged(ctx context.Context, since time.Time, next string) (Page, error) {
	var u string
	if next == "" {
		q := []string{"api-version=" + url.QueryEscape(c.apiVersion)}
		if !since.IsZero() {
			// Unquoted date-time literal, UTC, at most 7 fractional digits (.NET's precision);
			// truncating can only widen a "ge" window.
			ts := since.UTC().Truncate(100 * time.Nanosecond).Format("2006-01-02T15:04:05.9999999Z")
			q = append(q, "$filter="+escapeQuery("properties/lastModifiedTimeUtc ge "+ts))
		}
		q = append(q, "$orderby="+escapeQuery("properties/lastModifiedTimeUtc asc"), "$top="+strconv.Itoa(c.top))
		u = c.base.Scheme + "://" + c.base.Host + c.collection + "?" + strings.Join(q, "&")
	} else {
		var err error
		if u, err = followable(c.base, c.collection, next); err != nil {
			return Page{}, fmt.Errorf("sentinel: list incidents: %w", err)
		}
	}
	body, err := c.send(ctx, c.readKey(), http.MethodGet, u, nil)
	if err != nil {
		return Page{}, fmt.Errorf("sentinel: list incidents: %w", err)
	}
	p, err := c.norm.Page(body)
	if err != nil {
		return Page{}, fmt.Errorf("sentinel: list incidents: %w", err)
	}
	// Hand out the link re-encoded; one that leads elsewhere is handed out as it came, and
	// following it fails (ErrForeignHost) without losing this page.
	if next, err := followable(c.base, c.collection, p.Next); p.Next != "" && err == nil {
		p.Next = next
	}
	return p, nil
}

// Get returns one incident, normalised and as the wire incident to modify and Put back.
func (c *Client) Get(ctx context.Context, name string) (incident.Observation, Incident, error) {
	if err := checkName(name); err != nil {
		return incident.Observation{}, Incident{}, fmt.Errorf("sentinel: get incident: %w", err)
	}
	body, err := c.send(ctx, c.readKey(), http.MethodGet, c.url(name), nil)
	if err != nil {
		return incident.Observation{}, Incident{}, fmt.Errorf("sentinel: get incident %s: %w", name, err)
	}
	o, inc, err := c.norm.Incident(body)
	if err != nil {
		return incident.Observation{}, Incident{}, fmt.Errorf("sentinel: get incident %s: %w", name, err)
	}
	return o, inc, nil
}

// Put writes inc (typically from Get, changed with Apply) as incident name: a full
// replacement of the writable fields, guarded by inc.ETag. It returns the incident as Sentinel
// answers, with its new etag. A stale etag is ErrConflict: Get again, re-apply, Put again.
// Sentinel creates the incident (201) if name does not exist; that is not an error.
func (c *Client) Put(ctx context.Context, name string, inc Incident) (incident.Observation, Incident, error) {
	if err := checkName(name); err != nil {
		return incident.Observation{}, Incident{}, fmt.Errorf("sentinel: put incident: %w", err)
	}
	b, err := inc.putBody()
	if err != nil {
		return incident.Observation{}, Incident{}, fmt.Errorf("sentinel: put incident %s: %w", name, err)
	}
	body, err := c.send(ctx, c.writeKey(), http.MethodPut, c.url(name), b)
	if err != nil {
		return incident.Observation{}, Incident{}, fmt.Errorf("sentinel: put incident %s: %w", name, err)
	}
	o, out, err := c.norm.Incident(body)
	if err != nil {
		return incident.Observation{}, Incident{}, fmt.Errorf("sentinel: put incident %s: %w", name, err)
	}
	return o, out, nil
}

// Comments returns an incident's comments, following nextLinks.
func (c *Client) Comments(ctx context.Context, name string) ([]incident.RemoteComment, error) {
	if err := checkName(name); err != nil {
		return nil, fmt.Errorf("sentinel: comments of incident: %w", err)
	}
	collection := c.collection + "/" + url.PathEscape(name) + "/comments"
	u := c.base.Scheme + "://" + c.base.Host + collection + "?api-version=" + url.QueryEscape(c.apiVersion)
	var out []incident.RemoteComment
	for pages := 0; u != ""; pages++ {
		if pages == maxCommentPages {
			return nil, fmt.Errorf("sentinel: comments of incident %s: %w: more than %d pages", name, ErrMalformed, maxCommentPages)
		}
		body, err := c.send(ctx, c.sentinelReadKey(), http.MethodGet, u, nil)
		if err != nil {
			return nil, fmt.Errorf("sentinel: comments of incident %s: %w", name, err)
		}
		var env struct {
			Value    *[]json.RawMessage `json:"value"`
			NextLink string             `json:"nextLink"`
		}
		if err := json.Unmarshal(body, &env); err != nil || env.Value == nil {
			if err == nil {
				err = errors.New("no value array")
			}
			return nil, fmt.Errorf("sentinel: comments of incident %s: %w: %w", name, ErrMalformed, err)
		}
		for _, raw := range *env.Value {
			cm, err := c.norm.Comment(raw)
			if err != nil {
				return nil, fmt.Errorf("sentinel: comments of incident %s: %w", name, err)
			}
			out = append(out, cm)
		}
		u = ""
		if env.NextLink != "" {
			if u, err = followable(c.base, collection, env.NextLink); err != nil {
				return nil, fmt.Errorf("sentinel: comments of incident %s: %w", name, err)
			}
		}
	}
	return out, nil
}

// PutComment writes comment commentID of an incident. The id is the caller's (derive it from
// the hub comment), so a replay rewrites the same comment instead of adding one: 201 on
// create and 200 on replay are both success.
func (c *Client) PutComment(ctx context.Context, name, commentID, message string) (incident.RemoteComment, error) {
	if err := checkName(name); err != nil {
		return incident.RemoteComment{}, fmt.Errorf("sentinel: comment on incident: %w", err)
	}
	if strings.TrimSpace(commentID) == "" || strings.TrimSpace(message) == "" {
		return incident.RemoteComment{}, fmt.Errorf("sentinel: comment on incident %s: %w: a comment needs an id and a message", name, ErrBadRequest)
	}
	b, err := json.Marshal(map[string]any{"properties": map[string]string{"message": message}})
	if err != nil {
		return incident.RemoteComment{}, err
	}
	body, err := c.send(ctx, c.writeKey(), http.MethodPut, c.subURL(name, "/comments/"+url.PathEscape(commentID)), b)
	if err != nil {
		return incident.RemoteComment{}, fmt.Errorf("sentinel: comment %s on incident %s: %w", commentID, name, err)
	}
	cm, err := c.norm.Comment(body)
	if err != nil {
		return incident.RemoteComment{}, fmt.Errorf("sentinel: comment %s on incident %s: %w", commentID, name, err)
	}
	return cm, nil
}

// Alerts returns an incident's alerts (POST …/alerts, a read).
func (c *Client) Alerts(ctx context.Context, name string) ([]incident.ObservedAlert, error) {
	if err := checkName(name); err != nil {
		return nil, fmt.Errorf("sentinel: alerts of incident: %w", err)
	}
	// The POST only reads: the transport may repeat it like a GET.
	body, err := c.send(throttle.Idempotent(ctx), c.sentinelReadKey(), http.MethodPost, c.subURL(name, "/alerts"), nil)
	if err != nil {
		return nil, fmt.Errorf("sentinel: alerts of incident %s: %w", name, err)
	}
	var env struct {
		Value *[]json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.Value == nil {
		if err == nil {
			err = errors.New("no value array")
		}
		return nil, fmt.Errorf("sentinel: alerts of incident %s: %w: %w", name, ErrMalformed, err)
	}
	out := make([]incident.ObservedAlert, 0, len(*env.Value))
	for _, raw := range *env.Value {
		a, err := c.norm.Alert(raw)
		if err != nil {
			return nil, fmt.Errorf("sentinel: alerts of incident %s: %w", name, err)
		}
		out = append(out, a)
	}
	return out, nil
}

// Budget keys, one per request: the tightest limit the request counts against. Incident
// reads are ARM reads; comment reads and the alerts POST also count against Sentinel's own
// reads limit (100 per 5 minutes), and incident and comment PUTs against its writes limit (75
// per 5 minutes), both far below ARM's.
func (c *Client) readKey() throttle.Key {
	return throttle.Key{API: throttle.APIARMRead, Scope: c.ws.SubscriptionID}
}

func (c *Client) sentinelReadKey() throttle.Key {
	return throttle.Key{API: throttle.APISentinelRead, Scope: c.ws.SubscriptionID}
}

func (c *Client) writeKey() throttle.Key {
	return throttle.Key{API: throttle.APISentinelWrite, Scope: c.ws.SubscriptionID}
}

func (c *Client) url(name string) string { return c.subURL(name, "") }

// checkName refuses an empty incident name, which would address the collection instead.
func checkName(name string) error {
	if strings.TrimSpace(name) == "" {
		return errors.New("an incident name is required")
	}
	return nil
}

func (c *Client) subURL(name, suffix string) string {
	return c.base.Scheme + "://" + c.base.Host + c.collection + "/" + url.PathEscape(name) + suffix +
		"?api-version=" + url.QueryEscape(c.apiVersion)
}

// send makes one request under budget key and returns the body of a 2xx answer; any other
// answer is an *Error. body, when not nil, is sent as JSON.
func (c *Client) send(ctx context.Context, key throttle.Key, method, u string, body []byte) ([]byte, error) {
	ctx = throttle.WithKey(ctx, key)
	req, err := runtime.NewRequest(ctx, method, u)
	if err != nil {
		return nil, err
	}
	req.Raw().Header.Set("Accept", "application/json")
	if body != nil {
		if err := req.SetBody(streaming.NopCloser(bytes.NewReader(body)), "application/json"); err != nil {
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
