// Package httpapi serves socsync's HTTP interface: the REST API under /api/v1, the health
// endpoints and the Prometheus metrics. routes.go lists every endpoint.
package httpapi

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/socsync/socsync/internal/incident"
	"github.com/socsync/socsync/internal/store"
)

// Store is what the API reads and writes: the hub's database.
type Store interface {
	Ping(ctx context.Context) error
	CheckMigrated(ctx context.Context) error
	TokenByValue(ctx context.Context, token string) (store.Token, error)
	Tenants(ctx context.Context, scope store.Scope) ([]store.Tenant, error)
	Sources(ctx context.Context, scope store.Scope) ([]store.Source, error)
	ListIncidents(ctx context.Context, scope store.Scope, f store.ListFilter, after store.ListPage, limit int) ([]store.StoredIncident, error)
	IncidentInScope(ctx context.Context, scope store.Scope, id string) (store.StoredIncident, error)
	Links(ctx context.Context, tenantID, incidentID string) ([]store.Link, error)
	Alerts(ctx context.Context, tenantID, incidentID string) ([]incident.Alert, error)
	Comments(ctx context.Context, tenantID, incidentID string) ([]incident.Comment, error)
	History(ctx context.Context, tenantID, incidentID string) ([]store.AuditEntry, error)
	InTx(ctx context.Context, fn func(tx *store.Tx) error) error
}

// Queue takes the keys of incidents whose hub state changed, for the reconciler.
type Queue interface {
	Enqueue(k store.IncidentKey)
}

// Server is the hub's HTTP handler. Build it with New; it holds no goroutines of its own.
type Server struct {
	log     *slog.Logger
	store   Store
	metrics prometheus.Gatherer
	queue   Queue
	now     func() time.Time
	mux     *http.ServeMux
	sources []PrincipalSource
}

// Deps are the Server's dependencies.
type Deps struct {
	Log     *slog.Logger
	Store   Store
	Metrics prometheus.Gatherer
	Queue   Queue            // optional: where changed incidents go for reconciling
	Now     func() time.Time // default time.Now
	// Webhooks serves POST /api/v1/webhooks/{name} (authenticated by each webhook's own secret,
	// not by API tokens). Optional.
	Webhooks http.Handler
	// UI serves the web pages under /. Optional.
	UI http.Handler
	// Principals authenticate API requests that carry no API token (the UI's session cookie).
	// Optional.
	Principals []PrincipalSource
}

// New returns the handler with every route registered.
func New(d Deps) *Server {
	s := &Server{log: d.Log, store: d.Store, metrics: d.Metrics, queue: d.Queue, now: d.Now, mux: http.NewServeMux(), sources: d.Principals}
	if s.now == nil {
		s.now = time.Now
	}
	s.routes(d.Webhooks, d.UI)
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// apiError is the error body of every API response (DESIGN.md §4.2).
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field,omitempty"`
	} `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client may be gone; nothing to do about it
}

func writeError(w http.ResponseWriter, status int, code, msg, field string) {
	var e apiError
	e.Error.Code, e.Error.Message, e.Error.Field = code, msg, field
	writeJSON(w, status, e)
}
