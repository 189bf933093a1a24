package cli

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"

	"github.com/socsync/socsync/internal/httpapi"
	"github.com/socsync/socsync/internal/hub"
	"github.com/socsync/socsync/internal/store"
)

// newToken returns a fresh API token: 32 random bytes, prefixed so that secret scanners and
// people recognise it.
func newToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "ssk_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b)), nil
}

func cmdToken(ctx context.Context, e env, args []string) int {
	if len(args) == 0 || args[0] != "create" {
		fmt.Fprintln(e.stderr, "usage: socsync token create --config FILE --name NAME --role admin|analyst|viewer [--tenants ID,ID]")
		return exitUsage
	}
	fs := newFlags(e, "token create")
	path := configFlag(e, fs)
	name := fs.String("name", "", "unique name of the token (who or what uses it)")
	role := fs.String("role", "", "admin (all tenants), analyst (read and change its tenants) or viewer (read its tenants)")
	tenants := fs.String("tenants", "", "comma-separated tenant ids the token may see (analyst and viewer)")
	if code, ok := parseFlags(fs, args[1:]); !ok {
		return code
	}
	c, ok := loadConfig(e, *path, false)
	if !ok {
		return exitUsage
	}
	var ids []string
	for _, id := range strings.Split(*tenants, ",") {
		if id = strings.TrimSpace(id); id != "" {
			if _, ok := c.Tenant(id); !ok {
				fmt.Fprintf(e.stderr, "socsync token create: --tenants: %s is not a configured tenant\n", id)
				return exitUsage
			}
			ids = append(ids, strings.ToLower(id))
		}
	}
	switch {
	case *name == "":
		fmt.Fprintln(e.stderr, "socsync token create: --name is required")
		return exitUsage
	case *role != httpapi.RoleAdmin && *role != httpapi.RoleAnalyst && *role != httpapi.RoleViewer:
		fmt.Fprintf(e.stderr, "socsync token create: --role: want admin, analyst or viewer, got %q\n", *role)
		return exitUsage
	case *role == httpapi.RoleAdmin && len(ids) > 0:
		fmt.Fprintln(e.stderr, "socsync token create: an admin token sees every tenant; drop --tenants")
		return exitUsage
	case *role != httpapi.RoleAdmin && len(ids) == 0:
		fmt.Fprintln(e.stderr, "socsync token create: --tenants is required for analyst and viewer tokens")
		return exitUsage
	}
	st, err := store.Open(ctx, hub.DatabaseDSN(c), store.Options{MustExist: true})
	if err == nil {
		defer st.Close()
		err = st.CheckMigrated(ctx)
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "socsync token create: %v\n", err)
		return exitFailure
	}
	tok, err := newToken()
	if err != nil {
		fmt.Fprintf(e.stderr, "socsync token create: %v\n", err)
		return exitFailure
	}
	if err := st.CreateToken(ctx, &store.Token{Name: *name, Role: *role, Tenants: ids}, tok); err != nil {
		if errors.Is(err, store.ErrConflict) {
			fmt.Fprintf(e.stderr, "socsync token create: a token named %q exists\n", *name)
			return exitUsage
		}
		fmt.Fprintf(e.stderr, "socsync token create: %v\n", err)
		return exitFailure
	}
	fmt.Fprintf(e.stderr, "token %q (%s) created; it is shown once and stored only as a hash:\n", *name, *role)
	fmt.Fprintln(e.stdout, tok)
	return exitOK
}
