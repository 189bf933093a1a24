package sentinel

import (
	"slices"
	"testing"

	"github.com/socsync/socsync/internal/incident"
)

const (
	aliceID  = "11111111-1111-4111-8111-111111111111"
	aliceUPN = "alice@contoso.com"
	bobID    = "22222222-2222-4222-8222-222222222222"
)

func testOwners(t *testing.T) incident.Owners {
	t.Helper()
	o, err := incident.NewOwners(map[string]string{aliceUPN: aliceID})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// openIncident is an active incident owned by bob (not in the owner map), with a user label
// and a label the service assigned.
func openIncident() Incident {
	return Incident{Name: "n", ETag: `"1"`, Properties: IncidentProperties{
		Title: "t", Severity: "Medium", Status: "Active",
		Owner:  Owner{ObjectID: bobID, UserPrincipalName: "bob@contoso.com", Email: "bob@contoso.com", AssignedTo: "Bob"},
		Labels: []incident.Label{{Name: "old", Type: "User"}, {Name: "Redirected", Type: "AutoAssigned"}},
	}}
}

func TestApply(t *testing.T) {
	s, c := incident.StatusResolved, incident.ClassificationTruePositive
	for _, tc := range []struct {
		name    string
		start   func(*IncidentProperties)
		ch      Changes
		want    func(*IncidentProperties)
		skipped []string // fields refused
	}{
		{name: "nothing set changes nothing"},
		{name: "severity", ch: Changes{Severity: Set(incident.SeverityHigh)},
			want: func(p *IncidentProperties) { p.Severity = "High" }},
		{name: "a severity Sentinel has no value for is refused",
			ch: Changes{Severity: Set(incident.Foreign[incident.Severity](incident.Graph, "unknown"))}, skipped: []string{"severity"}},
		{name: "an owner with a configured object id is written by object id",
			ch:   Changes{Owner: Set(aliceUPN)},
			want: func(p *IncidentProperties) { p.Owner = Owner{ObjectID: aliceID, UserPrincipalName: aliceUPN} }},
		{name: "an owner without a configured object id is refused, never written as nobody",
			ch: Changes{Owner: Set("carol@contoso.com")}, skipped: []string{"owner"}},
		{name: "an owner from Graph's foreign values is refused",
			ch: Changes{Owner: Set(incident.Foreign[string](incident.Graph, "graph:odd"))}, skipped: []string{"owner"}},
		{name: "a foreign Sentinel owner is written back by its object id",
			ch:   Changes{Owner: Set(incident.Foreign[string](incident.Sentinel, "abcd"))},
			want: func(p *IncidentProperties) { p.Owner = Owner{ObjectID: "abcd"} }},
		{name: "the owner is cleared only when explicitly unassigned",
			ch:   Changes{Owner: Set("")},
			want: func(p *IncidentProperties) { p.Owner = Owner{} }},
		{name: "tags replace the user labels and keep the service's",
			ch: Changes{Tags: Set([]string{"b", "a", "A"})},
			want: func(p *IncidentProperties) {
				p.Labels = []incident.Label{{Name: "Redirected", Type: "AutoAssigned"}, {Name: "a", Type: "User"}, {Name: "b", Type: "User"}}
			}},
		{name: "closing with a classification picks its reason",
			ch: Changes{Status: Set(s), Classification: Set(c)},
			want: func(p *IncidentProperties) {
				p.Status, p.Classification, p.ClassificationReason = "Closed", "TruePositive", "SuspiciousActivity"
			}},
		{name: "closing as false positive takes the reason from the determination",
			ch: Changes{Status: Set(s), Classification: Set(incident.ClassificationFalsePositive),
				Determination: Set(incident.DeterminationNotEnoughDataToValidate)},
			want: func(p *IncidentProperties) {
				p.Status, p.Classification, p.ClassificationReason = "Closed", "FalsePositive", "InaccurateData"
			}},
		{name: "closing keeps a reason that fits",
			start: func(p *IncidentProperties) {
				p.Classification, p.ClassificationReason = "FalsePositive", "InaccurateData"
			},
			ch:   Changes{Status: Set(s)},
			want: func(p *IncidentProperties) { p.Status = "Closed" }},
		{name: "closing replaces a reason that does not fit",
			start: func(p *IncidentProperties) {
				p.Classification, p.ClassificationReason = "BenignPositive", "InaccurateData"
			},
			ch:   Changes{Status: Set(s)},
			want: func(p *IncidentProperties) { p.Status, p.ClassificationReason = "Closed", "SuspiciousButExpected" }},
		{name: "closing as undetermined needs no reason and drops one",
			start: func(p *IncidentProperties) { p.ClassificationReason = "SuspiciousActivity" },
			ch:    Changes{Status: Set(s), Classification: Set(incident.ClassificationUndetermined)},
			want: func(p *IncidentProperties) {
				p.Status, p.Classification, p.ClassificationReason = "Closed", "Undetermined", ""
			}},
		{name: "closing without any classification is refused and leaves the status",
			ch:   Changes{Status: Set(s), Severity: Set(incident.SeverityLow)},
			want: func(p *IncidentProperties) { p.Severity = "Low" }, skipped: []string{"status"}},
		{name: "merged closes the Sentinel incident",
			start: func(p *IncidentProperties) { p.Classification = "Undetermined" },
			ch:    Changes{Status: Set(incident.StatusMerged)},
			want:  func(p *IncidentProperties) { p.Status = "Closed" }},
		{name: "an explicit reason that fits is written",
			ch: Changes{Classification: Set(incident.ClassificationFalsePositive), ClassificationReason: Set(incident.ReasonInaccurateData)},
			want: func(p *IncidentProperties) {
				p.Classification, p.ClassificationReason = "FalsePositive", "InaccurateData"
			}},
		{name: "an explicit reason that does not fit is refused, and one that fits is picked",
			ch: Changes{Classification: Set(c), ClassificationReason: Set(incident.ReasonInaccurateData)},
			want: func(p *IncidentProperties) {
				p.Classification, p.ClassificationReason = "TruePositive", "SuspiciousActivity"
			}, skipped: []string{"classification_reason"}},
		{name: "a Graph-only status is refused",
			ch: Changes{Status: Set(incident.Foreign[incident.Status](incident.Graph, "awaitingAction"))}, skipped: []string{"status"}},
		{name: "reopening keeps the classification",
			start: func(p *IncidentProperties) {
				p.Status, p.Classification, p.ClassificationReason = "Closed", "TruePositive", "SuspiciousActivity"
			},
			ch:   Changes{Status: Set(incident.StatusActive)},
			want: func(p *IncidentProperties) { p.Status = "Active" }},
		{name: "the classification comment", ch: Changes{ClassificationComment: Set("why")},
			want: func(p *IncidentProperties) { p.ClassificationComment = "why" }},
		{name: "a foreign Sentinel reason is left alone",
			start: func(p *IncidentProperties) { p.Classification, p.ClassificationReason = "TruePositive", "SomethingNew" },
			ch:    Changes{Status: Set(s)},
			want:  func(p *IncidentProperties) { p.Status = "Closed" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inc := openIncident()
			if tc.start != nil {
				tc.start(&inc.Properties)
			}
			want := inc
			want.Properties.Labels = slices.Clone(inc.Properties.Labels)
			if tc.want != nil {
				tc.want(&want.Properties)
			}
			got := Apply(&inc, tc.ch, testOwners(t))
			var fields []string
			for _, u := range got {
				fields = append(fields, u.Field)
				if u.Reason == "" {
					t.Errorf("refused %s without a reason", u.Field)
				}
			}
			if !slices.Equal(fields, tc.skipped) {
				t.Errorf("refused %v, want %v", got, tc.skipped)
			}
			gotJSON, _ := inc.putBody()
			wantJSON, _ := want.putBody()
			if string(gotJSON) != string(wantJSON) {
				t.Errorf("incident\n%s\nwant\n%s", gotJSON, wantJSON)
			}
		})
	}
}

func TestChangesOf_WritesTheNamedFieldsOnly(t *testing.T) {
	v := incident.Fields{Status: incident.StatusResolved, Severity: incident.SeverityLow, Owner: "",
		Classification: incident.ClassificationFalsePositive, Determination: incident.DeterminationNotEnoughDataToValidate,
		Tags: []string{"x"}}
	ch, err := ChangesOf(v, "owner", "determination")
	if err != nil {
		t.Fatal(err)
	}
	if ch.Owner == nil || *ch.Owner != "" || ch.Status != nil || ch.Severity != nil || ch.Tags != nil {
		t.Errorf("changes %+v", ch)
	}
	// A determination alone still needs the classification to choose a reason by.
	if ch.Classification == nil || *ch.Classification != incident.ClassificationFalsePositive {
		t.Errorf("classification %v", ch.Classification)
	}
	if _, err := ChangesOf(v, "colour"); err == nil {
		t.Error("an unknown field was accepted")
	}
}
