package writeback

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/socsync/socsync/internal/incident"
	"github.com/socsync/socsync/internal/ingest"
	"github.com/socsync/socsync/internal/reconcile"
	"github.com/socsync/socsync/internal/store"
)

// finishMerge handles an incident the remote's correlation merged into another, once: a note on
// both, the target takes the higher severity (when configured) and the source's hub changes
// that were not written yet (owner, tags), and the source is never written again. Its links
// just record what they show.
func (e *Engine) finishMerge(ctx context.Context, si store.StoredIncident, links []reconcile.LinkState, from ingest.Source) error {
	history, err := e.store.History(ctx, si.TenantID, si.ID)
	if err != nil {
		return err
	}
	done := slices.ContainsFunc(history, func(h store.AuditEntry) bool { return h.Action == "merge" })
	var target store.IncidentKey
	err = e.store.InTx(ctx, func(tx *store.Tx) error {
		for _, l := range links {
			if l.Kind == store.LinkWebhook {
				continue
			}
			base, _ := json.Marshal(l.Obs.Fields)
			if err := tx.SetLinkSync(ctx, si.TenantID, l.ID, base, "in_sync", ""); err != nil {
				return err
			}
		}
		if done || si.MergedInto == "" {
			// Handled already, or the target is not collected yet (collecting it updates this
			// incident, which brings it back here).
			return tx.SetSyncState(ctx, si.TenantID, si.ID, "in_sync", timeZero)
		}
		t, err := tx.Incident(ctx, si.TenantID, si.MergedInto)
		if err != nil {
			return fmt.Errorf("merge target %s: %w", si.MergedInto, err)
		}
		target = store.IncidentKey{TenantID: t.TenantID, ID: t.ID}
		src, dst := si.Incident, t.Incident
		note := func(on *incident.Incident, text string) error {
			_, err := tx.AddComment(ctx, on.TenantID, &incident.Comment{IncidentID: on.ID, Origin: incident.OriginHub, Author: "socsync", Text: text}, "")
			return err
		}
		if err := note(&src, fmt.Sprintf("Merged into %q (%s) by the remote's correlation; work continues there.", dst.Title, dst.ID)); err != nil {
			return err
		}
		if err := note(&dst, fmt.Sprintf("Absorbed %q (%s), which the remote's correlation merged into this incident.", src.Title, src.ID)); err != nil {
			return err
		}
		var moved []string
		if e.cfg.RaiseMergeSeverity && src.Severity.Rank() > dst.Severity.Rank() {
			dst.Severity = src.Severity
			moved = append(moved, "severity "+string(src.Severity))
		}
		pending := pendingHubChanges(si, links, from)
		if pending[reconcile.FieldOwner] && src.Owner != "" {
			dst.Owner = src.Owner
			moved = append(moved, "owner "+src.Owner)
		}
		if pending[reconcile.FieldTags] {
			dst.Tags = incident.NormalizeTags(append(slices.Clone(dst.Tags), src.Tags...))
			moved = append(moved, "tags")
		}
		summary := "absorbed merged incident " + src.ID
		if len(moved) > 0 {
			summary += "; took " + fmt.Sprint(moved)
		}
		if err := tx.UpdateIncident(ctx, &dst, store.Change{Summary: summary, Actor: "socsync", HubEdit: len(moved) > 0}); err != nil {
			return err
		}
		if err := tx.UpdateIncident(ctx, &src, store.Change{Summary: "merged into " + dst.ID, Actor: "socsync"}); err != nil {
			return err
		}
		for _, a := range []store.AuditEntry{
			{TenantID: src.TenantID, IncidentID: src.ID, Actor: "socsync", Action: "merge", After: dst.ID, Detail: "merged into"},
			{TenantID: dst.TenantID, IncidentID: dst.ID, Actor: "socsync", Action: "merge", Before: src.ID, Detail: summary},
		} {
			if err := tx.Audit(ctx, a); err != nil {
				return err
			}
		}
		if err := tx.SetSyncState(ctx, dst.TenantID, dst.ID, "pending", tx.Now()); err != nil {
			return err
		}
		return tx.SetSyncState(ctx, src.TenantID, src.ID, "in_sync", timeZero)
	})
	if err == nil && target.ID != "" {
		e.queue.Add(target)
	}
	return err
}

// pendingHubChanges lists the fields the hub changed and had not yet written to the incident's
// writable links (hub value differs from what they last agreed).
func pendingHubChanges(si store.StoredIncident, links []reconcile.LinkState, src ingest.Source) map[reconcile.Field]bool {
	out := map[reconcile.Field]bool{}
	for _, l := range links {
		if !l.Writable(src.DefenderPolled) || l.Base == nil {
			continue
		}
		if incident.NormalizeOwner(si.Owner) != incident.NormalizeOwner(l.Base.Owner) {
			out[reconcile.FieldOwner] = true
		}
		if !incident.EqualTags(si.Tags, l.Base.Tags) {
			out[reconcile.FieldTags] = true
		}
	}
	return out
}
