package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/socsync/socsync/internal/incident"
)

// QueueKey is what the queue is sorted by. Every order ends with the incident id, so that it is
// total and a page position is exact.
type QueueKey string

// Queue sort keys.
const (
	ByUpdated  QueueKey = "updated"  // last change (the default: newest activity first)
	ByCreated  QueueKey = "created"  // creation time
	BySeverity QueueKey = "severity" // severity, then last change
)

// QueueOrder is a sort key and a direction. The zero QueueOrder is newest update first.
type QueueOrder struct {
	Key QueueKey
	Asc bool
}

// sortCols returns the columns the order sorts by, the incident id last.
func (o QueueOrder) sortCols() ([]string, error) {
	switch o.Key {
	case ByUpdated, "":
		return []string{"updated_at", "id"}, nil
	case ByCreated:
		return []string{"created_at", "id"}, nil
	case BySeverity:
		return []string{"severity_rank", "updated_at", "id"}, nil
	}
	return nil, fmt.Errorf("queue order %q: want updated, created or severity", o.Key)
}

// QueuePosition is a position in a queue order: the sort values of the last incident of a
// page (Keys, one per sort column but the id) and its ID. The zero position is the start.
type QueuePosition struct {
	Keys []int64
	ID   string
}

// PositionOf returns the position of an incident in the order, for the next page to start after.
func (o QueueOrder) PositionOf(si StoredIncident) QueuePosition {
	switch o.Key {
	case ByCreated:
		return QueuePosition{Keys: []int64{ms(si.CreatedAt)}, ID: si.ID}
	case BySeverity:
		return QueuePosition{Keys: []int64{int64(si.Severity.Rank()), ms(si.UpdatedAt)}, ID: si.ID}
	}
	return QueuePosition{Keys: []int64{ms(si.UpdatedAt)}, ID: si.ID}
}

// titleContains is the text filter: the title holds the text, ignoring case (SQLite's LOWER
// folds ASCII letters only), with % and _ taken literally.
const titleContains = `LOWER(title) LIKE ? ESCAPE '\'`

// containsPattern is the LIKE pattern of titleContains for text.
func containsPattern(text string) string {
	esc := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(strings.ToLower(text))
	return "%" + esc + "%"
}

// Queue lists the incidents in scope that match f in the order, up to limit, starting after the
// position after (the zero position for the first page). Paging by position keeps every page as
// fast as the first: each order has an index that serves it.
func (s *Store) Queue(ctx context.Context, scope Scope, f ListFilter, order QueueOrder, after QueuePosition, limit int) ([]StoredIncident, error) {
	cols, err := order.sortCols()
	if err != nil {
		return nil, err
	}
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
	dir, cmp := "DESC", "<"
	if order.Asc {
		dir, cmp = "ASC", ">"
	}
	if after.ID != "" {
		if len(after.Keys) != len(cols)-1 {
			return nil, fmt.Errorf("queue position: %d sort values for order %q", len(after.Keys), order.Key)
		}
		ph := make([]string, 0, len(cols))
		for _, k := range after.Keys {
			args = append(args, k)
			ph = append(ph, fmt.Sprintf("$%d", len(args)))
		}
		args = append(args, after.ID)
		ph = append(ph, fmt.Sprintf("$%d", len(args)))
		// A row-value comparison: both databases walk the order's index from the position.
		conds = append(conds, "("+strings.Join(cols, ", ")+") "+cmp+" ("+strings.Join(ph, ", ")+")")
	}
	orderBy := make([]string, len(cols))
	for i, c := range cols {
		orderBy[i] = c + " " + dir
	}
	args = append(args, limit)
	q := `SELECT ` + incidentCols + ` FROM incidents WHERE ` + strings.Join(conds, " AND ") +
		` ORDER BY ` + strings.Join(orderBy, ", ") + fmt.Sprintf(` LIMIT $%d`, len(args))
	rows, err := s.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	defer rows.Close()
	var out []StoredIncident
	for rows.Next() {
		si, err := scanIncident(rows)
		if err != nil {
			return nil, fmt.Errorf("queue: %w", err)
		}
		out = append(out, si)
	}
	return out, rows.Err()
}

// MergedFrom returns the tenant's incidents that were merged into the incident id, oldest first.
func (s *Store) MergedFrom(ctx context.Context, tenantID, id string) ([]StoredIncident, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+incidentCols+` FROM incidents
		WHERE tenant_id = $1 AND merged_into = $2 ORDER BY created_at, id`, strings.ToLower(tenantID), id)
	if err != nil {
		return nil, fmt.Errorf("incidents merged into %s: %w", id, err)
	}
	defer rows.Close()
	var out []StoredIncident
	for rows.Next() {
		si, err := scanIncident(rows)
		if err != nil {
			return nil, fmt.Errorf("incidents merged into %s: %w", id, err)
		}
		out = append(out, si)
	}
	return out, rows.Err()
}

// AlertPayloads returns the remote payloads of an incident's alerts as received (Graph alerts
// with their evidence, Sentinel alert entities), by remote alert id.
func (s *Store) AlertPayloads(ctx context.Context, tenantID, incidentID string) (map[string]json.RawMessage, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT remote_id, raw FROM alerts WHERE tenant_id = $1 AND incident_id = $2`,
		strings.ToLower(tenantID), incidentID)
	if err != nil {
		return nil, fmt.Errorf("alert payloads of %s: %w", incidentID, err)
	}
	defer rows.Close()
	out := map[string]json.RawMessage{}
	for rows.Next() {
		var id, raw string
		if err := rows.Scan(&id, &raw); err != nil {
			return nil, fmt.Errorf("alert payloads of %s: %w", incidentID, err)
		}
		out[id] = json.RawMessage(raw)
	}
	return out, rows.Err()
}
