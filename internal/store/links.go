package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// LinkKind is the kind of remote a link points at.
type LinkKind string

// Link kinds.
const (
	LinkGraph    LinkKind = "graph"
	LinkSentinel LinkKind = "sentinel"
	LinkWebhook  LinkKind = "webhook"
)

// Link ties a hub incident to one remote incident. Observed is what was last seen there,
// Base what both sides last agreed on (empty until the first agreement); both are JSON
// snapshots owned by the reconciler. Raw is the remote's payload as received, for the detail view.
type Link struct {
	ID                 int64
	TenantID           string
	IncidentID         string
	SourceID           string
	Kind               LinkKind
	ExternalID         string
	ProviderIncidentID string
	URL                string
	ETag               string
	Observed           json.RawMessage
	Raw                json.RawMessage
	Base               json.RawMessage
	RemoteUpdated      time.Time // the remote's own change time of Observed
	ObservedAt         time.Time // when socsync read it
	SyncState          string
	LastError          string
	Flags              string
}

const linkCols = `id, tenant_id, incident_id, source_id, kind, external_id, provider_incident_id, url,
	etag, observed, raw, base, remote_updated_at, observed_at, sync_state, last_error, flags`

func scanLink(sc interface{ Scan(...any) error }) (Link, error) {
	var l Link
	var kind, observed, raw, base string
	var upd, at int64
	err := sc.Scan(&l.ID, &l.TenantID, &l.IncidentID, &l.SourceID, &kind, &l.ExternalID,
		&l.ProviderIncidentID, &l.URL, &l.ETag, &observed, &raw, &base, &upd, &at, &l.SyncState,
		&l.LastError, &l.Flags)
	l.Kind = LinkKind(kind)
	l.Observed, l.Raw = json.RawMessage(observed), json.RawMessage(raw)
	if base != "" {
		l.Base = json.RawMessage(base)
	}
	l.RemoteUpdated, l.ObservedAt = fromMS(upd), fromMS(at)
	return l, err
}

func jsonText(b json.RawMessage) string {
	if len(b) == 0 {
		return "{}"
	}
	return string(b)
}

func linkByExternal(ctx context.Context, q querier, tenantID, sourceID, externalID string) (Link, error) {
	l, err := scanLink(q.QueryRowContext(ctx, `SELECT `+linkCols+` FROM links
		WHERE tenant_id = $1 AND source_id = $2 AND external_id = $3`, strings.ToLower(tenantID), sourceID, externalID))
	if errors.Is(err, sql.ErrNoRows) {
		return l, fmt.Errorf("link %s/%s: %w", sourceID, externalID, ErrNotFound)
	}
	return l, err
}

// LinkByExternal returns the link of a remote incident, identified by its source and external id.
func (tx *Tx) LinkByExternal(ctx context.Context, tenantID, sourceID, externalID string) (Link, error) {
	return linkByExternal(ctx, tx.tx, tenantID, sourceID, externalID)
}

// LinkByExternal reads the link of a remote incident outside a transaction.
func (s *Store) LinkByExternal(ctx context.Context, tenantID, sourceID, externalID string) (Link, error) {
	return linkByExternal(ctx, s.read, tenantID, sourceID, externalID)
}

// UpsertLink stores what a poll observed of a remote incident. An observation older than the
// stored one (by the remote's change time) is ignored: versions never go backwards. changed
// reports whether the link is new or its observed snapshot differs from the stored one.
func (tx *Tx) UpsertLink(ctx context.Context, l *Link) (changed bool, err error) {
	l.TenantID = strings.ToLower(l.TenantID)
	cur, err := tx.LinkByExternal(ctx, l.TenantID, l.SourceID, l.ExternalID)
	switch {
	case errors.Is(err, ErrNotFound):
		if l.SyncState == "" {
			l.SyncState = "in_sync"
		}
		err = tx.tx.QueryRowContext(ctx, `
			INSERT INTO links (tenant_id, incident_id, source_id, kind, external_id, provider_incident_id,
				url, etag, observed, raw, base, remote_updated_at, observed_at, sync_state, last_error, flags)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
			RETURNING id`,
			l.TenantID, l.IncidentID, l.SourceID, string(l.Kind), l.ExternalID, l.ProviderIncidentID, l.URL,
			l.ETag, jsonText(l.Observed), jsonText(l.Raw), string(l.Base), ms(l.RemoteUpdated), ms(tx.now),
			l.SyncState, l.LastError, l.Flags).Scan(&l.ID)
		if err != nil {
			return false, fmt.Errorf("store link %s/%s: %w", l.SourceID, l.ExternalID, err)
		}
		l.ObservedAt = tx.now
		return true, nil
	case err != nil:
		return false, fmt.Errorf("read link %s/%s: %w", l.SourceID, l.ExternalID, err)
	}
	if l.RemoteUpdated.Before(cur.RemoteUpdated) && !clockCorrected(cur, *l, tx.now) {
		*l = cur // an older version arrived late (an overlapping page): keep the newer one
		return false, nil
	}
	changed = !bytes.Equal(compactJSON(cur.Observed), compactJSON(l.Observed))
	_, err = tx.tx.ExecContext(ctx, `
		UPDATE links SET incident_id = $2, provider_incident_id = $3, url = $4, etag = $5, observed = $6,
			raw = $7, remote_updated_at = $8, observed_at = $9, flags = $10
		WHERE id = $1`,
		cur.ID, l.IncidentID, l.ProviderIncidentID, l.URL, l.ETag, jsonText(l.Observed), jsonText(l.Raw),
		ms(l.RemoteUpdated), ms(tx.now), l.Flags)
	if err != nil {
		return false, fmt.Errorf("update link %s/%s: %w", l.SourceID, l.ExternalID, err)
	}
	l.ID, l.Base, l.SyncState, l.LastError, l.ObservedAt = cur.ID, cur.Base, cur.SyncState, cur.LastError, tx.now
	return changed, nil
}

// clockCorrected reports whether an observation with an earlier change time than the stored
// one is nonetheless the newer: the stored change time is in the future (beyond the hub's
// clock by more than futureSkew: the remote's clock ran ahead when it stamped it), and the new
// one is not (its clock is right again). The stored time says nothing about order then;
// keeping the stored observation would drop every change the remote makes until its clock
// catches up with the time it stamped (found by R13: a change after the clock was corrected,
// of an incident stamped ten minutes ahead, was lost). A stale read of an older version,
// should one win this way, is replaced again by the next poll, which re-reads every incident
// changed after the cursor; a time in the future never moves a cursor.
func clockCorrected(stored, observed Link, now time.Time) bool {
	return stored.RemoteUpdated.After(now.Add(futureSkew)) && !observed.RemoteUpdated.After(now.Add(futureSkew))
}

// futureSkew is how far ahead of the hub's clock a remote change time may be and still be
// trusted, as the remote clients flag it (graph.DefaultMaxSkew, sentinel.DefaultMaxSkew).
const futureSkew = 5 * time.Minute

func compactJSON(b json.RawMessage) []byte {
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return b
	}
	return buf.Bytes()
}

// SetLinkSync records the reconciler's outcome for a link: the new agreed base (nil keeps the
// stored one), the sync state and the last error.
func (tx *Tx) SetLinkSync(ctx context.Context, tenantID string, linkID int64, base json.RawMessage, state, lastErr string) error {
	q := `UPDATE links SET sync_state = $3, last_error = $4 WHERE tenant_id = $1 AND id = $2`
	args := []any{strings.ToLower(tenantID), linkID, state, lastErr}
	if base != nil {
		q = `UPDATE links SET sync_state = $3, last_error = $4, base = $5 WHERE tenant_id = $1 AND id = $2`
		args = append(args, string(base))
	}
	res, err := tx.tx.ExecContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("update link %d: %w", linkID, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("link %d: %w", linkID, ErrNotFound)
	}
	return nil
}

func linksOf(ctx context.Context, q querier, tenantID, incidentID string) ([]Link, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+linkCols+` FROM links WHERE tenant_id = $1 AND incident_id = $2 ORDER BY id`,
		strings.ToLower(tenantID), incidentID)
	if err != nil {
		return nil, fmt.Errorf("list links of %s: %w", incidentID, err)
	}
	defer rows.Close()
	var out []Link
	for rows.Next() {
		l, err := scanLink(rows)
		if err != nil {
			return nil, fmt.Errorf("list links of %s: %w", incidentID, err)
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// Links returns the links of an incident of a tenant.
func (s *Store) Links(ctx context.Context, tenantID, incidentID string) ([]Link, error) {
	return linksOf(ctx, s.read, tenantID, incidentID)
}

// Links returns the links of an incident inside the transaction.
func (tx *Tx) Links(ctx context.Context, tenantID, incidentID string) ([]Link, error) {
	return linksOf(ctx, tx.tx, tenantID, incidentID)
}

// LinksFlagged returns up to limit links of a source whose flags include flag.
func (s *Store) LinksFlagged(ctx context.Context, tenantID, sourceID, flag string, limit int) ([]Link, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+linkCols+` FROM links
		WHERE tenant_id = $1 AND source_id = $2 AND (',' || flags || ',') LIKE $3 ORDER BY id LIMIT $4`,
		strings.ToLower(tenantID), sourceID, "%,"+flag+",%", limit)
	if err != nil {
		return nil, fmt.Errorf("flagged links: %w", err)
	}
	defer rows.Close()
	var out []Link
	for rows.Next() {
		l, err := scanLink(rows)
		if err != nil {
			return nil, fmt.Errorf("flagged links: %w", err)
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// CountFlagged counts the links, of every tenant, whose flags include flag.
func (s *Store) CountFlagged(ctx context.Context, flag string) (int, error) {
	var n int
	err := s.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM links WHERE (',' || flags || ',') LIKE $1`, "%,"+flag+",%").Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count flagged links: %w", err)
	}
	return n, nil
}
