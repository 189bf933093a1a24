package sentinel

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"github.com/socsync/socsync/internal/incident"
)

// sentinelWithOwner is an incident payload as the service sends it, with the given owner and
// labels objects.
func sentinelWithOwner(owner, labels string) []byte {
	return []byte(fmt.Sprintf(`{"id":"/subscriptions/s/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/w/providers/Microsoft.SecurityInsights/incidents/n1",
"name":"n1","type":"Microsoft.SecurityInsights/incidents","etag":"\"7\"",
"properties":{"title":"t","severity":"Medium","status":"Active","owner":%s,"labels":%s,
"createdTimeUtc":"2026-03-01T10:00:00Z","lastModifiedTimeUtc":"2026-03-01T11:00:00Z","incidentNumber":3,"providerName":"Azure Sentinel",
"additionalData":{"alertsCount":0,"bookmarksCount":0,"commentsCount":0,"alertProductNames":[],"tactics":[]}}}`, owner, labels))
}

// putOwnerAndLabels returns the owner object (nil when absent) and labels a PUT of inc would send.
func putOwnerAndLabels(t *testing.T, inc Incident) (owner map[string]any, labels []any) {
	t.Helper()
	b, err := inc.putBody()
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Properties map[string]any `json:"properties"`
	}
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatal(err)
	}
	owner, _ = body.Properties["owner"].(map[string]any)
	labels, _ = body.Properties["labels"].([]any)
	return owner, labels
}

// Every ownerType of the contract (Unknown, User, Group), and one socsync does not know, is
// read into the hub owner it stands for, and a write-back that does not change the owner sends
// the owner exactly as it came (an unassigned one not at all).
func TestOwnerType_EveryOwnerTypeRoundTripsThroughAWriteBack(t *testing.T) {
	const groupID = "33333333-3333-4333-8333-333333333333"
	owners := testOwners(t)
	tests := []struct {
		name      string
		owner     string // the payload's owner object
		hubOwner  string // the hub owner it is read as
		wantOwner map[string]any
	}{
		{"Unknown: unassigned", `{"objectId":null,"email":null,"assignedTo":null,"userPrincipalName":null,"ownerType":"Unknown"}`,
			"", nil},
		{"User", `{"objectId":"` + aliceID + `","email":"Alice@contoso.com","assignedTo":"Alice","userPrincipalName":"Alice@Contoso.com","ownerType":"User"}`,
			aliceUPN, map[string]any{"objectId": aliceID, "email": "Alice@contoso.com", "assignedTo": "Alice", "userPrincipalName": "Alice@Contoso.com", "ownerType": "User"}},
		{"Group", `{"objectId":"` + groupID + `","email":null,"assignedTo":"SOC Tier 2","userPrincipalName":null,"ownerType":"Group"}`,
			"sentinel:" + groupID, map[string]any{"objectId": groupID, "assignedTo": "SOC Tier 2", "ownerType": "Group"}},
		{"a type socsync does not know", `{"objectId":"` + bobID + `","assignedTo":"Automation","ownerType":"ServicePrincipal"}`,
			"sentinel:" + bobID, map[string]any{"objectId": bobID, "assignedTo": "Automation", "ownerType": "ServicePrincipal"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obs, inc, err := Normalizer{Owners: owners}.Incident(sentinelWithOwner(tt.owner, `[]`))
			if err != nil {
				t.Fatal(err)
			}
			if obs.Owner != tt.hubOwner {
				t.Errorf("hub owner = %q, want %q", obs.Owner, tt.hubOwner)
			}
			if id, _, ok := incident.OwnerToSentinel(obs.Owner, owners); !ok || (tt.hubOwner != "" && id == "") {
				t.Errorf("the hub owner %q cannot be written back to Sentinel (id %q, ok %v)", obs.Owner, id, ok)
			}
			high := incident.SeverityHigh
			if un := Apply(&inc, Changes{Severity: &high}, owners); len(un) != 0 {
				t.Fatalf("Apply: %v", un)
			}
			got, _ := putOwnerAndLabels(t, inc)
			if !reflect.DeepEqual(got, tt.wantOwner) {
				t.Errorf("PUT owner = %v\nwant %v (as it came)", got, tt.wantOwner)
			}
		})
	}
}

// Labels of every labelType survive a write-back: a tag edit keeps the AutoAssigned label and
// one of a type socsync does not know as they came, and rewrites only the user labels.
func TestLabelType_EveryLabelTypeSurvivesAWriteBack(t *testing.T) {
	labels := `[{"labelName":"ir-1","labelType":"User"},{"labelName":"Redirected","labelType":"AutoAssigned"},{"labelName":"Fusion","labelType":"System"}]`
	obs, inc, err := Normalizer{}.Incident(sentinelWithOwner(`{"ownerType":"Unknown"}`, labels))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(obs.Tags, []string{"ir-1"}) {
		t.Errorf("tags = %q, want only the User label", obs.Tags)
	}
	// Unchanged tags: the labels go back as they came.
	high := incident.SeverityHigh
	Apply(&inc, Changes{Severity: &high}, incident.Owners{})
	_, got := putOwnerAndLabels(t, inc)
	var want []any
	json.Unmarshal([]byte(labels), &want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("PUT labels = %v\nwant %v", got, want)
	}
	// A tag edit rewrites the User labels only.
	tags := []string{"ir-2"}
	Apply(&inc, Changes{Tags: &tags}, incident.Owners{})
	_, got = putOwnerAndLabels(t, inc)
	json.Unmarshal([]byte(`[{"labelName":"Redirected","labelType":"AutoAssigned"},{"labelName":"Fusion","labelType":"System"},{"labelName":"ir-2","labelType":"User"}]`), &want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("PUT labels after a tag edit = %v\nwant %v", got, want)
	}
}
