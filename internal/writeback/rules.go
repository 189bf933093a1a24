package writeback

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/socsync/socsync/internal/incident"
	"github.com/socsync/socsync/internal/store"
)

var timeZero time.Time

// The alert → incident rules (for incidents whose alerts all come from the configured
// products, Defender for Cloud by default — whose alert changes Microsoft never carries to the
// Sentinel incident):
//
//   - every alert closed and every one dismissed → close the incident as a benign positive;
//   - every alert closed, at least one resolved → close it as a true positive;
//   - an alert in progress while the incident is new, or an alert open again (closed or absent
//     when the rules last looked) while the incident is resolved → set it active.
//
// A multi-alert incident is never closed while an alert is new or in progress. Rules fire on a
// change of the alerts' statuses only (their fingerprint is kept in the audit), so an analyst
// who reopens an incident by hand is not overruled until an alert changes again.
const ruleAction = "rule"

// applyAlertRules runs the rules; changed reports whether the hub incident changed.
func (e *Engine) applyAlertRules(ctx context.Context, si store.StoredIncident) (changed bool, err error) {
	if len(e.cfg.AlertRules) == 0 || si.Status == incident.StatusMerged {
		return false, nil
	}
	alerts, err := e.store.Alerts(ctx, si.TenantID, si.ID)
	if err != nil || len(alerts) == 0 {
		return false, err
	}
	for _, a := range alerts {
		if !e.ruleProduct(a) {
			return false, nil
		}
	}
	fp := fingerprint(alerts)
	history, err := e.store.History(ctx, si.TenantID, si.ID)
	if err != nil {
		return false, err
	}
	var prev map[string]incident.AlertStatus // the statuses last acted on; nil: never evaluated
	for i := len(history) - 1; i >= 0; i-- {
		if history[i].Action == ruleAction {
			if history[i].Detail == fp {
				return false, nil // these alert statuses were acted on already
			}
			prev = parseFingerprint(history[i].Detail)
			break
		}
	}
	next, rule, text := decideAlertRule(si.Incident, alerts, prev)
	err = e.store.InTx(ctx, func(tx *store.Tx) error {
		entry := store.AuditEntry{TenantID: si.TenantID, IncidentID: si.ID, Actor: "socsync", Action: ruleAction, Detail: fp, Result: "no change"}
		if rule != "" {
			entry.Field, entry.Before, entry.After, entry.Result = "status", string(si.Status), string(next.Status), rule
			if _, err := tx.AddComment(ctx, si.TenantID, &incident.Comment{IncidentID: si.ID, Origin: incident.OriginHub, Author: "socsync", Text: text}, ""); err != nil {
				return err
			}
			if err := tx.UpdateIncident(ctx, &next, store.Change{Summary: "rule " + rule, Actor: "socsync", HubEdit: true}); err != nil {
				return err
			}
			// Like an analyst's edit, the rule's change is pending until it is written: shown
			// so, and swept again should this process stop before writing it (the rule itself
			// will not fire again for these alert statuses).
			if err := tx.SetSyncState(ctx, si.TenantID, si.ID, "pending", tx.Now()); err != nil {
				return err
			}
		}
		return tx.Audit(ctx, entry)
	})
	return rule != "" && err == nil, err
}

// decideAlertRule is the rules' decision for an incident, its alerts and the alert statuses
// the rules last saw (nil: none yet); rule is empty when nothing is to change. "Open again"
// means open now and closed (or absent) when last seen: alerts that were open all along never
// overrule an analyst who closed the incident with them open.
func decideAlertRule(inc incident.Incident, alerts []incident.Alert, prev map[string]incident.AlertStatus) (next incident.Incident, rule, text string) {
	var open, inProgress, dismissed, reopened int
	for _, a := range alerts {
		isOpen := false
		switch a.Status {
		case incident.AlertNew:
			open++
			isOpen = true
		case incident.AlertInProgress:
			open++
			inProgress++
			isOpen = true
		case incident.AlertDismissed:
			dismissed++
		case incident.AlertResolved:
		default:
			open++ // an unknown status is not closed
			isOpen = true
		}
		if was, seen := prev[a.RemoteID]; isOpen && prev != nil && (!seen || !alertOpen(was)) {
			reopened++
		}
	}
	next = inc
	switch {
	case open == 0 && inc.Status != incident.StatusResolved:
		next.Status = incident.StatusResolved
		next.Classification, rule = incident.ClassificationTruePositive, "all-alerts-resolved"
		text = fmt.Sprintf("Closed by socsync: all %d alert(s) are resolved (rule %s).", len(alerts), rule)
		if dismissed == len(alerts) {
			next.Classification, rule = incident.ClassificationBenignPositive, "all-alerts-dismissed"
			text = fmt.Sprintf("Closed by socsync: all %d alert(s) are dismissed (rule %s).", len(alerts), rule)
		}
		next.Determination, next.ClassificationReason = "", incident.ReasonFor(next.Classification, "")
	case reopened > 0 && inc.Status == incident.StatusResolved:
		next.Status, rule = incident.StatusActive, "alert-reopened"
		text = fmt.Sprintf("Reactivated by socsync: %d of %d alert(s) are open again (rule %s).", reopened, len(alerts), rule)
	case inProgress > 0 && inc.Status == incident.StatusNew:
		next.Status, rule = incident.StatusActive, "alert-in-progress"
		text = fmt.Sprintf("Set active by socsync: an alert is in progress (rule %s).", rule)
	}
	return next, rule, text
}

func alertOpen(s incident.AlertStatus) bool {
	return s != incident.AlertResolved && s != incident.AlertDismissed
}

func (e *Engine) ruleProduct(a incident.Alert) bool {
	return slices.ContainsFunc(e.cfg.AlertRules, func(p string) bool {
		return strings.EqualFold(p, a.ServiceSource) || strings.EqualFold(p, a.ProductName)
	})
}

// parseFingerprint reads a fingerprint back into alert id → status.
func parseFingerprint(fp string) map[string]incident.AlertStatus {
	out := map[string]incident.AlertStatus{}
	for _, part := range strings.Split(fp, ";") {
		if id, status, ok := strings.Cut(part, "="); ok {
			out[id] = incident.AlertStatus(status)
		}
	}
	return out
}

// fingerprint is the alerts' statuses, in a stable order.
func fingerprint(alerts []incident.Alert) string {
	parts := make([]string, len(alerts))
	for i, a := range alerts {
		parts[i] = a.RemoteID + "=" + string(a.Status)
	}
	sort.Strings(parts)
	return strings.Join(parts, ";")
}
