package config

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// EnvPrefix starts every environment variable that overrides a configuration key.
const EnvPrefix = "SOCSYNC_"

// OtherEnv lists the SOCSYNC_ variables that are not configuration keys: read by the command
// line, the tests and CI. A SOCSYNC_ variable that is neither a key, nor one of these, nor the
// target of an env: secret reference is a configuration error (CheckEnv).
var OtherEnv = []string{
	"SOCSYNC_CONFIG",        // --config's default
	"SOCSYNC_TEST_POSTGRES", // the PostgreSQL server of the tests and of `bench --db postgres`
	"SOCSYNC_TEST_WAIT",     // how long the hub tests wait for a condition
	"SOCSYNC_TEST_KILLS",    // kills of the forward crash test
	"SOCSYNC_ARTIFACTS",     // where the browser tests put their screenshots
	"SOCSYNC_SKIP_BROWSER",  // skip the browser tests where Chromium cannot be installed
	"SOCSYNC_CHROMIUM",      // the browser tests' Chromium
	"SOCSYNC_SOAK",          // the chaos soak's duration
	"SOCSYNC_SOAK_SEED",     // the chaos soak's seed
	"SOCSYNC_CHAOS_*",       // the chaos suite's knobs (SOCSYNC_CHAOS_LONG, _KILLS, _DEBUG, …)
}

// EnvKeys lists the environment variables that override keys, with the key each overrides:
// every scalar key outside lists and maps, named SOCSYNC_ + the key path in upper case with "_"
// for ".", e.g. SOCSYNC_SERVER_LISTEN, SOCSYNC_DATABASE, SOCSYNC_CLOUD_CA_FILE, SOCSYNC_SYNC_RATE.
func EnvKeys() map[string]string {
	keys := map[string]string{}
	walkScalars(reflect.ValueOf(&Config{}).Elem(), "", func(path string, _ reflect.Value) {
		keys[envName(path)] = path
	})
	return keys
}

func envName(path string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

// applyEnv overrides keys from SOCSYNC_* variables.
func applyEnv(c *Config, getenv func(string) string) error {
	var errs []error
	walkScalars(reflect.ValueOf(c).Elem(), "", func(path string, v reflect.Value) {
		name := envName(path)
		s := getenv(name)
		if s == "" {
			return
		}
		if err := setScalar(v, s); err != nil {
			errs = append(errs, &Error{File: "environment", Path: name, Msg: fmt.Sprintf("overrides %s: %v", path, err)})
		}
	})
	return errors.Join(errs...)
}

// CheckEnv refuses SOCSYNC_ variables that name nothing: names lists the variables set in the
// environment (NAME or NAME=value, as os.Environ gives them; other prefixes are ignored). A
// name is fine when it is a configuration key (EnvKeys), in OtherEnv, or the variable of one of
// the configuration's env: secret references. Each other one is an *Error naming it, with the
// key it probably meant when one is close.
func (c *Config) CheckEnv(names []string) error {
	keys := EnvKeys()
	refs := map[string]bool{}
	for _, r := range c.secretRefs() {
		if kind, name, ok := strings.Cut(string(r), ":"); ok && kind == "env" {
			refs[name] = true
		}
	}
	var bad []string
	for _, n := range names {
		n, _, _ = strings.Cut(n, "=")
		if !strings.HasPrefix(n, EnvPrefix) || keys[n] != "" || refs[n] || otherEnv(n) {
			continue
		}
		bad = append(bad, n)
	}
	sort.Strings(bad)
	var errs []error
	for i, n := range bad {
		if i > 0 && bad[i-1] == n {
			continue
		}
		msg := "no such configuration key (" + EnvPrefix + " + a key path outside lists and maps, in upper case with _ for dots, e.g. SOCSYNC_POLLING_IDLE)"
		if s := closest(n, keys); s != "" {
			msg = fmt.Sprintf("no such configuration key (did you mean %s?)", s)
		}
		errs = append(errs, &Error{File: "environment", Path: n, Msg: msg})
	}
	return errors.Join(errs...)
}

func otherEnv(name string) bool {
	for _, o := range OtherEnv {
		if p, ok := strings.CutSuffix(o, "*"); ok && strings.HasPrefix(name, p) || o == name {
			return true
		}
	}
	return false
}

// closest returns the key variable nearest to name (at most a few edits away), or "".
func closest(name string, keys map[string]string) string {
	best, bestD := "", 3 // at most 2 edits
	if len(name) > 24 {
		bestD = 4
	}
	var names []string
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names) // ties go to the first name, whatever the map's order
	for _, k := range names {
		if d := editDistance(name, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// secretRefs lists every secret reference of the configuration.
func (c *Config) secretRefs() []SecretRef {
	var refs []SecretRef
	cred := func(cr Credential) { refs = append(refs, cr.ClientSecret, cr.CertificatePassword) }
	for _, a := range c.Apps {
		cred(a.Credential)
	}
	for _, t := range c.Tenants {
		cred(t.Credential)
	}
	cred(c.Forward.Credential)
	for _, w := range c.Webhooks {
		refs = append(refs, w.Token, w.HMACSecret)
	}
	return refs
}

// walkScalars calls fn for every scalar field reachable from v through structs (not lists or
// maps): strings, whole numbers, numbers, booleans and optional booleans (*bool).
func walkScalars(v reflect.Value, prefix string, fn func(path string, v reflect.Value)) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		path := tag
		if prefix != "" {
			path = prefix + "." + tag
		}
		fv := v.Field(i)
		switch fv.Kind() {
		case reflect.Struct:
			walkScalars(fv, path, fn)
		case reflect.String, reflect.Int, reflect.Int64, reflect.Float64, reflect.Bool:
			fn(path, fv)
		case reflect.Pointer:
			if fv.Type().Elem().Kind() == reflect.Bool {
				fn(path, fv)
			}
		}
	}
}

func setScalar(v reflect.Value, s string) error {
	switch {
	case v.Type() == reflect.TypeFor[Duration]():
		d, err := parseDuration(s)
		if err != nil {
			return fmt.Errorf("want a duration such as 30s, got %q", s)
		}
		v.SetInt(int64(d))
	case v.Kind() == reflect.String:
		v.SetString(s)
	case v.Kind() == reflect.Bool:
		b, err := parseBool(s)
		if err != nil {
			return err
		}
		v.SetBool(b)
	case v.Kind() == reflect.Pointer: // *bool
		b, err := parseBool(s)
		if err != nil {
			return err
		}
		v.Set(reflect.ValueOf(&b))
	case v.Kind() == reflect.Float64:
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("want a number such as 2 or 0.5, got %q", s)
		}
		v.SetFloat(f)
	default:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("want a whole number, got %q", s)
		}
		v.SetInt(n)
	}
	return nil
}

func parseBool(s string) (bool, error) {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, fmt.Errorf("want true or false, got %q", s)
	}
	return b, nil
}
