package web

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/socsync/socsync/internal/incident"
	"github.com/socsync/socsync/internal/store"
)

// queuePageSize is how many incidents a queue page shows.
const queuePageSize = 50

type option struct {
	Value, Label string
	Selected     bool
}

type queueRow struct {
	ID, Title, TenantName string
	Severity, Status      string
	Owner, SyncState      string
	Sources               []string
	AlertCount            int
	Updated, Created      time.Time
}

type sortLink struct {
	Label, URL string
	Active     bool
	Asc        bool
}

type queuePage struct {
	pageData
	Tenants    []option
	Statuses   []option
	Severities []option
	Sources    []option
	Owner, Q   string
	Sort, Dir  string
	SortLinks  map[string]sortLink
	Rows       []queueRow
	Next       string // URL of the next page, if any
	First      string // URL of the first page, when not on it
	Filtered   bool
}

// queueQuery is a queue request's filters, order and position, parsed and checked.
type queueQuery struct {
	filter store.ListFilter
	order  store.QueueOrder
	after  store.QueuePosition
}

var errBadQuery = errors.New("bad query")

func parseQueueQuery(q url.Values) (queueQuery, string, error) {
	var qq queueQuery
	f := &qq.filter
	f.Tenant, f.Owner, f.Text = strings.TrimSpace(q.Get("tenant")), strings.TrimSpace(q.Get("owner")), strings.TrimSpace(q.Get("q"))
	if v := q.Get("status"); v != "" {
		s, err := incident.ParseStatus(v)
		if err != nil {
			return qq, "status: " + err.Error(), errBadQuery
		}
		f.Status = string(s)
	}
	if v := q.Get("severity"); v != "" {
		s, err := incident.ParseSeverity(v)
		if err != nil {
			return qq, "severity: " + err.Error(), errBadQuery
		}
		f.Severity = string(s)
	}
	if v := q.Get("source"); v != "" {
		switch incident.Source(v) {
		case incident.SourceDefender, incident.SourceSentinel, incident.SourceWebhook:
			f.Source = v
		default:
			return qq, "source: want defender, sentinel or webhook", errBadQuery
		}
	}
	switch k := store.QueueKey(q.Get("sort")); k {
	case "", store.ByUpdated, store.ByCreated, store.BySeverity:
		qq.order.Key = k
	default:
		return qq, "sort: want updated, created or severity", errBadQuery
	}
	if qq.order.Key == "" {
		qq.order.Key = store.ByUpdated
	}
	switch q.Get("dir") {
	case "", "desc":
	case "asc":
		qq.order.Asc = true
	default:
		return qq, "dir: want asc or desc", errBadQuery
	}
	if c := q.Get("after"); c != "" {
		pos, ok := decodePosition(c, qq.order)
		if !ok {
			return qq, "after: not a page position of this order; start from the first page", errBadQuery
		}
		qq.after = pos
	}
	return qq, "", nil
}

// A page position in a URL: the order it belongs to, its sort values and the incident id.
func encodePosition(o store.QueueOrder, p store.QueuePosition) string {
	keys := make([]string, len(p.Keys))
	for i, k := range p.Keys {
		keys[i] = strconv.FormatInt(k, 10)
	}
	return base64.RawURLEncoding.EncodeToString([]byte(orderName(o) + "|" + strings.Join(keys, ",") + "|" + p.ID))
}

func decodePosition(s string, o store.QueueOrder) (store.QueuePosition, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return store.QueuePosition{}, false
	}
	parts := strings.Split(string(b), "|")
	if len(parts) != 3 || parts[0] != orderName(o) || parts[2] == "" {
		return store.QueuePosition{}, false
	}
	var p store.QueuePosition
	for _, k := range strings.Split(parts[1], ",") {
		n, err := strconv.ParseInt(k, 10, 64)
		if err != nil {
			return store.QueuePosition{}, false
		}
		p.Keys = append(p.Keys, n)
	}
	want := len(o.PositionOf(store.StoredIncident{}).Keys)
	if len(p.Keys) != want {
		return store.QueuePosition{}, false
	}
	p.ID = parts[2]
	return p, true
}

func orderName(o store.QueueOrder) string {
	if o.Asc {
		return string(o.Key) + ".asc"
	}
	return string(o.Key) + ".desc"
}

// handleQueue serves the queue: the incidents of the user's tenants, newest activity first
// unless sorted otherwise, filtered, paged by position.
func (h *Handler) handleQueue(w http.ResponseWriter, r *http.Request, s *session) {
	ctx := r.Context()
	p := s.principal()
	q := r.URL.Query()
	qq, msg, err := parseQueueQuery(q)
	status := http.StatusOK
	if err != nil {
		status, qq = http.StatusBadRequest, queueQuery{order: store.QueueOrder{Key: store.ByUpdated}}
	}
	tenants, err := h.store.Tenants(ctx, p.Scope)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	names := make(map[string]string, len(tenants))
	page := queuePage{pageData: h.base(s, "Incident queue", "queue"), Owner: qq.filter.Owner, Q: qq.filter.Text,
		Sort: string(qq.order.Key), Dir: "desc"}
	page.Error = msg
	if qq.order.Asc {
		page.Dir = "asc"
	}
	page.Tenants = []option{{Value: "", Label: "All tenants"}}
	for _, t := range tenants {
		names[t.ID] = t.Name
		page.Tenants = append(page.Tenants, option{Value: t.ID, Label: t.Name, Selected: strings.EqualFold(t.ID, qq.filter.Tenant)})
	}
	page.Statuses = enumOptions("Any status", incident.Statuses, qq.filter.Status)
	page.Severities = enumOptions("Any severity", incident.Severities, qq.filter.Severity)
	page.Sources = enumOptions("Any source", []incident.Source{incident.SourceDefender, incident.SourceSentinel, incident.SourceWebhook}, qq.filter.Source)
	f := qq.filter
	page.Filtered = f != (store.ListFilter{})

	if status == http.StatusOK {
		items, err := h.store.Queue(ctx, p.Scope, qq.filter, qq.order, qq.after, queuePageSize+1)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		for i, si := range items {
			if i == queuePageSize {
				next := cloneValues(q)
				next.Set("after", encodePosition(qq.order, qq.order.PositionOf(items[i-1])))
				page.Next = "/incidents?" + next.Encode()
				break
			}
			page.Rows = append(page.Rows, queueRow{ID: si.ID, Title: si.Title, TenantName: names[si.TenantID],
				Severity: string(si.Severity), Status: string(si.Status), Owner: si.Owner, SyncState: si.SyncState,
				Sources: sourceNames(si.Sources), AlertCount: si.AlertCount, Updated: si.UpdatedAt, Created: si.CreatedAt})
		}
		if q.Get("after") != "" {
			first := cloneValues(q)
			first.Del("after")
			page.First = "/incidents?" + first.Encode()
		}
	}
	page.SortLinks = map[string]sortLink{}
	for key, label := range map[store.QueueKey]string{store.ByUpdated: "Last update", store.ByCreated: "Created", store.BySeverity: "Severity"} {
		v := cloneValues(q)
		v.Del("after")
		v.Set("sort", string(key))
		active := key == qq.order.Key
		// A click on the active column turns its direction round; on another, sorts it descending.
		asc := active && !qq.order.Asc
		if asc {
			v.Set("dir", "asc")
		} else {
			v.Del("dir")
		}
		page.SortLinks[string(key)] = sortLink{Label: label, URL: "/incidents?" + v.Encode(), Active: active, Asc: active && qq.order.Asc}
	}
	h.render(w, r, status, "queue", page)
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		if vs[0] != "" {
			out[k] = append([]string(nil), vs...)
		}
	}
	return out
}

func enumOptions[E ~string](anyLabel string, values []E, selected string) []option {
	out := []option{{Value: "", Label: anyLabel}}
	for _, v := range values {
		out = append(out, option{Value: string(v), Label: label(string(v)), Selected: string(v) == selected})
	}
	return out
}

func sourceNames(ss []incident.Source) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s)
	}
	return out
}

// label turns an enum value into words: "true_positive" → "true positive"; a foreign value
// ("graph:awaitingAction") is shown as it came.
func label(v string) string {
	if incident.IsForeign(v) {
		return v
	}
	return strings.ReplaceAll(v, "_", " ")
}
