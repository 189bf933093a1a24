package store

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
)

// A statement met in a transaction is prepared before the next one and used from then on;
// many writers asking for statements at once never deadlock on SQLite's single writer; a
// full cache runs statements as they are.
func TestStmtCache_PreparesBetweenTransactionsAndNeverWaitsOnTheWriter(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "s.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	const q = `SELECT COUNT(*) FROM incidents WHERE tenant_id = $1`
	count := func() int {
		var n int
		if err := s.InTx(ctx, func(tx *Tx) error { return tx.tx.QueryRowContext(ctx, q, "t").Scan(&n) }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	count()
	if s.stmts.get(q) != nil {
		t.Fatal("a statement was prepared inside the transaction that met it")
	}
	count() // prepared before this one began
	if s.stmts.get(q) == nil {
		t.Fatal("a statement met before was not prepared for the next transaction")
	}

	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 20 {
				query := fmt.Sprintf(`SELECT %d FROM incidents WHERE tenant_id = $1`, (w*20+i)%40)
				err := s.InTx(ctx, func(tx *Tx) error {
					rows, err := tx.tx.QueryContext(ctx, query, "t")
					if err != nil {
						return err
					}
					defer rows.Close()
					_, err = tx.tx.ExecContext(ctx, `UPDATE incidents SET title = title WHERE tenant_id = $1`, "t")
					return err
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()

	s.stmts.mu.Lock()
	for i := len(s.stmts.m); i < maxCachedStatements; i++ {
		s.stmts.m[fmt.Sprintf("filler %d", i)] = nil
	}
	s.stmts.mu.Unlock()
	const other = `SELECT COUNT(*) FROM links WHERE tenant_id = $1`
	for range 2 {
		if err := s.InTx(ctx, func(tx *Tx) error { var n int; return tx.tx.QueryRowContext(ctx, other, "t").Scan(&n) }); err != nil {
			t.Fatalf("with the cache full: %v", err)
		}
	}
	if s.stmts.get(other) != nil || s.stmts.pending() {
		t.Error("a full cache took another statement")
	}
	s.stmts.mu.Lock()
	for i := range maxCachedStatements {
		delete(s.stmts.m, fmt.Sprintf("filler %d", i))
	}
	s.stmts.mu.Unlock()
}
