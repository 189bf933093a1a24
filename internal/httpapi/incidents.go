package httpapi

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/socsync/socsync/internal/incident"
	"github.com/socsync/socsync/internal/store"
)

// incidentJSON is an incident as the API shows it (DESIGN.md §4.2; field names are stable).
type incidentJSON struct {
	ID                    string   `json:"id"`
	TenantID              string   `json:"tenant_id"`
	TenantName            string   `json:"tenant_name"`
	Title                 string   `json:"title"`
	Description           string   `json:"description"`
	Status                string   `json:"status"`
	Severity              string   `json:"severity"`
	Owner                 string   `json:"owner"`
	Classification        string   `json:"classification"`
	Determination         string   `json:"determination"`
	ClassificationReason  string   `json:"classification_reason"`
	ClassificationComment string   `json:"classification_comment"`
	Tags                  []string `json:"tags"`
	Sources               []string `json:"sources"`
	AlertCount            int      `json:"alert_count"`
	CreatedAt             string   `json:"created_at"`
	UpdatedAt             string   `json:"updated_at"`
	FirstActivityAt       string   `json:"first_activity_at,omitempty"`
	LastActivityAt        string   `json:"last_activity_at,omitempty"`
	SyncState             string   `json:"sync_state"`
	MergedInto            string   `json:"merged_into"`
	Version               int64    `json:"version"`
}

type linkJSON struct {
	Kind               string `json:"kind"`
	TenantID           string `json:"tenant_id"`
	Source             string `json:"source"`
	ExternalID         string `json:"external_id"`
	ProviderIncidentID string `json:"provider_incident_id,omitempty"`
	URL                string `json:"url,omitempty"`
	SyncState          string `json:"sync_state"`
	LastError          string `json:"last_error,omitempty"`
	Flags              string `json:"flags,omitempty"`
	RemoteUpdatedAt    string `json:"remote_updated_at,omitempty"`
	ObservedAt         string `json:"observed_at,omitempty"`
}

type detailJSON struct {
	incidentJSON
	Links    []linkJSON         `json:"links"`
	Alerts   []incident.Alert   `json:"alerts"`
	Comments []incident.Comment `json:"comments"`
	History  []store.AuditEntry `json:"history"`
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func toJSON(si store.StoredIncident, tenantName string) incidentJSON {
	in := si.Incident
	tags := in.Tags
	if tags == nil {
		tags = []string{}
	}
	sources := make([]string, 0, len(in.Sources))
	for _, s := range in.Sources {
		sources = append(sources, string(s))
	}
	return incidentJSON{ID: in.ID, TenantID: in.TenantID, TenantName: tenantName, Title: in.Title,
		Description: in.Description, Status: string(in.Status), Severity: string(in.Severity), Owner: in.Owner,
		Classification: string(in.Classification), Determination: string(in.Determination),
		ClassificationReason: string(in.ClassificationReason), ClassificationComment: in.ClassificationComment,
		Tags: tags, Sources: sources, AlertCount: in.AlertCount, CreatedAt: timeText(in.CreatedAt),
		UpdatedAt: timeText(in.UpdatedAt), FirstActivityAt: timeText(in.FirstActivityAt),
		LastActivityAt: timeText(in.LastActivityAt), SyncState: si.SyncState, MergedInto: in.MergedInto, Version: in.Version}
}

// tenantNames maps the principal's tenants to their names.
func (s *Server) tenantNames(r *http.Request) (map[string]string, error) {
	ts, err := s.store.Tenants(r.Context(), principalFrom(r.Context()).Scope)
	if err != nil {
		return nil, err
	}
	names := make(map[string]string, len(ts))
	for _, t := range ts {
		names[t.ID] = t.Name
	}
	return names, nil
}

const maxLimit = 500

// handleListIncidents serves GET /api/v1/incidents: the queue across the principal's tenants,
// newest update first, filtered, paged by an opaque cursor.
func (s *Server) handleListIncidents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 50
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			writeError(w, http.StatusBadRequest, "invalid_parameter", fmt.Sprintf("limit: want 1 to %d", maxLimit), "limit")
			return
		}
		limit = n
	}
	f := store.ListFilter{Tenant: q.Get("tenant"), Owner: q.Get("owner"), Text: q.Get("q"), RemoteID: q.Get("remote_id")}
	if v := q.Get("status"); v != "" {
		st, err := incident.ParseStatus(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_parameter", err.Error(), "status")
			return
		}
		f.Status = string(st)
	}
	if v := q.Get("severity"); v != "" {
		sev, err := incident.ParseSeverity(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_parameter", err.Error(), "severity")
			return
		}
		f.Severity = string(sev)
	}
	if v := q.Get("source"); v != "" {
		switch incident.Source(v) {
		case incident.SourceDefender, incident.SourceSentinel, incident.SourceWebhook:
			f.Source = v
		default:
			writeError(w, http.StatusBadRequest, "invalid_parameter", "source: want defender, sentinel or webhook", "source")
			return
		}
	}
	after, err := decodePage(q.Get("cursor"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_parameter", "cursor: not a cursor this API returned", "cursor")
		return
	}
	p := principalFrom(r.Context())
	items, err := s.store.ListIncidents(r.Context(), p.Scope, f, after, limit+1)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	names, err := s.tenantNames(r)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	out := struct {
		Items      []incidentJSON `json:"items"`
		NextCursor string         `json:"next_cursor"`
	}{Items: []incidentJSON{}}
	for i, si := range items {
		if i == limit {
			last := items[i-1]
			out.NextCursor = encodePage(store.ListPage{UpdatedAt: last.UpdatedAt, ID: last.ID})
			break
		}
		out.Items = append(out.Items, toJSON(si, names[si.TenantID]))
	}
	writeJSON(w, http.StatusOK, out)
}

func encodePage(p store.ListPage) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(p.UpdatedAt.UnixMilli(), 10) + "|" + p.ID))
}

func decodePage(s string) (store.ListPage, error) {
	if s == "" {
		return store.ListPage{}, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return store.ListPage{}, err
	}
	ms, id, ok := strings.Cut(string(b), "|")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil || id == "" {
		return store.ListPage{}, errors.New("malformed cursor")
	}
	return store.ListPage{UpdatedAt: time.UnixMilli(n).UTC(), ID: id}, nil
}

// handleGetIncident serves GET /api/v1/incidents/{id}. An incident of a tenant the principal
// may not see is answered exactly like a missing one.
func (s *Server) handleGetIncident(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	si, err := s.store.IncidentInScope(r.Context(), p.Scope, r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", "no such incident", "")
		return
	}
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	d, err := s.detail(r, si)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (s *Server) detail(r *http.Request, si store.StoredIncident) (detailJSON, error) {
	ctx, tenant, id := r.Context(), si.TenantID, si.ID
	names, err := s.tenantNames(r)
	if err != nil {
		return detailJSON{}, err
	}
	d := detailJSON{incidentJSON: toJSON(si, names[tenant]), Links: []linkJSON{}}
	links, err := s.store.Links(ctx, tenant, id)
	if err != nil {
		return d, err
	}
	for _, l := range links {
		d.Links = append(d.Links, linkJSON{Kind: string(l.Kind), TenantID: l.TenantID, Source: l.SourceID,
			ExternalID: l.ExternalID, ProviderIncidentID: l.ProviderIncidentID, URL: l.URL, SyncState: l.SyncState,
			LastError: l.LastError, Flags: l.Flags, RemoteUpdatedAt: timeText(l.RemoteUpdated), ObservedAt: timeText(l.ObservedAt)})
	}
	if d.Alerts, err = s.store.Alerts(ctx, tenant, id); err != nil {
		return d, err
	}
	if d.Comments, err = s.store.Comments(ctx, tenant, id); err != nil {
		return d, err
	}
	if d.History, err = s.store.History(ctx, tenant, id); err != nil {
		return d, err
	}
	if d.Alerts == nil {
		d.Alerts = []incident.Alert{}
	}
	if d.Comments == nil {
		d.Comments = []incident.Comment{}
	}
	if d.History == nil {
		d.History = []store.AuditEntry{}
	}
	return d, nil
}
