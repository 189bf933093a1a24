package emulator

import (
	"encoding/json"
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
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil || raw == nil {
		return badf("the body must be a JSON object")
	}
	if _, ok := raw["comment"]; ok {
		return badf("a silent change carries no comment (a comment has a time of its own)")
	}
	var actor, view string
	for k, dst := range map[string]*string{"actor": &actor, "view": &view} {
		if v, ok := raw[k]; ok {
			if err := json.Unmarshal(v, dst); err != nil {
				return badf("%s must be a string", k)
			}
			delete(raw, k)
		}
	}
	if view != "" && view != "graph" && view != "sentinel" {
		return badf("view must be graph or sentinel, not %q", view)
	}
	body, _ = json.Marshal(raw)
	e.mu.Lock()
	defer e.mu.Unlock()
	t, inc, err := e.lookup(tenantKey, id)
	if err != nil {
		return err
	}
	u, err := t.analyst(actor)
	if err != nil {
		return err
	}
	if view == "graph" && inc.graphID == "" {
		return badf("incident %q is not in Defender; use Sentinel names", id)
	}
	if view == "sentinel" && inc.ws == nil {
		return badf("incident %q is not in Sentinel; use Graph names", id)
	}
	updated, modifiedBy, from := inc.updated, inc.modifiedBy, e.seqHistory
	defer func() {
		inc.updated, inc.modifiedBy = updated, modifiedBy
		for i := len(e.history) - 1; i >= 0 && e.history[i].Seq > from; i-- {
			e.history[i].Source = "drift"
		}
	}()
	if inc.graphID != "" && view != "sentinel" {
		p, err := parseGraphPatch(body, true)
		if err != nil {
			return err
		}
		m := e.mutate(inc, "drift", u.UPN)
		p.apply(m)
		m.commit("")
		return nil
	}
	return e.sentinelAnalystEdit(inc, u, raw)
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
