// Package hubtest runs hubs against the emulator for end-to-end tests: an emulator over HTTPS,
// a hub configuration written for it (as `socsync emulator --write-config` writes one), a
// migrated database, and hubs started and stopped on demand.
package hubtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socsync/socsync/internal/config"
	"github.com/socsync/socsync/internal/emuconfig"
	"github.com/socsync/socsync/internal/emulator"
	"github.com/socsync/socsync/internal/hub"
	"github.com/socsync/socsync/internal/store"
)

// Options shape an environment.
type Options struct {
	Tenants            int
	Seed               int64
	IncidentsPerTenant int    // emulator sample incidents per tenant (0: none)
	Database           string // default: SQLite in the test's directory
	Idle, Hot          string // poll intervals (default 1s and 500ms)
	Lease              string // lease on a source (default 30s)
	Resync             string // full re-read interval (default 24h)
	Overlap            string // poll overlap (default 30s)
	Extra              string // YAML appended to the configuration
	Emulator           emulator.Options
}

// Env is an emulator and a hub configuration for it.
type Env struct {
	Emulator *emulator.Emulator
	Server   *emulator.Server
	Info     emulator.Info
	Dir      string
	Config   *config.Config
}

// New starts an emulator and writes and migrates a hub configuration for it.
func New(t testing.TB, o Options) *Env {
	t.Helper()
	eo := o.Emulator
	eo.Tenants, eo.Seed = o.Tenants, o.Seed
	if eo.Seed == 0 {
		eo.Seed = 1
	}
	eo.IncidentsPerTenant = o.IncidentsPerTenant
	if o.IncidentsPerTenant == 0 {
		eo.IncidentsPerTenant = -1
	}
	if eo.CertTenants == 0 {
		eo.CertTenants = -1 // certificates are slow to make and not needed unless asked for
	}
	em, err := emulator.New(eo)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := emulator.Start(ctx, em, "127.0.0.1:0", filepath.Join(dir, "emulator"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); srv.Close(); em.Close() })
	env := &Env{Emulator: em, Server: srv, Info: em.Info(srv.URL, srv.CAFile), Dir: dir}
	if o.Idle == "" {
		o.Idle = "1s"
	}
	if o.Hot == "" {
		o.Hot = "500ms"
	}
	db := o.Database
	if db == "" {
		db = "sqlite:hub.db"
	}
	path := filepath.Join(dir, "socsync.yaml")
	if err := emuconfig.Write(path, emuconfig.Params{Info: env.Info, Listen: "127.0.0.1:0", Database: db, Idle: o.Idle, Hot: o.Hot, AlertRefresh: "1s", Lease: o.Lease, Resync: o.Resync, Overlap: o.Overlap, Extra: o.Extra}); err != nil {
		t.Fatal(err)
	}
	env.Config, err = config.Load(path, os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, hub.DatabaseDSN(env.Config), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return env
}

// ConfigPath is the hub configuration's file.
func (e *Env) ConfigPath() string { return e.Config.File }

// Running is a hub running in the test process.
type Running struct {
	Hub    *hub.Hub
	Addr   string
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// Start runs a hub with the environment's configuration until the test ends or Stop.
func (e *Env) Start(t testing.TB, opts hub.Options) *Running {
	t.Helper()
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ctx, cancel := context.WithCancel(context.Background())
	h, err := hub.New(ctx, e.Config, opts)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	r := &Running{Hub: h, cancel: cancel, done: make(chan error, 1)}
	ready := make(chan string, 1)
	go func() { r.done <- h.Run(ctx, ready) }()
	select {
	case r.Addr = <-ready:
	case err := <-r.done:
		t.Fatalf("hub stopped at once: %v", err)
	}
	t.Cleanup(func() { r.Stop() })
	return r
}

// Stop stops the hub and waits for it.
func (r *Running) Stop() {
	r.once.Do(func() {
		r.cancel()
		<-r.done
		r.Hub.Close()
	})
}

// eventuallyWait bounds Eventually; SOCSYNC_TEST_WAIT overrides it (for debugging).
var eventuallyWait = func() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("SOCSYNC_TEST_WAIT")); err == nil {
		return d
	}
	return 90 * time.Second
}()

// Eventually polls cond until it holds or the deadline passes (generous: this machine is
// shared; tests never assert how long it took).
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(eventuallyWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// PostgresDSN returns the URL of a fresh schema on the PostgreSQL server named by
// SOCSYNC_TEST_POSTGRES, dropped when the test ends; the test skips when the variable is not
// set (CI always sets it, so there it never skips).
func PostgresDSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv("SOCSYNC_TEST_POSTGRES")
	if base == "" {
		t.Skip("SOCSYNC_TEST_POSTGRES is not set (CI sets it; see .ci/run)")
	}
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	b := make([]byte, 6)
	rand.Read(b)
	schema := "t_" + hex.EncodeToString(b)
	if _, err := db.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("PostgreSQL at %s: %v", base, err)
	}
	t.Cleanup(func() { db.Exec("DROP SCHEMA " + schema + " CASCADE") })
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + schema
}
