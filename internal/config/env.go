package config

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// EnvPrefix starts every environment variable that overrides a configuration key.
const EnvPrefix = "SOCSYNC_"

// EnvKeys lists the environment variables that override keys, with the key each overrides:
// every scalar key outside lists, named SOCSYNC_ + the key path in upper case with "_" for ".",
// e.g. SOCSYNC_SERVER_LISTEN, SOCSYNC_DATABASE, SOCSYNC_CLOUD_CA_FILE.
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

// walkScalars calls fn for every scalar field reachable from v through structs (not lists).
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
		case reflect.String, reflect.Int, reflect.Int64, reflect.Bool:
			fn(path, fv)
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
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("want true or false, got %q", s)
		}
		v.SetBool(b)
	default:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("want a whole number, got %q", s)
		}
		v.SetInt(n)
	}
	return nil
}
