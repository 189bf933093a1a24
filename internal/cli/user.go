package cli

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"

	"github.com/socsync/socsync/internal/httpapi"
	"github.com/socsync/socsync/internal/hub"
	"github.com/socsync/socsync/internal/store"
	"github.com/socsync/socsync/internal/web"
)

// newPassword returns a generated password: 18 random bytes, 24 URL-safe characters.
func newPassword() (string, error) {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// validUserName accepts 1 to 128 printable characters without spaces: a UPN, an e-mail
// address or a plain name.
func validUserName(name string) bool {
	if name == "" || len(name) > 128 {
		return false
	}
	for _, r := range name {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// cmdUser creates a web UI user: socsync user create --config FILE --name NAME --role ROLE
// [--tenants IDS] [--password-stdin]. The password is read from standard input with
// --password-stdin, or generated and printed once; only its argon2id hash is stored.
func cmdUser(ctx context.Context, e env, args []string) int {
	const usage = "usage: socsync user create --config FILE --name NAME --role admin|analyst|viewer [--tenants ID,ID] [--password-stdin]"
	if len(args) == 0 || args[0] != "create" {
		fmt.Fprintln(e.stderr, usage)
		return exitUsage
	}
	fs := newFlags(e, "user create")
	path := configFlag(e, fs)
	name := fs.String("name", "", "user name to sign in with (e.g. ana@mssp.example); stored in lower case, named in audit entries")
	role := fs.String("role", "", "admin (all tenants), analyst (read and change its tenants) or viewer (read its tenants)")
	tenants := fs.String("tenants", "", "comma-separated tenant ids the user may see (analyst and viewer)")
	fromStdin := fs.Bool("password-stdin", false, "read the password from standard input (first line) instead of generating one")
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
			found := false
			for _, t := range c.Tenants {
				found = found || strings.EqualFold(t.ID, id)
			}
			if !found {
				fmt.Fprintf(e.stderr, "socsync user create: --tenants: %s is not a configured tenant\n", id)
				return exitUsage
			}
			ids = append(ids, strings.ToLower(id))
		}
	}
	switch {
	case !validUserName(strings.TrimSpace(*name)):
		fmt.Fprintln(e.stderr, "socsync user create: --name: want 1 to 128 characters without spaces")
		return exitUsage
	case *role != httpapi.RoleAdmin && *role != httpapi.RoleAnalyst && *role != httpapi.RoleViewer:
		fmt.Fprintf(e.stderr, "socsync user create: --role: want admin, analyst or viewer, got %q\n", *role)
		return exitUsage
	case *role == httpapi.RoleAdmin && len(ids) > 0:
		fmt.Fprintln(e.stderr, "socsync user create: an admin sees every tenant; drop --tenants")
		return exitUsage
	case *role != httpapi.RoleAdmin && len(ids) == 0:
		fmt.Fprintln(e.stderr, "socsync user create: --tenants is required for analysts and viewers")
		return exitUsage
	}
	password, generated := "", false
	if *fromStdin {
		in := e.stdin
		if in == nil {
			in = os.Stdin
		}
		line, err := bufio.NewReader(in).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			fmt.Fprintf(e.stderr, "socsync user create: reading the password: %v\n", err)
			return exitFailure
		}
		password = strings.TrimRight(line, "\r\n")
		if len(password) < web.MinPasswordLen {
			fmt.Fprintf(e.stderr, "socsync user create: the password must have at least %d characters\n", web.MinPasswordLen)
			return exitUsage
		}
	} else {
		var err error
		if password, err = newPassword(); err != nil {
			fmt.Fprintf(e.stderr, "socsync user create: %v\n", err)
			return exitFailure
		}
		generated = true
	}
	st, err := store.Open(ctx, hub.DatabaseDSN(c), store.Options{MustExist: true})
	if err == nil {
		defer st.Close()
		err = st.CheckMigrated(ctx)
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "socsync user create: %v\n", err)
		return exitFailure
	}
	hash, err := web.HashPassword(password)
	if err != nil {
		fmt.Fprintf(e.stderr, "socsync user create: %v\n", err)
		return exitFailure
	}
	u := &store.User{Name: *name, PasswordHash: hash, Role: *role, Tenants: ids}
	if err := st.CreateUser(ctx, u); err != nil {
		if errors.Is(err, store.ErrConflict) {
			fmt.Fprintf(e.stderr, "socsync user create: a user named %q exists\n", store.NormalizeUserName(*name))
			return exitUsage
		}
		fmt.Fprintf(e.stderr, "socsync user create: %v\n", err)
		return exitFailure
	}
	if generated {
		fmt.Fprintf(e.stderr, "user %q (%s) created; its password is shown once and stored only as a hash:\n", u.Name, u.Role)
		fmt.Fprintln(e.stdout, password)
	} else {
		fmt.Fprintf(e.stderr, "user %q (%s) created\n", u.Name, u.Role)
	}
	return exitOK
}
