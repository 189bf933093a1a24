package httpapi

import (
	"net/http"
	"time"
)

type sourceJSON struct {
	ID           string  `json:"id"`
	Kind         string  `json:"kind"`
	Workspace    string  `json:"workspace,omitempty"`
	Enabled      bool    `json:"enabled"`
	Health       string  `json:"health"` // ok, degraded, failing, throttled, never polled, disabled
	LastPoll     string  `json:"last_poll,omitempty"`
	LastSuccess  string  `json:"last_success,omitempty"`
	LagSeconds   float64 `json:"lag_seconds"` // since the last successful poll
	NextPoll     string  `json:"next_poll,omitempty"`
	Polls        int64   `json:"polls"`
	Calls        int64   `json:"calls"`
	Throttled    int64   `json:"throttled"`
	LeaseOwner   string  `json:"lease_owner,omitempty"`
	LeaseExpires string  `json:"lease_expires,omitempty"`
	LastError    string  `json:"last_error,omitempty"`
	Degraded     string  `json:"degraded,omitempty"`
}

type tenantJSON struct {
	ID      string       `json:"id"`
	Name    string       `json:"name"`
	Health  string       `json:"health"`
	Sources []sourceJSON `json:"sources"`
}

// handleTenants serves GET /api/v1/tenants: each of the principal's tenants with the health of
// each of its sources.
func (s *Server) handleTenants(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	ts, err := s.store.Tenants(r.Context(), p.Scope)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	srcs, err := s.store.Sources(r.Context(), p.Scope)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	now := s.now()
	out := struct {
		Tenants []tenantJSON `json:"tenants"`
	}{Tenants: []tenantJSON{}}
	idx := map[string]int{}
	for _, t := range ts {
		idx[t.ID] = len(out.Tenants)
		out.Tenants = append(out.Tenants, tenantJSON{ID: t.ID, Name: t.Name, Health: "ok", Sources: []sourceJSON{}})
	}
	for _, src := range srcs {
		i, ok := idx[src.TenantID]
		if !ok {
			continue
		}
		sj := sourceJSON{ID: src.ID, Kind: string(src.Kind), Workspace: src.Workspace, Enabled: src.Enabled,
			LastPoll: timeText(src.LastPoll), LastSuccess: timeText(src.LastSuccess), NextPoll: timeText(src.NextPoll),
			Polls: src.Polls, Calls: src.Calls, Throttled: src.Throttled, LeaseOwner: src.LeaseOwner,
			LeaseExpires: timeText(src.LeaseExpires), LastError: src.LastError, Degraded: src.Degraded}
		if !src.LastSuccess.IsZero() {
			sj.LagSeconds = now.Sub(src.LastSuccess).Round(time.Millisecond).Seconds()
		}
		switch {
		case !src.Enabled:
			sj.Health = "disabled"
		case src.Degraded != "":
			sj.Health = "degraded"
		case src.LastError != "":
			sj.Health = "failing"
		case src.LastPoll.IsZero():
			sj.Health = "never polled"
		default:
			sj.Health = "ok"
		}
		t := &out.Tenants[i]
		t.Sources = append(t.Sources, sj)
		if sj.Health == "degraded" || (sj.Health == "failing" && t.Health == "ok") {
			t.Health = sj.Health
		}
	}
	writeJSON(w, http.StatusOK, out)
}
