package incident

import (
	"encoding/json"
	"slices"
	"testing"
)

// Every labelType the contract lists (User, AutoAssigned), none, and one socsync does not know
// round-trip: decoded from Sentinel's JSON, turned into tags, and written back with the tags
// unchanged, each label keeps its name and type; only user labels are tags.
func TestLabels_EveryLabelTypeRoundTripsAndOnlyUserLabelsAreTags(t *testing.T) {
	tests := []struct {
		name  string
		label string // Sentinel's JSON
		tag   bool   // a hub tag
		back  Label  // the label written back when the tags are unchanged
	}{
		{"User", `{"labelName":"ir-42","labelType":"User"}`, true, Label{"ir-42", "User"}},
		{"AutoAssigned", `{"labelName":"Redirected","labelType":"AutoAssigned"}`, false, Label{"Redirected", "AutoAssigned"}},
		{"no type", `{"labelName":"legacy"}`, true, Label{"legacy", "User"}},
		{"User in other case", `{"labelName":"vip","labelType":"user"}`, true, Label{"vip", "User"}},
		{"AutoAssigned in other case", `{"labelName":"Auto","labelType":"autoassigned"}`, false, Label{"Auto", "autoassigned"}},
		{"a type socsync does not know", `{"labelName":"Fusion","labelType":"System"}`, false, Label{"Fusion", "System"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l Label
			if err := json.Unmarshal([]byte(tt.label), &l); err != nil {
				t.Fatal(err)
			}
			labels := []Label{l}
			tags := TagsFromLabels(labels)
			if got := slices.Contains(tags, l.Name); got != tt.tag {
				t.Errorf("TagsFromLabels(%s) = %q; a tag: %v, want %v", tt.label, tags, got, tt.tag)
			}
			back := LabelsWithTags(labels, tags)
			if !slices.Equal(back, []Label{tt.back}) {
				t.Errorf("LabelsWithTags(%v, %q) = %v, want [%v]", labels, tags, back, tt.back)
			}
			// A hub edit of the tags never drops or retypes a label that is not a tag.
			edited := LabelsWithTags(labels, []string{"new"})
			if !tt.tag && !slices.Contains(edited, tt.back) {
				t.Errorf("after a tag edit %v lost %v", edited, tt.back)
			}
			if tt.tag && HasLabel(edited, l.Name) {
				t.Errorf("after the tag %q was removed in the hub, the labels still have it: %v", l.Name, edited)
			}
			b, err := json.Marshal(back)
			if err != nil {
				t.Fatal(err)
			}
			var again []Label
			if err := json.Unmarshal(b, &again); err != nil || !slices.Equal(again, back) {
				t.Errorf("labels %s decode as %v, %v; want %v", b, again, err, back)
			}
		})
	}
}
