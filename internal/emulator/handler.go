package emulator

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// The APIs, as the request log names them.
const (
	apiToken     = "token"
	apiGraph     = "graph"
	apiARM       = "arm"
	apiIngestion = "ingestion"
)

const (
	workspacePrefix = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.OperationalInsights/workspaces/{workspaceName}"
	armPrefix       = workspacePrefix + "/providers/Microsoft.SecurityInsights"
)

type route struct {
	api      string
	method   string
	template string
	segs     []string
	h        func(c *call)
}

func (e *Emulator) routes() []*route {
	rs := []*route{
		{api: apiToken, method: "GET", template: "/{tenant}/v2.0/.well-known/openid-configuration", h: e.openIDConfig},
		{api: apiToken, method: "GET", template: "/{tenant}/discovery/v2.0/keys", h: e.jwks},
		{api: apiToken, method: "POST", template: "/{tenant}/oauth2/v2.0/token", h: e.token},

		{api: apiGraph, method: "GET", template: "/v1.0/security/incidents", h: e.graphListIncidents},
		{api: apiGraph, method: "GET", template: "/v1.0/security/incidents/{id}", h: e.graphGetIncident},
		{api: apiGraph, method: "PATCH", template: "/v1.0/security/incidents/{id}", h: e.graphPatchIncident},
		{api: apiGraph, method: "POST", template: "/v1.0/security/incidents/{id}/comments", h: e.graphPostComment},
		{api: apiGraph, method: "GET", template: "/v1.0/security/alerts_v2", h: e.graphListAlerts},
		{api: apiGraph, method: "GET", template: "/v1.0/security/alerts_v2/{id}", h: e.graphGetAlert},

		{api: apiARM, method: "GET", template: armPrefix + "/incidents", h: e.armListIncidents},
		{api: apiARM, method: "GET", template: armPrefix + "/incidents/{incidentId}", h: e.armGetIncident},
		{api: apiARM, method: "PUT", template: armPrefix + "/incidents/{incidentId}", h: e.armPutIncident},
		{api: apiARM, method: "DELETE", template: armPrefix + "/incidents/{incidentId}", h: e.armDeleteIncident},
		{api: apiARM, method: "POST", template: armPrefix + "/incidents/{incidentId}/alerts", h: e.armListAlerts},
		{api: apiARM, method: "GET", template: armPrefix + "/incidents/{incidentId}/comments", h: e.armListComments},
		{api: apiARM, method: "GET", template: armPrefix + "/incidents/{incidentId}/comments/{incidentCommentId}", h: e.armGetComment},
		{api: apiARM, method: "PUT", template: armPrefix + "/incidents/{incidentId}/comments/{incidentCommentId}", h: e.armPutComment},
		{api: apiARM, method: "DELETE", template: armPrefix + "/incidents/{incidentId}/comments/{incidentCommentId}", h: e.armDeleteComment},
		{api: apiARM, method: "GET", template: workspacePrefix + "/providers/Microsoft.Authorization/permissions", h: e.armPermissions},

		{api: apiIngestion, method: "POST", template: "/dataCollectionRules/{ruleId}/streams/{stream}", h: e.ingest},
	}
	for _, r := range rs {
		r.segs = strings.Split(strings.Trim(r.template, "/"), "/")
	}
	return rs
}

// match finds the route of a request. It returns the route whose path matches (possibly with
// another method: then methodOK is false) and the path parameters.
func (e *Emulator) match(method, path string) (rt *route, params map[string]string, methodOK bool) {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for _, r := range e.routeTable {
		if len(r.segs) != len(segs) {
			continue
		}
		p := map[string]string{}
		ok := true
		for i, s := range r.segs {
			if strings.HasPrefix(s, "{") {
				if segs[i] == "" {
					ok = false
					break
				}
				p[strings.Trim(s, "{}")] = segs[i]
			} else if !strings.EqualFold(s, segs[i]) {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		if r.method == method {
			return r, p, true
		}
		if rt == nil {
			rt, params = r, p
		}
	}
	return rt, params, false
}

// apiOf guesses the API of a path no route matched, for the request log and error shape.
func apiOf(path string) string {
	lp := strings.ToLower(path)
	switch {
	case strings.HasPrefix(lp, "/v1.0/") || strings.HasPrefix(lp, "/beta/"):
		return apiGraph
	case strings.HasPrefix(lp, "/subscriptions/"):
		return apiARM
	case strings.HasPrefix(lp, "/datacollectionrules/"):
		return apiIngestion
	case strings.Contains(lp, "/oauth2/") || strings.Contains(lp, "/.well-known/"):
		return apiToken
	}
	return ""
}

// call is one request to an emulated API.
type call struct {
	e      *Emulator
	w      *recorder
	r      *http.Request
	seq    uint64
	start  time.Time
	api    string
	route  string
	p      map[string]string
	tenant *tenant // whose data the request touches
	// tenantKey names the tenant in the request log when tenant is nil.
	tenantKey string
	claims    *claims // token with a valid signature, possibly expired or for another audience
	sub       string  // ARM subscription id
	principal string  // app id of the caller
	rec       RequestRecord
}

// recorder captures the status of a response and, for the truncation fault, its body.
type recorder struct {
	http.ResponseWriter
	status int
	buf    *bytes.Buffer
}

func (r *recorder) WriteHeader(status int) {
	if r.status != 0 {
		return
	}
	r.status = status
	if r.buf == nil {
		r.ResponseWriter.WriteHeader(status)
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK)
	}
	if r.buf != nil {
		return r.buf.Write(b)
	}
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok && r.buf == nil {
		f.Flush()
	}
}

// invalidURIChars are characters HTTP.sys refuses in a request target. A client that follows a
// Sentinel nextLink verbatim sends raw spaces; Go's HTTP/1.1 server already answers those with
// 400, and this makes HTTP/2 behave the same.
const invalidURIChars = " \"<>\\^`{|}"

func (e *Emulator) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/_emulator" || strings.HasPrefix(r.URL.Path, "/_emulator/") {
		e.serveAdmin(w, r)
		return
	}
	c := &call{e: e, w: &recorder{ResponseWriter: w}, r: r, seq: e.nextSeq(), start: e.now()}
	rt, params, methodOK := e.match(r.Method, r.URL.Path)
	switch {
	case strings.ContainsAny(r.RequestURI, invalidURIChars):
		c.api, c.route = apiOf(r.URL.Path), "(invalid url)"
		w.Header().Set("Content-Type", "text/html; charset=us-ascii")
		c.w.WriteHeader(http.StatusBadRequest)
		c.w.Write([]byte(httpSysBadURL))
		e.logCall(c)
		return
	case rt == nil:
		c.api, c.route = apiOf(r.URL.Path), "(unknown)"
		c.identify()
		c.notFound()
		e.logCall(c)
		return
	case !methodOK:
		c.api, c.route, c.p = rt.api, rt.template, params
		c.identify()
		c.methodNotAllowed()
		e.logCall(c)
		return
	}
	c.api, c.route, c.p = rt.api, rt.template, params
	c.identify()
	plan := e.faultPlan(c)
	e.hold(r, plan.latency)
	if r.Context().Err() != nil {
		c.rec.Fault = "client-gone"
		e.logCall(c)
		return
	}
	switch plan.kind {
	case faultHang:
		c.rec.Fault = "hang"
		select {
		case <-r.Context().Done():
		case <-e.done:
		case <-time.After(15 * time.Minute):
		}
		e.logCall(c)
		return
	case faultReset:
		c.rec.Fault = "reset"
		e.logCall(c)
		resetConnection(w)
		return
	case fault429:
		c.rec.Fault = "429"
		c.tooManyRequests(plan.retryAfter, "fault")
		e.logCall(c)
		return
	case fault5xx:
		c.rec.Fault = "5xx"
		c.serverError(plan.status)
		e.logCall(c)
		return
	case fault413:
		c.rec.Fault = "413"
		c.contentTooLarge(r.ContentLength)
		e.logCall(c)
		return
	case faultTruncate:
		c.rec.Fault = "truncate"
		c.w.buf = &bytes.Buffer{}
	}
	if plan.after > 0 && c.w.buf == nil {
		c.w.buf = &bytes.Buffer{} // the answer waits; the request's effects do not
	}
	rt.h(c)
	e.logCall(c)
	e.hold(r, plan.after)
	switch {
	case plan.kind == faultTruncate:
		truncate(w, c.w)
	case c.w.buf != nil:
		status := c.w.status
		if status == 0 {
			status = http.StatusOK
		}
		w.WriteHeader(status)
		w.Write(c.w.buf.Bytes())
	}
}

func (e *Emulator) nextSeq() uint64 { return e.reqSeq.Add(1) }

const httpSysBadURL = `<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01//EN""http://www.w3.org/TR/html4/strict.dtd">
<HTML><HEAD><TITLE>Bad Request</TITLE>
<META HTTP-EQUIV="Content-Type" Content="text/html; charset=us-ascii"></HEAD>
<BODY><h2>Bad Request - Invalid URL</h2>
<hr><p>HTTP Error 400. The request URL is invalid.</p>
</BODY></HTML>
`

// baseURL is the scheme and host the client used, for absolute links.
func (c *call) baseURL() string {
	scheme := "https"
	if c.r.TLS == nil {
		scheme = "http"
	}
	return scheme + "://" + c.r.Host
}

// requestID is a per-request GUID for request-id headers and error bodies.
func (c *call) requestID() string { return c.e.guid("request", itoa64(c.seq)) }

// writeJSON writes v as JSON without HTML escaping (so "&" stays "&", as the services print).
func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if contentType == "" {
		contentType = "application/json; charset=utf-8"
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	w.Write(bytes.TrimRight(buf.Bytes(), "\n"))
}

func (c *call) json(status int, v any) {
	ct := "application/json; charset=utf-8"
	if c.api == apiGraph {
		ct = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
	}
	writeJSON(c.w, status, ct, v)
}

// notFound answers a path no route serves, in the shape of the API it looks like.
func (c *call) notFound() {
	switch c.api {
	case apiGraph:
		c.graphError(http.StatusBadRequest, "BadRequest", "Resource not found for the segment '"+lastSegment(c.r.URL.Path)+"'.")
	case apiARM:
		c.armError(http.StatusNotFound, "InvalidResourceType", "The resource type could not be found in the namespace 'Microsoft.SecurityInsights' for api version '"+c.r.URL.Query().Get("api-version")+"'.")
	case apiIngestion:
		c.ingestionError(http.StatusNotFound, "NotFound", "The requested resource was not found.")
	default:
		http.NotFound(c.w, c.r)
	}
}

func (c *call) methodNotAllowed() {
	switch c.api {
	case apiGraph:
		c.graphError(http.StatusMethodNotAllowed, "BadRequest", "The HTTP method '"+c.r.Method+"' is not allowed for the segment '"+lastSegment(c.r.URL.Path)+"'.")
	case apiARM:
		c.armError(http.StatusMethodNotAllowed, "MethodNotAllowed", "The requested method '"+c.r.Method+"' is not allowed for this resource.")
	case apiToken:
		c.aadError(http.StatusMethodNotAllowed, "invalid_request", 900561, "The endpoint only accepts "+map[bool]string{true: "POST", false: "GET"}[strings.HasSuffix(c.route, "/token")]+" requests. Received a "+c.r.Method+" request.")
	default:
		c.ingestionError(http.StatusMethodNotAllowed, "MethodNotAllowed", "The requested method is not allowed.")
	}
}

func lastSegment(p string) string {
	p = strings.TrimRight(p, "/")
	return p[strings.LastIndex(p, "/")+1:]
}

// tooManyRequests writes the API's 429 answer.
func (c *call) tooManyRequests(retryAfter int, limit string) {
	c.rec.RetryAfter = retryAfter
	if c.rec.Throttled == "" {
		c.rec.Throttled = limit
	}
	c.w.Header().Set("Retry-After", itoa(retryAfter))
	switch c.api {
	case apiGraph:
		c.json(http.StatusTooManyRequests, obj{{"error", obj{
			{"code", "TooManyRequests"},
			{"innerError", obj{
				{"code", "429"}, {"date", c.start.Format("2006-01-02T15:04:05")}, {"message", "Please retry after"},
				{"request-id", c.requestID()}, {"status", "429"},
			}},
			{"message", "Please retry again later."},
		}}})
	case apiARM:
		if limit == "arm" {
			kind := map[string]string{"GET": "read", "DELETE": "delete"}[c.r.Method]
			if kind == "" {
				kind = "write"
			}
			c.armError(http.StatusTooManyRequests, "SubscriptionRequestsThrottled",
				"Number of '"+kind+"' requests for subscription '"+c.sub+"' actor '"+c.principalOID()+"' exceeded. Please try again after '"+itoa(retryAfter)+"' seconds after additional tokens are available. Refer to https://aka.ms/arm-throttling")
			return
		}
		c.armError(http.StatusTooManyRequests, "TooManyRequests", "Too many requests. Please retry after "+itoa(retryAfter)+" seconds.")
	case apiIngestion:
		c.ingestionError(http.StatusTooManyRequests, "TooManyRequests", "The request rate for the data collection rule has been exceeded. Retry after "+itoa(retryAfter)+" seconds.")
	default:
		c.aadError(http.StatusTooManyRequests, "temporarily_unavailable", 50196, "The server terminated an operation because it encountered a client request loop. Please contact your app vendor.")
	}
}

// serverError writes the API's 5xx answer.
func (c *call) serverError(status int) {
	msg := http.StatusText(status)
	switch c.api {
	case apiGraph:
		code := map[int]string{500: "generalException", 502: "BadGateway", 503: "serviceNotAvailable", 504: "GatewayTimeout"}[status]
		if status == http.StatusServiceUnavailable {
			c.w.Header().Set("Retry-After", "2")
		}
		c.graphError(status, code, "The service is temporarily unavailable: "+msg+".")
	case apiARM:
		code := map[int]string{500: "InternalServerError", 502: "BadGateway", 503: "ServiceUnavailable", 504: "GatewayTimeout"}[status]
		c.armError(status, code, "The server encountered an internal error: "+msg+". Please retry the request.")
	case apiIngestion:
		c.ingestionError(status, "ServiceUnavailable", "The service is unavailable: "+msg+".")
	default:
		c.aadError(status, "temporarily_unavailable", 90033, "A transient error has occurred. Please try again.")
	}
}

// obj is a JSON object that keeps its keys in the order given (error bodies print their keys
// in the services' order).
type obj []kv

type kv struct {
	k string
	v any
}

func (o obj) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(f.k)
		b.Write(k)
		b.WriteByte(':')
		var vb bytes.Buffer
		enc := json.NewEncoder(&vb)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(f.v); err != nil {
			return nil, err
		}
		b.Write(bytes.TrimRight(vb.Bytes(), "\n"))
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// hold waits d, or until the client goes or the emulator closes.
func (e *Emulator) hold(r *http.Request, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	case <-e.done:
	}
}
