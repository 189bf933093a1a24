package odata

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

var testSchema = &Schema{
	EntityType: "microsoft.graph.security.incident",
	Fields: map[string]Field{
		"status":                      {Type: TEnum, Members: []string{"active", "resolved", "inProgress", "redirected", "unknownFutureValue"}},
		"severity":                    {Type: TEnum, Members: []string{"unknown", "informational", "low", "medium", "high", "unknownFutureValue"}},
		"assignedTo":                  {Type: TString, Nullable: true, FoldCase: true},
		"createdDateTime":             {Type: TDateTime},
		"properties/incidentNumber":   {Type: TInt},
		"properties/owner/assignedTo": {Type: TString, Nullable: true},
		"properties/title":            {Type: TString},
	},
	Functions: true,
}

type item map[string]Value

func (it item) get(p string) Value { return it[p] }

func TestParse_PrintsCanonicalForm(t *testing.T) {
	cases := []struct{ in, want string }{
		{"status eq 'active'", "status eq 'active'"},
		{"status eq 'active' and severity eq 'high' or assignedTo eq null",
			"(status eq 'active' and severity eq 'high') or assignedTo eq null"},
		{"status eq 'active' and (severity eq 'high' or assignedTo eq null)",
			"status eq 'active' and (severity eq 'high' or assignedTo eq null)"},
		{"createdDateTime ge 2025-02-07T19:01:26Z and createdDateTime lt 2025-02-08T00:00:00.1234567+01:00",
			"createdDateTime ge 2025-02-07T19:01:26Z and createdDateTime lt 2025-02-08T00:00:00.1234567+01:00"},
		{"assignedTo eq 'O''Brien'", "assignedTo eq 'O''Brien'"},
		{"properties/incidentNumber eq 42", "properties/incidentNumber eq 42"},
		{"contains(tolower(properties/title),'x')", "contains(tolower(properties/title), 'x')"},
		{"not (status eq 'active')", "not (status eq 'active')"},
		{"((status eq 'active'))", "status eq 'active'"},
	}
	for _, c := range cases {
		e, err := Parse(c.in)
		if err != nil {
			t.Fatalf("Parse(%q): %v", c.in, err)
		}
		if got := e.String(); got != c.want {
			t.Errorf("Parse(%q).String() = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestParse_RejectsMalformedInputWithPosition(t *testing.T) {
	cases := []struct{ in, msg string }{
		{"status eq", "Syntax error at position 9 in 'status eq'."},
		{"status eq 'active", "There is an unterminated string literal at position 17 in 'status eq 'active'."},
		{"status eq 'a' and", "Syntax error at position 17 in 'status eq 'a' and'."},
		{"(status eq 'a'", "Syntax error at position 14 in '(status eq 'a''."},
		{"status == 'a'", "Syntax error at position 7 in 'status == 'a''."},
		{"", "The $filter query option requires an expression."},
		{"status eq 'a')", "Syntax error at position 13 in 'status eq 'a')'."},
		{"createdDateTime ge 2025-13-45T99:00:00Z", "The DateTimeOffset text '2025-13-45T99:00:00Z' should be in format 'yyyy-mm-ddThh:mm:ss('.'s+)?(zzzzzz)?' and each field value is within valid range."},
	}
	for _, c := range cases {
		_, err := Parse(c.in)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Fatalf("Parse(%q) err = %v, want SyntaxError", c.in, err)
		}
		if err.Error() != c.msg {
			t.Errorf("Parse(%q) = %q, want %q", c.in, err.Error(), c.msg)
		}
	}
}

func TestParse_DeepNestingIsRejectedNotOverflowed(t *testing.T) {
	in := strings.Repeat("(", 10000) + "status eq 'a'" + strings.Repeat(")", 10000)
	if _, err := Parse(in); err == nil {
		t.Fatal("want error for deep nesting")
	}
	in = strings.Repeat("not ", 10000) + "status eq 'a'"
	if _, err := Parse(in); err == nil {
		t.Fatal("want error for deep not chain")
	}
}

func TestCheck_ReportsODataStyleErrors(t *testing.T) {
	cases := []struct{ in, msg string }{
		{"displayName eq 'x'", "Could not find a property named 'displayName' on type 'microsoft.graph.security.incident'."},
		{"status eq 'Active'", "The string 'Active' is not a valid enumeration type constant."},
		{"createdDateTime ge '2025-01-01T00:00:00Z'", "A binary operator with incompatible types was detected. Found operand types 'Edm.DateTimeOffset' and 'Edm.String' for operator kind 'GreaterThanOrEqual'."},
		{"status", "The $filter expression must evaluate to a single boolean value."},
		{"status eq 'active' and 'x'", "A binary operator with incompatible types was detected. Found operand types 'Edm.Boolean' and 'Edm.String' for operator kind 'And'."},
		{"createdDateTime eq null", "The property is not nullable; it cannot be compared with null for operator kind 'Equal'."},
		{"foo(status)", "An unknown function with name 'foo' was found. This may also be a function import or a key lookup on a navigation property, which is not allowed."},
		{"properties/incidentNumber eq '42'", "A binary operator with incompatible types was detected. Found operand types 'Edm.Int32' and 'Edm.String' for operator kind 'Equal'."},
	}
	for _, c := range cases {
		e, err := Parse(c.in)
		if err != nil {
			t.Fatalf("Parse(%q): %v", c.in, err)
		}
		err = Check(e, testSchema)
		if err == nil || err.Error() != c.msg {
			t.Errorf("Check(%q) = %v, want %q", c.in, err, c.msg)
		}
	}
}

func TestEval_MatchesItems(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	it := item{
		"status":                      {Str: "active"},
		"severity":                    {Str: "medium"},
		"assignedTo":                  {Null: true},
		"createdDateTime":             {Time: t0},
		"properties/incidentNumber":   {Num: 42},
		"properties/owner/assignedTo": {Str: "Alex"},
		"properties/title":            {Str: "Suspicious PowerShell"},
	}
	cases := []struct {
		in   string
		want bool
	}{
		{"status eq 'active'", true},
		{"status ne 'active'", false},
		{"assignedTo eq null", true},
		{"assignedTo ne null", false},
		{"assignedTo eq 'x'", false},
		{"severity ge 'medium'", true},
		{"severity gt 'medium'", false},
		{"createdDateTime ge 2026-01-02T03:04:05Z", true},
		{"createdDateTime gt 2026-01-02T03:04:05Z", false},
		{"createdDateTime lt 2026-01-02T04:04:05+01:00", false},
		{"createdDateTime le 2026-01-02T04:04:05+01:00", true},
		{"properties/incidentNumber eq 42", true},
		{"properties/incidentNumber lt 42", false},
		{"status eq 'resolved' or (severity eq 'medium' and assignedTo eq null)", true},
		{"not (status eq 'active')", false},
		{"contains(tolower(properties/title), 'powershell')", true},
		{"startswith(properties/title, 'Sus')", true},
		{"true eq false", false},
		{"true eq true", true},
	}
	for _, c := range cases {
		e, err := Parse(c.in)
		if err != nil {
			t.Fatalf("Parse(%q): %v", c.in, err)
		}
		if err := Check(e, testSchema); err != nil {
			t.Fatalf("Check(%q): %v", c.in, err)
		}
		if got := Eval(e, testSchema, it.get); got != c.want {
			t.Errorf("Eval(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestParseOrderBy(t *testing.T) {
	got, err := ParseOrderBy("createdDateTime desc, status", testSchema)
	if err != nil {
		t.Fatal(err)
	}
	want := []OrderTerm{{Path: "createdDateTime", Desc: true}, {Path: "status"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v want %+v", got, want)
	}
	for _, bad := range []string{"nope desc", "createdDateTime sideways", "", "a b c"} {
		if _, err := ParseOrderBy(bad, testSchema); err == nil {
			t.Errorf("ParseOrderBy(%q): want error", bad)
		}
	}
}

func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{
		"status eq 'active'",
		"assignedTo eq null and (severity eq 'high' or status ne 'redirected')",
		"createdDateTime ge 2025-02-07T19:01:26Z and createdDateTime lt 2025-02-08T19:01:26.5+02:00",
		"properties/lastModifiedTimeUtc ge 2023-05-22T10:09:26Z",
		"contains(tolower(properties/title), 'o''x')",
		"not (properties/incidentNumber eq -42.5)",
		"((a eq b))", "a eq", "'", "(((", "x(y, z)",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		e, err := Parse(in)
		if err != nil {
			return
		}
		_ = Check(e, testSchema)
		printed := e.String()
		e2, err := Parse(printed)
		if err != nil {
			t.Fatalf("reparse of %q (from %q) failed: %v", printed, in, err)
		}
		if again := e2.String(); again != printed {
			t.Fatalf("print not stable: %q -> %q (from %q)", printed, again, in)
		}
		if !reflect.DeepEqual(e, e2) {
			t.Fatalf("tree changed after print/parse: %q (from %q)", printed, in)
		}
	})
}
