package odata

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Type is the EDM type of a filterable property or of a sub-expression.
type Type int

// Types.
const (
	TString Type = iota + 1
	TEnum
	TDateTime
	TInt
	TBool
	tNull
)

func (t Type) edm() string {
	switch t {
	case TString:
		return "Edm.String"
	case TEnum:
		return "Edm.Enum"
	case TDateTime:
		return "Edm.DateTimeOffset"
	case TInt:
		return "Edm.Int32"
	case TBool:
		return "Edm.Boolean"
	default:
		return "<null>"
	}
}

// Field describes one filterable property.
type Field struct {
	Type Type
	// Nullable properties may be compared with null.
	Nullable bool
	// Members lists an enum's members in the order of their underlying values (used by
	// gt/ge/lt/le). A literal compared with the property must be one of them (exact case).
	Members []string
	// FoldCase makes string comparisons with this property case-insensitive.
	FoldCase bool
}

// Schema is the set of properties a $filter may use.
type Schema struct {
	// EntityType names the type in error messages, e.g. microsoft.graph.security.incident.
	EntityType string
	Fields     map[string]Field
	// Functions allows contains, startswith, endswith, tolower and toupper.
	Functions bool
}

// SemanticError is returned by Check for a well-formed expression that the schema rejects.
type SemanticError struct{ Msg string }

func (e *SemanticError) Error() string { return e.Msg }

func semErr(format string, a ...any) error { return &SemanticError{Msg: fmt.Sprintf(format, a...)} }

var opKind = map[string]string{
	"eq": "Equal", "ne": "NotEqual", "gt": "GreaterThan", "ge": "GreaterThanOrEqual",
	"lt": "LessThan", "le": "LessThanOrEqual", "and": "And", "or": "Or",
}

// Check validates e against s. A nil error means Eval will not fail on it.
func Check(e Expr, s *Schema) error {
	t, _, err := s.typeOf(e)
	if err != nil {
		return err
	}
	if t != TBool {
		return semErr("The $filter expression must evaluate to a single boolean value.")
	}
	return nil
}

// typeOf returns the type of e and, for property paths, the field.
func (s *Schema) typeOf(e Expr) (Type, *Field, error) {
	switch x := e.(type) {
	case *Path:
		f, ok := s.Fields[x.Name]
		if !ok {
			return 0, nil, semErr("Could not find a property named '%s' on type '%s'.", x.Name, s.EntityType)
		}
		return f.Type, &f, nil
	case *Literal:
		switch x.Kind {
		case LitString:
			return TString, nil, nil
		case LitDateTime:
			return TDateTime, nil, nil
		case LitNumber:
			return TInt, nil, nil
		case LitBool:
			return TBool, nil, nil
		default:
			return tNull, nil, nil
		}
	case *Not:
		t, _, err := s.typeOf(x.X)
		if err != nil {
			return 0, nil, err
		}
		if t != TBool {
			return 0, nil, semErr("The operand for a unary operator of kind 'Not' is not of type 'Edm.Boolean'.")
		}
		return TBool, nil, nil
	case *Call:
		return s.typeOfCall(x)
	case *Binary:
		lt, lf, err := s.typeOf(x.L)
		if err != nil {
			return 0, nil, err
		}
		rt, rf, err := s.typeOf(x.R)
		if err != nil {
			return 0, nil, err
		}
		if isLogical(x.Op) {
			if lt != TBool || rt != TBool {
				return 0, nil, semErr("A binary operator with incompatible types was detected. Found operand types '%s' and '%s' for operator kind '%s'.", lt.edm(), rt.edm(), opKind[x.Op])
			}
			return TBool, nil, nil
		}
		if err := checkComparison(x, lt, lf, rt, rf); err != nil {
			return 0, nil, err
		}
		return TBool, nil, nil
	}
	return 0, nil, semErr("unsupported expression")
}

func checkComparison(x *Binary, lt Type, lf *Field, rt Type, rf *Field) error {
	incompatible := semErr("A binary operator with incompatible types was detected. Found operand types '%s' and '%s' for operator kind '%s'.", lt.edm(), rt.edm(), opKind[x.Op])
	// null compares (eq/ne) with anything nullable.
	if lt == tNull || rt == tNull {
		other, of := rt, rf
		if rt == tNull {
			other, of = lt, lf
		}
		if other == tNull {
			return nil
		}
		if of != nil && !of.Nullable {
			return semErr("The property is not nullable; it cannot be compared with null for operator kind '%s'.", opKind[x.Op])
		}
		return nil
	}
	// enum vs string literal: the literal must be a member.
	if lt == TEnum || rt == TEnum {
		if lt == TEnum && rt == TEnum {
			return nil
		}
		ef, other := lf, x.R
		if rt == TEnum {
			ef, other = rf, x.L
		}
		lit, ok := other.(*Literal)
		if !ok || lit.Kind != LitString {
			return incompatible
		}
		if !slices.Contains(ef.Members, lit.Str) {
			return semErr("The string '%s' is not a valid enumeration type constant.", lit.Str)
		}
		return nil
	}
	if lt != rt {
		return incompatible
	}
	if lt == TBool && x.Op != "eq" && x.Op != "ne" {
		return incompatible
	}
	return nil
}

func (s *Schema) typeOfCall(c *Call) (Type, *Field, error) {
	name := c.Name
	unknown := semErr("An unknown function with name '%s' was found. This may also be a function import or a key lookup on a navigation property, which is not allowed.", name)
	if !s.Functions {
		return 0, nil, unknown
	}
	var want []Type
	var ret Type
	switch name {
	case "contains", "startswith", "endswith":
		want, ret = []Type{TString, TString}, TBool
	case "tolower", "toupper":
		want, ret = []Type{TString}, TString
	default:
		return 0, nil, unknown
	}
	if len(c.Args) != len(want) {
		return 0, nil, semErr("No function signature for the function with name '%s' matches the specified arguments.", name)
	}
	for i, a := range c.Args {
		t, _, err := s.typeOf(a)
		if err != nil {
			return 0, nil, err
		}
		if t == TEnum {
			t = TString
		}
		if t != want[i] {
			return 0, nil, semErr("No function signature for the function with name '%s' matches the specified arguments.", name)
		}
	}
	return ret, nil, nil
}

// Value is the value of a property of one item.
type Value struct {
	Null bool
	Str  string
	Time time.Time
	Num  float64
	Bool bool
}

// Eval evaluates a checked expression for one item; get returns the value of a property path.
func Eval(e Expr, s *Schema, get func(path string) Value) bool {
	v, _, _ := eval(e, s, get)
	return v.Bool
}

func eval(e Expr, s *Schema, get func(string) Value) (Value, Type, *Field) {
	switch x := e.(type) {
	case *Path:
		f := s.Fields[x.Name]
		return get(x.Name), f.Type, &f
	case *Literal:
		switch x.Kind {
		case LitString:
			return Value{Str: x.Str}, TString, nil
		case LitDateTime:
			return Value{Time: x.Time}, TDateTime, nil
		case LitNumber:
			return Value{Num: x.Num}, TInt, nil
		case LitBool:
			return Value{Bool: x.Bool}, TBool, nil
		default:
			return Value{Null: true}, tNull, nil
		}
	case *Not:
		v, _, _ := eval(x.X, s, get)
		return Value{Bool: !v.Bool}, TBool, nil
	case *Call:
		args := make([]Value, len(x.Args))
		for i, a := range x.Args {
			args[i], _, _ = eval(a, s, get)
		}
		switch x.Name {
		case "tolower":
			return Value{Str: strings.ToLower(args[0].Str), Null: args[0].Null}, TString, nil
		case "toupper":
			return Value{Str: strings.ToUpper(args[0].Str), Null: args[0].Null}, TString, nil
		case "contains":
			return Value{Bool: !args[0].Null && strings.Contains(args[0].Str, args[1].Str)}, TBool, nil
		case "startswith":
			return Value{Bool: !args[0].Null && strings.HasPrefix(args[0].Str, args[1].Str)}, TBool, nil
		case "endswith":
			return Value{Bool: !args[0].Null && strings.HasSuffix(args[0].Str, args[1].Str)}, TBool, nil
		}
		return Value{}, TBool, nil
	case *Binary:
		switch x.Op {
		case "and":
			if l, _, _ := eval(x.L, s, get); !l.Bool {
				return Value{}, TBool, nil
			}
			r, _, _ := eval(x.R, s, get)
			return Value{Bool: r.Bool}, TBool, nil
		case "or":
			if l, _, _ := eval(x.L, s, get); l.Bool {
				return Value{Bool: true}, TBool, nil
			}
			r, _, _ := eval(x.R, s, get)
			return Value{Bool: r.Bool}, TBool, nil
		}
		l, lt, lf := eval(x.L, s, get)
		r, rt, rf := eval(x.R, s, get)
		t, f := lt, lf
		if f == nil {
			f = rf
		}
		if t == tNull || (rt == TEnum) {
			t = rt
		}
		return Value{Bool: compare(x.Op, t, f, l, r)}, TBool, nil
	}
	return Value{}, 0, nil
}

func compare(op string, t Type, f *Field, l, r Value) bool {
	if l.Null || r.Null {
		switch op {
		case "eq":
			return l.Null && r.Null
		case "ne":
			return l.Null != r.Null
		default:
			return false
		}
	}
	var c int
	switch t {
	case TEnum:
		c = indexOf(f.Members, l.Str) - indexOf(f.Members, r.Str)
	case TDateTime:
		c = l.Time.Compare(r.Time)
	case TInt:
		c = cmpFloat(l.Num, r.Num)
	case TBool:
		if l.Bool != r.Bool {
			c = 1
		}
	default:
		if f != nil && f.FoldCase {
			c = strings.Compare(strings.ToLower(l.Str), strings.ToLower(r.Str))
		} else {
			c = strings.Compare(l.Str, r.Str)
		}
	}
	switch op {
	case "eq":
		return c == 0
	case "ne":
		return c != 0
	case "gt":
		return c > 0
	case "ge":
		return c >= 0
	case "lt":
		return c < 0
	default: // le
		return c <= 0
	}
}

func indexOf(members []string, s string) int {
	for i, m := range members {
		if m == s {
			return i
		}
	}
	return -1
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
