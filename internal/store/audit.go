package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// AuditEntry is one line of an incident's history: an analyst's action or a write-back.
type AuditEntry struct {
	ID         int64     `json:"id"`
	TenantID   string    `json:"tenant_id"`
	IncidentID string    `json:"incident_id"`
	At         time.Time `json:"at"`
	Actor      string    `json:"actor"`  // user name, "socsync", "graph", "sentinel"
	Action     string    `json:"action"` // e.g. edit, write-back, conflict, comment, merge
	Link       string    `json:"link,omitempty"`
	Field      string    `json:"field,omitempty"`
	Before     string    `json:"before,omitempty"`
	After      string    `json:"after,omitempty"`
	Result     string    `json:"result,omitempty"`
	Detail     string    `json:"detail,omitempty"`
}

// Audit appends an entry to an incident's history.
func (tx *Tx) Audit(ctx context.Context, e AuditEntry) error {
	if e.At.IsZero() {
		e.At = tx.now
	}
	_, err := tx.tx.ExecContext(ctx, `
		INSERT INTO audit (tenant_id, incident_id, at, actor, action, link, field, before_value, after_value, result, detail)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		strings.ToLower(e.TenantID), e.IncidentID, ms(e.At), e.Actor, e.Action, e.Link, e.Field, e.Before,
		e.After, e.Result, e.Detail)
	if err != nil {
		return fmt.Errorf("audit %s: %w", e.IncidentID, err)
	}
	return nil
}

// History returns an incident's audit entries, oldest first.
func (s *Store) History(ctx context.Context, tenantID, incidentID string) ([]AuditEntry, error) {
	rows, err := s.read.QueryContext(ctx, `
		SELECT id, tenant_id, incident_id, at, actor, action, link, field, before_value, after_value, result, detail
		FROM audit WHERE tenant_id = $1 AND incident_id = $2 ORDER BY id`, strings.ToLower(tenantID), incidentID)
	if err != nil {
		return nil, fmt.Errorf("history of %s: %w", incidentID, err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var at int64
		if err := rows.Scan(&e.ID, &e.TenantID, &e.IncidentID, &at, &e.Actor, &e.Action, &e.Link, &e.Field,
			&e.Before, &e.After, &e.Result, &e.Detail); err != nil {
			return nil, fmt.Errorf("history of %s: %w", incidentID, err)
		}
		e.At = fromMS(at)
		out = append(out, e)
	}
	return out, rows.Err()
}
