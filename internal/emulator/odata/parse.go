// Package odata parses and evaluates the subset of OData v4 `$filter` expressions that the
// Microsoft Graph security and Microsoft Sentinel incident APIs accept: comparisons (eq, ne, gt,
// ge, lt, le) of a property path with a literal, combined with and, or, not and parentheses,
// plus a few string functions where the caller allows them.
//
// Literals: single-quoted strings (a doubled quote escapes one), unquoted ISO-8601 date-times
// (2026-01-02T03:04:05Z, fractional seconds and ±hh:mm offsets allowed), integers and decimals,
// null, true and false. Property paths are identifiers joined by '/', e.g.
// properties/owner/assignedTo.
//
// Parse only builds the syntax tree. Check validates it against a Schema (which properties
// exist, their types, enum members) and Eval evaluates a checked tree against one item.
package odata

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// MaxDepth bounds the nesting of parentheses and operators, so hostile input cannot exhaust
// the stack.
const MaxDepth = 64

// Expr is a node of a parsed filter expression.
type Expr interface {
	// String prints the expression in a canonical form that Parse accepts and that parses back
	// to an equal tree.
	String() string
	isExpr()
}

// Binary is a comparison (eq, ne, gt, ge, lt, le) or a logical connective (and, or).
type Binary struct {
	Op   string
	L, R Expr
}

// Not negates its operand.
type Not struct{ X Expr }

// Path is a property path such as status or properties/owner/assignedTo.
type Path struct{ Name string }

// Call is a function call such as contains(properties/title, 'x').
type Call struct {
	Name string
	Args []Expr
}

// LitKind says what kind of literal a Literal is.
type LitKind int

// Literal kinds.
const (
	LitString LitKind = iota
	LitDateTime
	LitNumber
	LitNull
	LitBool
)

// Literal is a constant. Raw is its text as written (for strings: the unquoted value).
type Literal struct {
	Kind LitKind
	Raw  string
	Str  string    // LitString
	Time time.Time // LitDateTime
	Num  float64   // LitNumber
	Bool bool      // LitBool
}

func (*Binary) isExpr()  {}
func (*Not) isExpr()     {}
func (*Path) isExpr()    {}
func (*Call) isExpr()    {}
func (*Literal) isExpr() {}

func isLogical(op string) bool { return op == "and" || op == "or" }

func (b *Binary) String() string {
	logical := isLogical(b.Op)
	return wrap(b.L, logical) + " " + b.Op + " " + wrap(b.R, logical)
}

// wrap prints an operand, in parentheses where the parser would otherwise group it
// differently: any operator inside a comparison, and logical operators inside a logical one.
func wrap(e Expr, inLogical bool) string {
	switch x := e.(type) {
	case *Binary:
		if !inLogical || isLogical(x.Op) {
			return "(" + x.String() + ")"
		}
	case *Not:
		return "(" + x.String() + ")"
	}
	return e.String()
}

func (n *Not) String() string  { return "not (" + n.X.String() + ")" }
func (p *Path) String() string { return p.Name }

func (c *Call) String() string {
	args := make([]string, len(c.Args))
	for i, a := range c.Args {
		args[i] = a.String()
	}
	return c.Name + "(" + strings.Join(args, ", ") + ")"
}

func (l *Literal) String() string {
	switch l.Kind {
	case LitString:
		return "'" + strings.ReplaceAll(l.Str, "'", "''") + "'"
	case LitNull:
		return "null"
	case LitBool:
		return strconv.FormatBool(l.Bool)
	default:
		return l.Raw
	}
}

// SyntaxError is returned by Parse. Its message follows the OData library's wording, e.g.
// "Syntax error at position 9 in 'status eq'.".
type SyntaxError struct {
	Pos   int
	Input string
	Msg   string // optional detail
}

func (e *SyntaxError) Error() string {
	if e.Msg != "" {
		return e.Msg
	}
	return fmt.Sprintf("Syntax error at position %d in '%s'.", e.Pos, e.Input)
}

type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tString
	tNumber
	tDateTime
	tLParen
	tRParen
	tComma
)

type token struct {
	kind tokKind
	text string // identifier / raw literal text; for strings the unescaped value
	pos  int    // byte offset of the token start
	end  int
}

var dateTimeRe = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})`)

type lexer struct {
	in   string
	toks []token
}

func lex(in string) ([]token, error) {
	l := &lexer{in: in}
	i := 0
	for i < len(in) {
		c := in[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			l.toks = append(l.toks, token{kind: tLParen, text: "(", pos: i, end: i + 1})
			i++
		case c == ')':
			l.toks = append(l.toks, token{kind: tRParen, text: ")", pos: i, end: i + 1})
			i++
		case c == ',':
			l.toks = append(l.toks, token{kind: tComma, text: ",", pos: i, end: i + 1})
			i++
		case c == '\'':
			start := i
			i++
			var b strings.Builder
			closed := false
			for i < len(in) {
				if in[i] == '\'' {
					if i+1 < len(in) && in[i+1] == '\'' {
						b.WriteByte('\'')
						i += 2
						continue
					}
					i++
					closed = true
					break
				}
				b.WriteByte(in[i])
				i++
			}
			if !closed {
				return nil, &SyntaxError{Pos: start, Input: in,
					Msg: fmt.Sprintf("There is an unterminated string literal at position %d in '%s'.", len(in), in)}
			}
			l.toks = append(l.toks, token{kind: tString, text: b.String(), pos: start, end: i})
		case c >= '0' && c <= '9' || (c == '-' && i+1 < len(in) && in[i+1] >= '0' && in[i+1] <= '9'):
			if m := dateTimeRe.FindString(in[i:]); m != "" {
				l.toks = append(l.toks, token{kind: tDateTime, text: m, pos: i, end: i + len(m)})
				i += len(m)
				break
			}
			start := i
			if c == '-' {
				i++
			}
			for i < len(in) && in[i] >= '0' && in[i] <= '9' {
				i++
			}
			if i < len(in) && in[i] == '.' {
				i++
				digits := 0
				for i < len(in) && in[i] >= '0' && in[i] <= '9' {
					i++
					digits++
				}
				if digits == 0 {
					return nil, &SyntaxError{Pos: i, Input: in}
				}
			}
			if i < len(in) && isIdentChar(in[i]) {
				return nil, &SyntaxError{Pos: i, Input: in}
			}
			l.toks = append(l.toks, token{kind: tNumber, text: in[start:i], pos: start, end: i})
		case isIdentStart(c):
			start := i
			for i < len(in) && (isIdentChar(in[i]) || in[i] == '/') {
				if in[i] == '/' && (i+1 >= len(in) || !isIdentStart(in[i+1])) {
					return nil, &SyntaxError{Pos: i + 1, Input: in}
				}
				i++
			}
			l.toks = append(l.toks, token{kind: tIdent, text: in[start:i], pos: start, end: i})
		default:
			return nil, &SyntaxError{Pos: i, Input: in}
		}
	}
	l.toks = append(l.toks, token{kind: tEOF, pos: len(in), end: len(in)})
	return l.toks, nil
}

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '$' || c == '@'
}

func isIdentChar(c byte) bool {
	return isIdentStart(c) || c >= '0' && c <= '9' || c == '.'
}

var compareOps = map[string]bool{"eq": true, "ne": true, "gt": true, "ge": true, "lt": true, "le": true}

type parser struct {
	in    string
	toks  []token
	i     int
	depth int
}

// Parse parses a $filter expression.
func Parse(in string) (Expr, error) {
	toks, err := lex(in)
	if err != nil {
		return nil, err
	}
	p := &parser{in: in, toks: toks}
	if p.peek().kind == tEOF {
		return nil, &SyntaxError{Pos: 0, Input: in,
			Msg: "The $filter query option requires an expression."}
	}
	e, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, p.errAt(t.pos)
	}
	return e, nil
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) errAt(pos int) error { return &SyntaxError{Pos: pos, Input: p.in} }

func (p *parser) enter() error {
	p.depth++
	if p.depth > MaxDepth {
		return &SyntaxError{Pos: p.peek().pos, Input: p.in,
			Msg: fmt.Sprintf("The query specified in the URI is not valid. The node count limit of '%d' has been exceeded.", MaxDepth)}
	}
	return nil
}

func (p *parser) leave() { p.depth-- }

func (p *parser) isKeyword(word string) bool {
	t := p.peek()
	return t.kind == tIdent && t.text == word
}

func (p *parser) parseOr() (Expr, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	l, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	for p.isKeyword("or") {
		p.next()
		r, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		l = &Binary{Op: "or", L: l, R: r}
	}
	return l, nil
}

func (p *parser) parseAnd() (Expr, error) {
	l, err := p.parseNot()
	if err != nil {
		return nil, err
	}
	for p.isKeyword("and") {
		p.next()
		r, err := p.parseNot()
		if err != nil {
			return nil, err
		}
		l = &Binary{Op: "and", L: l, R: r}
	}
	return l, nil
}

func (p *parser) parseNot() (Expr, error) {
	if p.isKeyword("not") {
		if err := p.enter(); err != nil {
			return nil, err
		}
		defer p.leave()
		p.next()
		x, err := p.parseNot()
		if err != nil {
			return nil, err
		}
		return &Not{X: x}, nil
	}
	return p.parseCompare()
}

func (p *parser) parseCompare() (Expr, error) {
	l, err := p.parsePrimary()
	if err != nil {
		return nil, err
	}
	t := p.peek()
	if t.kind == tIdent && compareOps[t.text] {
		p.next()
		r, err := p.parsePrimary()
		if err != nil {
			return nil, err
		}
		return &Binary{Op: t.text, L: l, R: r}, nil
	}
	return l, nil
}

func (p *parser) parsePrimary() (Expr, error) {
	t := p.next()
	switch t.kind {
	case tLParen:
		if err := p.enter(); err != nil {
			return nil, err
		}
		defer p.leave()
		e, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != tRParen {
			return nil, p.errAt(c.pos)
		}
		return e, nil
	case tString:
		return &Literal{Kind: LitString, Raw: t.text, Str: t.text}, nil
	case tNumber:
		f, err := strconv.ParseFloat(t.text, 64)
		if err != nil {
			return nil, p.errAt(t.pos)
		}
		return &Literal{Kind: LitNumber, Raw: t.text, Num: f}, nil
	case tDateTime:
		tm, err := ParseDateTime(t.text)
		if err != nil {
			return nil, &SyntaxError{Pos: t.pos, Input: p.in,
				Msg: fmt.Sprintf("The DateTimeOffset text '%s' should be in format 'yyyy-mm-ddThh:mm:ss('.'s+)?(zzzzzz)?' and each field value is within valid range.", t.text)}
		}
		return &Literal{Kind: LitDateTime, Raw: t.text, Time: tm}, nil
	case tIdent:
		switch t.text {
		case "null":
			return &Literal{Kind: LitNull, Raw: "null"}, nil
		case "true", "false":
			return &Literal{Kind: LitBool, Raw: t.text, Bool: t.text == "true"}, nil
		case "and", "or", "not", "eq", "ne", "gt", "ge", "lt", "le":
			return nil, p.errAt(t.pos)
		}
		if p.peek().kind == tLParen {
			if strings.Contains(t.text, "/") {
				return nil, p.errAt(t.pos)
			}
			if err := p.enter(); err != nil {
				return nil, err
			}
			defer p.leave()
			p.next()
			c := &Call{Name: t.text}
			if p.peek().kind == tRParen {
				p.next()
				return c, nil
			}
			for {
				a, err := p.parseOr()
				if err != nil {
					return nil, err
				}
				c.Args = append(c.Args, a)
				n := p.next()
				if n.kind == tRParen {
					return c, nil
				}
				if n.kind != tComma {
					return nil, p.errAt(n.pos)
				}
			}
		}
		return &Path{Name: t.text}, nil
	default:
		return nil, p.errAt(t.pos)
	}
}

// ParseDateTime parses an OData DateTimeOffset literal (RFC 3339 with optional seconds and
// fraction).
func ParseDateTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04Z07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid DateTimeOffset %q", s)
}
