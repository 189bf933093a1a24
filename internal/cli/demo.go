package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/socsync/socsync/internal/config"
	"github.com/socsync/socsync/internal/emuconfig"
	"github.com/socsync/socsync/internal/emulator"
	"github.com/socsync/socsync/internal/httpapi"
	"github.com/socsync/socsync/internal/hub"
	"github.com/socsync/socsync/internal/store"
	"github.com/socsync/socsync/internal/web"
)

// cmdDemo runs the emulator and a hub in one process, with sample tenants and a scenario of
// remote activity: the newcomer's first command. It needs nothing but Go.
func cmdDemo(ctx context.Context, e env, args []string) int {
	fs := newFlags(e, "demo")
	listen := fs.String("listen", "127.0.0.1:8080", "address of the hub's web UI and API")
	tenants := fs.Int("tenants", 3, "number of sample customer tenants")
	data := fs.String("data", "", "directory for the database and generated files (default: a temporary one, removed at exit)")
	seed := fs.Int64("seed", 1, "seed of the sample data")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *tenants < 1 || *tenants > 1000 {
		fmt.Fprintf(e.stderr, "socsync demo: --tenants: want 1 to 1000, got %d\n", *tenants)
		return exitUsage
	}
	dir := *data
	if dir == "" {
		d, err := os.MkdirTemp("", "socsync-demo-")
		if err != nil {
			fmt.Fprintf(e.stderr, "socsync demo: %v\n", err)
			return exitFailure
		}
		defer os.RemoveAll(d)
		dir = d
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		fmt.Fprintf(e.stderr, "socsync demo: --data: %v\n", err)
		return exitUsage
	}
	log := newLogger(e, config.Log{Level: "warn", Format: "text"})

	em, err := emulator.New(emulator.Options{Tenants: *tenants, Seed: *seed, CertTenants: -1})
	if err != nil {
		fmt.Fprintf(e.stderr, "socsync demo: %v\n", err)
		return exitFailure
	}
	defer em.Close()
	srv, err := emulator.Start(ctx, em, "127.0.0.1:0", filepath.Join(dir, "emulator"))
	if err != nil {
		fmt.Fprintf(e.stderr, "socsync demo: emulator: %v\n", err)
		return exitFailure
	}
	defer srv.Close()

	cfgPath := filepath.Join(dir, "socsync.yaml")
	err = emuconfig.Write(cfgPath, emuconfig.Params{Info: em.Info(srv.URL, srv.CAFile), Listen: *listen,
		Database: "sqlite:socsync.db", Idle: "10s", Hot: "2s", AlertRefresh: "30s"})
	if err != nil {
		fmt.Fprintf(e.stderr, "socsync demo: %v\n", err)
		return exitFailure
	}
	cfg, err := config.Load(cfgPath, e.getenv)
	if err != nil {
		fmt.Fprintf(e.stderr, "socsync demo: %v\n", err)
		return exitFailure
	}
	st, err := store.Open(ctx, hub.DatabaseDSN(cfg), store.Options{})
	if err == nil {
		_, err = st.Migrate(ctx)
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "socsync demo: database: %v\n", err)
		return exitFailure
	}
	login, err := demoLogin(ctx, st)
	st.Close()
	if err != nil {
		fmt.Fprintf(e.stderr, "socsync demo: %v\n", err)
		return exitFailure
	}

	h, err := hub.New(ctx, cfg, hub.Options{Log: log, Getenv: e.getenv, Version: version})
	if err != nil {
		fmt.Fprintf(e.stderr, "socsync demo: %v\n", err)
		return exitFailure
	}
	defer h.Close()
	// Remote activity: new incidents, analysts' edits, merges and alert changes.
	if err := em.StartScenario(emulator.ScenarioConfig{NewIncidentsPerMin: 6, EditsPerMin: 12, MergesPerMin: 1, AlertResolutionsPerMin: 4}); err != nil {
		fmt.Fprintf(e.stderr, "socsync demo: scenario: %v\n", err)
		return exitFailure
	}
	defer em.StopScenario()

	ready := make(chan string, 1)
	errc := make(chan error, 1)
	go func() { errc <- h.Run(ctx, ready) }()
	select {
	case addr := <-ready:
		fmt.Fprintf(e.stdout, `socsync demo is running with %d sample tenants (emulated Microsoft APIs at %s).

  Web UI:   http://%s/
  %s
  API:      curl -H "Authorization: Bearer %s" http://%s/api/v1/incidents

Files (configuration, database, emulator CA) are in %s.
Remote analysts are at work: new incidents, edits, merges and alert changes keep coming.
Press Ctrl-C to stop.
`, *tenants, srv.URL, addr, login.text, login.token, addr, dir)
	case err := <-errc:
		fmt.Fprintf(e.stderr, "socsync demo: %v\n", err)
		return exitFailure
	}
	if err := <-errc; err != nil {
		fmt.Fprintf(e.stderr, "socsync demo: %v\n", err)
		return exitFailure
	}
	fmt.Fprintln(e.stdout, "socsync demo stopped.")
	return exitOK
}

// demoCredentials is how the demo's user signs in.
type demoCredentials struct {
	text  string // what to print about signing in to the UI
	token string // an admin API token
}

// demoLogin creates the demo's admin user for the web UI (admin, or admin-N when an earlier
// run kept in --data has one) with a generated password, and an admin API token.
func demoLogin(ctx context.Context, st *store.Store) (demoCredentials, error) {
	tok, err := newToken()
	if err != nil {
		return demoCredentials{}, err
	}
	suffix := fmt.Sprintf("%d", time.Now().UnixNano())
	if err := st.CreateToken(ctx, &store.Token{Name: "demo-" + suffix, Role: httpapi.RoleAdmin}, tok); err != nil {
		return demoCredentials{}, err
	}
	password, err := newPassword()
	if err != nil {
		return demoCredentials{}, err
	}
	hash, err := web.HashPassword(password)
	if err != nil {
		return demoCredentials{}, err
	}
	u := &store.User{Name: "admin", PasswordHash: hash, Role: httpapi.RoleAdmin}
	if err := st.CreateUser(ctx, u); errors.Is(err, store.ErrConflict) {
		u.Name = "admin-" + suffix[len(suffix)-6:]
		err = st.CreateUser(ctx, u)
		if err != nil {
			return demoCredentials{}, err
		}
	} else if err != nil {
		return demoCredentials{}, err
	}
	return demoCredentials{text: fmt.Sprintf("Sign in:  user %s, password %s", u.Name, password), token: tok}, nil
}
