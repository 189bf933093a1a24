package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/socsync/socsync/internal/incident"
)

// Change describes why a hub incident changed, for the forward stream and the audit.
type Change struct {
	Summary string    // e.g. "status: new → resolved"
	At      time.Time // when it changed at its origin (the remote's change time, or now)
	Actor   string    // who changed it (a user, "graph", "sentinel", "socsync")
	// HubEdit marks an analyst's change of synced fields in the hub: the incident's
	// HubChangedAt becomes now.
	HubEdit bool `json:"-"`
}

const incidentCols = `id, tenant_id, title, description, status, severity, owner, classification,
	determination, classification_reason, classification_comment, tags, sources, alert_count,
	created_at, updated_at, first_activity_at, last_activity_at, merged_into, version, sync_state,
	hub_changed_at`

// StoredIncident is a hub incident with what only the store knows about it.
type StoredIncident struct {
	incident.Incident
	SyncState string `json:"sync_state"`
	// HubChangedAt is when an analyst last changed the synced fields in the hub.
	HubChangedAt time.Time `json:"hub_changed_at"`
}

func scanIncident(sc interface{ Scan(...any) error }) (StoredIncident, error) {
	var si StoredIncident
	in := &si.Incident
	var status, severity, class, det, reason, tags, sources string
	var created, updated, first, last, hubChanged int64
	err := sc.Scan(&in.ID, &in.TenantID, &in.Title, &in.Description, &status, &severity, &in.Owner,
		&class, &det, &reason, &in.ClassificationComment, &tags, &sources, &in.AlertCount,
		&created, &updated, &first, &last, &in.MergedInto, &in.Version, &si.SyncState, &hubChanged)
	if err != nil {
		return si, err
	}
	in.Status, in.Severity = incident.Status(status), incident.Severity(severity)
	in.Classification, in.Determination = incident.Classification(class), incident.Determination(det)
	in.ClassificationReason = incident.ClassificationReason(reason)
	if err := json.Unmarshal([]byte(tags), &in.Tags); err != nil {
		return si, fmt.Errorf("incident %s tags: %w", in.ID, err)
	}
	in.Sources = splitSources(sources)
	in.CreatedAt, in.UpdatedAt = fromMS(created), fromMS(updated)
	in.FirstActivityAt, in.LastActivityAt = fromMS(first), fromMS(last)
	si.HubChangedAt = fromMS(hubChanged)
	return si, nil
}

func joinSources(ss []incident.Source) string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		if !slices.Contains(out, string(s)) {
			out = append(out, string(s))
		}
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

func splitSources(s string) []incident.Source {
	if s == "" {
		return nil
	}
	var out []incident.Source
	for _, p := range strings.Split(s, ",") {
		out = append(out, incident.Source(p))
	}
	return out
}

func tagsJSON(tags []string) string {
	b, _ := json.Marshal(incident.NormalizeTags(tags)) // []string always marshals
	return string(b)
}

// incidentRow reads one incident of a tenant through q.
func incidentRow(ctx context.Context, q querier, tenantID, id string) (StoredIncident, error) {
	si, err := scanIncident(q.QueryRowContext(ctx,
		`SELECT `+incidentCols+` FROM incidents WHERE tenant_id = $1 AND id = $2`, strings.ToLower(tenantID), id))
	if errors.Is(err, sql.ErrNoRows) {
		return si, fmt.Errorf("incident %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return si, fmt.Errorf("read incident %s: %w", id, err)
	}
	return si, nil
}

// Incident returns one incident of a tenant.
func (s *Store) Incident(ctx context.Context, tenantID, id string) (StoredIncident, error) {
	return incidentRow(ctx, s.read, tenantID, id)
}

// IncidentInScope returns an incident by id if its tenant is in the scope, and ErrNotFound
// otherwise: another tenant's incident looks exactly like a missing one.
func (s *Store) IncidentInScope(ctx context.Context, scope Scope, id string) (StoredIncident, error) {
	return incidentInScope(ctx, s.read, scope, id)
}

func incidentInScope(ctx context.Context, q querier, scope Scope, id string) (StoredIncident, error) {
	where, args := scope.where("tenant_id", 2)
	si, err := scanIncident(q.QueryRowContext(ctx,
		`SELECT `+incidentCols+` FROM incidents WHERE id = $1 AND `+where, append([]any{id}, args...)...))
	if errors.Is(err, sql.ErrNoRows) {
		return si, fmt.Errorf("incident %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return si, fmt.Errorf("read incident %s: %w", id, err)
	}
	return si, nil
}

// Incident reads one incident of a tenant inside the transaction.
func (tx *Tx) Incident(ctx context.Context, tenantID, id string) (StoredIncident, error) {
	return incidentRow(ctx, tx.tx, tenantID, id)
}

// CreateIncident stores a new hub incident for the correlation key corrKey (see the schema),
// unless the tenant already has one for that key: then inc is filled with the stored one and
// created is false. A new incident gets an id, version 1 and its first outbox row.
func (tx *Tx) CreateIncident(ctx context.Context, inc *incident.Incident, corrKey string, ch Change) (created bool, err error) {
	if inc.TenantID == "" || corrKey == "" {
		return false, errors.New("create incident: tenant and correlation key required")
	}
	id, err := uuid.NewV7()
	if err != nil {
		return false, fmt.Errorf("create incident: %w", err)
	}
	inc.TenantID = strings.ToLower(inc.TenantID)
	inc.ID, inc.Version = id.String(), 1
	if inc.CreatedAt.IsZero() {
		inc.CreatedAt = tx.now
	}
	if inc.UpdatedAt.IsZero() {
		inc.UpdatedAt = tx.now
	}
	inc.Tags = incident.NormalizeTags(inc.Tags)
	var got string
	err = tx.tx.QueryRowContext(ctx, `
		INSERT INTO incidents (id, tenant_id, corr_key, title, description, status, severity, owner,
			classification, determination, classification_reason, classification_comment, tags,
			sources, alert_count, created_at, updated_at, first_activity_at, last_activity_at,
			merged_into, version)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, 1)
		ON CONFLICT (tenant_id, corr_key) DO NOTHING
		RETURNING id`,
		inc.ID, inc.TenantID, corrKey, inc.Title, inc.Description, string(inc.Status), string(inc.Severity),
		inc.Owner, string(inc.Classification), string(inc.Determination), string(inc.ClassificationReason),
		inc.ClassificationComment, tagsJSON(inc.Tags), joinSources(inc.Sources), inc.AlertCount,
		ms(inc.CreatedAt), ms(inc.UpdatedAt), ms(inc.FirstActivityAt), ms(inc.LastActivityAt), inc.MergedInto,
	).Scan(&got)
	if errors.Is(err, sql.ErrNoRows) {
		existing, err := tx.IncidentByCorrKey(ctx, inc.TenantID, corrKey)
		if err != nil {
			return false, err
		}
		*inc = existing.Incident
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("create incident: %w", err)
	}
	if ch.Summary == "" {
		ch.Summary = "created"
	}
	tx.noteChange(inc, ch).created = true
	return true, nil
}

// IncidentByCorrKey returns the tenant's incident for a correlation key.
func (tx *Tx) IncidentByCorrKey(ctx context.Context, tenantID, corrKey string) (StoredIncident, error) {
	si, err := scanIncident(tx.tx.QueryRowContext(ctx,
		`SELECT `+incidentCols+` FROM incidents WHERE tenant_id = $1 AND corr_key = $2`, strings.ToLower(tenantID), corrKey))
	if errors.Is(err, sql.ErrNoRows) {
		return si, fmt.Errorf("incident %s: %w", corrKey, ErrNotFound)
	}
	if err != nil {
		return si, fmt.Errorf("read incident %s: %w", corrKey, err)
	}
	return si, nil
}

// UpdateIncident stores a changed hub incident. inc.Version must be the version read: if the
// incident changed since, nothing is written and ErrConflict is returned. A transaction gives
// an incident one new version however often it updates it; the version's outbox row is written
// at commit, with the incident's final state.
func (tx *Tx) UpdateIncident(ctx context.Context, inc *incident.Incident, ch Change) error {
	inc.UpdatedAt = tx.now
	inc.Tags = incident.NormalizeTags(inc.Tags)
	bump := 1
	if tx.changedIn(inc) {
		bump = 0
	}
	res, err := tx.tx.ExecContext(ctx, `
		UPDATE incidents SET title = $4, description = $5, status = $6, severity = $7, owner = $8,
			classification = $9, determination = $10, classification_reason = $11,
			classification_comment = $12, tags = $13, sources = $14, alert_count = $15,
			updated_at = $16, first_activity_at = $17, last_activity_at = $18, merged_into = $19,
			version = version + $20,
			hub_changed_at = CASE WHEN $21 THEN $16 ELSE hub_changed_at END
		WHERE tenant_id = $1 AND id = $2 AND version = $3`,
		strings.ToLower(inc.TenantID), inc.ID, inc.Version, inc.Title, inc.Description, string(inc.Status),
		string(inc.Severity), inc.Owner, string(inc.Classification), string(inc.Determination),
		string(inc.ClassificationReason), inc.ClassificationComment, tagsJSON(inc.Tags),
		joinSources(inc.Sources), inc.AlertCount, ms(inc.UpdatedAt), ms(inc.FirstActivityAt),
		ms(inc.LastActivityAt), inc.MergedInto, bump, ch.HubEdit)
	if err != nil {
		return fmt.Errorf("update incident %s: %w", inc.ID, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("update incident %s at version %d: %w", inc.ID, inc.Version, ErrConflict)
	}
	inc.Version += int64(bump)
	tx.noteChange(inc, ch)
	return nil
}

// SetSyncState records the incident's overall sync state (in_sync, pending, conflict, failed)
// and, unless it is in sync, when the reconciler should try it (again). It is bookkeeping, not
// a change of the incident, so its version stays.
func (tx *Tx) SetSyncState(ctx context.Context, tenantID, id, state string, next time.Time) error {
	_, err := tx.tx.ExecContext(ctx, `UPDATE incidents SET sync_state = $3, next_sync_at = $4 WHERE tenant_id = $1 AND id = $2`,
		strings.ToLower(tenantID), id, state, ms(next))
	if err != nil {
		return fmt.Errorf("set sync state of %s: %w", id, err)
	}
	return nil
}

// IncidentKey names an incident of a tenant.
type IncidentKey struct {
	TenantID string
	ID       string
}

// DueSyncs returns up to limit incidents not in sync whose next attempt is due: the
// reconciler's durable backlog, which survives restarts.
func (s *Store) DueSyncs(ctx context.Context, limit int) ([]IncidentKey, error) {
	rows, err := s.read.QueryContext(ctx, `
		SELECT tenant_id, id FROM incidents
		WHERE sync_state IN ('pending', 'failed', 'conflict') AND next_sync_at <= $1
		ORDER BY next_sync_at, id LIMIT $2`, ms(s.now()), limit)
	if err != nil {
		return nil, fmt.Errorf("due syncs: %w", err)
	}
	defer rows.Close()
	var out []IncidentKey
	for rows.Next() {
		var k IncidentKey
		if err := rows.Scan(&k.TenantID, &k.ID); err != nil {
			return nil, fmt.Errorf("due syncs: %w", err)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// ClaimSync takes the reconciler's lease on an incident for owner until now+ttl, so that no
// two replicas write one incident's changes at once. ok is false while another holds it.
func (s *Store) ClaimSync(ctx context.Context, k IncidentKey, owner string, ttl time.Duration) (ok bool, err error) {
	err = s.InTx(ctx, func(tx *Tx) error {
		now := ms(tx.now)
		res, err := tx.tx.ExecContext(ctx, `
			UPDATE incidents SET sync_lease_owner = $3, sync_lease_expires_at = $4
			WHERE tenant_id = $1 AND id = $2 AND (sync_lease_owner = '' OR sync_lease_owner = $3 OR sync_lease_expires_at <= $5)`,
			strings.ToLower(k.TenantID), k.ID, owner, now+ttl.Milliseconds(), now)
		if err != nil {
			return fmt.Errorf("claim sync of %s: %w", k.ID, err)
		}
		n, _ := res.RowsAffected()
		ok = n == 1
		return nil
	})
	return ok, err
}

// ReleaseSync gives up owner's reconciler lease on an incident.
func (s *Store) ReleaseSync(ctx context.Context, k IncidentKey, owner string) error {
	return s.InTx(ctx, func(tx *Tx) error {
		_, err := tx.tx.ExecContext(ctx, `
			UPDATE incidents SET sync_lease_owner = '', sync_lease_expires_at = 0
			WHERE tenant_id = $1 AND id = $2 AND sync_lease_owner = $3`, strings.ToLower(k.TenantID), k.ID, owner)
		if err != nil {
			return fmt.Errorf("release sync of %s: %w", k.ID, err)
		}
		return nil
	})
}

// AwaitMergeTarget records that an incident was merged into the incident with correlation key
// target, which is not collected yet; IncidentsAwaitingMerge finds it when it is.
func (tx *Tx) AwaitMergeTarget(ctx context.Context, tenantID, id, target string) error {
	_, err := tx.tx.ExecContext(ctx, `UPDATE incidents SET merge_target = $3 WHERE tenant_id = $1 AND id = $2`,
		strings.ToLower(tenantID), id, target)
	if err != nil {
		return fmt.Errorf("record merge target of %s: %w", id, err)
	}
	return nil
}

// IncidentsAwaitingMerge returns the ids of the tenant's incidents merged into the incident
// with correlation key target and not yet pointed at it, and clears their wait.
func (tx *Tx) IncidentsAwaitingMerge(ctx context.Context, tenantID, target string) ([]string, error) {
	rows, err := tx.tx.QueryContext(ctx, `SELECT id FROM incidents WHERE tenant_id = $1 AND merge_target = $2 ORDER BY id`,
		strings.ToLower(tenantID), target)
	if err != nil {
		return nil, fmt.Errorf("incidents merged into %s: %w", target, err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("incidents merged into %s: %w", target, err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(ids) > 0 {
		if _, err := tx.tx.ExecContext(ctx, `UPDATE incidents SET merge_target = '' WHERE tenant_id = $1 AND merge_target = $2`,
			strings.ToLower(tenantID), target); err != nil {
			return nil, fmt.Errorf("clear merge wait for %s: %w", target, err)
		}
	}
	return ids, nil
}

// ListFilter narrows a list of incidents. Empty fields do not filter.
type ListFilter struct {
	Tenant   string
	Status   string
	Severity string
	Owner    string
	Source   string
	Text     string // a substring of the title, ignoring case (ASCII letters on SQLite); % and _ are literal
	// RemoteID finds the incident linked to a remote incident (a Defender id, a Sentinel name,
	// a webhook delivery id).
	RemoteID string
}

// ListPage is a position in the queue order (newest update first): the last item of a page.
type ListPage struct {
	UpdatedAt time.Time
	ID        string
}

// ListIncidents lists the incidents in scope that match f, newest update first, up to limit,
// starting after the position after (zero for the first page). Paging by position keeps every
// page as fast as the first.
func (s *Store) ListIncidents(ctx context.Context, scope Scope, f ListFilter, after ListPage, limit int) ([]StoredIncident, error) {
	where, args := scope.where("tenant_id", 1)
	conds := []string{where}
	add := func(cond string, v any) {
		args = append(args, v)
		conds = append(conds, strings.ReplaceAll(cond, "?", fmt.Sprintf("$%d", len(args))))
	}
	if f.Tenant != "" {
		add("tenant_id = ?", strings.ToLower(f.Tenant))
	}
	if f.Status != "" {
		add("status = ?", f.Status)
	}
	if f.Severity != "" {
		add("severity = ?", f.Severity)
	}
	if f.Owner != "" {
		add("owner = ?", incident.NormalizeOwner(f.Owner))
	}
	if f.Source != "" {
		add("(',' || sources || ',') LIKE ?", "%,"+f.Source+",%")
	}
	if f.Text != "" {
		add(titleContains, containsPattern(f.Text))
	}
	if f.RemoteID != "" {
		add("EXISTS (SELECT 1 FROM links l WHERE l.tenant_id = incidents.tenant_id AND l.incident_id = incidents.id AND l.external_id = ?)", f.RemoteID)
	}
	if !after.UpdatedAt.IsZero() {
		args = append(args, ms(after.UpdatedAt), after.ID)
		n := len(args)
		conds = append(conds, fmt.Sprintf("(updated_at < $%d OR (updated_at = $%d AND id < $%d))", n-1, n-1, n))
	}
	args = append(args, limit)
	q := `SELECT ` + incidentCols + ` FROM incidents WHERE ` + strings.Join(conds, " AND ") +
		fmt.Sprintf(` ORDER BY updated_at DESC, id DESC LIMIT $%d`, len(args))
	rows, err := s.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list incidents: %w", err)
	}
	defer rows.Close()
	var out []StoredIncident
	for rows.Next() {
		si, err := scanIncident(rows)
		if err != nil {
			return nil, fmt.Errorf("list incidents: %w", err)
		}
		out = append(out, si)
	}
	return out, rows.Err()
}

// IncidentInScope reads an incident inside the transaction if its tenant is in the scope.
func (tx *Tx) IncidentInScope(ctx context.Context, scope Scope, id string) (StoredIncident, error) {
	return incidentInScope(ctx, tx.tx, scope, id)
}
