package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// User is a person who signs in to the web UI. Role and Tenants mean what they mean for an API
// token. PasswordHash is the password's hash in PHC string form (the web package makes and
// checks it); it is empty for a user who signs in through an identity provider.
type User struct {
	ID           string
	Name         string // lower case, unique
	PasswordHash string
	Role         string
	Tenants      []string
	CreatedAt    time.Time
	LastLogin    time.Time
	Disabled     bool
}

const userCols = `u.id, u.name, u.password_hash, u.role, u.tenants, u.created_at, u.last_login_at, u.disabled_at`

func scanUser(sc interface{ Scan(...any) error }, extra ...any) (User, error) {
	var u User
	var tenants string
	var created, lastLogin, disabled int64
	err := sc.Scan(append([]any{&u.ID, &u.Name, &u.PasswordHash, &u.Role, &tenants, &created, &lastLogin, &disabled}, extra...)...)
	if err != nil {
		return u, err
	}
	if err := json.Unmarshal([]byte(tenants), &u.Tenants); err != nil {
		return u, fmt.Errorf("user %s tenants: %w", u.Name, err)
	}
	u.CreatedAt, u.LastLogin, u.Disabled = fromMS(created), fromMS(lastLogin), disabled != 0
	return u, nil
}

// NormalizeUserName is the stored form of a user name: trimmed, lower case.
func NormalizeUserName(name string) string { return strings.ToLower(strings.TrimSpace(name)) }

// CreateUser stores a new user under a unique name (ErrConflict if the name is taken). The
// user gets an id; tenant ids are stored in lower case.
func (s *Store) CreateUser(ctx context.Context, u *User) error {
	id, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	u.Name = NormalizeUserName(u.Name)
	if u.Name == "" {
		return errors.New("create user: name required")
	}
	tenants := make([]string, 0, len(u.Tenants))
	for _, t := range u.Tenants {
		tenants = append(tenants, strings.ToLower(t))
	}
	u.Tenants = tenants
	tj, _ := json.Marshal(tenants) // []string always marshals
	return s.InTx(ctx, func(tx *Tx) error {
		u.ID, u.CreatedAt = id.String(), tx.now
		_, err := tx.tx.ExecContext(ctx, `
			INSERT INTO users (id, name, password_hash, role, tenants, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			u.ID, u.Name, u.PasswordHash, u.Role, string(tj), ms(tx.now))
		if isUniqueViolation(err) {
			return fmt.Errorf("create user: a user named %q exists: %w", u.Name, ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("create user: %w", err)
		}
		return nil
	})
}

// UserByName returns the user with that name (any case), disabled or not, or ErrNotFound.
func (s *Store) UserByName(ctx context.Context, name string) (User, error) {
	u, err := scanUser(s.read.QueryRowContext(ctx, `SELECT `+userCols+` FROM users u WHERE u.name = $1`, NormalizeUserName(name)))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("user %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("read user %s: %w", name, err)
	}
	return u, nil
}

// Session is a signed-in browser: its user (as stored now, so a changed role applies at once)
// and the CSRF token of its forms. The session's own id is never stored, only its hash.
type Session struct {
	User      User
	CSRFToken string
	CreatedAt time.Time
	LastSeen  time.Time
	Expires   time.Time
}

// CreateSession stores a session of the user under the hash of id, valid until expires, and
// records the user's sign-in time.
func (s *Store) CreateSession(ctx context.Context, id, userID, csrfToken string, expires time.Time, ip, userAgent string) error {
	if id == "" || csrfToken == "" {
		return errors.New("create session: id and CSRF token required")
	}
	return s.InTx(ctx, func(tx *Tx) error {
		_, err := tx.tx.ExecContext(ctx, `
			INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, last_seen_at, expires_at, ip, user_agent)
			VALUES ($1, $2, $3, $4, $4, $5, $6, $7)`,
			HashToken(id), userID, csrfToken, ms(tx.now), ms(expires), ip, truncate(userAgent, 256))
		if err != nil {
			return fmt.Errorf("create session: %w", err)
		}
		if _, err := tx.tx.ExecContext(ctx, `UPDATE users SET last_login_at = $2 WHERE id = $1`, userID, ms(tx.now)); err != nil {
			return fmt.Errorf("record sign-in: %w", err)
		}
		return nil
	})
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// SessionByID returns the unexpired session with that id whose user is enabled, or ErrNotFound.
func (s *Store) SessionByID(ctx context.Context, id string) (Session, error) {
	var sess Session
	var created, seen, expires int64
	u, err := scanUser(s.read.QueryRowContext(ctx, `
		SELECT `+userCols+`, s.csrf_token, s.created_at, s.last_seen_at, s.expires_at
		FROM sessions s JOIN users u ON u.id = s.user_id
		WHERE s.id_hash = $1 AND s.expires_at > $2 AND u.disabled_at = 0`, HashToken(id), ms(s.now())),
		&sess.CSRFToken, &created, &seen, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, fmt.Errorf("session: %w", ErrNotFound)
	}
	if err != nil {
		return Session{}, fmt.Errorf("read session: %w", err)
	}
	sess.User = u
	sess.CreatedAt, sess.LastSeen, sess.Expires = fromMS(created), fromMS(seen), fromMS(expires)
	return sess, nil
}

// TouchSession records that the session was used now.
func (s *Store) TouchSession(ctx context.Context, id string) error {
	return s.InTx(ctx, func(tx *Tx) error {
		if _, err := tx.tx.ExecContext(ctx, `UPDATE sessions SET last_seen_at = $2 WHERE id_hash = $1`, HashToken(id), ms(tx.now)); err != nil {
			return fmt.Errorf("touch session: %w", err)
		}
		return nil
	})
}

// DeleteSession ends a session (sign-out). Ending a session that does not exist is no error.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	return s.InTx(ctx, func(tx *Tx) error {
		if _, err := tx.tx.ExecContext(ctx, `DELETE FROM sessions WHERE id_hash = $1`, HashToken(id)); err != nil {
			return fmt.Errorf("delete session: %w", err)
		}
		return nil
	})
}

// RecordLoginFailure counts a failed sign-in for a user name (whether or not such a user
// exists) from a client address.
func (s *Store) RecordLoginFailure(ctx context.Context, name, ip string) error {
	return s.InTx(ctx, func(tx *Tx) error {
		_, err := tx.tx.ExecContext(ctx, `INSERT INTO login_failures (name, ip, at) VALUES ($1, $2, $3)`,
			truncate(NormalizeUserName(name), 256), ip, ms(tx.now))
		if err != nil {
			return fmt.Errorf("record failed sign-in: %w", err)
		}
		return nil
	})
}

// LoginFailures counts the failed sign-ins since a time for a user name and from a client
// address.
func (s *Store) LoginFailures(ctx context.Context, name, ip string, since time.Time) (byName, byIP int, err error) {
	err = s.read.QueryRowContext(ctx, `
		SELECT (SELECT COUNT(*) FROM login_failures WHERE name = $1 AND at >= $3),
		       (SELECT COUNT(*) FROM login_failures WHERE ip = $2 AND at >= $3)`,
		truncate(NormalizeUserName(name), 256), ip, ms(since)).Scan(&byName, &byIP)
	if err != nil {
		return 0, 0, fmt.Errorf("count failed sign-ins: %w", err)
	}
	return byName, byIP, nil
}

// ClearLoginFailures forgets a user name's failed sign-ins (after a successful one), and drops
// every failure and expired session older than before, so neither table grows without bound.
func (s *Store) ClearLoginFailures(ctx context.Context, name string, before time.Time) error {
	return s.InTx(ctx, func(tx *Tx) error {
		if _, err := tx.tx.ExecContext(ctx, `DELETE FROM login_failures WHERE name = $1 OR at < $2`,
			truncate(NormalizeUserName(name), 256), ms(before)); err != nil {
			return fmt.Errorf("clear failed sign-ins: %w", err)
		}
		if _, err := tx.tx.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at < $1`, ms(tx.now)); err != nil {
			return fmt.Errorf("drop expired sessions: %w", err)
		}
		return nil
	})
}
