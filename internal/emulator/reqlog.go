package emulator

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// RequestCount is one row of GET /_emulator/requests: how many requests of one tenant, API,
// method, route template and status the emulator answered (including the 429s it sent).
type RequestCount struct {
	Tenant string `json:"tenant"`
	API    string `json:"api"`
	Method string `json:"method"`
	Route  string `json:"route"`
	Status int    `json:"status"`
	Count  int    `json:"count"`
}

// RequestRecord is one request in the detailed history (GET /_emulator/requests?detail=1).
type RequestRecord struct {
	Seq    uint64    `json:"seq"`
	Time   time.Time `json:"time"` // emulator clock when the request arrived
	Tenant string    `json:"tenant"`
	API    string    `json:"api"`
	Method string    `json:"method"`
	Route  string    `json:"route"`
	Path   string    `json:"path"`
	// APIVersion is the request's api-version query parameter, when it had one (ARM, Logs
	// Ingestion).
	APIVersion string `json:"api_version,omitempty"`
	// Status is 0 when no response was sent (hang, reset, client gone).
	Status int `json:"status"`
	// Principal is the calling app (client id); PrincipalTenant the tenant its token is from.
	Principal       string `json:"principal,omitempty"`
	PrincipalTenant string `json:"principal_tenant,omitempty"`
	Subscription    string `json:"subscription,omitempty"`
	// RetryAfter is the Retry-After (seconds) sent with a 429.
	RetryAfter int `json:"retry_after,omitempty"`
	// Throttled names the limit that produced a 429 (graph, arm, sentinel-write,
	// sentinel-read, ingestion, token) or "fault" for an injected one.
	Throttled string `json:"throttled,omitempty"`
	// Fault is the injected fault: 429, 5xx, hang, reset, truncate (or client-gone).
	Fault string `json:"fault,omitempty"`
}

type countKey struct {
	tenant, api, method, route string
	status                     int
}

type requestLog struct {
	max     int
	counts  map[countKey]int
	records []RequestRecord
	dropped int
}

func (l *requestLog) init(max int) {
	l.max = max
	l.counts = map[countKey]int{}
	l.records = nil
	l.dropped = 0
}

// logCall records a finished request.
func (e *Emulator) logCall(c *call) {
	rec := c.rec
	rec.Seq, rec.Time = c.seq, c.start
	rec.API, rec.Method, rec.Route, rec.Path = c.api, c.r.Method, c.route, c.r.URL.Path
	rec.APIVersion = c.r.URL.Query().Get("api-version")
	rec.Status = c.w.status
	if rec.Fault == "hang" || rec.Fault == "reset" || rec.Fault == "client-gone" {
		rec.Status = 0
	}
	switch {
	case c.tenant != nil:
		rec.Tenant = c.tenant.ID
	default:
		rec.Tenant = strings.ToLower(c.tenantKey)
	}
	rec.Principal = c.principal
	if c.claims != nil {
		rec.PrincipalTenant = c.claims.Tid
	}
	rec.Subscription = c.sub
	e.reqMu.Lock()
	defer e.reqMu.Unlock()
	e.reqLog.counts[countKey{rec.Tenant, rec.API, rec.Method, rec.Route, rec.Status}]++
	if len(e.reqLog.records) >= e.reqLog.max {
		n := len(e.reqLog.records) / 10
		e.reqLog.records = append(e.reqLog.records[:0], e.reqLog.records[n:]...)
		e.reqLog.dropped += n
	}
	e.reqLog.records = append(e.reqLog.records, rec)
}

// Requests returns the request counts, sorted by tenant, API, route, method and status.
func (e *Emulator) Requests() []RequestCount {
	e.reqMu.Lock()
	out := make([]RequestCount, 0, len(e.reqLog.counts))
	for k, n := range e.reqLog.counts {
		out = append(out, RequestCount{Tenant: k.tenant, API: k.api, Method: k.method, Route: k.route, Status: k.status, Count: n})
	}
	e.reqMu.Unlock()
	slices.SortFunc(out, func(a, b RequestCount) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.API, b.API), cmp.Compare(a.Route, b.Route),
			cmp.Compare(a.Method, b.Method), cmp.Compare(a.Status, b.Status))
	})
	return out
}

// RequestHistory returns the detailed history in arrival order, and how many of the oldest
// records were dropped to respect Options.MaxRequestHistory.
func (e *Emulator) RequestHistory() (records []RequestRecord, dropped int) {
	e.reqMu.Lock()
	defer e.reqMu.Unlock()
	return slices.Clone(e.reqLog.records), e.reqLog.dropped
}

// ResetRequests clears the request counts and history.
func (e *Emulator) ResetRequests() {
	e.reqMu.Lock()
	defer e.reqMu.Unlock()
	e.reqLog.init(e.reqLog.max)
}

// RetryAfterViolations returns every request received from a caller (tenant, API, principal)
// before the Retry-After of a 429 sent to that same caller had passed: what a client that
// honours Retry-After never does.
func RetryAfterViolations(records []RequestRecord) []string {
	type key struct{ tenant, api, principal string }
	until := map[key]time.Time{}
	var out []string
	for _, r := range records {
		k := key{r.Tenant, r.API, r.Principal}
		if t, ok := until[k]; ok && r.Time.Before(t) {
			out = append(out, fmt.Sprintf("#%d %s %s %s at %s, before the Retry-After ending %s",
				r.Seq, r.Tenant, r.Method, r.Path, r.Time.Format(time.RFC3339Nano), t.Format(time.RFC3339Nano)))
		}
		if r.Status == 429 && r.RetryAfter > 0 {
			if end := r.Time.Add(time.Duration(r.RetryAfter) * time.Second); end.After(until[k]) {
				until[k] = end
			}
		}
	}
	return out
}
