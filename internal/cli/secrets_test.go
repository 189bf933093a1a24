package cli

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// dbText returns every value of every column of every table of the SQLite database at path, as
// text (BLOBs as their bytes), with the table and column it came from.
func dbText(t *testing.T, path string) map[string][]string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var tables []string
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	rows.Close()
	out := map[string][]string{}
	for _, table := range tables {
		rows, err := db.Query(`SELECT * FROM "` + table + `"`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				var s string
				switch v := v.(type) {
				case nil:
					continue
				case []byte:
					s = string(v)
				default:
					s = fmt.Sprint(v)
				}
				out[table+"."+cols[i]] = append(out[table+"."+cols[i]], s)
			}
		}
		rows.Close()
	}
	return out
}

// socsync token create and socsync user create print a secret once; the database keeps only a
// hash: no column of any table, and no byte of the database files, holds the secret.
func TestTokenAndUserCreate_LeaveNoPlaintextSecretInTheDatabase(t *testing.T) {
	p := writeConfig(t, tenantConfig)
	if code, _, stderr := run(t, secretEnv, "migrate", "--config", p); code != 0 {
		t.Fatal(stderr)
	}
	code, stdout, stderr := run(t, secretEnv, "token", "create", "--config", p, "--name", "ci-token", "--role", "admin")
	tok := strings.TrimSpace(stdout)
	if code != 0 || !strings.HasPrefix(tok, "ssk_") {
		t.Fatalf("token create: exit %d, %q", code, stderr)
	}
	code, stdout, stderr = run(t, secretEnv, "user", "create", "--config", p, "--name", "ana@mssp.example", "--role", "admin")
	generated := strings.TrimSpace(stdout)
	if code != 0 || generated == "" {
		t.Fatalf("user create: exit %d, %q", code, stderr)
	}
	const chosen = "a long enough passphrase"
	var out, errb syncBuffer
	e := env{getenv: func(k string) string { return secretEnv[k] }, stdout: &out, stderr: &errb, stdin: strings.NewReader(chosen + "\n")}
	if code := cmdUser(context.Background(), e, []string{"create", "--config", p, "--name", "bob", "--role", "viewer",
		"--tenants", "11111111-1111-1111-1111-111111111111", "--password-stdin"}); code != 0 {
		t.Fatalf("user create --password-stdin: exit %d, %q", code, errb.String())
	}

	secrets := map[string]string{"the API token": tok, "its random part": strings.TrimPrefix(tok, "ssk_"),
		"the generated password": generated, "the password from stdin": chosen}
	dir := filepath.Join(filepath.Dir(p), "data")
	cells := dbText(t, filepath.Join(dir, "socsync.db"))
	// The scan reads the rows the commands wrote: their names are there.
	var all []string
	for _, vs := range cells {
		all = append(all, vs...)
	}
	joined := strings.Join(all, "\n")
	for _, name := range []string{"ci-token", "ana@mssp.example", "bob"} {
		if !strings.Contains(joined, name) {
			t.Fatalf("the scan found no %q: it does not read the tables the commands wrote (%d columns)", name, len(cells))
		}
	}
	for col, vs := range cells {
		for _, v := range vs {
			for what, s := range secrets {
				if strings.Contains(strings.ToLower(v), strings.ToLower(s)) {
					t.Errorf("%s holds %s in plaintext", col, what)
				}
			}
		}
	}
	// Nor in free pages or the write-ahead log.
	files, _ := filepath.Glob(filepath.Join(dir, "socsync.db*"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for what, s := range secrets {
			if strings.Contains(string(b), s) {
				t.Errorf("%s holds %s in plaintext", filepath.Base(f), what)
			}
		}
	}
}
