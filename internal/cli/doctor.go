package cli

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/socsync/socsync/internal/doctor"
	"github.com/socsync/socsync/internal/hub"
)

// cmdDoctor checks every configured tenant, or one, from end to end: credential, tokens,
// permissions, and a call to each source. Exit 1 when a check failed.
func cmdDoctor(ctx context.Context, e env, args []string) int {
	fs := newFlags(e, "doctor")
	path := configFlag(e, fs)
	tenant := fs.String("tenant", "", "check only this tenant (default: every configured tenant)")
	asJSON := fs.Bool("json", false, "print the reports as JSON")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	// Resources are not checked at load: a tenant's unreadable secret is one of its findings,
	// not a reason to check no tenant.
	c, ok := loadConfig(e, *path, false)
	if !ok {
		return exitUsage
	}
	var ids []string
	if *tenant != "" {
		ids = []string{*tenant}
	}
	reports, err := hub.Doctor(ctx, c, hub.Options{Getenv: e.getenv, Version: version}, ids)
	if err != nil {
		fmt.Fprintf(e.stderr, "socsync doctor: %v\n", err)
		return exitUsage
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(map[string]any{"tenants": reports})
	} else {
		printReports(e, reports)
	}
	for _, r := range reports {
		if !r.OK {
			return exitFailure
		}
	}
	return exitOK
}

func printReports(e env, reports []doctor.Report) {
	failed := 0
	for _, r := range reports {
		verdict := "ok"
		if !r.OK {
			verdict, failed = "PROBLEMS", failed+1
		}
		fmt.Fprintf(e.stdout, "%s (%s): %s\n", r.TenantName, r.TenantID, verdict)
		for _, f := range r.Findings {
			mark := map[doctor.Status]string{doctor.OK: "ok  ", doctor.Warn: "??  ", doctor.Fail: "FAIL"}[f.Status]
			fmt.Fprintf(e.stdout, "  %s %s: %s\n", mark, f.Check, f.Detail)
			if f.Fix != "" {
				fmt.Fprintf(e.stdout, "       fix: %s\n", f.Fix)
			}
		}
	}
	fmt.Fprintf(e.stdout, "%d of %d tenants have problems\n", failed, len(reports))
}
