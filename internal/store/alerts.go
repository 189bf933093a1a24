package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/socsync/socsync/internal/incident"
)

// UpsertAlert stores a version of an alert, once per remote alert id per tenant, whichever
// connector delivered it. A version older than the stored one changes nothing; so does the same
// version, unless it comes in a newer report (reportedAt: the change time of the incident that
// listed it) from another incident — an alert moved by a merge — or the stored version is a
// time in the future and the new one is not (the remote's clock was corrected: see
// clockCorrected). changed reports whether anything was stored.
func (tx *Tx) UpsertAlert(ctx context.Context, a incident.Alert, raw []byte, reportedAt time.Time) (changed bool, err error) {
	if len(raw) == 0 {
		raw = []byte("{}")
	}
	if tx.alertsWritten == nil {
		tx.alertsWritten = map[string]bool{}
	}
	tx.alertsWritten[a.IncidentID] = true
	res, err := tx.tx.ExecContext(ctx, `
		INSERT INTO alerts (tenant_id, remote_id, incident_id, version, reported_at, title, severity, status,
			service_source, detection_source, product_name, category, created_at, raw)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
		ON CONFLICT (tenant_id, remote_id) DO UPDATE SET incident_id = excluded.incident_id,
			version = excluded.version, reported_at = excluded.reported_at, title = excluded.title,
			severity = excluded.severity, status = excluded.status, service_source = excluded.service_source,
			detection_source = excluded.detection_source, product_name = excluded.product_name,
			category = excluded.category, created_at = excluded.created_at, raw = excluded.raw
		WHERE alerts.version < excluded.version
			OR (alerts.version = excluded.version AND alerts.incident_id <> excluded.incident_id
				AND alerts.reported_at < excluded.reported_at)
			OR (alerts.version > $15 AND excluded.version <= $15)`,
		strings.ToLower(a.TenantID), a.RemoteID, a.IncidentID, ms(a.Version), ms(reportedAt), a.Title, string(a.Severity),
		string(a.Status), a.ServiceSource, a.DetectionSource, a.ProductName, a.Category, ms(a.CreatedAt), string(raw),
		ms(tx.now.Add(futureSkew)))
	if err != nil {
		return false, fmt.Errorf("store alert %s: %w", a.RemoteID, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func alertsOf(ctx context.Context, q querier, tenantID, incidentID string) ([]incident.Alert, error) {
	rows, err := q.QueryContext(ctx, `
		SELECT tenant_id, remote_id, incident_id, version, title, severity, status, service_source,
			detection_source, product_name, category, created_at
		FROM alerts WHERE tenant_id = $1 AND incident_id = $2 ORDER BY created_at, remote_id`,
		strings.ToLower(tenantID), incidentID)
	if err != nil {
		return nil, fmt.Errorf("list alerts of %s: %w", incidentID, err)
	}
	defer rows.Close()
	var out []incident.Alert
	for rows.Next() {
		var a incident.Alert
		var sev, status string
		var version, created int64
		if err := rows.Scan(&a.TenantID, &a.RemoteID, &a.IncidentID, &version, &a.Title, &sev, &status,
			&a.ServiceSource, &a.DetectionSource, &a.ProductName, &a.Category, &created); err != nil {
			return nil, fmt.Errorf("list alerts of %s: %w", incidentID, err)
		}
		a.Severity, a.Status = incident.Severity(sev), incident.AlertStatus(status)
		a.Version, a.CreatedAt = fromMS(version), fromMS(created)
		out = append(out, a)
	}
	return out, rows.Err()
}

// Alerts returns the alerts of an incident of a tenant.
func (s *Store) Alerts(ctx context.Context, tenantID, incidentID string) ([]incident.Alert, error) {
	return alertsOf(ctx, s.read, tenantID, incidentID)
}

// Alerts returns the alerts of an incident inside the transaction.
func (tx *Tx) Alerts(ctx context.Context, tenantID, incidentID string) ([]incident.Alert, error) {
	return alertsOf(ctx, tx.tx, tenantID, incidentID)
}

// AddComment stores a comment once: fingerprint identifies it (for a remote comment, its
// origin, author, time and text; for a hub comment, its own id), and a comment whose
// fingerprint the incident already has is not added again. The comment gets an id if it has none.
func (tx *Tx) AddComment(ctx context.Context, tenantID string, c *incident.Comment, fingerprint string) (added bool, err error) {
	if c.ID == "" {
		id, err := uuid.NewV7()
		if err != nil {
			return false, fmt.Errorf("add comment: %w", err)
		}
		c.ID = id.String()
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = tx.now
	}
	if fingerprint == "" {
		fingerprint = "id:" + c.ID
	}
	res, err := tx.tx.ExecContext(ctx, `
		INSERT INTO comments (id, tenant_id, incident_id, origin, author, created_at, text, fingerprint)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (incident_id, fingerprint) DO NOTHING`,
		c.ID, strings.ToLower(tenantID), c.IncidentID, string(c.Origin), c.Author, ms(c.CreatedAt), c.Text, fingerprint)
	if err != nil {
		return false, fmt.Errorf("add comment to %s: %w", c.IncidentID, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func commentsOf(ctx context.Context, q querier, tenantID, incidentID string) ([]incident.Comment, error) {
	rows, err := q.QueryContext(ctx, `
		SELECT id, incident_id, origin, author, created_at, text FROM comments
		WHERE tenant_id = $1 AND incident_id = $2 ORDER BY created_at, id`, strings.ToLower(tenantID), incidentID)
	if err != nil {
		return nil, fmt.Errorf("list comments of %s: %w", incidentID, err)
	}
	defer rows.Close()
	var out []incident.Comment
	for rows.Next() {
		var c incident.Comment
		var origin string
		var created int64
		if err := rows.Scan(&c.ID, &c.IncidentID, &origin, &c.Author, &created, &c.Text); err != nil {
			return nil, fmt.Errorf("list comments of %s: %w", incidentID, err)
		}
		c.Origin, c.CreatedAt = incident.CommentOrigin(origin), fromMS(created)
		out = append(out, c)
	}
	return out, rows.Err()
}

// Comments returns the comments of an incident of a tenant, oldest first.
func (s *Store) Comments(ctx context.Context, tenantID, incidentID string) ([]incident.Comment, error) {
	return commentsOf(ctx, s.read, tenantID, incidentID)
}

// Comments returns the comments of an incident inside the transaction.
func (tx *Tx) Comments(ctx context.Context, tenantID, incidentID string) ([]incident.Comment, error) {
	return commentsOf(ctx, tx.tx, tenantID, incidentID)
}

// CommentOnLink is where a comment stands on one link: pending until written, then written
// with its identity there.
type CommentOnLink struct {
	CommentID string
	LinkID    int64
	RemoteID  string
	State     string // pending | written
}

// SetCommentOnLink records a comment's state on a link (insert or update).
func (tx *Tx) SetCommentOnLink(ctx context.Context, tenantID string, c CommentOnLink) error {
	written := int64(0)
	if c.State == "written" {
		written = ms(tx.now)
	}
	_, err := tx.tx.ExecContext(ctx, `
		INSERT INTO comment_links (comment_id, link_id, tenant_id, remote_id, state, written_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (comment_id, link_id) DO UPDATE SET remote_id = excluded.remote_id,
			state = excluded.state, written_at = excluded.written_at`,
		c.CommentID, c.LinkID, strings.ToLower(tenantID), c.RemoteID, c.State, written)
	if err != nil {
		return fmt.Errorf("record comment %s on link %d: %w", c.CommentID, c.LinkID, err)
	}
	return nil
}

// CommentsOnLinks returns where each comment of an incident stands on each of its links.
func (tx *Tx) CommentsOnLinks(ctx context.Context, tenantID, incidentID string) ([]CommentOnLink, error) {
	return commentsOnLinks(ctx, tx.tx, tenantID, incidentID)
}

func commentsOnLinks(ctx context.Context, q querier, tenantID, incidentID string) ([]CommentOnLink, error) {
	rows, err := q.QueryContext(ctx, `
		SELECT cl.comment_id, cl.link_id, cl.remote_id, cl.state
		FROM comment_links cl JOIN comments c ON c.id = cl.comment_id
		WHERE cl.tenant_id = $1 AND c.incident_id = $2 ORDER BY cl.comment_id, cl.link_id`,
		strings.ToLower(tenantID), incidentID)
	if err != nil {
		return nil, fmt.Errorf("list comment links of %s: %w", incidentID, err)
	}
	defer rows.Close()
	var out []CommentOnLink
	for rows.Next() {
		var c CommentOnLink
		if err := rows.Scan(&c.CommentID, &c.LinkID, &c.RemoteID, &c.State); err != nil {
			return nil, fmt.Errorf("list comment links of %s: %w", incidentID, err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// CommentsOnLinks reads where each comment of an incident stands on each of its links.
func (s *Store) CommentsOnLinks(ctx context.Context, tenantID, incidentID string) ([]CommentOnLink, error) {
	return commentsOnLinks(ctx, s.read, tenantID, incidentID)
}

// AlertRefreshDue returns up to limit links of a source whose incident is open (or was closed
// after closedSince), has alerts from one of the products, and whose alerts were last re-read
// before before, oldest first. The alert rules need these re-read: Sentinel does not touch an
// incident when one of its Defender for Cloud alerts changes status.
func (s *Store) AlertRefreshDue(ctx context.Context, tenantID, sourceID string, products []string, before, closedSince time.Time, limit int) ([]Link, error) {
	if len(products) == 0 {
		return nil, nil
	}
	args := []any{strings.ToLower(tenantID), sourceID, ms(before), limit, ms(closedSince)}
	var ph []string
	for _, p := range products {
		args = append(args, strings.ToLower(p))
		ph = append(ph, fmt.Sprintf("$%d", len(args)))
	}
	in := strings.Join(ph, ", ")
	rows, err := s.read.QueryContext(ctx, `
		SELECT `+prefixed("l.", linkCols)+` FROM links l JOIN incidents i ON i.tenant_id = l.tenant_id AND i.id = l.incident_id
		WHERE l.tenant_id = $1 AND l.source_id = $2 AND l.alerts_checked_at < $3 AND i.status <> 'merged'
			AND (i.status <> 'resolved' OR i.updated_at >= $5)
			AND EXISTS (SELECT 1 FROM alerts a WHERE a.tenant_id = l.tenant_id AND a.incident_id = l.incident_id
				AND (LOWER(a.service_source) IN (`+in+`) OR LOWER(a.product_name) IN (`+in+`)))
		ORDER BY l.alerts_checked_at, l.id LIMIT $4`, args...)
	if err != nil {
		return nil, fmt.Errorf("alerts to re-read: %w", err)
	}
	defer rows.Close()
	var out []Link
	for rows.Next() {
		l, err := scanLink(rows)
		if err != nil {
			return nil, fmt.Errorf("alerts to re-read: %w", err)
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// MarkAlertsChecked records that a link's alerts were re-read now.
func (tx *Tx) MarkAlertsChecked(ctx context.Context, tenantID string, linkID int64) error {
	_, err := tx.tx.ExecContext(ctx, `UPDATE links SET alerts_checked_at = $3 WHERE tenant_id = $1 AND id = $2`,
		strings.ToLower(tenantID), linkID, ms(tx.now))
	if err != nil {
		return fmt.Errorf("mark alerts checked on link %d: %w", linkID, err)
	}
	return nil
}

// prefixed qualifies a comma-separated column list with a table alias.
func prefixed(alias, cols string) string {
	parts := strings.Split(cols, ",")
	for i, p := range parts {
		parts[i] = alias + strings.TrimSpace(p)
	}
	return strings.Join(parts, ", ")
}
