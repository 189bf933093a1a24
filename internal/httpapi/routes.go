package httpapi

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// routes registers every endpoint of the hub.
func (s *Server) routes(webhooks, ui http.Handler) {
	s.mux.HandleFunc("GET /healthz", s.handleHealthz)
	s.mux.HandleFunc("GET /readyz", s.handleReadyz)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics, promhttp.HandlerOpts{}))

	api := func(pattern string, h http.HandlerFunc) { s.mux.Handle(pattern, s.requireAuth(h)) }
	api("GET /api/v1/incidents", s.handleListIncidents)
	api("GET /api/v1/incidents/{id}", s.handleGetIncident)
	api("PATCH /api/v1/incidents/{id}", s.handlePatchIncident)
	api("POST /api/v1/incidents/{id}/comments", s.handlePostComment)
	api("GET /api/v1/tenants", s.handleTenants)

	if webhooks != nil {
		s.mux.Handle("POST /api/v1/webhooks/{name}", webhooks)
	}
	if ui != nil {
		s.mux.Handle("/", ui)
	}
}
