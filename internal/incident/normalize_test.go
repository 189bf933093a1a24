package incident

import (
	"slices"
	"testing"
)

func TestEqualText_IgnoresWhitespaceTheRemotesRewrite(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"Confirmed phishing", "  Confirmed   phishing\t", true},
		{"line one\r\nline two", "line one\nline two", true},
		{"a b", "ab", false},
		{"Case", "case", false}, // free text keeps its case
	}
	for _, tt := range tests {
		if got := EqualText(tt.a, tt.b); got != tt.want {
			t.Errorf("EqualText(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestNormalizeTags_OrderCaseAndDuplicatesDoNotMatter(t *testing.T) {
	got := NormalizeTags([]string{" beta", "Alpha", "alpha", "", "Gamma ", "BETA"})
	want := []string{"Alpha", "beta", "Gamma"}
	if !slices.Equal(got, want) {
		t.Errorf("NormalizeTags = %q, want %q", got, want)
	}
	if !EqualTags([]string{"B", "a"}, []string{"A", "b", "a"}) {
		t.Error("tag lists differing in order, case and duplicates must be equal")
	}
	if EqualTags([]string{"a"}, []string{"a", "b"}) {
		t.Error("different tag sets compared equal")
	}
	if !EqualTags(nil, []string{}) {
		t.Error("nil and empty tags must be equal")
	}
}

func TestLabels_AutoAssignedLabelsAreNotTagsAndSurviveWrites(t *testing.T) {
	current := []Label{{Name: "Redirected", Type: "AutoAssigned"}, {Name: "old", Type: "User"}}
	if got := TagsFromLabels(current); !slices.Equal(got, []string{"old"}) {
		t.Errorf("TagsFromLabels = %q, want [old]", got)
	}
	got := LabelsWithTags(current, []string{"new", "New "})
	want := []Label{{Name: "Redirected", Type: "AutoAssigned"}, {Name: "new", Type: "User"}}
	if !slices.Equal(got, want) {
		t.Errorf("LabelsWithTags = %v, want %v", got, want)
	}
}

func TestOwners_MapBothWaysAndRefuseAmbiguity(t *testing.T) {
	o, err := NewOwners(map[string]string{"Ana@Contoso.com": "2046FEEA-040d-4a46-9e2b-91c2941bfa70"})
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := o.ObjectID("ana@contoso.com "); !ok || id != "2046feea-040d-4a46-9e2b-91c2941bfa70" {
		t.Errorf("ObjectID = %q, %v", id, ok)
	}
	if _, err := NewOwners(map[string]string{"a@x": "1", "b@x": "1"}); err == nil {
		t.Error("two owners with one object id must be refused")
	}
	if _, err := NewOwners(map[string]string{"a@x": ""}); err == nil {
		t.Error("an owner without an object id must be refused")
	}

	tests := []struct {
		name                  string
		upn, email, objectID  string
		want                  string
		toGraphOK, toSentinel bool
	}{
		{"upn filled in by the service", "Ana@contoso.com", "", "2046feea-040d-4a46-9e2b-91c2941bfa70", "ana@contoso.com", true, true},
		{"object id only, mapped", "", "", "2046FEEA-040d-4a46-9e2b-91c2941bfa70", "ana@contoso.com", true, true},
		{"e-mail only", "", "Bob@Contoso.com", "", "bob@contoso.com", true, false},
		{"unmapped object id stays foreign", "", "", "11111111-2222-3333-4444-555555555555", "sentinel:11111111-2222-3333-4444-555555555555", false, true},
		{"unassigned", "", "", "", "", true, true},
	}
	for _, tt := range tests {
		got := OwnerFromSentinel(tt.upn, tt.email, tt.objectID, o)
		if got != tt.want {
			t.Errorf("%s: OwnerFromSentinel = %q, want %q", tt.name, got, tt.want)
		}
		if _, ok := OwnerToGraph(got); ok != tt.toGraphOK {
			t.Errorf("%s: OwnerToGraph(%q) ok = %v, want %v", tt.name, got, ok, tt.toGraphOK)
		}
		if _, _, ok := OwnerToSentinel(got, o); ok != tt.toSentinel {
			t.Errorf("%s: OwnerToSentinel(%q) ok = %v, want %v", tt.name, got, ok, tt.toSentinel)
		}
	}
}

func TestOwnerFromGraph_FreeTextRoundTrips(t *testing.T) {
	for _, raw := range []string{"admin@contoso.com", "graph:odd", "sentinel:odd", ""} {
		back, ok := OwnerToGraph(OwnerFromGraph(raw))
		if !ok || back != raw {
			t.Errorf("assignedTo %q → %q → %q (ok=%v)", raw, OwnerFromGraph(raw), back, ok)
		}
	}
}
