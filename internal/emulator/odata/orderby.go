package odata

import (
	"fmt"
	"slices"
	"strings"
)

// OrderTerm is one key of an $orderby clause.
type OrderTerm struct {
	Path string
	Desc bool
}

// ParseOrderBy parses an $orderby value such as "properties/createdTimeUtc desc, name". Every
// path must be a field of s of a comparable type.
func ParseOrderBy(in string, s *Schema) ([]OrderTerm, error) {
	var terms []OrderTerm
	for _, part := range strings.Split(in, ",") {
		words := strings.Fields(part)
		if len(words) == 0 || len(words) > 2 {
			return nil, &SyntaxError{Input: in,
				Msg: fmt.Sprintf("Syntax error: character '%s' is not valid at position 0 in '%s'.", strings.TrimSpace(part), in)}
		}
		t := OrderTerm{Path: words[0]}
		if len(words) == 2 {
			switch words[1] {
			case "asc":
			case "desc":
				t.Desc = true
			default:
				return nil, &SyntaxError{Input: in,
					Msg: fmt.Sprintf("Syntax error at position %d in '%s'.", strings.Index(in, words[1]), in)}
			}
		}
		f, ok := s.Fields[t.Path]
		if !ok {
			return nil, semErr("Could not find a property named '%s' on type '%s'.", t.Path, s.EntityType)
		}
		if f.Type == TBool {
			return nil, semErr("The $orderby expression must evaluate to a single value of primitive type.")
		}
		terms = append(terms, t)
	}
	return terms, nil
}

// CompareValues orders two values of a field (nulls first), for sorting by an OrderTerm.
func CompareValues(f Field, a, b Value) int {
	switch {
	case a.Null && b.Null:
		return 0
	case a.Null:
		return -1
	case b.Null:
		return 1
	}
	switch f.Type {
	case TEnum:
		return indexOf(f.Members, a.Str) - indexOf(f.Members, b.Str)
	case TDateTime:
		return a.Time.Compare(b.Time)
	case TInt:
		return cmpFloat(a.Num, b.Num)
	default:
		if f.FoldCase {
			return strings.Compare(strings.ToLower(a.Str), strings.ToLower(b.Str))
		}
		return strings.Compare(a.Str, b.Str)
	}
}

// SortBy sorts items stably by the $orderby terms (value gives an item's value of a path),
// then by tie.
func SortBy[T any](items []T, terms []OrderTerm, s *Schema, value func(T, string) Value, tie func(a, b T) int) {
	slices.SortStableFunc(items, func(a, b T) int {
		for _, t := range terms {
			c := CompareValues(s.Fields[t.Path], value(a, t.Path), value(b, t.Path))
			if t.Desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return tie(a, b)
	})
}
