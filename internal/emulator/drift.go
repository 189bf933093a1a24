package emulator

import (
	"io"
	"net/http"
)

// DriftIncident changes an incident as PatchIncident does — the same bodies, Graph names for
// a Defender incident, Sentinel names for a Sentinel-only one or with "view": "sentinel" — but
// silently, as the real services sometimes change one: its change time (Graph
// lastUpdateDateTime, Sentinel lastModifiedTimeUtc) and lastModifiedBy stay as they were, so a
// poll that asks for what changed since a time never sees it; only a full re-read does. Its
// version and Sentinel etag do move (the resource did change). The change is in History with
// source "drift". A comment, which has its own creation time, is refused. (Alerts a status
// change resolves get their own new times, as with any change.)
func (e *Emulator) DriftIncident(tenantKey, id string, body []byte) error {
	return e.analystEdit(tenantKey, id, body, true)
}

// serveDrift serves PATCH /_emulator/tenants/{t}/incidents/{id}/drift (DriftIncident) and
// answers with the incident's views, as the analyst's PATCH does.
func (e *Emulator) serveDrift(w http.ResponseWriter, r *http.Request, tenantKey, id string) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		return err
	}
	if err := e.DriftIncident(tenantKey, id, body); err != nil {
		return err
	}
	v, err := e.IncidentViews(tenantKey, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, "", v)
	return nil
}
