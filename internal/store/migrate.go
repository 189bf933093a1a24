package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations
var migrations embed.FS

// provider returns goose's migration provider for this database. On PostgreSQL migrations run
// under an advisory lock, so replicas that start together migrate once.
func (s *Store) provider() (*goose.Provider, error) {
	sub, err := fs.Sub(migrations, "migrations/"+string(s.dialect))
	if err != nil {
		return nil, err
	}
	var opts []goose.ProviderOption
	dialect := goose.DialectSQLite3
	if s.dialect == Postgres {
		dialect = goose.DialectPostgres
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return nil, err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	return goose.NewProvider(dialect, s.write, sub, opts...)
}

// Migrate applies every pending migration and returns the schema version reached. Concurrent
// calls, from this process or others, apply each migration once: on PostgreSQL under goose's
// advisory lock, on SQLite under a lock on a file beside the database (sqliteMigrateLock).
func (s *Store) Migrate(ctx context.Context) (int64, error) {
	p, err := s.provider()
	if err != nil {
		return 0, fmt.Errorf("migrations: %w", err)
	}
	if s.dialect == SQLite {
		unlock, err := s.sqliteMigrateLock(ctx)
		if err != nil {
			return 0, fmt.Errorf("apply migrations: %w", err)
		}
		defer unlock()
	}
	if _, err := p.Up(ctx); err != nil {
		return 0, fmt.Errorf("apply migrations: %w", err)
	}
	v, err := p.GetDBVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// CheckMigrated returns ErrNotMigrated (wrapped, with the versions) unless the schema is at the
// version this binary expects.
func (s *Store) CheckMigrated(ctx context.Context) error {
	p, err := s.provider()
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	current, target, err := p.GetVersions(ctx)
	if err != nil {
		return fmt.Errorf("%w: cannot read the schema version (%v)", ErrNotMigrated, err)
	}
	if current < target {
		return fmt.Errorf("%w: schema version %d, this socsync needs %d; run socsync migrate --config FILE", ErrNotMigrated, current, target)
	}
	return nil
}

const sqliteBusy = 5 // SQLITE_BUSY, the primary result code of an extended one

// sqliteMigrateLock serialises migrations of one SQLite database across connections and
// processes. goose has no lock for SQLite, and two migrators that both read "version 0" would
// both run migration 1. The lock is a write transaction held on a second SQLite file,
// PATH-migrate (beside PATH-wal and PATH-shm): SQLite's own file locking makes it exclusive on
// every platform, and the operating system releases it when a migrator dies.
func (s *Store) sqliteMigrateLock(ctx context.Context) (unlock func(), err error) {
	var file string
	if err := s.read.QueryRowContext(ctx, "SELECT file FROM pragma_database_list WHERE name = 'main'").Scan(&file); err != nil {
		return nil, fmt.Errorf("locate the database file: %w", err)
	}
	if file == "" { // an in-memory database belongs to this connection alone
		return func() {}, nil
	}
	u := "file:" + (&url.URL{Path: file + "-migrate"}).EscapedPath() + "?_pragma=busy_timeout(200)"
	db, err := sql.Open("sqlite", u)
	if err != nil {
		return nil, fmt.Errorf("open the migration lock %s-migrate: %w", file, err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open the migration lock %s-migrate: %w", file, err)
	}
	for {
		_, err = conn.ExecContext(ctx, "BEGIN EXCLUSIVE")
		if err == nil {
			break
		}
		var coded interface{ Code() int }
		if ctx.Err() != nil || !errors.As(err, &coded) || coded.Code()&0xff != sqliteBusy {
			conn.Close()
			db.Close()
			return nil, fmt.Errorf("take the migration lock %s-migrate: %w", file, err)
		}
		// Another migrator holds it (busy_timeout waited 200 ms): try again.
	}
	return func() {
		conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		conn.Close()
		db.Close()
	}, nil
}
