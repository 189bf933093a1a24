package config

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// SecretRef refers to a secret without holding it: "env:NAME" (an environment variable) or
// "file:PATH" (a file whose content, trimmed of surrounding whitespace, is the secret).
// Its String and YAML forms are the reference, never the secret.
type SecretRef string

// Set reports whether a reference is given.
func (r SecretRef) Set() bool { return r != "" }

// check reports what is wrong with the reference's form, without resolving it. The message
// never repeats the value, which may be a pasted secret.
func (r SecretRef) check() error {
	kind, name, ok := strings.Cut(string(r), ":")
	switch {
	case !ok || (kind != "env" && kind != "file"):
		return errors.New("secrets are never written inline: want env:NAME or file:PATH (the value was not printed)")
	case name == "":
		return fmt.Errorf("want a name after %q", kind+":")
	case kind == "env" && strings.ContainsAny(name, " =\t"):
		return errors.New("env: wants an environment variable name")
	}
	return nil
}

// Resolve returns the secret. The error names the reference, never the secret.
func (c *Config) Resolve(r SecretRef, getenv func(string) string) (string, error) {
	if err := r.check(); err != nil {
		return "", err
	}
	kind, name, _ := strings.Cut(string(r), ":")
	var v string
	switch kind {
	case "env":
		v = getenv(name)
		if v == "" {
			return "", fmt.Errorf("environment variable %s (from %s) is not set", name, r)
		}
	case "file":
		b, err := os.ReadFile(c.resolvePath(name))
		if err != nil {
			return "", fmt.Errorf("cannot read secret file %s: %w", c.resolvePath(name), errors.Unwrap(err))
		}
		v = strings.TrimSpace(string(b))
		if v == "" {
			return "", fmt.Errorf("secret file %s is empty", c.resolvePath(name))
		}
	}
	return v, nil
}
