// Package ingest stores what pollers observed into the hub: one hub incident per real incident
// (a Sentinel mirror of a Defender incident joins the Defender one), each alert once, remote
// comments once, merges recorded as merges, and remote field changes taken in through the
// reconcile planner, all inside the caller's transaction.
package ingest

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/socsync/socsync/internal/incident"
	"github.com/socsync/socsync/internal/reconcile"
	"github.com/socsync/socsync/internal/store"
)

// Source says where observations come from.
type Source struct {
	ID       string // store source id
	TenantID string
	Kind     store.SourceKind
	Owners   incident.Owners
	// DefenderPolled says the tenant's Defender XDR is collected through Graph. Only then is a
	// Sentinel mirror of a Defender incident read-only: Microsoft's connector carries Graph's
	// changes to it, and socsync writes the pair through Graph alone. Without it, the mirror is
	// the only copy socsync sees and is synced like any Sentinel incident.
	DefenderPolled bool
}

// Ingester turns observations into hub state. It holds configuration only.
type Ingester struct {
	Policy reconcile.Policy
}

// Result tells the caller what an observation changed.
type Result struct {
	IncidentID string
	Created    bool // a new hub incident
	// Changed: the hub incident got a new version, or its alerts changed (no new version, but
	// the reconciler must look again: the alert rules act on the alerts' statuses).
	Changed bool
	Pending bool // the plan has writes to make (for the reconciler)
}

// CorrKey returns the correlation key that makes two observations the same hub incident: a
// Defender incident and its Sentinel mirror share graph:<Defender id>; a Sentinel-only incident
// is sentinel:<source>:<name>. A mirror first seen already redirected has its own key, since its
// providerIncidentId then names the target, not itself.
func CorrKey(src Source, obs incident.Observation) string {
	switch {
	case obs.System == incident.Graph:
		return "graph:" + obs.ExternalID
	case obs.Mirrored && obs.ProviderIncidentID != "" && obs.Status != incident.StatusMerged:
		return "graph:" + obs.ProviderIncidentID
	}
	return "sentinel:" + src.ID + ":" + obs.ExternalID
}

func linkKind(sys incident.System) store.LinkKind {
	if sys == incident.Graph {
		return store.LinkGraph
	}
	return store.LinkSentinel
}

func sourceOf(sys incident.System) incident.Source {
	if sys == incident.Graph {
		return incident.SourceDefender
	}
	return incident.SourceSentinel
}

// Observe stores one observation in tx and updates its hub incident.
func (ing *Ingester) Observe(ctx context.Context, tx *store.Tx, src Source, obs incident.Observation) (Result, error) {
	observed, err := json.Marshal(obs)
	if err != nil {
		return Result{}, fmt.Errorf("observation %s: %w", obs.ExternalID, err)
	}
	var res Result
	link, err := tx.LinkByExternal(ctx, src.TenantID, src.ID, obs.ExternalID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		inc := &incident.Incident{TenantID: src.TenantID}
		hubFrom(inc, obs)
		res.Created, err = tx.CreateIncident(ctx, inc, CorrKey(src, obs), store.Change{Summary: "created from " + string(obs.System), At: obs.UpdatedAt, Actor: string(obs.System)})
		if err != nil {
			return res, err
		}
		res.IncidentID = inc.ID
	case err != nil:
		return res, err
	default:
		res.IncidentID = link.IncidentID
	}
	link = store.Link{TenantID: src.TenantID, IncidentID: res.IncidentID, SourceID: src.ID, Kind: linkKind(obs.System),
		ExternalID: obs.ExternalID, ProviderIncidentID: obs.ProviderIncidentID, URL: obs.URL, ETag: obs.ETag,
		Observed: observed, Raw: obs.Raw, RemoteUpdated: obs.UpdatedAt, Flags: strings.Join(obs.Flags, ",")}
	linkChanged, err := tx.UpsertLink(ctx, &link)
	if err != nil {
		return res, err
	}
	alertsChanged, err := ing.StoreAlerts(ctx, tx, src, res.IncidentID, obs.Alerts, obs.UpdatedAt)
	if err != nil {
		return res, err
	}
	if obs.Alerts != nil && obs.System == incident.Sentinel {
		// Just read: the alert rules need not re-read them before their next refresh.
		if err := tx.MarkAlertsChecked(ctx, src.TenantID, link.ID); err != nil {
			return res, err
		}
	}
	commentsAdded, err := storeComments(ctx, tx, src, res.IncidentID, link.ID, obs)
	if err != nil {
		return res, err
	}
	if !linkChanged && !alertsChanged && commentsAdded == 0 && !res.Created {
		return res, nil // an overlapping re-read: nothing new
	}
	changed, pending, err := ing.merge(ctx, tx, src, res.IncidentID, commentsAdded)
	res.Changed, res.Pending = changed || res.Created || alertsChanged, pending
	if err != nil || obs.System != incident.Graph {
		return res, err
	}
	// Incidents merged into this one before it was collected can point at it now.
	waiting, err := tx.IncidentsAwaitingMerge(ctx, src.TenantID, CorrKey(src, obs))
	if err != nil {
		return res, err
	}
	for _, id := range waiting {
		si, err := tx.Incident(ctx, src.TenantID, id)
		if err != nil {
			return res, err
		}
		si.MergedInto = res.IncidentID
		if err := tx.UpdateIncident(ctx, &si.Incident, store.Change{Summary: "merged_into: " + res.IncidentID, At: obs.UpdatedAt, Actor: "graph"}); err != nil {
			return res, err
		}
	}
	return res, nil
}

// hubFrom sets a hub incident's fields from an observation (a new incident, or one that had no
// link yet).
func hubFrom(inc *incident.Incident, obs incident.Observation) {
	inc.Title, inc.Description = obs.Title, obs.Description
	inc.Fields = obs.Fields
	inc.Tags = slices.Clone(obs.Tags)
	inc.Sources = []incident.Source{sourceOf(obs.System)}
	inc.AlertCount = obs.AlertCount
	inc.CreatedAt = obs.CreatedAt
	inc.FirstActivityAt, inc.LastActivityAt = obs.FirstActivityAt.Truncate(time.Millisecond), obs.LastActivityAt.Truncate(time.Millisecond)
}

// merge brings the hub incident up to date with all its links: descriptive fields from the
// links, synced fields through the planner, merges, and the agreed bases of links that have
// nothing to write.
func (ing *Ingester) merge(ctx context.Context, tx *store.Tx, src Source, id string, commentsAdded int) (changed, pending bool, err error) {
	si, err := tx.Incident(ctx, src.TenantID, id)
	if err != nil {
		return false, false, err
	}
	links, err := tx.Links(ctx, src.TenantID, id)
	if err != nil {
		return false, false, err
	}
	vs, err := reconcile.DecodeLinks(links)
	if err != nil {
		return false, false, err
	}
	before := si.Incident
	before.Tags = slices.Clone(si.Tags)
	inc := si.Incident

	// A new writable link of an incident that has no agreed writable link yet is the
	// incident's own copy (the Defender incident whose Sentinel mirror came first, or the first
	// link of a new incident): the hub adopts what it shows. Other new links (mirrors) start
	// agreed on what they show; read-only, they are never written.
	readOnly := func(v reconcile.LinkState) bool { return v.ReadOnly(src.DefenderPolled) }
	agreedWritable := slices.ContainsFunc(vs, func(v reconcile.LinkState) bool { return !readOnly(v) && v.Base != nil })
	for i, v := range vs {
		if v.Base == nil && !readOnly(v) && !agreedWritable {
			inc.Fields = v.Obs.Fields
			inc.Tags = slices.Clone(v.Obs.Tags)
			b := v.Obs.Fields
			vs[i].Base, agreedWritable = &b, true
		}
	}
	si.Incident = inc
	plan := reconcile.Plan(reconcile.InputFor(si, vs, src.Owners, src.DefenderPolled, ing.Policy))
	inc.Fields = plan.Hub
	describe(&inc, vs)
	if err := ing.resolveMerge(ctx, tx, src, &inc, vs); err != nil {
		return false, false, err
	}
	if alerts, err := tx.Alerts(ctx, src.TenantID, id); err != nil {
		return false, false, err
	} else if len(alerts) > inc.AlertCount {
		inc.AlertCount = len(alerts)
	}

	summary := diff(before, inc)
	if commentsAdded > 0 {
		summary = append(summary, fmt.Sprintf("%d comment(s) added", commentsAdded))
	}
	if len(summary) > 0 {
		at := time.Time{}
		for _, v := range vs {
			at = maxTime(at, v.Obs.UpdatedAt)
		}
		actor := "remote"
		if len(plan.Inbound) > 0 {
			actor = strings.SplitN(plan.Inbound[0].Link, ":", 2)[0]
		}
		if err := tx.UpdateIncident(ctx, &inc, store.Change{Summary: strings.Join(summary, "; "), At: at, Actor: actor}); err != nil {
			return false, false, err
		}
		changed = true
	}
	for _, c := range plan.Conflicts {
		if err := tx.Audit(ctx, store.AuditEntry{TenantID: src.TenantID, IncidentID: id, Actor: "socsync", Action: "conflict",
			Link: c.Link, Field: string(c.Field), Before: c.Hub, After: c.Remote, Result: "won by " + c.Winner, Detail: string(c.Rule)}); err != nil {
			return false, false, err
		}
	}
	for _, v := range vs {
		if v.Kind == store.LinkWebhook {
			continue
		}
		if _, writes := plan.WriteFor(v.PlanID()); writes {
			// Until the write succeeds, the link is agreed as it was seen (see PendingBases):
			// what was taken in from it stays agreed, and the hub's values still to write differ
			// from it, so they are planned again.
			pending = true
			var base json.RawMessage
			if pb, ok := plan.PendingBases[v.PlanID()]; ok {
				base, _ = json.Marshal(pb)
			}
			if err := tx.SetLinkSync(ctx, src.TenantID, v.ID, base, "pending", v.LastError); err != nil {
				return false, false, err
			}
			continue
		}
		base, _ := json.Marshal(plan.Bases[v.PlanID()])
		if err := tx.SetLinkSync(ctx, src.TenantID, v.ID, base, "in_sync", ""); err != nil {
			return false, false, err
		}
	}
	state, next := "in_sync", time.Time{}
	if pending {
		state, next = "pending", tx.Now()
	}
	return changed, pending, tx.SetSyncState(ctx, src.TenantID, id, state, next)
}

// describe sets the descriptive, remote-owned fields from the links: title and description
// from the Defender link when there is one (Sentinel's copy of an XDR incident may lack the
// description), the union of sources, the largest alert count, the activity window.
func describe(inc *incident.Incident, vs []reconcile.LinkState) {
	ordered := slices.Clone(vs)
	slices.SortStableFunc(ordered, func(a, b reconcile.LinkState) int {
		return cmp.Compare(rank(a.Obs.System), rank(b.Obs.System))
	})
	inc.Sources = nil
	inc.AlertCount = 0
	for i, v := range ordered {
		if i == 0 {
			inc.Title = v.Obs.Title
			if v.Obs.Description != "" {
				inc.Description = v.Obs.Description
			}
		} else if inc.Description == "" {
			inc.Description = v.Obs.Description
		}
		if s := sourceOf(v.Obs.System); !slices.Contains(inc.Sources, s) {
			inc.Sources = append(inc.Sources, s)
		}
		inc.AlertCount = max(inc.AlertCount, v.Obs.AlertCount)
		// The store keeps milliseconds: compare at that precision, or every merge would look
		// like a change of the activity window.
		first, last := v.Obs.FirstActivityAt.Truncate(time.Millisecond), v.Obs.LastActivityAt.Truncate(time.Millisecond)
		if !first.IsZero() && (inc.FirstActivityAt.IsZero() || first.Before(inc.FirstActivityAt)) {
			inc.FirstActivityAt = first
		}
		inc.LastActivityAt = maxTime(inc.LastActivityAt, last)
	}
	slices.Sort(inc.Sources)
}

func rank(s incident.System) int {
	if s == incident.Graph {
		return 0
	}
	return 1
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// resolveMerge points a merged incident at the hub incident it was merged into, once that is
// known. A merged incident stays merged: the planner never takes a reopening in.
func (ing *Ingester) resolveMerge(ctx context.Context, tx *store.Tx, src Source, inc *incident.Incident, vs []reconcile.LinkState) error {
	if inc.Status != incident.StatusMerged || inc.MergedInto != "" {
		return nil
	}
	for _, v := range vs {
		if v.Obs.MergedInto == "" {
			continue
		}
		key := "graph:" + v.Obs.MergedInto
		target, err := tx.IncidentByCorrKey(ctx, src.TenantID, key)
		if errors.Is(err, store.ErrNotFound) {
			// Not collected yet: when it is, Observe points this incident at it.
			return tx.AwaitMergeTarget(ctx, src.TenantID, inc.ID, key)
		}
		if err != nil {
			return err
		}
		if target.ID != inc.ID {
			inc.MergedInto = target.ID
			return nil
		}
	}
	return nil
}

// diff lists what changed between two versions of an incident, for the change summary.
func diff(a, b incident.Incident) []string {
	var out []string
	add := func(name, x, y string) {
		if x != y {
			out = append(out, fmt.Sprintf("%s: %q → %q", name, x, y))
		}
	}
	add("title", a.Title, b.Title)
	if a.Description != b.Description {
		out = append(out, "description")
	}
	add("status", string(a.Status), string(b.Status))
	add("severity", string(a.Severity), string(b.Severity))
	add("owner", a.Owner, b.Owner)
	add("classification", string(a.Classification), string(b.Classification))
	add("determination", string(a.Determination), string(b.Determination))
	add("classification_reason", string(a.ClassificationReason), string(b.ClassificationReason))
	if !incident.EqualText(a.ClassificationComment, b.ClassificationComment) {
		out = append(out, "classification_comment")
	}
	if !incident.EqualTags(a.Tags, b.Tags) {
		out = append(out, fmt.Sprintf("tags: %v → %v", incident.NormalizeTags(a.Tags), incident.NormalizeTags(b.Tags)))
	}
	add("sources", fmt.Sprint(a.Sources), fmt.Sprint(b.Sources))
	add("alert_count", fmt.Sprint(a.AlertCount), fmt.Sprint(b.AlertCount))
	add("merged_into", a.MergedInto, b.MergedInto)
	if !a.FirstActivityAt.Equal(b.FirstActivityAt) || !a.LastActivityAt.Equal(b.LastActivityAt) {
		out = append(out, "activity window")
	}
	return out
}

// StoreAlerts stores alerts of an incident (each once per remote id, newest version wins);
// reportedAt is the change time of the report that listed them. It reports whether any changed.
func (ing *Ingester) StoreAlerts(ctx context.Context, tx *store.Tx, src Source, incidentID string, alerts []incident.ObservedAlert, reportedAt time.Time) (bool, error) {
	changed := false
	for _, a := range alerts {
		al := a.Alert
		al.TenantID, al.IncidentID = src.TenantID, incidentID
		stored, err := tx.UpsertAlert(ctx, al, a.Raw, reportedAt)
		if err != nil {
			return false, err
		}
		changed = changed || stored
	}
	return changed, nil
}

// storeComments stores remote comments once each: identified by where they came from, author,
// time and text. A comment carrying socsync's marker is the hub's own, read back: it is not
// stored again but recorded as written to this link.
func storeComments(ctx context.Context, tx *store.Tx, src Source, incidentID string, linkID int64, obs incident.Observation) (int, error) {
	if len(obs.Comments) == 0 {
		return 0, nil
	}
	hub := map[string]string{} // marker reference → hub comment id
	existing, err := tx.Comments(ctx, src.TenantID, incidentID)
	if err != nil {
		return 0, err
	}
	for _, c := range existing {
		hub[incident.CommentRef(c.ID)] = c.ID
	}
	added := 0
	for _, c := range obs.Comments {
		if ref, ok := incident.CommentRefOf(c.Text); ok {
			if id, mine := hub[ref]; mine {
				if err := tx.SetCommentOnLink(ctx, src.TenantID, store.CommentOnLink{CommentID: id, LinkID: linkID, RemoteID: c.ID, State: "written"}); err != nil {
					return added, err
				}
				continue
			}
		}
		origin := incident.OriginGraph
		if obs.System == incident.Sentinel {
			origin = incident.OriginSentinel
		}
		fp := string(origin) + "|" + obs.ExternalID + "|" + c.ID + "|" + c.Author + "|" + c.CreatedAt.UTC().Format(time.RFC3339Nano) + "|" + incident.NormalizeText(c.Text)
		ok, err := tx.AddComment(ctx, src.TenantID, &incident.Comment{IncidentID: incidentID, Origin: origin, Author: c.Author,
			CreatedAt: c.CreatedAt, Text: c.Text}, fp)
		if err != nil {
			return added, err
		}
		if ok {
			added++
		}
	}
	return added, nil
}
