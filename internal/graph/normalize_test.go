package graph

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/socsync/socsync/internal/incident"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// samplesDir holds the reference payloads (shared/ lies beside the repository).
const samplesDir = "../../../shared/reference/api-samples"

// goldenNow is after every sample's timestamps, so only deliberately odd inputs are flagged.
var goldenNow = time.Date(2026, 3, 20, 0, 0, 0, 0, time.UTC)

func goldenNormalizer() Normalizer {
	return Normalizer{Now: func() time.Time { return goldenNow }}
}

// readSample reads a reference sample; a missing sample fails the test (never skips it).
func readSample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(samplesDir, name))
	if err != nil {
		t.Fatalf("reference sample %s: %v", name, err)
	}
	return b
}

// goldenObservation is an observation as the golden files show it, alerts and comments
// included (Observation leaves them out of its JSON).
type goldenObservation struct {
	incident.Observation
	Alerts   []goldenAlert            `json:"alerts"`
	Comments []incident.RemoteComment `json:"comments"`
	RawKept  bool                     `json:"raw_kept"`
}

type goldenAlert struct {
	incident.Alert
	RawKept bool `json:"raw_kept"`
}

func golden(o incident.Observation, raw []byte) goldenObservation {
	g := goldenObservation{Observation: o, Comments: o.Comments, RawKept: bytes.Equal(o.Raw, raw)}
	if o.Alerts != nil {
		g.Alerts = []goldenAlert{}
	}
	for _, a := range o.Alerts {
		g.Alerts = append(g.Alerts, goldenAlert{Alert: a.Alert, RawKept: len(a.Raw) > 0 && json.Valid(a.Raw)})
	}
	return g
}

type goldenPage struct {
	Incidents []goldenObservation `json:"incidents"`
	Bad       []goldenBad         `json:"bad"`
	Next      string              `json:"next"`
}

type goldenBad struct {
	ID  string `json:"id"`
	Err string `json:"error"`
}

func goldenOfPage(p Page, raws []json.RawMessage) goldenPage {
	g := goldenPage{Incidents: []goldenObservation{}, Bad: []goldenBad{}, Next: p.Next}
	for _, o := range p.Incidents {
		var raw []byte
		for _, r := range raws {
			if idOf(r) == o.ExternalID {
				raw = r
			}
		}
		g.Incidents = append(g.Incidents, golden(o, raw))
	}
	for _, b := range p.Bad {
		g.Bad = append(g.Bad, goldenBad{ID: b.ID, Err: b.Err.Error()})
	}
	return g
}

func pageItems(t *testing.T, body []byte) []json.RawMessage {
	t.Helper()
	var env struct {
		Value []json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatal(err)
	}
	return env.Value
}

// checkGolden compares v, as indented JSON, with testdata/golden/name (rewritten with -update).
func checkGolden(t *testing.T, name string, v any) {
	t.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("golden file: %v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", name, got, want)
	}
}

func errorGolden(err error) map[string]string {
	if err == nil {
		return map[string]string{"error": ""}
	}
	return map[string]string{"error": err.Error()}
}

// errorFields is an *Error as the golden files show it.
func errorFields(e *Error) map[string]any {
	return map[string]any{"status": e.StatusCode, "code": e.Code, "message": e.Message, "request_id": e.RequestID,
		"retry_after": e.RetryAfter.String(), "error": e.Error(),
		"is_bad_request": errors.Is(e, ErrBadRequest), "is_throttled": errors.Is(e, ErrThrottled)}
}

// Every Graph sample of the reference set decodes to its golden form: list pages (with and
// without expanded alerts), the PATCH answer, the comment POST answer, the resource's JSON
// representation (placeholders, so an error), error bodies and the 429 response.
func TestGolden_GraphSamplesDecodeToObservations(t *testing.T) {
	n := goldenNormalizer()
	pages := []struct{ sample, golden string }{
		{"graph_v1_list_incidents_response_2026.json", "list_incidents_2026.golden.json"},
		{"graph_v1_list_incidents_expand_alerts_response_2022.json", "list_incidents_expand_alerts_2022.golden.json"},
	}
	for _, tc := range pages {
		t.Run(tc.sample, func(t *testing.T) {
			body := readSample(t, tc.sample)
			p, err := n.Page(body)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Bad) > 0 {
				t.Errorf("sample incidents refused: %v", p.Bad[0].Err)
			}
			checkGolden(t, tc.golden, goldenOfPage(p, pageItems(t, body)))
		})
	}
	singles := []struct{ sample, golden string }{
		{"graph_v1_update_incident_response_2026.json", "update_incident_response_2026.golden.json"},
		{"graph_v1_incident_resource_json_representation.json", "incident_resource_json_representation.golden.json"},
	}
	for _, tc := range singles {
		t.Run(tc.sample, func(t *testing.T) {
			body := readSample(t, tc.sample)
			o, err := n.Incident(body)
			if err != nil {
				checkGolden(t, tc.golden, errorGolden(err))
				return
			}
			checkGolden(t, tc.golden, golden(o, body))
		})
	}
	t.Run("graph_v1_post_incident_comment_response.json", func(t *testing.T) {
		cs, err := n.Comments(readSample(t, "graph_v1_post_incident_comment_response.json"))
		if err != nil {
			t.Fatal(err)
		}
		checkGolden(t, "post_incident_comment_response.golden.json", cs)
	})
	for _, tc := range []struct {
		sample, golden string
		status         int
	}{
		{"graph_v1_list_incidents_top100_error_400_observed.json", "error_top100_400.golden.json", 400},
		{"graph_error_response_example.json", "error_response_example.golden.json", 400},
	} {
		t.Run(tc.sample, func(t *testing.T) {
			checkGolden(t, tc.golden, errorFields(ParseError(tc.status, nil, readSample(t, tc.sample))))
		})
	}
	t.Run("graph_throttling_429_sample.http", func(t *testing.T) {
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(readSample(t, "graph_throttling_429_sample.http"))), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		checkGolden(t, "error_throttling_429.golden.json", errorFields(ParseError(resp.StatusCode, resp.Header, body)))
	})
}

// The documented PATCH and comment requests are what socsync sends for the same change (enum
// values compared case-insensitively: the documentation writes them in PascalCase, the service
// answers in camelCase and accepts both).
func TestGolden_GraphRequestSamplesMatchWhatSocsyncSends(t *testing.T) {
	p := Patch{
		Classification: Set(incident.ClassificationTruePositive),
		Determination:  Set(incident.DeterminationMultiStagedAttack),
		Tags:           Set([]string{"Demo"}),
	}
	got, err := p.body()
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	if err := json.Unmarshal(readSample(t, "graph_v1_update_incident_request.json"), &want); err != nil {
		t.Fatal(err)
	}
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(want)
	if !strings.EqualFold(string(gotJSON), string(wantJSON)) {
		t.Errorf("PATCH body %s, documented %s", gotJSON, wantJSON)
	}

	var doc map[string]any
	if err := json.Unmarshal(readSample(t, "graph_v1_post_incident_comment_request.json"), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["@odata.type"] != "microsoft.graph.security.alertComment" || doc["comment"] == nil || len(doc) != 2 {
		t.Errorf("the documented comment request changed shape: %v (AddComment sends @odata.type and comment)", doc)
	}
}

// Every Graph sample in the reference set is covered by the golden tests above (the Entra
// token samples belong to the credential code, not to this package).
func TestGolden_EveryGraphSampleIsCovered(t *testing.T) {
	covered := []string{
		"graph_v1_list_incidents_response_2026.json", "graph_v1_list_incidents_expand_alerts_response_2022.json",
		"graph_v1_update_incident_response_2026.json", "graph_v1_incident_resource_json_representation.json",
		"graph_v1_post_incident_comment_response.json", "graph_v1_list_incidents_top100_error_400_observed.json",
		"graph_error_response_example.json", "graph_throttling_429_sample.http",
		"graph_v1_update_incident_request.json", "graph_v1_post_incident_comment_request.json",
	}
	entries, err := os.ReadDir(samplesDir)
	if err != nil {
		t.Fatalf("reference samples: %v", err)
	}
	var found []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "graph_") {
			found = append(found, e.Name())
			if !slices.Contains(covered, e.Name()) {
				t.Errorf("sample %s has no golden test", e.Name())
			}
		}
	}
	for _, c := range covered {
		if !slices.Contains(found, c) {
			t.Errorf("sample %s is missing from %s", c, samplesDir)
		}
	}
}

// Inputs of our own for what the samples do not show: odd timestamps and enum values, and a
// page with poisoned incidents.
func TestGolden_OddAndMalformedPayloads(t *testing.T) {
	n := goldenNormalizer()
	n.TenantID = "cfcdbe43-297b-4c6b-ac7e-8d7f6befb514"
	raw, err := os.ReadFile("testdata/input/odd_incident.json")
	if err != nil {
		t.Fatal(err)
	}
	o, err := n.Incident(raw)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "odd_incident.golden.json", golden(o, raw))

	body, err := os.ReadFile("testdata/input/malformed_page.json")
	if err != nil {
		t.Fatal(err)
	}
	p, err := n.Page(body)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "malformed_page.golden.json", goldenOfPage(p, pageItems(t, body)))
}
