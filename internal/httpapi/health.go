package httpapi

import (
	"net/http"
)

// handleHealthz answers as long as the process serves requests.
func (s *Server) handleHealthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// handleReadyz answers 200 when the database is reachable and migrated, 503 otherwise, with
// the reason.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	if err := s.store.Ping(r.Context()); err != nil {
		s.log.WarnContext(r.Context(), "not ready", "reason", err)
		writeError(w, http.StatusServiceUnavailable, "database_unreachable", err.Error(), "")
		return
	}
	if err := s.store.CheckMigrated(r.Context()); err != nil {
		writeError(w, http.StatusServiceUnavailable, "database_not_migrated", err.Error(), "")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
