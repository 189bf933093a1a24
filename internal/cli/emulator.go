package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/socsync/socsync/internal/emuconfig"
	"github.com/socsync/socsync/internal/emulator"
)

// cmdEmulator runs the emulator alone (DESIGN.md §4.3): it serves the emulated Microsoft APIs
// over HTTPS until ctx is cancelled, after printing its base URL and CA file.
func cmdEmulator(ctx context.Context, e env, args []string) int {
	fs := newFlags(e, "emulator")
	listen := fs.String("listen", "127.0.0.1:8443", "address to serve HTTPS on (host:port; port 0 picks a free one)")
	tenants := fs.Int("tenants", 3, "number of sample tenants")
	seed := fs.Int64("seed", 1, "seed of all ids, secrets and sample data")
	info := fs.String("info", "", "write a JSON description of the emulator (base URL, CA file, tenants, credentials) to `FILE`")
	dir := fs.String("dir", "", "directory for the CA and certificate files (default: a new temporary directory)")
	writeConfig := fs.String("write-config", "", "write a hub configuration for the emulator's tenants to `FILE`")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *tenants < 1 {
		fmt.Fprintf(e.stderr, "socsync emulator: --tenants: want at least 1, got %d\n", *tenants)
		return exitUsage
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "socsync-emulator-")
		if err != nil {
			fmt.Fprintf(e.stderr, "socsync emulator: %v\n", err)
			return exitFailure
		}
		*dir = d
	}
	em, err := emulator.New(emulator.Options{Tenants: *tenants, Seed: *seed})
	if err != nil {
		fmt.Fprintf(e.stderr, "socsync emulator: %v\n", err)
		return exitUsage
	}
	defer em.Close()
	srv, err := emulator.Start(ctx, em, *listen, *dir)
	if err != nil {
		fmt.Fprintf(e.stderr, "socsync emulator: %v\n", err)
		return exitFailure
	}
	if *info != "" {
		b, _ := json.MarshalIndent(em.Info(srv.URL, srv.CAFile), "", "  ")
		if err := os.WriteFile(*info, append(b, '\n'), 0o600); err != nil {
			srv.Close()
			fmt.Fprintf(e.stderr, "socsync emulator: --info: %v\n", err)
			return exitFailure
		}
	}
	if *writeConfig != "" {
		if err := emuconfig.Write(*writeConfig, emuconfig.Params{Info: em.Info(srv.URL, srv.CAFile)}); err != nil {
			srv.Close()
			fmt.Fprintf(e.stderr, "socsync emulator: --write-config: %v\n", err)
			return exitFailure
		}
		fmt.Fprintf(e.stdout, "hub configuration: %s (secrets in %s)\n", *writeConfig, filepath.Join(filepath.Dir(*writeConfig), "secrets"))
	}
	fmt.Fprintf(e.stdout, "emulator listening on %s\nCA file: %s\n", srv.URL, srv.CAFile)
	if *info != "" {
		fmt.Fprintf(e.stdout, "info file: %s\n", *info)
	}
	fmt.Fprintf(e.stdout, "admin API: %s/_emulator/ (loopback only)\n", srv.URL)
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	return exitOK
}
