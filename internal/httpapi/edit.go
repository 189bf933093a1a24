package httpapi

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/socsync/socsync/internal/incident"
	"github.com/socsync/socsync/internal/store"
)

// Editor applies analysts' changes to incidents: the validation, audit and queueing behind
// PATCH /api/v1/incidents/{id} and POST /api/v1/incidents/{id}/comments, shared with the web
// UI's forms so that both behave the same.
type Editor struct {
	Store interface {
		InTx(ctx context.Context, fn func(tx *store.Tx) error) error
	}
	Queue Queue // optional: where changed incidents go for the reconciler
}

// ErrForbidden: the principal may not change incidents (a viewer).
var ErrForbidden = errors.New("this principal may not change incidents")

// MergedError: the incident was merged into another, which is the one to change.
type MergedError struct{ Into string }

func (e *MergedError) Error() string { return "the incident was merged into " + e.Into }

// UpdateIncident applies a patch to the incident id for the principal: it sets the hub's
// desired state, audits each changed field under the principal's name, marks the incident
// pending and queues it for the reconciler. A patch that changes nothing writes nothing.
// Errors: ErrForbidden; store.ErrNotFound for a missing incident and, alike, for one of a tenant
// outside the principal's scope; *MergedError; *FieldError naming the invalid field;
// store.ErrConflict when the incident changed concurrently.
func (e Editor) UpdateIncident(ctx context.Context, p Principal, id string, patch Patch) (store.IncidentKey, error) {
	var key store.IncidentKey
	if !p.CanWrite() {
		return key, ErrForbidden
	}
	err := e.Store.InTx(ctx, func(tx *store.Tx) error {
		si, err := tx.IncidentInScope(ctx, p.Scope, id)
		if err != nil {
			return err
		}
		key = store.IncidentKey{TenantID: si.TenantID, ID: si.ID}
		if si.Status == incident.StatusMerged {
			return &MergedError{Into: si.MergedInto}
		}
		before := si.Fields
		changed, err := patch.apply(&si.Incident)
		if err != nil || len(changed) == 0 {
			return err
		}
		ch := store.Change{Summary: p.Name + " changed " + strings.Join(changed, ", "), Actor: p.Name, HubEdit: true}
		if err := tx.UpdateIncident(ctx, &si.Incident, ch); err != nil {
			return err
		}
		for _, f := range changed {
			if err := tx.Audit(ctx, store.AuditEntry{TenantID: si.TenantID, IncidentID: si.ID, Actor: p.Name,
				Action: "edit", Field: f, Before: fieldValue(before, f), After: fieldValue(si.Fields, f)}); err != nil {
				return err
			}
		}
		return tx.SetSyncState(ctx, si.TenantID, si.ID, "pending", tx.Now())
	})
	if err != nil {
		return key, err
	}
	e.enqueue(key)
	return key, nil
}

// AddComment adds the principal's comment to the incident id: it is stored in the hub, audited
// and queued to be written once to each link (a merged incident keeps it in the hub only).
// Errors: ErrForbidden; store.ErrNotFound (missing or outside the scope, alike); *FieldError
// for an empty or too long text.
func (e Editor) AddComment(ctx context.Context, p Principal, id, text string) (store.IncidentKey, error) {
	var key store.IncidentKey
	if !p.CanWrite() {
		return key, ErrForbidden
	}
	switch {
	case strings.TrimSpace(text) == "":
		return key, &FieldError{"text", "required"}
	case utf8.RuneCountInString(text) > maxCommentLen:
		return key, &FieldError{"text", fmt.Sprintf("longer than %d characters", maxCommentLen)}
	}
	err := e.Store.InTx(ctx, func(tx *store.Tx) error {
		si, err := tx.IncidentInScope(ctx, p.Scope, id)
		if err != nil {
			return err
		}
		key = store.IncidentKey{TenantID: si.TenantID, ID: si.ID}
		c := &incident.Comment{IncidentID: si.ID, Origin: incident.OriginHub, Author: p.Name, Text: text}
		if _, err := tx.AddComment(ctx, si.TenantID, c, ""); err != nil {
			return err
		}
		if err := tx.UpdateIncident(ctx, &si.Incident, store.Change{Summary: "comment by " + p.Name, Actor: p.Name}); err != nil {
			return err
		}
		if err := tx.Audit(ctx, store.AuditEntry{TenantID: si.TenantID, IncidentID: si.ID, Actor: p.Name,
			Action: "comment", After: c.ID}); err != nil {
			return err
		}
		if si.Status == incident.StatusMerged {
			return nil // kept in the hub; a merged incident is never written again
		}
		return tx.SetSyncState(ctx, si.TenantID, si.ID, "pending", tx.Now())
	})
	if err != nil {
		return key, err
	}
	e.enqueue(key)
	return key, nil
}

func (e Editor) enqueue(k store.IncidentKey) {
	if e.Queue != nil {
		e.Queue.Enqueue(k)
	}
}
