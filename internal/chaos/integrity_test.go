package chaos

import (
	"database/sql"
	"fmt"
	"strings"

	_ "modernc.org/sqlite"
)

// integrityCheck runs SQLite's integrity check on the database of a sqlite: DSN.
func integrityCheck(dsn string) error {
	db, err := sql.Open("sqlite", "file:"+strings.TrimPrefix(dsn, "sqlite:"))
	if err != nil {
		return err
	}
	defer db.Close()
	var res string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&res); err != nil {
		return err
	}
	if res != "ok" {
		return fmt.Errorf("database integrity: %s", res)
	}
	return nil
}
