package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The forwarder's side of the outbox (ClaimOutbox and AckOutbox are in outbox.go): claims kept
// alive while a batch is in flight, claims given back on shutdown, dead letters, and the figures
// the forward metrics show.

// RenewOutboxClaims extends every claim owner holds on unsent rows to now+ttl and returns the
// keys it still holds. A row missing from the answer was taken over by another owner after the
// claim expired: the caller must not send it.
func (s *Store) RenewOutboxClaims(ctx context.Context, owner string, ttl time.Duration) ([]OutboxKey, error) {
	if owner == "" {
		return nil, errors.New("renew outbox claims: owner required")
	}
	var out []OutboxKey
	err := s.InTx(ctx, func(tx *Tx) error {
		out = out[:0]
		rows, err := tx.tx.QueryContext(ctx, `
			UPDATE outbox SET claim_expires_at = $2
			WHERE claimed_by = $1 AND sent_at = 0
			RETURNING incident_id, version`, owner, ms(tx.now)+ttl.Milliseconds())
		if err != nil {
			return fmt.Errorf("renew outbox claims: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var k OutboxKey
			if err := rows.Scan(&k.IncidentID, &k.Version); err != nil {
				return fmt.Errorf("renew outbox claims: %w", err)
			}
			out = append(out, k)
		}
		return rows.Err()
	})
	return out, err
}

// AckOutboxBatch marks rows sent, as AckOutbox does, for many rows at once: one prepared
// statement on SQLite, one statement per few hundred rows on PostgreSQL. Only the owner's claims
// are acknowledged; it returns how many.
func (s *Store) AckOutboxBatch(ctx context.Context, owner string, keys []OutboxKey) (int, error) {
	n := 0
	err := s.InTx(ctx, func(tx *Tx) error {
		n = 0
		if s.dialect == SQLite {
			stmt, err := tx.tx.PrepareContext(ctx, `
				UPDATE outbox SET sent_at = $4, claimed_by = '', claim_expires_at = 0
				WHERE incident_id = $1 AND version = $2 AND claimed_by = $3 AND sent_at = 0`)
			if err != nil {
				return fmt.Errorf("ack outbox: %w", err)
			}
			defer stmt.Close()
			for _, k := range keys {
				res, err := stmt.ExecContext(ctx, k.IncidentID, k.Version, owner, ms(tx.now))
				if err != nil {
					return fmt.Errorf("ack outbox %s v%d: %w", k.IncidentID, k.Version, err)
				}
				c, _ := res.RowsAffected()
				n += int(c)
			}
			return nil
		}
		const chunk = 400
		for lo := 0; lo < len(keys); lo += chunk {
			part := keys[lo:min(len(keys), lo+chunk)]
			args := make([]any, 0, 2+2*len(part))
			args = append(args, owner, ms(tx.now))
			vals := make([]string, 0, len(part))
			for _, k := range part {
				vals = append(vals, fmt.Sprintf("($%d, CAST($%d AS BIGINT))", len(args)+1, len(args)+2))
				args = append(args, k.IncidentID, k.Version)
			}
			res, err := tx.tx.ExecContext(ctx, `
				UPDATE outbox SET sent_at = $2, claimed_by = '', claim_expires_at = 0
				WHERE claimed_by = $1 AND sent_at = 0 AND (incident_id, version) IN (VALUES `+strings.Join(vals, ", ")+`)`, args...)
			if err != nil {
				return fmt.Errorf("ack outbox: %w", err)
			}
			c, _ := res.RowsAffected()
			n += int(c)
		}
		return nil
	})
	return n, err
}

// ReleaseOutbox gives up owner's claims on unsent rows (a replica shutting down), so that
// another replica, or this one restarted, takes them at once instead of after the claims
// expire. It returns how many it released.
func (s *Store) ReleaseOutbox(ctx context.Context, owner string) (int, error) {
	n := 0
	err := s.InTx(ctx, func(tx *Tx) error {
		res, err := tx.tx.ExecContext(ctx, `
			UPDATE outbox SET claimed_by = '', claim_expires_at = 0 WHERE claimed_by = $1 AND sent_at = 0`, owner)
		if err != nil {
			return fmt.Errorf("release outbox claims: %w", err)
		}
		c, _ := res.RowsAffected()
		n = int(c)
		return nil
	})
	return n, err
}

// FailOutbox sets aside a row claimed by owner that the sink refuses for itself alone (a dead
// letter): it is not claimed again, and OutboxFailures shows it with the reason. ok is false
// when owner no longer holds the row.
func (s *Store) FailOutbox(ctx context.Context, owner string, k OutboxKey, reason string) (ok bool, err error) {
	err = s.InTx(ctx, func(tx *Tx) error {
		now := ms(tx.now)
		res, err := tx.tx.ExecContext(ctx, `
			UPDATE outbox SET sent_at = $4, failed_at = $4, fail_reason = $5, claimed_by = '', claim_expires_at = 0
			WHERE incident_id = $1 AND version = $2 AND claimed_by = $3 AND sent_at = 0`,
			k.IncidentID, k.Version, owner, now, reason)
		if err != nil {
			return fmt.Errorf("fail outbox %s v%d: %w", k.IncidentID, k.Version, err)
		}
		n, _ := res.RowsAffected()
		ok = n == 1
		return nil
	})
	return ok, err
}

// OutboxFailure is a dead letter of the forward stream.
type OutboxFailure struct {
	IncidentID string
	Version    int64
	TenantID   string
	CreatedAt  time.Time
	FailedAt   time.Time
	Reason     string
}

// OutboxFailures returns up to limit dead letters, newest first.
func (s *Store) OutboxFailures(ctx context.Context, limit int) ([]OutboxFailure, error) {
	rows, err := s.read.QueryContext(ctx, `
		SELECT incident_id, version, tenant_id, created_at, failed_at, fail_reason FROM outbox
		WHERE failed_at > 0 ORDER BY failed_at DESC, incident_id, version LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("list outbox failures: %w", err)
	}
	defer rows.Close()
	var out []OutboxFailure
	for rows.Next() {
		var f OutboxFailure
		var created, failed int64
		if err := rows.Scan(&f.IncidentID, &f.Version, &f.TenantID, &created, &failed, &f.Reason); err != nil {
			return nil, fmt.Errorf("list outbox failures: %w", err)
		}
		f.CreatedAt, f.FailedAt = fromMS(created), fromMS(failed)
		out = append(out, f)
	}
	return out, rows.Err()
}

// OutboxStats are the outbox figures the forward metrics show.
type OutboxStats struct {
	Pending       int       // rows not sent yet
	OldestPending time.Time // when the oldest of them was written (zero when none)
	Failed        int       // dead letters
}

// OutboxStats counts the unsent rows and the dead letters.
func (s *Store) OutboxStats(ctx context.Context) (OutboxStats, error) {
	var st OutboxStats
	var oldest int64
	err := s.read.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(MIN(created_at), 0) FROM outbox WHERE sent_at = 0`).
		Scan(&st.Pending, &oldest)
	if err != nil {
		return st, fmt.Errorf("outbox stats: %w", err)
	}
	st.OldestPending = fromMS(oldest)
	if err := s.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox WHERE failed_at > 0`).Scan(&st.Failed); err != nil {
		return st, fmt.Errorf("outbox stats: %w", err)
	}
	return st, nil
}

// outboxProductNames returns the product names of an incident as the forward stream shows them
// at this version: those of its alerts (when it may have any) and those its remote links report
// (Sentinel's alertProductNames, for alerts not fetched), sorted, each once.
func (tx *Tx) outboxProductNames(ctx context.Context, tenantID, incidentID string, links []Link, withAlerts bool) ([]string, error) {
	var out []string
	if withAlerts {
		var err error
		if out, err = tx.alertProductNames(ctx, tenantID, incidentID); err != nil {
			return nil, err
		}
	}
	for _, l := range links {
		var obs struct {
			ProductNames []string `json:"product_names"`
		}
		if json.Unmarshal(l.Observed, &obs) != nil {
			continue // not an observation: nothing to add
		}
		for _, p := range obs.ProductNames {
			if p != "" {
				out = append(out, p)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// alertProductNames returns the distinct product names of an incident's stored alerts.
func (tx *Tx) alertProductNames(ctx context.Context, tenantID, incidentID string) ([]string, error) {
	rows, err := tx.tx.QueryContext(ctx, `
		SELECT DISTINCT product_name FROM alerts WHERE tenant_id = $1 AND incident_id = $2 AND product_name <> ''`,
		strings.ToLower(tenantID), incidentID)
	if err != nil {
		return nil, fmt.Errorf("product names of %s: %w", incidentID, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return nil, fmt.Errorf("product names of %s: %w", incidentID, err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("product names of %s: %w", incidentID, err)
	}
	return out, nil
}
