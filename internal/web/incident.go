package web

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/socsync/socsync/internal/httpapi"
	"github.com/socsync/socsync/internal/incident"
	"github.com/socsync/socsync/internal/store"
)

// triageForm is the incident's editable fields as the form shows them: from the incident, or
// as a rejected post sent them.
type triageForm struct {
	Status, Severity, Owner          string
	Classification, Determination    string
	ClassificationReason, ClassNote  string
	Tags                             string
	Comment                          string
	WasStatus, WasSeverity, WasOwner string
	WasClassification                string
	WasDetermination, WasReason      string
	WasClassNote, WasTags            string
}

func formOf(in incident.Incident) triageForm {
	f := triageForm{Status: string(in.Status), Severity: string(in.Severity), Owner: in.Owner,
		Classification: string(in.Classification), Determination: string(in.Determination),
		ClassificationReason: string(in.ClassificationReason), ClassNote: in.ClassificationComment,
		Tags: strings.Join(in.Tags, ", ")}
	f.WasStatus, f.WasSeverity, f.WasOwner = f.Status, f.Severity, f.Owner
	f.WasClassification, f.WasDetermination, f.WasReason = f.Classification, f.Determination, f.ClassificationReason
	f.WasClassNote, f.WasTags = f.ClassNote, f.Tags
	return f
}

// formFields are the triage form's fields: the form field, its "was_" twin and the patch
// field it sets.
var formFields = []struct {
	name string
	set  func(p *httpapi.Patch, v string)
	get  func(f *triageForm) (cur, was *string)
}{
	{"status", func(p *httpapi.Patch, v string) { p.Status = &v }, func(f *triageForm) (*string, *string) { return &f.Status, &f.WasStatus }},
	{"severity", func(p *httpapi.Patch, v string) { p.Severity = &v }, func(f *triageForm) (*string, *string) { return &f.Severity, &f.WasSeverity }},
	{"owner", func(p *httpapi.Patch, v string) { p.Owner = &v }, func(f *triageForm) (*string, *string) { return &f.Owner, &f.WasOwner }},
	{"classification", func(p *httpapi.Patch, v string) { p.Classification = &v }, func(f *triageForm) (*string, *string) {
		return &f.Classification, &f.WasClassification
	}},
	{"determination", func(p *httpapi.Patch, v string) { p.Determination = &v }, func(f *triageForm) (*string, *string) {
		return &f.Determination, &f.WasDetermination
	}},
	{"classification_reason", func(p *httpapi.Patch, v string) { p.ClassificationReason = &v }, func(f *triageForm) (*string, *string) {
		return &f.ClassificationReason, &f.WasReason
	}},
	{"classification_comment", func(p *httpapi.Patch, v string) { p.ClassificationComment = &v }, func(f *triageForm) (*string, *string) {
		return &f.ClassNote, &f.WasClassNote
	}},
}

// patchFromForm turns a triage form post into a patch of the fields the analyst changed: a
// field whose value equals its "was_" twin (the value the page showed) is left out, so that a
// change made elsewhere since the page was loaded is not overwritten by a stale form. A field
// posted without a twin counts as changed. It also returns the form as posted.
func patchFromForm(v url.Values) (httpapi.Patch, triageForm) {
	var p httpapi.Patch
	var f triageForm
	for _, ff := range formFields {
		cur, was := ff.get(&f)
		*cur, *was = v.Get(ff.name), v.Get("was_"+ff.name)
		if v.Has(ff.name) && (!v.Has("was_"+ff.name) || *cur != *was) {
			ff.set(&p, *cur)
		}
	}
	f.Tags, f.WasTags = v.Get("tags"), v.Get("was_tags")
	if v.Has("tags") {
		tags := splitTags(f.Tags)
		if !v.Has("was_tags") || !incident.EqualTags(tags, splitTags(f.WasTags)) {
			p.Tags = &tags
		}
	}
	f.Comment = v.Get("comment")
	return p, f
}

func splitTags(s string) []string {
	out := []string{}
	for _, t := range strings.Split(s, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

type optgroup struct {
	Label   string
	Options []option
}

// refinements are the determination and classification-reason choices of a classification.
type refinements struct {
	Determinations []optgroup
	Reasons        []optgroup
	Disabled       bool
}

// refine offers the determinations and reasons that fit classification c, keeping d and r
// selected. With all set (the page as served, usable without JavaScript) it offers every
// classification's choices grouped under it, c's first; htmx then narrows them to c's when
// the classification changes.
func refine(c, d, r string, all bool) refinements {
	var out refinements
	classes := []incident.Classification{incident.Classification(c)}
	if all {
		for _, k := range incident.Classifications {
			if string(k) != c {
				classes = append(classes, k)
			}
		}
	}
	none := optgroup{Options: []option{{Value: "", Label: "—", Selected: d == ""}}}
	noneR := optgroup{Options: []option{{Value: "", Label: "—", Selected: r == ""}}}
	out.Determinations, out.Reasons = []optgroup{none}, []optgroup{noneR}
	seenD, seenR := map[string]bool{"": true}, map[string]bool{"": true}
	for _, k := range classes {
		g, gr := optgroup{Label: label(string(k))}, optgroup{Label: label(string(k))}
		if !all {
			g.Label, gr.Label = "", ""
		}
		for _, x := range incident.DeterminationsFor(k) {
			if !seenD[string(x)] {
				seenD[string(x)] = true
				g.Options = append(g.Options, option{Value: string(x), Label: label(string(x)), Selected: string(x) == d})
			}
		}
		for _, x := range incident.ReasonsFor(k) {
			if !seenR[string(x)] {
				seenR[string(x)] = true
				gr.Options = append(gr.Options, option{Value: string(x), Label: label(string(x)), Selected: string(x) == r})
			}
		}
		if len(g.Options) > 0 {
			out.Determinations = append(out.Determinations, g)
		}
		if len(gr.Options) > 0 {
			out.Reasons = append(out.Reasons, gr)
		}
	}
	// A value the lists lack (one a remote set that socsync does not know) stays selectable, so
	// that saving the form does not drop it.
	if !seenD[d] {
		out.Determinations = append(out.Determinations, optgroup{Options: []option{{Value: d, Label: label(d), Selected: true}}})
	}
	if !seenR[r] {
		out.Reasons = append(out.Reasons, optgroup{Options: []option{{Value: r, Label: label(r), Selected: true}}})
	}
	out.Disabled = c == "" && d == "" && r == "" && !all
	return out
}

// valueOptions offers the known values of an enum, and the current value if it is not one.
func valueOptions[E ~string](values []E, cur string, blank bool) []option {
	var out []option
	if blank {
		out = append(out, option{Value: "", Label: "—", Selected: cur == ""})
	}
	found := cur == "" && blank
	for _, v := range values {
		out = append(out, option{Value: string(v), Label: label(string(v)), Selected: string(v) == cur})
		found = found || string(v) == cur
	}
	if !found {
		out = append(out, option{Value: cur, Label: label(cur), Selected: true})
	}
	return out
}

type linkView struct {
	Kind, System, ExternalID string
	Where                    string // the workspace of a Sentinel link
	URL, PortalLabel         string
	SyncState, LastError     string
	Flags                    string
	RemoteUpdated, Observed  time.Time
}

type alertView struct {
	incident.Alert
	Evidence string
}

type incidentPage struct {
	pageData
	Inc         store.StoredIncident
	TenantName  string
	CanWrite    bool
	Form        triageForm
	FieldError  string
	Statuses    []option
	Severities  []option
	Classes     []option
	Refine      refinements
	Links       []linkView
	Alerts      []alertView
	Comments    []incident.Comment
	History     []store.AuditEntry
	MergedInto  string // the target's id, when the user may see it
	MergedTitle string
	MergedFrom  []store.StoredIncident
	Settling    bool // the sync is not settled: the sync panel refreshes itself
}

// incidentView reads everything the incident page shows.
func (h *Handler) incidentView(ctx context.Context, s *session, si store.StoredIncident) (incidentPage, error) {
	p := s.principal()
	page := incidentPage{pageData: h.base(s, si.Title, "incident"), Inc: si, CanWrite: p.CanWrite() && si.Status != incident.StatusMerged,
		Form: formOf(si.Incident)}
	tenants, err := h.store.Tenants(ctx, p.Scope)
	if err != nil {
		return page, err
	}
	for _, t := range tenants {
		if t.ID == si.TenantID {
			page.TenantName = t.Name
		}
	}
	links, err := h.store.Links(ctx, si.TenantID, si.ID)
	if err != nil {
		return page, err
	}
	page.Settling = si.SyncState == "pending"
	fromGraph := map[string]json.RawMessage{} // alert payloads with evidence, from Graph incidents
	for _, l := range links {
		page.Links = append(page.Links, viewLink(l))
		page.Settling = page.Settling || l.SyncState == "pending"
		if l.Kind == store.LinkGraph {
			maps.Copy(fromGraph, graphAlerts(l.Raw))
		}
	}
	alerts, err := h.store.Alerts(ctx, si.TenantID, si.ID)
	if err != nil {
		return page, err
	}
	raws, err := h.store.AlertPayloads(ctx, si.TenantID, si.ID)
	if err != nil {
		return page, err
	}
	for _, a := range alerts {
		ev := evidenceSummary(fromGraph[a.RemoteID])
		if ev == "" {
			ev = evidenceSummary(raws[a.RemoteID])
		}
		page.Alerts = append(page.Alerts, alertView{Alert: a, Evidence: ev})
	}
	if page.Comments, err = h.store.Comments(ctx, si.TenantID, si.ID); err != nil {
		return page, err
	}
	if page.History, err = h.store.History(ctx, si.TenantID, si.ID); err != nil {
		return page, err
	}
	slices.Reverse(page.History) // newest first
	if si.MergedInto != "" {
		if target, err := h.store.IncidentInScope(ctx, p.Scope, si.MergedInto); err == nil {
			page.MergedInto, page.MergedTitle = target.ID, target.Title
		} else if !isNotFound(err) {
			return page, err
		}
	}
	if page.MergedFrom, err = h.store.MergedFrom(ctx, si.TenantID, si.ID); err != nil {
		return page, err
	}
	page.setChoices()
	return page, nil
}

// setChoices fills the form's choices from the form's current values.
func (p *incidentPage) setChoices() {
	statuses := []incident.Status{incident.StatusNew, incident.StatusActive, incident.StatusInProgress, incident.StatusResolved}
	if p.Form.Status == string(incident.StatusMerged) {
		statuses = incident.Statuses
	}
	p.Statuses = valueOptions(statuses, p.Form.Status, false)
	p.Severities = valueOptions(incident.Severities, p.Form.Severity, false)
	p.Classes = valueOptions(incident.Classifications, p.Form.Classification, true)
	p.Refine = refine(p.Form.Classification, p.Form.Determination, p.Form.ClassificationReason, true)
}

func viewLink(l store.Link) linkView {
	v := linkView{Kind: string(l.Kind), ExternalID: l.ExternalID, URL: l.URL, SyncState: l.SyncState, LastError: l.LastError,
		Flags: l.Flags, RemoteUpdated: l.RemoteUpdated, Observed: l.ObservedAt}
	switch l.Kind {
	case store.LinkGraph:
		v.System, v.PortalLabel = "Defender XDR", "Open in the Defender portal"
	case store.LinkSentinel:
		v.System, v.PortalLabel = "Sentinel", "Open in Sentinel"
		if _, rest, ok := strings.Cut(l.SourceID, "/sentinel/"); ok {
			v.Where = rest
		}
	default:
		v.System, v.PortalLabel = "Webhook", "Open at the source"
	}
	return v
}

// handleIncident serves an incident's page. Another tenant's incident is not found, exactly
// like a missing one.
func (h *Handler) handleIncident(w http.ResponseWriter, r *http.Request, s *session) {
	si, err := h.store.IncidentInScope(r.Context(), s.principal().Scope, r.PathValue("id"))
	if isNotFound(err) {
		h.notFound(w, r, s)
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	page, err := h.incidentView(r.Context(), s, si)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	switch {
	case r.URL.Query().Has("saved"):
		page.Flash = "Saved. socsync is writing the change to Defender and Sentinel; the sync panel shows when every link has it."
	case r.URL.Query().Has("commented"):
		page.Flash = "Comment added. socsync writes it once to each linked incident."
	}
	h.render(w, r, http.StatusOK, "incident", page)
}

// handleEdit applies the triage form: the fields the analyst changed, through the API's
// editor (validation, audit under the user's name, reconciler queue), and the optional
// comment. A rejected form is shown again with the analyst's values and the field named.
func (h *Handler) handleEdit(w http.ResponseWriter, r *http.Request, s *session) {
	p := s.principal()
	if !p.CanWrite() {
		h.renderError(w, r, s, http.StatusForbidden, "Forbidden", "Your role ("+p.Role+") may read incidents but not change them.")
		return
	}
	id := r.PathValue("id")
	patch, posted := patchFromForm(r.PostForm)
	if _, err := h.editor.UpdateIncident(r.Context(), p, id, patch); err != nil {
		h.editFailed(w, r, s, id, posted, "Not saved: ", err)
		return
	}
	if strings.TrimSpace(posted.Comment) != "" {
		if _, err := h.editor.AddComment(r.Context(), p, id, posted.Comment); err != nil {
			if fe := (*httpapi.FieldError)(nil); errors.As(err, &fe) {
				fe.Field = "comment"
			}
			posted.WasStatus, posted.Status = "", "" // the fields are saved: show them as stored
			h.editFailed(w, r, s, id, posted, "The changes were saved, but not the comment: ", err)
			return
		}
	}
	http.Redirect(w, r, "/incidents/"+url.PathEscape(id)+"?saved=1", http.StatusSeeOther)
}

// handleComment adds a comment to the thread.
func (h *Handler) handleComment(w http.ResponseWriter, r *http.Request, s *session) {
	p := s.principal()
	if !p.CanWrite() {
		h.renderError(w, r, s, http.StatusForbidden, "Forbidden", "Your role ("+p.Role+") may read incidents but not comment.")
		return
	}
	id := r.PathValue("id")
	text := r.PostForm.Get("text")
	_, err := h.editor.AddComment(r.Context(), p, id, text)
	if err != nil {
		h.editFailed(w, r, s, id, triageForm{Comment: text}, "Comment not added: ", err)
		return
	}
	http.Redirect(w, r, "/incidents/"+url.PathEscape(id)+"?commented=1#comments", http.StatusSeeOther)
}

// editFailed answers a rejected change: 404 for an incident not found in the user's scope, or
// the page again with the reason (400 invalid field, 409 merged or changed concurrently).
func (h *Handler) editFailed(w http.ResponseWriter, r *http.Request, s *session, id string, posted triageForm, prefix string, err error) {
	var fe *httpapi.FieldError
	var merged *httpapi.MergedError
	status, msg, field := 0, "", ""
	switch {
	case isNotFound(err):
		h.notFound(w, r, s)
		return
	case errors.Is(err, httpapi.ErrForbidden):
		h.renderError(w, r, s, http.StatusForbidden, "Forbidden", "Your role may not change incidents.")
		return
	case errors.As(err, &fe):
		status, msg, field = http.StatusBadRequest, prefix+fe.Error(), fe.Field
	case errors.As(err, &merged):
		status, msg = http.StatusConflict, prefix+"this incident was merged into another; change that one."
	case errors.Is(err, store.ErrConflict):
		status, msg = http.StatusConflict, prefix+"the incident changed while you edited it. Review it and save again."
	default:
		h.fail(w, r, err)
		return
	}
	si, err := h.store.IncidentInScope(r.Context(), s.principal().Scope, id)
	if isNotFound(err) {
		h.notFound(w, r, s)
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	page, err := h.incidentView(r.Context(), s, si)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if posted.WasStatus != "" || posted.Status != "" { // the triage form: show what was posted
		page.Form = posted
		page.setChoices()
	} else {
		page.Form.Comment = posted.Comment
	}
	page.Error, page.FieldError = msg, field
	h.render(w, r, status, "incident", page)
}

// handleRefinements serves the determination and reason choices that fit a classification:
// the fragment htmx swaps into the triage form when the classification changes.
func (h *Handler) handleRefinements(w http.ResponseWriter, r *http.Request, _ *session) {
	q := r.URL.Query()
	c := q.Get("classification")
	if c != "" {
		if _, err := incident.ParseClassification(c); err != nil && !incident.IsForeign(c) {
			c = ""
		}
	}
	d, reason := q.Get("determination"), q.Get("classification_reason")
	if !incident.Determination(d).Fits(incident.Classification(c)) {
		d = ""
	}
	if !incident.ClassificationReason(reason).Fits(incident.Classification(c)) {
		reason = ""
	}
	h.renderFragment(w, r, "incident", "refinements", refine(c, d, reason, false))
}
