package cli

import (
	"context"
	"fmt"

	"github.com/socsync/socsync/internal/entra"
)

func cmdConsentURL(_ context.Context, e env, args []string) int {
	fs := newFlags(e, "consent-url")
	path := configFlag(e, fs)
	tenant := fs.String("tenant", "", "the customer tenant's id")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	c, ok := loadConfig(e, *path, false)
	if !ok {
		return exitUsage
	}
	u, err := entra.ConsentURL(c, *tenant)
	if err != nil {
		fmt.Fprintf(e.stderr, "socsync consent-url: --tenant: %v\n", err)
		return exitUsage
	}
	fmt.Fprintln(e.stdout, u)
	return exitOK
}
