package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// RecordDelivery notes a webhook delivery by its id (Splunk's sid). first is false for a
// replay, which the caller acknowledges without acting on.
func (tx *Tx) RecordDelivery(ctx context.Context, webhook, deliveryID, tenantID, incidentID string) (first bool, err error) {
	res, err := tx.tx.ExecContext(ctx, `
		INSERT INTO webhook_deliveries (webhook, delivery_id, tenant_id, incident_id, received_at)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (webhook, delivery_id) DO NOTHING`,
		webhook, deliveryID, strings.ToLower(tenantID), incidentID, ms(tx.now))
	if err != nil {
		return false, fmt.Errorf("record delivery %s/%s: %w", webhook, deliveryID, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Token is an API token as stored: its SHA-256 hash, never the token.
type Token struct {
	ID        string
	Name      string
	Role      string
	Tenants   []string
	CreatedAt time.Time
	LastUsed  time.Time
	Revoked   bool
}

// HashToken returns the stored form of a token. Tokens are long random strings, so a fast hash
// is enough: there is nothing to brute-force.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// CreateToken stores a token's hash under a unique name.
func (s *Store) CreateToken(ctx context.Context, t *Token, token string) error {
	id, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("create token: %w", err)
	}
	tenants, _ := json.Marshal(t.Tenants)
	return s.InTx(ctx, func(tx *Tx) error {
		t.ID, t.CreatedAt = id.String(), tx.now
		_, err := tx.tx.ExecContext(ctx, `
			INSERT INTO api_tokens (id, name, hash, role, tenants, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			t.ID, t.Name, HashToken(token), t.Role, string(tenants), ms(tx.now))
		if isUniqueViolation(err) {
			return fmt.Errorf("create token: a token named %q exists: %w", t.Name, ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("create token: %w", err)
		}
		return nil
	})
}

// TokenByValue returns the unrevoked token with that value, or ErrNotFound.
func (s *Store) TokenByValue(ctx context.Context, token string) (Token, error) {
	var t Token
	var tenants string
	var created, used, revoked int64
	err := s.read.QueryRowContext(ctx, `
		SELECT id, name, role, tenants, created_at, last_used_at, revoked_at FROM api_tokens WHERE hash = $1`,
		HashToken(token)).Scan(&t.ID, &t.Name, &t.Role, &tenants, &created, &used, &revoked)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && revoked != 0) {
		return Token{}, fmt.Errorf("token: %w", ErrNotFound)
	}
	if err != nil {
		return Token{}, fmt.Errorf("read token: %w", err)
	}
	if err := json.Unmarshal([]byte(tenants), &t.Tenants); err != nil {
		return Token{}, fmt.Errorf("token %s tenants: %w", t.Name, err)
	}
	t.CreatedAt, t.LastUsed = fromMS(created), fromMS(used)
	return t, nil
}
