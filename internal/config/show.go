package config

import (
	"net/url"

	"go.yaml.in/yaml/v3"
)

// Redacted returns the effective configuration as YAML, defaults and environment overrides
// applied, safe to print: secret references are shown (they are names, not secrets) and a
// password in the database URL is replaced.
func (c *Config) Redacted() ([]byte, error) {
	cp := *c
	cp.Database = RedactURL(c.Database)
	return yaml.Marshal(&cp)
}

// RedactURL replaces the password of a URL, if it has one, with "redacted".
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "redacted")
		}
	}
	// Passwords can also ride in the query (password=…).
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "redacted")
		u.RawQuery = q.Encode()
	}
	return u.String()
}
