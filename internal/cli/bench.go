package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/socsync/socsync/internal/bench"
)

func cmdBench(ctx context.Context, e env, args []string) int {
	fs := newFlags(e, "bench")
	var o bench.Options
	fs.IntVar(&o.Tenants, "tenants", 200, "emulated customer tenants")
	fs.IntVar(&o.Incidents, "incidents", 50, "incidents per tenant at the start")
	fs.Float64Var(&o.ChangeRate, "change-rate", 20, "changes per second during the run (remote edits, new incidents, hub edits)")
	fs.DurationVar(&o.Duration, "duration", 60e9, "how long the load runs")
	fs.StringVar(&o.DB, "db", "sqlite", "sqlite or postgres")
	fs.StringVar(&o.PostgresURL, "postgres", e.getenv("SOCSYNC_TEST_POSTGRES"), "PostgreSQL server for --db postgres (a fresh schema is used; default $SOCSYNC_TEST_POSTGRES)")
	fs.IntVar(&o.Replicas, "replicas", 1, "socsync replicas (more than one needs --db postgres)")
	fs.StringVar(&o.Baseline, "baseline", "", "logicapp: also run the status-quo pattern on the same emulator and load")
	fs.DurationVar(&o.BaselineInterval, "baseline-interval", 0, "the Logic App's recurrence (default: --idle)")
	fs.DurationVar(&o.Idle, "idle", 60e9, "socsync's poll interval of idle sources")
	fs.DurationVar(&o.Hot, "hot", 10e9, "socsync's poll interval of busy sources")
	fs.IntVar(&o.Workers, "workers", 32, "polls in flight per replica")
	fs.Float64Var(&o.BusyShare, "busy-share", 0.1, "fraction of tenants that are busy")
	fs.Float64Var(&o.BusyLoad, "busy-load", 0.9, "fraction of the changes that go to busy tenants")
	fs.Float64Var(&o.HubEditShare, "hub-edits", 0.1, "fraction of the changes made in the hub")
	fs.Int64Var(&o.Seed, "seed", 1, "seed of the sample data and the load")
	jsonFile := fs.String("json", "", "also write the results as JSON to `FILE`")
	fs.StringVar(&o.Dir, "data", "", "keep the run's files (configuration, database, emulator CA) in `DIR` (default: a temporary directory, removed)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	o.Progress = e.stderr
	rep, err := bench.Run(ctx, o)
	if err != nil {
		fmt.Fprintf(e.stderr, "socsync bench: %v\n", err)
		return exitFailure
	}
	rep.Table(e.stdout)
	if *jsonFile != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(*jsonFile, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintf(e.stderr, "socsync bench: --json: %v\n", err)
			return exitFailure
		}
	}
	return exitOK
}
