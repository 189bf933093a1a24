package cli

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/socsync/socsync/internal/config"
	"github.com/socsync/socsync/internal/hub"
	"github.com/socsync/socsync/internal/store"
)

// version is set at build time with -ldflags "-X github.com/socsync/socsync/internal/cli.version=v1.2.3".
var version = "dev"

func cmdVersion(_ context.Context, e env, args []string) int {
	fs := newFlags(e, "version")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	rev := ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				rev = " " + s.Value
			}
		}
	}
	fmt.Fprintf(e.stdout, "socsync %s%s (%s %s/%s)\n", version, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return exitOK
}

// configFlag adds --config, defaulting to $SOCSYNC_CONFIG.
func configFlag(e env, fs interface {
	StringVar(p *string, name, value, usage string)
}) *string {
	p := new(string)
	fs.StringVar(p, "config", e.getenv("SOCSYNC_CONFIG"), "configuration file (default $SOCSYNC_CONFIG)")
	return p
}

// loadConfig loads and validates the configuration, printing every problem; ok is false when
// the command must stop with exit code 2.
func loadConfig(e env, path string, checkResources bool) (*config.Config, bool) {
	if path == "" {
		fmt.Fprintln(e.stderr, "socsync: --config FILE is required (or set SOCSYNC_CONFIG)")
		return nil, false
	}
	c, err := config.Load(path, e.getenv)
	if err == nil {
		err = c.CheckEnv(envNames(e.getenv))
	}
	if err == nil && checkResources {
		err = c.CheckResources(e.getenv)
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "socsync: invalid configuration:\n%s\n", indent(err.Error()))
		return nil, false
	}
	return c, true
}

// envNames lists the SOCSYNC_ variables set in the environment getenv reads, for
// config.CheckEnv. A lookup function cannot list its variables, so the candidates are the
// process's and getenv decides which are set (a test's getenv sees none of the process's).
func envNames(getenv func(string) string) []string {
	var names []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, config.EnvPrefix) && getenv(name) != "" {
			names = append(names, name)
		}
	}
	return names
}

func indent(s string) string { return "  " + strings.ReplaceAll(s, "\n", "\n  ") }

func cmdConfig(_ context.Context, e env, args []string) int {
	if len(args) == 0 || (args[0] != "check" && args[0] != "show") {
		fmt.Fprintln(e.stderr, "usage: socsync config check|show --config FILE")
		return exitUsage
	}
	sub := args[0]
	fs := newFlags(e, "config "+sub)
	path := configFlag(e, fs)
	if code, ok := parseFlags(fs, args[1:]); !ok {
		return code
	}
	c, ok := loadConfig(e, *path, sub == "check")
	if !ok {
		return exitUsage
	}
	if sub == "show" {
		out, err := c.Redacted()
		if err != nil {
			fmt.Fprintf(e.stderr, "socsync: %v\n", err)
			return exitFailure
		}
		e.stdout.Write(out)
		return exitOK
	}
	sources := 0
	for _, t := range c.Tenants {
		sources += len(t.Sentinel)
		if t.DefenderEnabled() {
			sources++
		}
	}
	fmt.Fprintf(e.stdout, "%s: ok (%d tenants, %d sources, %d webhooks, forward %s)\n",
		c.File, len(c.Tenants), sources, len(c.Webhooks), onOff(c.Forward.Enabled()))
	return exitOK
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func cmdMigrate(ctx context.Context, e env, args []string) int {
	fs := newFlags(e, "migrate")
	path := configFlag(e, fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	c, ok := loadConfig(e, *path, false)
	if !ok {
		return exitUsage
	}
	s, err := store.Open(ctx, hub.DatabaseDSN(c), store.Options{})
	if err != nil {
		fmt.Fprintf(e.stderr, "socsync migrate: %v\n", err)
		return exitFailure
	}
	defer s.Close()
	v, err := s.Migrate(ctx)
	if err != nil {
		fmt.Fprintf(e.stderr, "socsync migrate: %v\n", err)
		return exitFailure
	}
	fmt.Fprintf(e.stdout, "database %s migrated to schema version %d\n", config.RedactURL(hub.DatabaseDSN(c)), v)
	return exitOK
}
