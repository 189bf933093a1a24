package graph

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/socsync/socsync/internal/incident"
)

// checkEnum fails unless v is empty, a known hub value, or a foreign value of Graph.
func checkEnum[H ~string](t *testing.T, field string, v H, known []H, flags []string) {
	t.Helper()
	switch {
	case v == "" || slices.Contains(known, v):
	case incident.IsForeign(v):
		if sys, _, _ := incident.ForeignParts(v); sys != incident.Graph {
			t.Errorf("%s %q is foreign to another system than graph", field, v)
		}
		if !slices.Contains(flags, FlagUnknownEnum+field) {
			t.Errorf("%s %q is foreign but not flagged (flags %v)", field, v, flags)
		}
	default:
		t.Errorf("%s %q is neither a hub value nor a foreign value", field, v)
	}
}

// Arbitrary JSON never panics the normaliser, and what it returns holds only hub or foreign
// enum values, UTC times, and flags for every foreign value.
func FuzzNormalizeGraphIncident(f *testing.F) {
	for _, name := range []string{"graph_v1_list_incidents_response_2026.json", "graph_v1_list_incidents_expand_alerts_response_2022.json"} {
		b, err := os.ReadFile(samplesDir + "/" + name)
		if err != nil {
			f.Fatalf("reference sample %s: %v", name, err)
		}
		var env struct{ Value []json.RawMessage }
		if err := json.Unmarshal(b, &env); err != nil {
			f.Fatal(err)
		}
		for _, v := range env.Value {
			f.Add([]byte(v))
		}
	}
	for _, name := range []string{"testdata/input/odd_incident.json"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"id":"1","status":"redirected","redirectIncidentId":"2","alerts":[{"id":"a","status":"x"}]}`))
	f.Add([]byte(`{"id":"1","lastUpdateDateTime":"2026-01-01T00:00:00-12:00","assignedTo":"graph:x"}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`[]`))

	n := goldenNormalizer()
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := n.Incident(data)
		if err != nil {
			if o.ExternalID != "" {
				t.Errorf("an error came with an observation: %v", err)
			}
			return
		}
		if o.System != incident.Graph || strings.TrimSpace(o.ExternalID) == "" {
			t.Errorf("system %q, id %q", o.System, o.ExternalID)
		}
		checkEnum(t, "status", o.Status, incident.Statuses, o.Flags)
		checkEnum(t, "severity", o.Severity, incident.Severities, o.Flags)
		checkEnum(t, "classification", o.Classification, incident.Classifications, o.Flags)
		checkEnum(t, "determination", o.Determination, incident.Determinations, o.Flags)
		if o.ClassificationReason != "" {
			t.Errorf("Graph has no classification reason, got %q", o.ClassificationReason)
		}
		for _, a := range o.Alerts {
			checkEnum(t, "alerts.status", a.Status, incident.AlertStatuses, o.Flags)
			checkEnum(t, "alerts.severity", a.Severity, incident.Severities, o.Flags)
			if a.RemoteID == "" {
				t.Error("an alert without id")
			}
		}
		for _, tm := range []struct {
			name string
			loc  string
		}{{"created", o.CreatedAt.Location().String()}, {"updated", o.UpdatedAt.Location().String()}} {
			if tm.loc != "UTC" {
				t.Errorf("%s time in %s", tm.name, tm.loc)
			}
		}
		if o.AlertCount != len(o.Alerts) || o.CommentCount != len(o.Comments) {
			t.Errorf("counts %d/%d for %d alerts, %d comments", o.AlertCount, o.CommentCount, len(o.Alerts), len(o.Comments))
		}
	})
}
