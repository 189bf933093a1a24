package sentinel

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"net/url"
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

func goldenNormalizer(t testing.TB) Normalizer {
	owners, err := incident.NewOwners(map[string]string{"jane@contoso.com": "2046feea-040d-4a46-9e2b-91c2941bfa70"})
	if err != nil {
		t.Fatal(err)
	}
	return Normalizer{TenantID: "tenant-1", Owners: owners, Now: func() time.Time { return goldenNow }}
}

// sample is a Sentinel reference example: {"parameters": …, "responses": {"200": {"body": …}}}.
type sample struct {
	Parameters map[string]json.RawMessage `json:"parameters"`
	Responses  map[string]struct {
		Body json.RawMessage `json:"body"`
	} `json:"responses"`
}

// readSample reads a reference sample; a missing sample fails the test (never skips it).
func readSample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(samplesDir, "sentinel", name))
	if err != nil {
		t.Fatalf("reference sample %s: %v", name, err)
	}
	return b
}

func readExample(t *testing.T, name string) sample {
	t.Helper()
	var s sample
	if err := json.Unmarshal(readSample(t, name), &s); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return s
}

func (s sample) body(t *testing.T, status string) []byte {
	t.Helper()
	r, ok := s.Responses[status]
	if !ok || len(r.Body) == 0 {
		t.Fatalf("the sample has no %s body", status)
	}
	return r.Body
}

// goldenObservation is an observation as the golden files show it, with what its Put body
// would be.
type goldenObservation struct {
	incident.Observation
	RawKept bool            `json:"raw_kept"`
	PutBody json.RawMessage `json:"put_body,omitempty"`
}

func golden(t *testing.T, o incident.Observation, inc Incident, raw []byte) goldenObservation {
	t.Helper()
	b, err := inc.putBody()
	if err != nil {
		t.Fatal(err)
	}
	return goldenObservation{Observation: o, RawKept: bytes.Equal(o.Raw, bytes.TrimSpace(raw)), PutBody: b}
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

type goldenBad struct {
	ID  string `json:"id"`
	Err string `json:"error"`
}

type goldenPage struct {
	Incidents []incident.Observation `json:"incidents"`
	Bad       []goldenBad            `json:"bad"`
	Next      string                 `json:"next"`
}

func goldenOfPage(p Page) goldenPage {
	g := goldenPage{Incidents: p.Incidents, Bad: []goldenBad{}, Next: p.Next}
	for _, b := range p.Bad {
		g.Bad = append(g.Bad, goldenBad{ID: b.ID, Err: b.Err.Error()})
	}
	return g
}

func errorFields(e *Error) map[string]any {
	return map[string]any{"status": e.StatusCode, "code": e.Code, "message": e.Message, "error": e.Error(),
		"is_conflict": errors.Is(e, ErrConflict), "is_bad_request": errors.Is(e, ErrBadRequest)}
}

// jsonEqual compares two JSON documents by value.
func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}

// Every Sentinel example of the reference set decodes to its golden form.
func TestGolden_SentinelSamplesDecodeToObservations(t *testing.T) {
	n := goldenNormalizer(t)
	t.Run("GetIncidents", func(t *testing.T) {
		p, err := n.Page(readExample(t, "2025-12-01_GetIncidents.json").body(t, "200"))
		if err != nil {
			t.Fatal(err)
		}
		checkGolden(t, "get_incidents.golden.json", goldenOfPage(p))
	})
	for _, tc := range []struct{ sample, status, golden string }{
		{"2025-12-01_GetIncidentById.json", "200", "get_incident_by_id.golden.json"},
		{"2025-12-01_CreateIncident.json", "200", "create_incident_200.golden.json"},
		{"2025-12-01_CreateIncident.json", "201", "create_incident_201.golden.json"},
	} {
		t.Run(tc.sample+"/"+tc.status, func(t *testing.T) {
			body := readExample(t, tc.sample).body(t, tc.status)
			o, inc, err := n.Incident(body)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, tc.golden, golden(t, o, inc, body))
		})
	}
	t.Run("GetAllIncidentAlerts", func(t *testing.T) {
		var env struct{ Value []json.RawMessage }
		if err := json.Unmarshal(readExample(t, "2025-12-01_GetAllIncidentAlerts.json").body(t, "200"), &env); err != nil {
			t.Fatal(err)
		}
		var alerts []incident.Alert
		for _, raw := range env.Value {
			a, err := n.Alert(raw)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a.Raw, raw) {
				t.Error("the alert's payload is not kept")
			}
			alerts = append(alerts, a.Alert)
		}
		checkGolden(t, "get_all_incident_alerts.golden.json", alerts)
	})
	t.Run("GetAllIncidentComments", func(t *testing.T) {
		var env struct{ Value []json.RawMessage }
		if err := json.Unmarshal(readExample(t, "2025-12-01_GetAllIncidentComments.json").body(t, "200"), &env); err != nil {
			t.Fatal(err)
		}
		var cs []incident.RemoteComment
		for _, raw := range env.Value {
			c, err := n.Comment(raw)
			if err != nil {
				t.Fatal(err)
			}
			cs = append(cs, c)
		}
		checkGolden(t, "get_all_incident_comments.golden.json", cs)
	})
	t.Run("CreateIncidentComment", func(t *testing.T) {
		s := readExample(t, "2025-12-01_CreateIncidentComment.json")
		var cs []incident.RemoteComment
		for _, status := range []string{"200", "201"} {
			c, err := n.Comment(s.body(t, status))
			if err != nil {
				t.Fatal(err)
			}
			cs = append(cs, c)
		}
		checkGolden(t, "create_incident_comment.golden.json", cs)
	})
	t.Run("observed_409_etag_conflict", func(t *testing.T) {
		checkGolden(t, "error_409_etag_conflict.golden.json", errorFields(ParseError(409, nil, readSample(t, "observed_409_etag_conflict.json"))))
	})
	t.Run("observed_400_classification_reason_required", func(t *testing.T) {
		// Only the message text was observed; its envelope is ARM's CloudError.
		text := readSample(t, "observed_400_classification_reason_required.txt")
		i := bytes.Index(text, []byte("classification '"))
		if i < 0 {
			t.Fatal("the observed message is not in the sample")
		}
		msg := strings.TrimSpace(strings.SplitN(string(text[i:]), "\n", 2)[0])
		body, _ := json.Marshal(map[string]any{"error": map[string]string{"code": "BadRequest", "message": msg}})
		checkGolden(t, "error_400_classification_reason_required.golden.json", errorFields(ParseError(400, nil, body)))
	})
}

// The documented PUT bodies are what socsync sends: an incident decoded from the example
// request is written back as the same JSON, and a comment PUT has the example's shape.
func TestGolden_SentinelRequestSamplesMatchWhatSocsyncSends(t *testing.T) {
	s := readExample(t, "2025-12-01_CreateIncident.json")
	var inc Incident
	if err := json.Unmarshal(s.Parameters["incident"], &inc); err != nil {
		t.Fatal(err)
	}
	got, err := inc.putBody()
	if err != nil {
		t.Fatal(err)
	}
	if !jsonEqual(t, got, s.Parameters["incident"]) {
		// The example request sends no labels; socsync always sends its (here empty) list.
		var m map[string]any
		if err := json.Unmarshal(got, &m); err != nil {
			t.Fatal(err)
		}
		delete(m["properties"].(map[string]any), "labels")
		without, _ := json.Marshal(m)
		if !jsonEqual(t, without, s.Parameters["incident"]) {
			t.Errorf("PUT body\n%s\nexample request\n%s", got, s.Parameters["incident"])
		}
	}
	// A response decoded and put back leaves out every read-only property.
	_, resp, err := goldenNormalizer(t).Incident(readExample(t, "2025-12-01_GetIncidentById.json").body(t, "200"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := resp.putBody()
	if err != nil {
		t.Fatal(err)
	}
	for _, ro := range readOnlyProperties {
		if bytes.Contains(b, []byte(`"`+ro+`"`)) {
			t.Errorf("PUT body carries read-only %s: %s", ro, b)
		}
	}
	c := readExample(t, "2025-12-01_CreateIncidentComment.json")
	if !jsonEqual(t, c.Parameters["incidentComment"], []byte(`{"properties":{"message":"Some message"}}`)) {
		t.Errorf("the documented comment request changed shape: %s (PutComment sends properties.message)", c.Parameters["incidentComment"])
	}
}

// Every Sentinel sample of the reference set is covered above (DeleteIncident has no body:
// socsync does not delete incidents).
func TestGolden_EverySentinelSampleIsCovered(t *testing.T) {
	covered := []string{"2025-12-01_GetIncidents.json", "2025-12-01_GetIncidentById.json",
		"2025-12-01_CreateIncident.json", "2025-12-01_GetAllIncidentAlerts.json",
		"2025-12-01_GetAllIncidentComments.json", "2025-12-01_CreateIncidentComment.json",
		"observed_409_etag_conflict.json", "observed_400_classification_reason_required.txt",
		"2025-12-01_DeleteIncident.json"}
	entries, err := os.ReadDir(filepath.Join(samplesDir, "sentinel"))
	if err != nil {
		t.Fatalf("reference samples: %v", err)
	}
	var found []string
	for _, e := range entries {
		found = append(found, e.Name())
		if !slices.Contains(covered, e.Name()) {
			t.Errorf("sample %s has no golden test", e.Name())
		}
	}
	for _, c := range covered {
		if !slices.Contains(found, c) {
			t.Errorf("sample %s is missing", c)
		}
	}
	d := readExample(t, "2025-12-01_DeleteIncident.json")
	for status, r := range d.Responses {
		if len(r.Body) != 0 {
			t.Errorf("DeleteIncident %s now has a body", status)
		}
	}
}

// Inputs of our own for what the samples do not show: a merged mirror with odd timestamps and
// values and a property of a newer api-version, and a page with poisoned incidents.
func TestGolden_OddAndMalformedPayloads(t *testing.T) {
	n := goldenNormalizer(t)
	raw, err := os.ReadFile("testdata/input/odd_incident.json")
	if err != nil {
		t.Fatal(err)
	}
	o, inc, err := n.Incident(raw)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "odd_incident.golden.json", golden(t, o, inc, raw))

	body, err := os.ReadFile("testdata/input/malformed_page.json")
	if err != nil {
		t.Fatal(err)
	}
	p, err := n.Page(body)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "malformed_page.golden.json", goldenOfPage(p))
}

// A nextLink with its query unescaped, as Sentinel sends them, becomes a valid URL with the
// same query values; a valid link is left as it is.
func TestFollowable_ReEncodesUnescapedQueries(t *testing.T) {
	base, _ := url.Parse("https://management.azure.com")
	const coll = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/ws/providers/Microsoft.SecurityInsights/incidents"
	for _, tc := range []struct{ link, want string }{
		{"https://management.azure.com" + coll + "?api-version=2025-12-01&$filter=properties/lastModifiedTimeUtc ge 2026-01-01T00:00:00Z&$skipToken=a+b/c==",
			"https://management.azure.com" + coll + "?api-version=2025-12-01&$filter=properties/lastModifiedTimeUtc%20ge%202026-01-01T00:00:00Z&$skipToken=a+b/c=="},
		{"https://management.azure.com" + coll + "?$filter=contains(properties/title, 'a \"b\"#c')&x=100%",
			"https://management.azure.com" + coll + "?$filter=contains(properties/title,%20'a%20%22b%22%23c')&x=100%25"},
		{"https://management.azure.com" + coll + "?$filter=properties%2Ftitle%20eq%20'x'",
			"https://management.azure.com" + coll + "?$filter=properties%2Ftitle%20eq%20'x'"},
		{"https://MANAGEMENT.azure.com" + strings.ToLower(coll) + "?$top=5", "https://MANAGEMENT.azure.com" + strings.ToLower(coll) + "?$top=5"},
	} {
		got, err := followable(base, coll, tc.link)
		if err != nil {
			t.Errorf("%s: %v", tc.link, err)
			continue
		}
		if got != tc.want {
			t.Errorf("followable(%s)\n= %s\nwant %s", tc.link, got, tc.want)
		}
		again, _ := followable(base, coll, got)
		if again != got {
			t.Errorf("not idempotent: %s then %s", got, again)
		}
	}
}
