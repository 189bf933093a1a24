package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// errNotFound marks admin lookups of things that do not exist (404).
type notFoundError struct{ msg string }

func (e *notFoundError) Error() string { return e.msg }

func notFoundf(format string, a ...any) error { return &notFoundError{msg: fmt.Sprintf(format, a...)} }

func adminError(w http.ResponseWriter, err error) {
	status, code := http.StatusInternalServerError, "InternalError"
	var nf *notFoundError
	var br *badRequest
	switch {
	case errors.As(err, &nf):
		status, code = http.StatusNotFound, "NotFound"
	case errors.As(err, &br):
		status, code = http.StatusBadRequest, "BadRequest"
	}
	writeJSON(w, status, "", map[string]any{"error": map[string]any{"code": code, "message": err.Error()}})
}

func isLoopback(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// decodeStrict decodes a JSON admin body, refusing unknown fields.
func decodeStrict(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		return badf("reading the body: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badf("invalid JSON body: %v", err)
	}
	return nil
}

// serveAdmin serves /_emulator/ (loopback only, no authentication).
func (e *Emulator) serveAdmin(w http.ResponseWriter, r *http.Request) {
	if !isLoopback(r.RemoteAddr) {
		writeJSON(w, http.StatusForbidden, "", map[string]any{"error": map[string]any{"code": "Forbidden", "message": "the admin API answers loopback clients only"}})
		return
	}
	segs := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/_emulator"), "/"), "/")
	route := r.Method + " " + strings.Join(segs, "/")
	seg := func(i int) string { return segs[i] }
	n := len(segs)
	ok := func(v any) { writeJSON(w, http.StatusOK, "", v) }
	var err error
	switch {
	case route == "GET " || route == "GET info":
		ok(e.Info(e.serverURL(r), e.caFile()))
	case route == "GET tenants":
		ok(e.Info(e.serverURL(r), e.caFile()).Tenants)
	case n == 3 && segs[0] == "tenants" && seg(2) == "incidents" && r.Method == http.MethodPost:
		var in NewIncident
		if err = decodeStrict(r, &in); err == nil {
			var out Created
			if out, err = e.CreateIncident(seg(1), in); err == nil {
				writeJSON(w, http.StatusCreated, "", out)
			}
		}
	case n == 4 && segs[0] == "tenants" && seg(2) == "incidents" && r.Method == http.MethodGet:
		var v any
		if v, err = e.IncidentViews(seg(1), seg(3)); err == nil {
			ok(v)
		}
	case n == 4 && segs[0] == "tenants" && seg(2) == "incidents" && r.Method == http.MethodPatch:
		var body []byte
		if body, err = io.ReadAll(io.LimitReader(r.Body, 8<<20)); err == nil {
			if err = e.PatchIncident(seg(1), seg(3), body); err == nil {
				var v any
				if v, err = e.IncidentViews(seg(1), seg(3)); err == nil {
					ok(v)
				}
			}
		}
	case n == 5 && segs[0] == "tenants" && seg(2) == "incidents" && seg(4) == "drift" && r.Method == http.MethodPatch:
		err = e.serveDrift(w, r, seg(1), seg(3))
	case n == 5 && segs[0] == "tenants" && seg(2) == "incidents" && seg(4) == "merge" && r.Method == http.MethodPost:
		var in struct {
			Into string `json:"into"`
		}
		if err = decodeStrict(r, &in); err == nil {
			if err = e.Merge(seg(1), seg(3), in.Into); err == nil {
				var v any
				if v, err = e.IncidentViews(seg(1), seg(3)); err == nil {
					ok(v)
				}
			}
		}
	case n == 5 && segs[0] == "tenants" && seg(2) == "incidents" && seg(4) == "alerts" && r.Method == http.MethodPost:
		var in struct {
			Alerts []NewAlert `json:"alerts"`
		}
		if err = decodeStrict(r, &in); err == nil {
			var ids []string
			if ids, err = e.AddAlerts(seg(1), seg(3), in.Alerts); err == nil {
				writeJSON(w, http.StatusCreated, "", map[string]any{"alert_ids": ids})
			}
		}
	case n == 4 && segs[0] == "tenants" && seg(2) == "alerts" && r.Method == http.MethodPatch:
		var in struct {
			Status string `json:"status"`
			Actor  string `json:"actor,omitempty"`
		}
		if err = decodeStrict(r, &in); err == nil {
			if err = e.SetAlertStatus(seg(1), seg(3), in.Status, in.Actor); err == nil {
				ok(map[string]any{"alert_id": seg(3), "status": in.Status})
			}
		}
	case n == 3 && segs[0] == "tenants" && seg(2) == "consent" && r.Method == http.MethodPost:
		var in struct {
			Granted  *bool    `json:"granted"`
			ClientID string   `json:"client_id,omitempty"`
			Roles    []string `json:"roles,omitempty"`
		}
		if err = decodeStrict(r, &in); err == nil {
			if in.Granted == nil {
				err = badf("granted (true or false) is required")
			} else if err = e.SetConsent(seg(1), in.ClientID, *in.Granted, in.Roles); err == nil {
				ok(map[string]any{"tenant": seg(1), "granted": *in.Granted})
			}
		}
	case n == 3 && segs[0] == "tenants" && seg(2) == "sentinel-role" && r.Method == http.MethodPut:
		var in struct {
			ClientID string `json:"client_id,omitempty"`
			Role     string `json:"role"`
		}
		if err = decodeStrict(r, &in); err == nil {
			if err = e.SetSentinelRole(seg(1), in.ClientID, in.Role); err == nil {
				ok(map[string]any{"tenant": seg(1), "role": strings.ToLower(in.Role)})
			}
		}
	case n == 3 && segs[0] == "tenants" && seg(2) == "certificate" && r.Method == http.MethodGet:
		var id, p string
		if id, p, err = e.TenantCertificate(seg(1)); err == nil {
			ok(map[string]any{"client_id": id, "pem": p})
		}
	case n == 2 && segs[0] == "ingested" && r.Method == http.MethodGet:
		rows := e.Ingested(seg(1))
		if rows == nil {
			rows = []json.RawMessage{}
		}
		ok(map[string]any{"rows": rows, "total": e.IngestedTotal(seg(1))})
	case n == 2 && segs[0] == "ingested" && r.Method == http.MethodDelete:
		e.mu.Lock()
		delete(e.dcr.rows, seg(1))
		delete(e.dcr.total, seg(1))
		e.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	case route == "GET requests":
		if v := r.URL.Query().Get("detail"); v != "" && v != "0" && v != "false" {
			recs, dropped := e.RequestHistory()
			if recs == nil {
				recs = []RequestRecord{}
			}
			ok(map[string]any{"requests": e.Requests(), "history": recs, "dropped": dropped})
		} else {
			ok(map[string]any{"requests": e.Requests()})
		}
	case route == "DELETE requests":
		e.ResetRequests()
		w.WriteHeader(http.StatusNoContent)
	case route == "GET faults":
		ok(e.Faults())
	case route == "PUT faults":
		var p FaultProfile
		if err = decodeStrict(r, &p); err == nil {
			if err = e.SetFaults(p); err != nil {
				err = badf("%v", err)
			} else {
				ok(e.Faults())
			}
		}
	case route == "DELETE faults":
		e.SetFaults(FaultProfile{})
		w.WriteHeader(http.StatusNoContent)
	case route == "GET limits":
		ok(e.Limits())
	case route == "PUT limits":
		l := e.Limits()
		if err = decodeStrict(r, &l); err == nil {
			if err = e.SetLimits(l); err != nil {
				err = badf("%v", err)
			} else {
				ok(e.Limits())
			}
		}
	case route == "GET history":
		h := e.History()
		if t := r.URL.Query().Get("tenant"); t != "" {
			h = slices.DeleteFunc(h, func(x HistoryEntry) bool { return !strings.EqualFold(x.Tenant, t) })
		}
		if s := r.URL.Query().Get("since"); s != "" {
			since, _ := strconv.Atoi(s)
			h = slices.DeleteFunc(h, func(x HistoryEntry) bool { return x.Seq <= since })
		}
		e.mu.Lock()
		dropped := e.histDrop
		e.mu.Unlock()
		ok(map[string]any{"history": h, "dropped": dropped})
	case route == "DELETE history":
		e.mu.Lock()
		e.history, e.histDrop = nil, 0
		e.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	case route == "GET clock":
		ok(map[string]any{"now": fmtTime(e.Now())})
	case route == "POST clock":
		var in struct {
			Advance string `json:"advance"`
		}
		if err = decodeStrict(r, &in); err == nil {
			d, perr := time.ParseDuration(in.Advance)
			if perr != nil || d < 0 {
				err = badf("advance must be a non-negative Go duration such as \"30s\", got %q", in.Advance)
			} else {
				e.Advance(d)
				ok(map[string]any{"now": fmtTime(e.Now())})
			}
		}
	case route == "GET scenario":
		ok(e.ScenarioStatus())
	case route == "POST scenario":
		var in struct {
			Action   string `json:"action"`
			Duration string `json:"duration,omitempty"`
			ScenarioConfig
		}
		if err = decodeStrict(r, &in); err == nil {
			switch in.Action {
			case "start":
				err = e.StartScenario(in.ScenarioConfig)
			case "stop":
				e.StopScenario()
			case "step":
				d, perr := time.ParseDuration(in.Duration)
				if perr != nil || d <= 0 {
					err = badf("step needs a positive duration such as \"5m\", got %q", in.Duration)
				} else {
					err = e.ScenarioStep(in.ScenarioConfig, d)
				}
			default:
				err = badf("action must be start, stop or step, not %q", in.Action)
			}
			if err == nil {
				ok(e.ScenarioStatus())
			}
		}
	default:
		err = notFoundf("no admin endpoint %s %s", r.Method, r.URL.Path)
	}
	if err != nil {
		adminError(w, err)
	}
}

// CreateIncident creates an incident as the remote product would (Defender, Sentinel, or a
// Defender incident mirrored into Sentinel).
func (e *Emulator) CreateIncident(tenantKey string, in NewIncident) (Created, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, err := e.tenantByKey(tenantKey)
	if err != nil {
		return Created{}, notFoundf("%v", err)
	}
	inc, err := e.createIncident(t, in, e.now(), "admin", "Microsoft 365 Defender")
	if err != nil {
		return Created{}, err
	}
	out := Created{GraphID: inc.graphID, SentinelID: inc.name}
	for _, a := range inc.alerts {
		out.AlertIDs = append(out.AlertIDs, a.id)
	}
	return out, nil
}

// AddAlerts adds alerts to an existing incident (as correlation of new alerts would).
func (e *Emulator) AddAlerts(tenantKey, id string, alerts []NewAlert) ([]string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, inc, err := e.lookup(tenantKey, id)
	if err != nil {
		return nil, err
	}
	if len(alerts) == 0 {
		return nil, badf("alerts: at least one alert is required")
	}
	m := e.mutate(inc, "admin", "Microsoft 365 Defender")
	var ids []string
	for _, na := range alerts {
		a, err := e.newAlert(inc, na, m.at)
		if err != nil {
			return ids, err
		}
		m.noteAlert(a, "alert.created", "", a.title)
		ids = append(ids, a.id)
	}
	m.commit("")
	return ids, nil
}

func (e *Emulator) lookup(tenantKey, id string) (*tenant, *incident, error) {
	t, err := e.tenantByKey(tenantKey)
	if err != nil {
		return nil, nil, notFoundf("%v", err)
	}
	inc := t.findIncident(id)
	if inc == nil {
		return t, nil, notFoundf("tenant %s has no incident %q", t.ID, id)
	}
	return t, inc, nil
}

// analyst returns the directory user acting as a remote analyst: the one named by actor
// (UPN or object id), or the tenant's first user.
func (t *tenant) analyst(actor string) (*user, error) {
	if actor == "" {
		return t.Users[0], nil
	}
	if u := t.lookupUser(actor); u != nil {
		return u, nil
	}
	return nil, badf("actor %q is not a user of tenant %s", actor, t.ID)
}

// PatchIncident changes an incident as a remote analyst would. The id may be a Graph id or a
// Sentinel name. A Defender incident (one with a Graph id, mirrored or not) takes Graph names
// (status, assignedTo, severity, classification, determination, customTags, displayName,
// description, resolvingComment, summary, comment); a Sentinel-only incident, or any incident
// when the body says "view": "sentinel", takes Sentinel names (status, severity, title,
// description, owner, classification, classificationReason, classificationComment, labels,
// comment). "actor" picks the analyst (a UPN or object id of the tenant's directory).
func (e *Emulator) PatchIncident(tenantKey, id string, body []byte) error {
	return e.analystEdit(tenantKey, id, body, false)
}

// analystEdit is PatchIncident, or DriftIncident when silent.
func (e *Emulator) analystEdit(tenantKey, id string, body []byte, silent bool) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil || raw == nil {
		return badf("the body must be a JSON object")
	}
	if _, ok := raw["comment"]; ok && silent {
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
	source, modifiedBy := "admin", u.UPN
	if silent {
		// The change time and author stay; the history says what happened.
		source, modifiedBy = "drift", ""
		updated, by, from := inc.updated, inc.modifiedBy, e.seqHistory
		defer func() {
			inc.updated, inc.modifiedBy = updated, by
			for i := len(e.history) - 1; i >= 0 && e.history[i].Seq > from; i-- {
				e.history[i].Source = "drift"
			}
		}()
	}
	if inc.graphID != "" && view != "sentinel" {
		p, err := parseGraphPatch(body, true)
		if err != nil {
			return err
		}
		m := e.mutate(inc, source, u.UPN)
		p.apply(m)
		if p.comment != nil && *p.comment != "" {
			m.addComment("", *p.comment, ownerFromUser(u), false)
		}
		m.commit(modifiedBy)
		return nil
	}
	return e.sentinelAnalystEdit(inc, u, raw)
}

// sentinelAnalystEdit applies a partial change in Sentinel names.
func (e *Emulator) sentinelAnalystEdit(inc *incident, u *user, raw map[string]json.RawMessage) error {
	cur := e.sentinelIncident(inc).Properties
	title, sev, status := cur.Title, cur.Severity, cur.Status
	class, reason, desc, comment := cur.Classification, cur.ClassificationReason, cur.Description, cur.ClassificationComment
	o := inc.owner
	labels := slices.Clone(inc.tags)
	var newComment string
	for k, v := range raw {
		var s string
		var err error
		switch k {
		case "title", "severity", "status", "classification", "classificationReason", "classificationComment", "description", "comment":
			if string(v) != "null" {
				err = json.Unmarshal(v, &s)
			}
			switch k {
			case "title":
				title = s
			case "severity":
				sev = s
			case "status":
				status = s
			case "classification":
				class = s
			case "classificationReason":
				reason = s
			case "classificationComment":
				comment = s
			case "description":
				desc = s
			case "comment":
				newComment = s
			}
		case "owner":
			var in sOwnerInput
			if json.Unmarshal(v, &s) == nil {
				in.ObjectID, in.UserPrincipalName = &s, &s
			} else {
				err = json.Unmarshal(v, &in)
			}
			if err == nil {
				if s == "" && in.ObjectID == nil && in.UserPrincipalName == nil && in.Email == nil && in.AssignedTo == nil {
					o = owner{}
				} else if s != "" && inc.t.lookupUser(s) == nil {
					o = owner{UPN: s, Email: s}
				} else {
					o = inc.t.resolveOwner(&in)
				}
			}
		case "labels":
			var names []string
			if err = json.Unmarshal(v, &names); err != nil {
				var ls []sLabel
				if err = json.Unmarshal(v, &ls); err == nil {
					names = nil
					for _, l := range ls {
						names = append(names, l.LabelName)
					}
				}
			}
			labels = names
		default:
			return badf("unknown Sentinel incident field %q", k)
		}
		if err != nil {
			return badf("field %q: %v", k, err)
		}
	}
	if status != "Closed" && raw["status"] != nil {
		if _, set := raw["classification"]; !set {
			class, reason = "", ""
		}
	}
	ed, err := validateSentinelEdit(title, sev, status, class, reason, desc)
	if err != nil {
		return err
	}
	ed.classComment, ed.owner, ed.labels = comment, o, labels
	m := e.mutate(inc, "admin", u.UPN)
	ed.apply(m)
	if newComment != "" {
		m.addComment("", newComment, ownerFromUser(u), false)
	}
	m.commit(u.UPN)
	return nil
}

// Merge correlates incident id into incident into, as Defender XDR's alert correlation does:
// the alerts move to the target; a Defender source becomes redirected with redirectIncidentId
// and lastModifiedBy "Microsoft 365 Defender-AlertCorrelation"; a Sentinel view of the source
// is closed with the label Redirected and points at the target (providerIncidentId and
// additionalData.providerIncidentUrl).
func (e *Emulator) Merge(tenantKey, id, into string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, src, err := e.lookup(tenantKey, id)
	if err != nil {
		return err
	}
	if into == "" {
		return badf("into (the target incident id) is required")
	}
	dst := t.findIncident(into)
	if dst == nil {
		return notFoundf("tenant %s has no incident %q", t.ID, into)
	}
	return e.mergeLocked(src, dst)
}

// mergeLocked correlates src into dst. Callers hold e.mu.
func (e *Emulator) mergeLocked(src, dst *incident) error {
	switch {
	case dst == src:
		return badf("an incident cannot be merged into itself")
	case src.status == "redirected":
		return badf("incident %s%s is already merged into %s", src.graphID, src.name, src.redirectTo)
	case dst.status == "redirected":
		return badf("incident %s%s is merged; merge into its target instead", dst.graphID, dst.name)
	case src.graphID != "" && dst.graphID == "":
		return badf("a Defender incident can only be merged into another Defender incident")
	}
	const by = "Microsoft 365 Defender-AlertCorrelation"
	m := e.mutate(src, "correlation", by)
	md := e.mutate(dst, "correlation", by)
	for _, a := range src.alerts {
		m.noteAlert(a, "alert.incident", src.graphID+src.name, dst.graphID+dst.name)
		a.inc = dst
		dst.alerts = append(dst.alerts, a)
		md.noteAlert(a, "alert.added", "", a.id)
	}
	src.alerts = nil
	m.setStatus("redirected")
	if dst.graphID != "" {
		m.note("redirectIncidentId", src.redirectTo, dst.graphID)
		src.redirectTo = dst.graphID
	}
	if src.ws != nil {
		m.addAutoLabel("Redirected")
		target := dst.graphID
		url := ""
		if target != "" {
			url = dst.webURL()
		} else {
			target = strconv.Itoa(dst.number)
		}
		m.note("providerIncidentId", src.providerID, target)
		src.providerID, src.providerURL = target, url
		if src.provider == "Azure Sentinel" && dst.graphID != "" {
			src.provider = "Microsoft XDR"
		}
	}
	m.commit(by)
	md.commit(by)
	return nil
}

// SetAlertStatus changes an alert's status (new, inProgress, resolved, dismissed — Graph,
// Sentinel or Defender for Cloud spelling) as the product or its analyst would. A Defender
// incident's last-update time moves with it; a Sentinel-only incident's does not (Defender for
// Cloud alert changes do not touch the Sentinel incident).
func (e *Emulator) SetAlertStatus(tenantKey, alertID, status, actor string) error {
	s, ok := parseAlertStatus(status)
	if !ok {
		return badf("status must be new, inProgress, resolved or dismissed, not %q", status)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	t, err := e.tenantByKey(tenantKey)
	if err != nil {
		return notFoundf("%v", err)
	}
	a := t.findAlert(alertID)
	if a == nil {
		return notFoundf("tenant %s has no alert %q", t.ID, alertID)
	}
	if s == "dismissed" && a.inc.graphID != "" {
		return badf("Defender alerts have no status dismissed (use resolved)")
	}
	if actor == "" {
		actor = productName(a.serviceSource)
	}
	m := e.mutate(a.inc, "admin", actor)
	m.setAlertStatus(a, s)
	if a.inc.graphID != "" {
		m.commit("")
	} else {
		m.flush()
	}
	return nil
}

// SetConsent grants or revokes an app's consent (service principal) in a tenant: clientID
// "" means every app. Roles (Graph application roles) default to all.
func (e *Emulator) SetConsent(tenantKey, clientID string, granted bool, roles []string) error {
	for _, r := range roles {
		if !slices.Contains(allRoles, r) && r != "SecurityIncident.Read.All" && r != "SecurityAlert.Read.All" {
			return badf("unknown role %q", r)
		}
	}
	if roles == nil {
		roles = allRoles
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	t, err := e.tenantByKey(tenantKey)
	if err != nil {
		return notFoundf("%v", err)
	}
	set := func(a *app) {
		t.grants[a.ClientID] = &grant{Granted: granted, Roles: slices.Clone(roles)}
	}
	if clientID == "" {
		set(e.multi)
		if t.App != nil && t.App != e.multi {
			set(t.App)
		}
		return nil
	}
	a := e.apps[strings.ToLower(clientID)]
	if a == nil || (!a.Multi && a.Home != t) {
		return notFoundf("app %q is not registered in tenant %s", clientID, t.ID)
	}
	set(a)
	return nil
}

// History returns every remote change recorded so far, oldest first.
func (e *Emulator) History() []HistoryEntry {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.history)
}

// IncidentViews returns both views of an incident (as its Graph and Sentinel clients see
// it), for tests and people.
func (e *Emulator) IncidentViews(tenantKey, id string) (map[string]any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, inc, err := e.lookup(tenantKey, id)
	if err != nil {
		return nil, err
	}
	out := map[string]any{"version": inc.version}
	if inc.graphID != "" {
		out["graph"] = e.graphIncident(inc, true, true)
	}
	if inc.ws != nil {
		s := e.sentinelIncident(inc)
		out["sentinel"] = s
		out["workspace"] = inc.ws.Name
		alerts := make([]sAlert, 0, len(inc.alerts))
		for _, a := range inc.alerts {
			alerts = append(alerts, e.sentinelAlert(inc.ws, a))
		}
		out["sentinel_alerts"] = alerts
	}
	return out, nil
}

// TenantCertificate returns the client id and the PEM (certificate and private key) of a
// tenant's app certificate credential ("home" for the multi-tenant app), generating it if
// needed.
func (e *Emulator) TenantCertificate(tenantKey string) (clientID, pemData string, err error) {
	e.mu.Lock()
	t, err := e.tenantByKey(tenantKey)
	e.mu.Unlock()
	if err != nil {
		return "", "", notFoundf("%v", err)
	}
	a := t.App
	if !a.certWanted {
		return "", "", badf("the app of tenant %s has no certificate credential (Options.CertTenants)", t.ID)
	}
	if err := e.ensureCertificates([]*app{a}); err != nil {
		return "", "", err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return a.ClientID, string(a.certPEM), nil
}
