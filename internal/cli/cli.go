// Package cli implements socsync's subcommands. It is the only place where concrete types are
// wired together; every other package takes its dependencies as arguments.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Exit codes (DESIGN.md §4.1).
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// env is what every subcommand receives from the process: its environment and output streams.
type env struct {
	getenv func(string) string
	stdout io.Writer
	stderr io.Writer
	stdin  io.Reader // nil: the process's standard input
}

// command is one subcommand. run returns the process exit code.
type command struct {
	summary string
	run     func(ctx context.Context, e env, args []string) int
}

func commands() map[string]command {
	return map[string]command{
		"version":  {"print the version", cmdVersion},
		"config":   {"check or show a configuration file (config check|show --config FILE)", cmdConfig},
		"migrate":  {"apply database migrations", cmdMigrate},
		"serve":    {"run the hub", cmdServe},
		"emulator": {"run the local Microsoft API emulator", cmdEmulator},
		"demo":     {"run the emulator and the hub together with sample tenants", cmdDemo},
		"doctor": {"check tenants' credentials, consent, permissions and reachability (doctor --config FILE [--tenant ID] [--json])",
			cmdDoctor},
		"consent-url": {"print the admin-consent URL for a customer tenant", cmdConsentURL},
		"dcr-template": {"print the custom table and data collection rule for the forward stream",
			cmdDCRTemplate},
		"token": {"create API tokens (token create --config FILE --name NAME --role ROLE [--tenants IDS])", cmdToken},
		"user": {"create web UI users (user create --config FILE --name NAME --role ROLE [--tenants IDS] [--password-stdin])",
			cmdUser},
		"bench": {"run the benchmark harness against the emulator (see BENCHMARKS.md)", cmdBench},
	}
}

// Run runs socsync with the given arguments (without the program name) and returns the exit
// code. main calls it; so do tests.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	e := env{getenv: getenv, stdout: stdout, stderr: stderr}
	cmds := commands()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout, cmds)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "socsync: unknown command %q\n\n", args[0])
		usage(stderr, cmds)
		return exitUsage
	}
	return c.run(ctx, e, args[1:])
}

func usage(w io.Writer, cmds map[string]command) {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "usage: socsync <command> [flags]\n\ncommands:")
	for _, n := range names {
		fmt.Fprintf(w, "  %-13s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'socsync <command> -h' for a command's flags.")
}

// newFlags returns a FlagSet that reports errors to stderr and never exits the process.
func newFlags(e env, name string) *flag.FlagSet {
	fs := flag.NewFlagSet("socsync "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	return fs
}

// parseFlags parses args and returns the exit code to use when parsing failed (0 when it did not).
func parseFlags(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitUsage, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected arguments: %s\n", fs.Name(), strings.Join(fs.Args(), " "))
		return exitUsage, false
	}
	return 0, true
}
