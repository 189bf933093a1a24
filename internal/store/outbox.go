package store

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
)

// OutboxRecord is what the forward stream sends for one version of an incident: the incident
// as it was at that version, its links then, and what changed.
type OutboxRecord struct {
	Incident incident.Incident `json:"incident"`
	Links    []OutboxLink      `json:"links"`
	Change   Change            `json:"change"`
	// ProductNames are the products that raised the incident's alerts at this version.
	ProductNames []string `json:"product_names,omitempty"`
}

// OutboxLink is a link as the forward stream shows it.
type OutboxLink struct {
	Kind               LinkKind `json:"kind"`
	SourceID           string   `json:"source_id"`
	ExternalID         string   `json:"external_id"`
	ProviderIncidentID string   `json:"provider_incident_id,omitempty"`
	URL                string   `json:"url,omitempty"`
}

// OutboxRow is one pending forward record, keyed by (incident, version).
type OutboxRow struct {
	IncidentID string
	Version    int64
	TenantID   string
	CreatedAt  time.Time
	Record     OutboxRecord
}

// changedIncident is an incident created or updated in a transaction, with what changed.
type changedIncident struct {
	tenantID, id string
	changes      []Change
	created      bool // created in this transaction: it has only the alerts the transaction wrote
}

func (tx *Tx) changedIn(inc *incident.Incident) bool {
	for _, c := range tx.changed {
		if c.id == inc.ID && c.tenantID == inc.TenantID {
			return true
		}
	}
	return false
}

// noteChange records a change of inc in this transaction and returns its entry.
func (tx *Tx) noteChange(inc *incident.Incident, ch Change) *changedIncident {
	if ch.At.IsZero() {
		ch.At = tx.now
	}
	for i, c := range tx.changed {
		if c.id == inc.ID && c.tenantID == inc.TenantID {
			tx.changed[i].changes = append(c.changes, ch)
			return &tx.changed[i]
		}
	}
	tx.changed = append(tx.changed, changedIncident{tenantID: inc.TenantID, id: inc.ID, changes: []Change{ch}})
	return &tx.changed[len(tx.changed)-1]
}

// writeOutbox writes, just before commit, the outbox row of every incident the transaction
// changed: its final state, its links and a summary of all its changes.
func (tx *Tx) writeOutbox(ctx context.Context) error {
	for _, c := range tx.changed {
		si, err := tx.Incident(ctx, c.tenantID, c.id)
		if err != nil {
			return err
		}
		links, err := tx.Links(ctx, c.tenantID, c.id)
		if err != nil {
			return err
		}
		rec := OutboxRecord{Incident: si.Incident, Change: mergeChanges(c.changes), Links: make([]OutboxLink, 0, len(links))}
		for _, l := range links {
			rec.Links = append(rec.Links, OutboxLink{Kind: l.Kind, SourceID: l.SourceID, ExternalID: l.ExternalID,
				ProviderIncidentID: l.ProviderIncidentID, URL: l.URL})
		}
		// An incident created in this transaction has no stored alerts but those written in it:
		// without them, reading its alerts' products is a query for nothing.
		withAlerts := !c.created || tx.alertsWritten[c.id]
		if rec.ProductNames, err = tx.outboxProductNames(ctx, c.tenantID, c.id, links, withAlerts); err != nil {
			return err
		}
		b, err := json.Marshal(rec)
		if err != nil {
			return fmt.Errorf("outbox record of %s: %w", c.id, err)
		}
		_, err = tx.tx.ExecContext(ctx, `
			INSERT INTO outbox (incident_id, version, tenant_id, created_at, record) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (incident_id, version) DO NOTHING`,
			c.id, si.Version, c.tenantID, ms(tx.now), string(b))
		if err != nil {
			return fmt.Errorf("outbox row of %s v%d: %w", c.id, si.Version, err)
		}
	}
	return nil
}

// mergeChanges sums up the changes of one transaction: the summaries joined, the latest time,
// the first actor.
func mergeChanges(cs []Change) Change {
	out := cs[0]
	for _, c := range cs[1:] {
		if c.Summary != "" && c.Summary != out.Summary {
			out.Summary += "; " + c.Summary
		}
		if c.At.After(out.At) {
			out.At = c.At
		}
	}
	return out
}

// ClaimOutbox claims up to limit unsent outbox rows, oldest first, for owner until now+ttl; rows
// claimed by another owner whose claim has not expired are skipped, so each row is sent by one
// replica at a time.
func (s *Store) ClaimOutbox(ctx context.Context, owner string, ttl time.Duration, limit int) ([]OutboxRow, error) {
	if owner == "" {
		return nil, errors.New("claim outbox: owner required")
	}
	var out []OutboxRow
	err := s.InTx(ctx, func(tx *Tx) error {
		out = out[:0]
		now := ms(tx.now)
		lock := ""
		if s.dialect == Postgres {
			lock = "FOR UPDATE SKIP LOCKED"
		}
		rows, err := tx.tx.QueryContext(ctx, `
			UPDATE outbox SET claimed_by = $1, claim_expires_at = $2
			WHERE (incident_id, version) IN (
				SELECT incident_id, version FROM outbox
				WHERE sent_at = 0 AND (claimed_by = '' OR claimed_by = $1 OR claim_expires_at <= $3)
				ORDER BY created_at, incident_id, version LIMIT $4 `+lock+`)
			RETURNING incident_id, version, tenant_id, created_at, record`, owner, now+ttl.Milliseconds(), now, limit)
		if err != nil {
			return fmt.Errorf("claim outbox: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var r OutboxRow
			var created int64
			var rec string
			if err := rows.Scan(&r.IncidentID, &r.Version, &r.TenantID, &created, &rec); err != nil {
				return fmt.Errorf("claim outbox: %w", err)
			}
			if err := json.Unmarshal([]byte(rec), &r.Record); err != nil {
				return fmt.Errorf("outbox row %s v%d: %w", r.IncidentID, r.Version, err)
			}
			r.CreatedAt = fromMS(created)
			out = append(out, r)
		}
		return rows.Err()
	})
	// RETURNING does not keep the subquery's order on PostgreSQL.
	slices.SortFunc(out, func(a, b OutboxRow) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.IncidentID, b.IncidentID), cmp.Compare(a.Version, b.Version))
	})
	return out, err
}

// OutboxKey identifies one outbox row.
type OutboxKey struct {
	IncidentID string
	Version    int64
}

// AckOutbox marks rows sent. Only the owner's claims are acknowledged; it returns how many.
func (s *Store) AckOutbox(ctx context.Context, owner string, keys []OutboxKey) (int, error) {
	n := 0
	err := s.InTx(ctx, func(tx *Tx) error {
		n = 0
		for _, k := range keys {
			res, err := tx.tx.ExecContext(ctx, `
				UPDATE outbox SET sent_at = $4, claimed_by = '', claim_expires_at = 0
				WHERE incident_id = $1 AND version = $2 AND claimed_by = $3 AND sent_at = 0`,
				k.IncidentID, k.Version, owner, ms(tx.now))
			if err != nil {
				return fmt.Errorf("ack outbox %s v%d: %w", k.IncidentID, k.Version, err)
			}
			c, _ := res.RowsAffected()
			n += int(c)
		}
		return nil
	})
	return n, err
}

// OutboxPending counts rows not yet sent (for metrics and tests).
func (s *Store) OutboxPending(ctx context.Context) (int, error) {
	var n int
	err := s.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox WHERE sent_at = 0`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count outbox: %w", err)
	}
	return n, nil
}
