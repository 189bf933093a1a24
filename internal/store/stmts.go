package store

import (
	"context"
	"database/sql"
	"sync"
)

// maxCachedStatements bounds the statement cache: socsync's statements are fixed strings, a
// few dozen; a query built per call would fill the cache and then simply go unprepared.
const maxCachedStatements = 512

// stmtCache holds the write connection's statements prepared once. SQLite parses every
// statement it is handed unprepared; on the ingest path that parsing was 40 % of the CPU.
// (PostgreSQL's driver, pgx, caches prepared statements per connection itself.)
//
// A statement is prepared between transactions, not in one: SQLite's writer is one
// connection, which a transaction holds, and preparing on the pool would wait for it for ever.
// A transaction that meets a statement not yet prepared runs it as it is and asks for it.
type stmtCache struct {
	db     *sql.DB
	mu     sync.Mutex
	m      map[string]*sql.Stmt
	wanted map[string]bool
}

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, m: map[string]*sql.Stmt{}, wanted: map[string]bool{}}
}

// get returns the prepared statement of query, or nil (and asks for it) when there is none.
func (c *stmtCache) get(query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[query]; ok {
		return st
	}
	if len(c.m)+len(c.wanted) < maxCachedStatements {
		c.wanted[query] = true
	}
	return nil
}

// prepare prepares the statements asked for. Called outside any transaction of the writer,
// and without the lock while it waits for the connection, which a transaction asking for
// statements may hold. A statement that cannot be prepared is asked for again when it is met
// again (and meanwhile fails where it runs, with its error).
func (c *stmtCache) prepare(ctx context.Context) {
	c.mu.Lock()
	queries := make([]string, 0, len(c.wanted))
	for q := range c.wanted {
		queries = append(queries, q)
		delete(c.wanted, q)
	}
	c.mu.Unlock()
	for _, q := range queries {
		st, err := c.db.PrepareContext(ctx, q)
		if err != nil {
			continue
		}
		c.mu.Lock()
		if _, ok := c.m[q]; ok {
			st.Close() // prepared meanwhile by another transaction's start
		} else {
			c.m[q] = st
		}
		c.mu.Unlock()
	}
}

// pending reports whether statements wait to be prepared.
func (c *stmtCache) pending() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.wanted) > 0
}

func (c *stmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var first error
	for q, st := range c.m {
		if err := st.Close(); err != nil && first == nil {
			first = err
		}
		delete(c.m, q)
	}
	return first
}

// cachedTx is a transaction whose statements run prepared, from the cache when it has one
// (stmts nil: as given).
type cachedTx struct {
	*sql.Tx
	stmts *stmtCache
}

// stmt returns the transaction's use of query's cached statement, or nil.
func (t cachedTx) stmt(ctx context.Context, query string) *sql.Stmt {
	if t.stmts == nil {
		return nil
	}
	st := t.stmts.get(query)
	if st == nil {
		return nil
	}
	return t.Tx.StmtContext(ctx, st)
}

func (t cachedTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st := t.stmt(ctx, query)
	if st == nil {
		return t.Tx.ExecContext(ctx, query, args...)
	}
	defer st.Close() // the transaction's handle only; the cached statement stays prepared
	return st.ExecContext(ctx, args...)
}

func (t cachedTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st := t.stmt(ctx, query)
	if st == nil {
		return t.Tx.QueryContext(ctx, query, args...)
	}
	return st.QueryContext(ctx, args...) // the handle closes with the transaction
}

func (t cachedTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	st := t.stmt(ctx, query)
	if st == nil {
		return t.Tx.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}
