package sentinel

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/socsync/socsync/internal/incident"
)

// checkEnum fails unless v is empty, a known hub value, or a foreign value of Sentinel.
func checkEnum[H ~string](t *testing.T, field string, v H, known []H, flags []string) {
	t.Helper()
	switch {
	case v == "" || slices.Contains(known, v):
	case incident.IsForeign(v):
		if sys, _, _ := incident.ForeignParts(v); sys != incident.Sentinel {
			t.Errorf("%s %q is foreign to another system than sentinel", field, v)
		}
		if !slices.Contains(flags, FlagUnknownEnum+field) {
			t.Errorf("%s %q is foreign but not flagged (flags %v)", field, v, flags)
		}
	default:
		t.Errorf("%s %q is neither a hub value nor a foreign value", field, v)
	}
}

// Arbitrary JSON never panics the normaliser; what it returns holds only hub or foreign enum
// values, UTC times, and flags for every foreign value; and the incident it decoded can be
// encoded for a PUT and decodes back to the same observation.
func FuzzNormalizeSentinelIncident(f *testing.F) {
	for _, name := range []string{"2025-12-01_GetIncidentById.json", "2025-12-01_CreateIncident.json"} {
		b, err := os.ReadFile(samplesDir + "/sentinel/" + name)
		if err != nil {
			f.Fatalf("reference sample %s: %v", name, err)
		}
		var s sample
		if err := json.Unmarshal(b, &s); err != nil {
			f.Fatal(err)
		}
		f.Add([]byte(s.Responses["200"].Body))
	}
	b, err := os.ReadFile("testdata/input/odd_incident.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"name":"x","properties":{"status":"Closed","labels":[{"labelName":"redirected","labelType":"AutoAssigned"}],"providerIncidentId":"7"}}`))
	f.Add([]byte(`{"name":"x","properties":{"owner":{"objectId":"sentinel:x"},"severity":"","classificationReason":"Other"}}`))
	f.Add([]byte(`{"name":"x","properties":null}`))
	f.Add([]byte(`"x"`))

	n := goldenNormalizer(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		o, inc, err := n.Incident(data)
		if err != nil {
			return
		}
		if o.System != incident.Sentinel || strings.TrimSpace(o.ExternalID) == "" {
			t.Errorf("system %q, id %q", o.System, o.ExternalID)
		}
		checkEnum(t, "status", o.Status, incident.Statuses, o.Flags)
		checkEnum(t, "severity", o.Severity, incident.Severities, o.Flags)
		checkEnum(t, "classification", o.Classification, incident.Classifications, o.Flags)
		checkEnum(t, "classificationReason", o.ClassificationReason, incident.Reasons, o.Flags)
		if o.Determination != "" {
			t.Errorf("Sentinel has no determination, got %q", o.Determination)
		}
		for _, tm := range []struct {
			name string
			loc  string
		}{{"created", o.CreatedAt.Location().String()}, {"updated", o.UpdatedAt.Location().String()}} {
			if tm.loc != "UTC" {
				t.Errorf("%s time in %s", tm.name, tm.loc)
			}
		}
		if o.MergedInto != "" && o.Status != incident.StatusMerged {
			t.Errorf("merged into %q with status %s", o.MergedInto, o.Status)
		}
		body, err := inc.putBody()
		if err != nil {
			t.Fatalf("PUT body: %v", err)
		}
		var back Incident
		if err := json.Unmarshal(body, &back); err != nil {
			t.Fatalf("PUT body does not decode: %v\n%s", err, body)
		}
		back.Name = inc.Name
		bo, err := n.Observe(back)
		if err != nil {
			return // read-only timestamps are not sent; nothing else may fail
		}
		if bo.Fields.Status != o.Fields.Status || bo.Severity != o.Severity || bo.Owner != o.Owner ||
			bo.Classification != o.Classification || bo.ClassificationReason != o.ClassificationReason ||
			!slices.Equal(bo.Tags, o.Tags) {
			t.Errorf("the PUT body changes the incident:\n%+v\n%+v", o.Fields, bo.Fields)
		}
	})
}
