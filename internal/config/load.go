package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Error is one problem with a configuration: where it is and what is expected.
type Error struct {
	File string // the configuration file, or "environment"
	Path string // key path, e.g. tenants[0].credential.client_secret
	Msg  string
}

func (e *Error) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", e.File, e.Path, e.Msg)
}

// Load reads, decodes, overrides from the environment and validates the configuration file.
// All problems found are returned together (errors.Join of *Error).
func Load(path string, getenv func(string) string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Msg: fmt.Sprintf("cannot read the configuration: %v", err)}
	}
	return Parse(data, path, getenv)
}

// Parse is Load for configuration text already read; file names it in errors and anchors
// relative paths.
func Parse(data []byte, file string, getenv func(string) string) (*Config, error) {
	c := &Config{File: file}
	if err := decodeStrict(data, file, c); err != nil {
		return nil, err
	}
	if err := applyEnv(c, getenv); err != nil {
		return nil, err
	}
	c.applyDefaults()
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// decodeStrict decodes YAML into c, refusing unknown keys, and turns the decoder's line-numbered
// messages into errors that name the key path.
func decodeStrict(data []byte, file string, c *Config) error {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return &Error{File: file, Msg: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if len(root.Content) == 0 {
		return nil // an empty file is all defaults
	}
	if root.Content[0].Kind != yaml.MappingNode {
		return &Error{File: file, Msg: "want a mapping of keys (server, database, tenants, …) at the top"}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(c)
	if err == nil || errors.Is(err, io.EOF) {
		return nil
	}
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return &Error{File: file, Msg: err.Error()}
	}
	paths := newLinePaths(root.Content[0])
	var errs []error
	for _, m := range te.Errors {
		errs = append(errs, describe(file, m, paths))
	}
	return errors.Join(errs...)
}

var (
	lineRE     = regexp.MustCompile(`^line (\d+): (.*)$`)
	unknownRE  = regexp.MustCompile(`^field (\S+) not found in type`)
	typeRE     = regexp.MustCompile("^cannot unmarshal !!(\\w+)(?: `(.*)`)? into (.+)$")
	yamlKindOf = map[string]string{"str": "a string", "int": "a number", "float": "a number",
		"bool": "true or false", "map": "a mapping", "seq": "a list", "null": "a value"}
)

// describe rewrites one yaml.v3 decode message ("line 7: field bogus not found in type …") as
// an Error naming the key path.
func describe(file, msg string, lp linePaths) *Error {
	m := lineRE.FindStringSubmatch(msg)
	if m == nil {
		return &Error{File: file, Msg: msg}
	}
	line, _ := strconv.Atoi(m[1])
	rest := m[2]
	if u := unknownRE.FindStringSubmatch(rest); u != nil {
		return &Error{File: file, Path: lp.key(line, u[1]),
			Msg: fmt.Sprintf("unknown key %q (line %d); check its spelling and indentation", u[1], line)}
	}
	path := lp.value(line, "")
	if strings.HasPrefix(rest, "want ") { // our own scalar types' messages (Duration)
		path = lp.value(line, "str")
	}
	if t := typeRE.FindStringSubmatch(rest); t != nil {
		path = lp.value(line, t[1])
		got := yamlKindOf[t[1]]
		if got == "" {
			got = t[1]
		}
		if t[2] != "" {
			got += fmt.Sprintf(" %q", t[2])
		}
		return &Error{File: file, Path: path, Msg: fmt.Sprintf("want %s, got %s (line %d)", goKind(t[3]), got, line)}
	}
	return &Error{File: file, Path: path, Msg: fmt.Sprintf("%s (line %d)", rest, line)}
}

// goKind names the Go type yaml.v3 wanted in words a user understands.
func goKind(t string) string {
	switch {
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map["), strings.HasPrefix(t, "config."):
		return "a mapping"
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"):
		return "a whole number"
	case t == "bool", t == "*bool":
		return "true or false"
	case t == "string":
		return "a string"
	}
	return t
}

// linePaths locates key paths by line: the keys and the values (outermost first) that start
// on each line.
type linePaths struct {
	keys   map[int][]string
	values map[int][]valueAt
}

type valueAt struct {
	path string
	kind yaml.Kind
}

func newLinePaths(root *yaml.Node) linePaths {
	lp := linePaths{keys: map[int][]string{}, values: map[int][]valueAt{}}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		lp.values[n.Line] = append(lp.values[n.Line], valueAt{path, n.Kind})
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				lp.keys[k.Line] = append(lp.keys[k.Line], p)
				walk(v, p)
			}
		case yaml.SequenceNode:
			for i, item := range n.Content {
				walk(item, fmt.Sprintf("%s[%d]", path, i))
			}
		}
	}
	walk(root, "")
	return lp
}

// key returns the path of the key called name on a line.
func (lp linePaths) key(line int, name string) string {
	for _, p := range lp.keys[line] {
		if p == name || strings.HasSuffix(p, "."+name) {
			return p
		}
	}
	return lp.value(line, "")
}

// value returns the path of the outermost value on a line of the YAML kind named by tag
// ("seq", "map" or a scalar tag such as "str"); any kind when tag is empty.
func (lp linePaths) value(line int, tag string) string {
	want := yaml.ScalarNode
	switch tag {
	case "seq":
		want = yaml.SequenceNode
	case "map":
		want = yaml.MappingNode
	}
	vs := lp.values[line]
	for _, v := range vs {
		if tag == "" || v.kind == want {
			return v.path
		}
	}
	if len(vs) > 0 {
		return vs[0].path
	}
	return ""
}

// Duration is a time.Duration written as "30s", "5m" or "1h30m".
type Duration time.Duration

// D returns the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML reads a duration; a bare number is refused, as its unit would be a guess.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := parseDuration(n.Value)
	if err != nil || n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: want a duration such as 30s, 5m or 1h, got %q", n.Line, n.Value)}}
	}
	*d = v
	return nil
}

// MarshalYAML writes the duration as text.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

func parseDuration(s string) (Duration, error) {
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, err
	}
	if v < 0 {
		return 0, errors.New("negative")
	}
	return Duration(v), nil
}

// resolvePath makes a path from the file relative to the file's directory.
func (c *Config) resolvePath(p string) string {
	if p == "" || filepath.IsAbs(p) || c.File == "" {
		return p
	}
	return filepath.Join(filepath.Dir(c.File), p)
}

// Path resolves a file path written in the configuration (certificates, CA files, the SQLite
// database): relative paths are relative to the configuration file's directory.
func (c *Config) Path(p string) string { return c.resolvePath(p) }
