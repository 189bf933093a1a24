package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Tenant is a configured customer tenant as the store knows it.
type Tenant struct {
	ID   string
	Name string
}

// SourceKind is what a source polls.
type SourceKind string

// Source kinds.
const (
	KindDefender SourceKind = "defender"
	KindSentinel SourceKind = "sentinel"
)

// Source is one thing socsync polls: a tenant's Defender XDR, or one Sentinel workspace.
type Source struct {
	ID        string
	TenantID  string
	Kind      SourceKind
	Workspace string // subscription/resourceGroup/workspace, Sentinel only
	Enabled   bool
	Cursor    string
	NextPoll  time.Time

	LeaseOwner   string
	LeaseExpires time.Time
	FencingToken int64

	LastPoll    time.Time
	LastSuccess time.Time
	LastChange  time.Time
	LastError   string
	Degraded    string
	Calls       int64
	Throttled   int64
	Polls       int64
}

// SourceID is the deterministic id of a source: lower-case tenant/kind[/workspace].
func SourceID(tenantID string, kind SourceKind, workspace string) string {
	id := strings.ToLower(tenantID) + "/" + string(kind)
	if workspace != "" {
		id += "/" + strings.ToLower(workspace)
	}
	return id
}

// SyncTenants makes the stored tenants and sources match the configuration: it adds and
// renames tenants, adds sources and enables or disables them. Nothing is deleted, so that
// incidents of a tenant removed from the configuration stay readable; its sources stop.
func (s *Store) SyncTenants(ctx context.Context, tenants []Tenant, sources []Source) error {
	return s.InTx(ctx, func(tx *Tx) error {
		now := ms(tx.now)
		for _, t := range tenants {
			if _, err := tx.tx.ExecContext(ctx, `
				INSERT INTO tenants (id, name, created_at, updated_at) VALUES ($1, $2, $3, $3)
				ON CONFLICT (id) DO UPDATE SET name = excluded.name, updated_at = excluded.updated_at
				WHERE tenants.name <> excluded.name`,
				strings.ToLower(t.ID), t.Name, now); err != nil {
				return fmt.Errorf("store tenant %s: %w", t.ID, err)
			}
		}
		if _, err := tx.tx.ExecContext(ctx, `UPDATE sources SET enabled = 0`); err != nil {
			return fmt.Errorf("disable sources: %w", err)
		}
		for _, src := range sources {
			id := SourceID(src.TenantID, src.Kind, src.Workspace)
			if _, err := tx.tx.ExecContext(ctx, `
				INSERT INTO sources (id, tenant_id, kind, workspace, enabled, next_poll_at)
				VALUES ($1, $2, $3, $4, 1, $5)
				ON CONFLICT (id) DO UPDATE SET enabled = 1`,
				id, strings.ToLower(src.TenantID), string(src.Kind), src.Workspace, ms(src.NextPoll)); err != nil {
				return fmt.Errorf("store source %s: %w", id, err)
			}
		}
		return nil
	})
}

// Tenants lists the stored tenants in the scope, by name.
func (s *Store) Tenants(ctx context.Context, scope Scope) ([]Tenant, error) {
	where, args := scope.where("id", 1)
	rows, err := s.read.QueryContext(ctx, `SELECT id, name FROM tenants WHERE `+where+` ORDER BY name, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	defer rows.Close()
	var out []Tenant
	for rows.Next() {
		var t Tenant
		if err := rows.Scan(&t.ID, &t.Name); err != nil {
			return nil, fmt.Errorf("list tenants: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

const sourceCols = `id, tenant_id, kind, workspace, enabled, cursor, next_poll_at, lease_owner,
	lease_expires_at, fencing_token, last_poll_at, last_success_at, last_change_at, last_error,
	degraded, calls, throttled, polls`

func scanSource(sc interface{ Scan(...any) error }) (Source, error) {
	var src Source
	var kind string
	var enabled int
	var next, exp, lastPoll, lastOK, lastChange int64
	err := sc.Scan(&src.ID, &src.TenantID, &kind, &src.Workspace, &enabled, &src.Cursor, &next,
		&src.LeaseOwner, &exp, &src.FencingToken, &lastPoll, &lastOK, &lastChange, &src.LastError,
		&src.Degraded, &src.Calls, &src.Throttled, &src.Polls)
	src.Kind, src.Enabled = SourceKind(kind), enabled == 1
	src.NextPoll, src.LeaseExpires = fromMS(next), fromMS(exp)
	src.LastPoll, src.LastSuccess, src.LastChange = fromMS(lastPoll), fromMS(lastOK), fromMS(lastChange)
	return src, err
}

// Sources lists the sources of the tenants in scope.
func (s *Store) Sources(ctx context.Context, scope Scope) ([]Source, error) {
	where, args := scope.where("tenant_id", 1)
	rows, err := s.read.QueryContext(ctx, `SELECT `+sourceCols+` FROM sources WHERE `+where+` ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("list sources: %w", err)
	}
	defer rows.Close()
	var out []Source
	for rows.Next() {
		src, err := scanSource(rows)
		if err != nil {
			return nil, fmt.Errorf("list sources: %w", err)
		}
		out = append(out, src)
	}
	return out, rows.Err()
}

// Lease is a replica's exclusive, time-limited claim on a source. The fencing token increases
// with every claim; writes carrying an older token are refused.
type Lease struct {
	Source
	Owner   string
	Token   int64
	Expires time.Time
}

// ClaimDue claims up to limit enabled sources whose next poll is due and whose lease is free or
// expired, for owner, until now+ttl. Each claim increments the source's fencing token. On
// PostgreSQL, concurrent claimers skip each other's rows (FOR UPDATE SKIP LOCKED); on SQLite
// the single writer serialises them.
func (s *Store) ClaimDue(ctx context.Context, owner string, ttl time.Duration, limit int) ([]Lease, error) {
	if owner == "" {
		return nil, errors.New("claim sources: owner required")
	}
	var leases []Lease
	err := s.InTx(ctx, func(tx *Tx) error {
		leases = leases[:0]
		now := ms(tx.now)
		lock := ""
		if s.dialect == Postgres {
			lock = "FOR UPDATE SKIP LOCKED"
		}
		rows, err := tx.tx.QueryContext(ctx, `
			UPDATE sources SET lease_owner = $1, lease_expires_at = $2, fencing_token = fencing_token + 1
			WHERE id IN (
				SELECT id FROM sources
				WHERE enabled = 1 AND next_poll_at <= $3 AND (lease_owner = '' OR lease_expires_at <= $3)
				ORDER BY next_poll_at, id LIMIT $4 `+lock+`)
			RETURNING `+sourceCols, owner, now+ttl.Milliseconds(), now, limit)
		if err != nil {
			return fmt.Errorf("claim sources: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			src, err := scanSource(rows)
			if err != nil {
				return fmt.Errorf("claim sources: %w", err)
			}
			leases = append(leases, Lease{Source: src, Owner: owner, Token: src.FencingToken, Expires: src.LeaseExpires})
		}
		return rows.Err()
	})
	// RETURNING does not keep the subquery's order on PostgreSQL.
	slices.SortFunc(leases, func(a, b Lease) int {
		return cmp.Or(a.NextPoll.Compare(b.NextPoll), strings.Compare(a.ID, b.ID))
	})
	return leases, err
}

// Fence checks, inside a transaction, that the lease still holds; on PostgreSQL it also locks
// the source row until the transaction ends, so a claim by another replica waits for it. A
// transaction that stores what a poll fetched must call it first.
func (tx *Tx) Fence(ctx context.Context, l Lease) error {
	res, err := tx.tx.ExecContext(ctx, `
		UPDATE sources SET fencing_token = fencing_token
		WHERE id = $1 AND fencing_token = $2 AND lease_owner = $3`, l.ID, l.Token, l.Owner)
	if err != nil {
		return fmt.Errorf("fence source %s: %w", l.ID, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("source %s token %d: %w", l.ID, l.Token, ErrFenced)
	}
	return nil
}

// AdvanceCursor stores a poll's new cursor, fenced by the lease, in the transaction that stores
// the poll's data: both commit or neither does.
func (tx *Tx) AdvanceCursor(ctx context.Context, l Lease, cursor string) error {
	res, err := tx.tx.ExecContext(ctx, `
		UPDATE sources SET cursor = $4
		WHERE id = $1 AND fencing_token = $2 AND lease_owner = $3`, l.ID, l.Token, l.Owner, cursor)
	if err != nil {
		return fmt.Errorf("advance cursor of %s: %w", l.ID, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("source %s token %d: %w", l.ID, l.Token, ErrFenced)
	}
	return nil
}

// Renew extends a lease that still holds until now+ttl.
func (s *Store) Renew(ctx context.Context, l *Lease, ttl time.Duration) error {
	return s.InTx(ctx, func(tx *Tx) error {
		exp := tx.now.Add(ttl)
		res, err := tx.tx.ExecContext(ctx, `
			UPDATE sources SET lease_expires_at = $4
			WHERE id = $1 AND fencing_token = $2 AND lease_owner = $3`, l.ID, l.Token, l.Owner, ms(exp))
		if err != nil {
			return fmt.Errorf("renew lease of %s: %w", l.ID, err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("source %s token %d: %w", l.ID, l.Token, ErrFenced)
		}
		l.Expires = exp
		return nil
	})
}

// PollResult is what a finished poll reports about its source.
type PollResult struct {
	NextPoll  time.Time // when the source is due again (the scheduler's choice)
	Calls     int       // API calls made
	Throttled int       // 429s received
	Changed   int       // remote incidents that changed
	Err       error     // nil on success
	Degraded  string    // non-empty when the source cannot be polled until fixed (revoked consent …)
}

// Release ends a lease and records the poll's outcome. A lease already taken over is not an
// error for the caller to act on, but is reported as ErrFenced.
func (s *Store) Release(ctx context.Context, l Lease, r PollResult) error {
	return s.InTx(ctx, func(tx *Tx) error {
		now := ms(tx.now)
		lastErr, success, change := "", now, int64(0)
		if r.Err != nil {
			lastErr, success = r.Err.Error(), 0
		}
		if r.Changed > 0 {
			change = now
		}
		res, err := tx.tx.ExecContext(ctx, `
			UPDATE sources SET lease_owner = '', lease_expires_at = 0, next_poll_at = $4,
				last_poll_at = $5,
				last_success_at = CASE WHEN CAST($6 AS BIGINT) > 0 THEN CAST($6 AS BIGINT) ELSE last_success_at END,
				last_change_at = CASE WHEN CAST($7 AS BIGINT) > 0 THEN CAST($7 AS BIGINT) ELSE last_change_at END,
				last_error = $8, degraded = $9,
				calls = calls + $10, throttled = throttled + $11, polls = polls + 1
			WHERE id = $1 AND fencing_token = $2 AND lease_owner = $3`,
			l.ID, l.Token, l.Owner, ms(r.NextPoll), now, success, change, lastErr, r.Degraded, r.Calls, r.Throttled)
		if err != nil {
			return fmt.Errorf("release lease of %s: %w", l.ID, err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("source %s token %d: %w", l.ID, l.Token, ErrFenced)
		}
		return nil
	})
}

// Source returns one source of a tenant.
func (s *Store) Source(ctx context.Context, tenantID, id string) (Source, error) {
	src, err := scanSource(s.read.QueryRowContext(ctx,
		`SELECT `+sourceCols+` FROM sources WHERE tenant_id = $1 AND id = $2`, strings.ToLower(tenantID), id))
	if errors.Is(err, sql.ErrNoRows) {
		return Source{}, fmt.Errorf("source %s: %w", id, ErrNotFound)
	}
	return src, err
}

// NextDue returns when the next enabled, unleased source falls due (the zero time if none), so
// a scheduler can sleep until then.
func (s *Store) NextDue(ctx context.Context) (time.Time, error) {
	var next sql.NullInt64
	err := s.read.QueryRowContext(ctx, `
		SELECT MIN(CASE WHEN lease_owner = '' OR lease_expires_at < next_poll_at THEN next_poll_at ELSE lease_expires_at END)
		FROM sources WHERE enabled = 1`).Scan(&next)
	if err != nil {
		return time.Time{}, fmt.Errorf("next due source: %w", err)
	}
	if !next.Valid {
		return time.Time{}, nil
	}
	return fromMS(next.Int64), nil
}

// PollNow makes the sources of the tenants in scope due at once (an operator's "poll now").
func (s *Store) PollNow(ctx context.Context, scope Scope) error {
	where, args := scope.where("tenant_id", 2)
	return s.InTx(ctx, func(tx *Tx) error {
		_, err := tx.tx.ExecContext(ctx, `UPDATE sources SET next_poll_at = $1 WHERE `+where, append([]any{ms(tx.now)}, args...)...)
		if err != nil {
			return fmt.Errorf("poll now: %w", err)
		}
		return nil
	})
}
