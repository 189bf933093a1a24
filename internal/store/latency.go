package store

import (
	"context"
	"fmt"
	"time"
)

// ForwardLatencies returns, for every outbox row created at or after since and sent, how long it
// took from the change's commit to its acknowledgement by the Logs Ingestion API.
func (s *Store) ForwardLatencies(ctx context.Context, since time.Time) ([]time.Duration, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT created_at, sent_at FROM outbox WHERE created_at >= $1 AND sent_at > 0`, ms(since))
	if err != nil {
		return nil, fmt.Errorf("forward latencies: %w", err)
	}
	defer rows.Close()
	var out []time.Duration
	for rows.Next() {
		var c, sent int64
		if err := rows.Scan(&c, &sent); err != nil {
			return nil, fmt.Errorf("forward latencies: %w", err)
		}
		out = append(out, time.Duration(sent-c)*time.Millisecond)
	}
	return out, rows.Err()
}

// CountOutbox returns how many outbox rows were created at or after since.
func (s *Store) CountOutbox(ctx context.Context, since time.Time) (int, error) {
	var n int
	if err := s.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox WHERE created_at >= $1`, ms(since)).Scan(&n); err != nil {
		return 0, fmt.Errorf("count outbox: %w", err)
	}
	return n, nil
}
