// Package store is socsync's persistence: one Store over database/sql that behaves the same on
// embedded SQLite (the default, one process) and on PostgreSQL (several replicas). Migrations
// are embedded. Every method takes a context, and every method that touches tenant data is
// scoped to a tenant.
//
// Times are stored as Unix milliseconds and JSON as text, so that one SQL text serves both
// databases (modernc's SQLite accepts PostgreSQL's $1 placeholders).
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "modernc.org/sqlite"             // database/sql driver "sqlite"
)

// Errors callers act on.
var (
	// ErrNotFound: no such object in the tenant (or scope) asked about.
	ErrNotFound = errors.New("not found")
	// ErrFenced: the caller's lease on a source was taken over (its fencing token is stale); its
	// writes were refused and nothing of the transaction was stored.
	ErrFenced = errors.New("lease lost: fencing token is stale")
	// ErrConflict: the object changed since the caller read it; re-read and retry.
	ErrConflict = errors.New("changed concurrently")
	// ErrNotMigrated: the database schema is older than this binary (run socsync migrate).
	ErrNotMigrated = errors.New("database schema is not migrated")
)

// Dialect says which database a Store talks to.
type Dialect string

// Dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Store is the database. It is safe for concurrent use.
type Store struct {
	dialect Dialect
	write   *sql.DB    // SQLite: one connection, the single writer; PostgreSQL: the pool
	read    *sql.DB    // SQLite: a pool of read connections (WAL); PostgreSQL: same as write
	stmts   *stmtCache // SQLite: the writer's prepared statements; nil on PostgreSQL
	now     func() time.Time
}

// Options tune a Store.
type Options struct {
	// Now is the clock (default time.Now); tests inject their own.
	Now func() time.Time
	// MaxConns bounds PostgreSQL connections (default 16).
	MaxConns int
	// MustExist refuses to create a missing SQLite file (serve uses it: only migrate creates).
	MustExist bool
}

// Open connects to "sqlite:PATH" or a postgres:// URL. It does not migrate.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	s := &Store{now: opts.Now}
	if s.now == nil {
		s.now = time.Now
	}
	var err error
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		path := strings.TrimPrefix(dsn, "sqlite:")
		if _, statErr := os.Stat(path); opts.MustExist && statErr != nil {
			return nil, fmt.Errorf("%w: database file %s does not exist; run socsync migrate --config FILE", ErrNotMigrated, path)
		}
		err = s.openSQLite(path)
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		err = s.openPostgres(dsn, opts.MaxConns)
	default:
		return nil, fmt.Errorf("open database: want sqlite:PATH or a postgres:// URL")
	}
	if err != nil {
		return nil, err
	}
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) openSQLite(path string) error {
	s.dialect = SQLite
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return fmt.Errorf("open sqlite database: %w", err)
		}
	}
	pragmas := "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)"
	u := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + pragmas
	w, err := sql.Open("sqlite", u+"&_txlock=immediate")
	if err != nil {
		return fmt.Errorf("open sqlite database %s: %w", path, err)
	}
	// One writer connection: SQLite allows one writer at a time, and queueing writers in the
	// pool is cheaper and fairer than letting them collide on the file lock.
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	r, err := sql.Open("sqlite", u+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return fmt.Errorf("open sqlite database %s: %w", path, err)
	}
	r.SetMaxOpenConns(8)
	s.write, s.read, s.stmts = w, r, newStmtCache(w)
	return nil
}

func (s *Store) openPostgres(dsn string, maxConns int) error {
	s.dialect = Postgres
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return fmt.Errorf("open postgres database: %w", err)
	}
	if maxConns <= 0 {
		maxConns = 16
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	s.write, s.read = db, db
	return nil
}

// Dialect reports which database the store talks to.
func (s *Store) Dialect() Dialect { return s.dialect }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.write.PingContext(ctx); err != nil {
		return fmt.Errorf("database unreachable: %w", err)
	}
	return nil
}

// Close closes the connections.
func (s *Store) Close() error {
	var err error
	if s.stmts != nil {
		err = s.stmts.close()
	}
	err = errors.Join(err, s.write.Close())
	if s.read != s.write {
		err = errors.Join(err, s.read.Close())
	}
	return err
}

// Tx is a write transaction. Its methods are the building blocks that pollers, the reconciler
// and the API compose; everything done through one Tx commits or rolls back together.
type Tx struct {
	tx  cachedTx
	s   *Store
	now time.Time
	// changed holds the incidents created or updated in this transaction, in order; each gets
	// one new version and one outbox row, written at commit with its final state.
	changed []changedIncident
	// alertsWritten holds the incidents this transaction stored alerts of.
	alertsWritten map[string]bool
}

// Now is the time the transaction started, by the store's clock; rows written in it carry it.
func (tx *Tx) Now() time.Time { return tx.now }

// InTx runs fn in a write transaction and commits if fn returns nil. On SQLite the transaction
// takes the write lock at once (BEGIN IMMEDIATE), so it never fails half-way for a lock.
func (s *Store) InTx(ctx context.Context, fn func(tx *Tx) error) error {
	if s.stmts != nil && s.stmts.pending() {
		s.stmts.prepare(ctx)
	}
	sqlTx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	tx := &Tx{tx: cachedTx{sqlTx, s.stmts}, s: s, now: s.now()}
	// A panic in fn (recovered further up, by net/http for one) must not leave the transaction
	// open: on SQLite it would hold the only write connection for ever.
	defer func() {
		if p := recover(); p != nil {
			_ = sqlTx.Rollback()
			panic(p)
		}
	}()
	err = fn(tx)
	if err == nil {
		err = tx.writeOutbox(ctx)
	}
	if err != nil {
		return errors.Join(err, ignoreDone(sqlTx.Rollback()))
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func ignoreDone(err error) error {
	if errors.Is(err, sql.ErrTxDone) {
		return nil
	}
	return err
}

// querier is what both *sql.DB and *sql.Tx offer; reads are written once for either.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// ms converts a time to the stored form; the zero time is 0.
func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// fromMS converts a stored time back; 0 is the zero time.
func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// isUniqueViolation reports whether err is a unique-constraint violation on either database.
func isUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "UNIQUE constraint failed") || strings.Contains(msg, "SQLSTATE 23505")
}
