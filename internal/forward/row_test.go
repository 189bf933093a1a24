package forward

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/socsync/socsync/internal/incident"
	"github.com/socsync/socsync/internal/store"
)

func jsonLen(t *testing.T, v any) int {
	t.Helper()
	return len(encodeAny(v))
}

func encodeAny(v any) []byte {
	b, _ := marshal(v)
	return b
}

func TestJSONStringLen_EqualsEncodingJSON(t *testing.T) {
	samples := []string{"", "plain", `quote " and \ backslash`, "tab\tnewline\nreturn\r", "\b\f\x01\x1f\x7f",
		"<html> & stuff", "é ü 日本語 🙂", "\u2028\u2029", "bad \xff\xfe utf8", strings.Repeat("x", 1000)}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		b := make([]byte, rng.IntN(64))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		samples = append(samples, string(b))
	}
	for _, s := range samples {
		if got, want := jsonStringLen(s), len(encodeAny(s)); got != want {
			t.Errorf("jsonStringLen(%q) = %d, encoding/json writes %d", s, got, want)
		}
	}
}

func TestCutString_KeepsAPrefixWhoseJSONFitsAtACharacterBoundary(t *testing.T) {
	long := strings.Repeat("aé\"日🙂\n", 20000)
	for _, limit := range []int{2, 3, 10, 100, 4096, FieldLimit} {
		got := cutString(long, limit)
		if !strings.HasPrefix(long, got) {
			t.Fatalf("limit %d: not a prefix", limit)
		}
		if !utf8.ValidString(got) {
			t.Errorf("limit %d: cut inside a character", limit)
		}
		if n := jsonStringLen(got); n > limit {
			t.Errorf("limit %d: JSON length %d", limit, n)
		}
		// The longest such prefix: one more character would not fit.
		if len(got) < len(long) {
			_, size := utf8.DecodeRuneInString(long[len(got):])
			if jsonStringLen(long[:len(got)+size]) <= limit {
				t.Errorf("limit %d: cut shorter than needed", limit)
			}
		}
		if cutString(long, limit) != got {
			t.Errorf("limit %d: not deterministic", limit)
		}
	}
	if s := "short"; cutString(s, 100) != s {
		t.Error("a short string was cut")
	}
}

func sampleRecord() store.OutboxRow {
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	return store.OutboxRow{
		IncidentID: "0195-incident", Version: 3, TenantID: "11111111-1111-1111-1111-111111111111", CreatedAt: at.Add(time.Second),
		Record: store.OutboxRecord{
			Incident: incident.Incident{ID: "0195-incident", TenantID: "11111111-1111-1111-1111-111111111111", Title: "Ransomware",
				Description: "Encryption burst", Fields: incident.Fields{Status: incident.StatusActive, Severity: incident.SeverityHigh,
					Owner: "alexw@contoso.com", Classification: incident.ClassificationTruePositive, Determination: incident.DeterminationMalware,
					Tags: []string{"ransomware", "vip"}},
				Sources: []incident.Source{incident.SourceSentinel, incident.SourceDefender}, AlertCount: 2,
				CreatedAt: at.Add(-time.Hour), UpdatedAt: at, FirstActivityAt: at.Add(-2 * time.Hour), LastActivityAt: at.Add(-time.Minute),
				MergedInto: "", Version: 3},
			Links: []store.OutboxLink{
				{Kind: store.LinkGraph, SourceID: "t/defender", ExternalID: "1234", URL: "https://security.microsoft.com/incidents/1234"},
				{Kind: store.LinkSentinel, SourceID: "t/sentinel/sub/rg/ws", ExternalID: "9f0c", ProviderIncidentID: "1234", URL: "https://portal.azure.com/#/sentinel/9f0c"},
			},
			Change:       store.Change{Summary: `status: "new" → "active"`, At: at, Actor: "graph"},
			ProductNames: []string{"Microsoft Defender for Endpoint"},
		},
	}
}

func TestRowFor_FillsEveryColumnFromTheOutboxRecord(t *testing.T) {
	r := sampleRecord()
	row := rowFor(r, "Contoso")
	want := map[string]any{
		"RecordKey": "0195-incident:3", "IncidentKey": "0195-incident", "Version": int64(3), "CustomerTenantID": r.TenantID,
		"CustomerTenantName": "Contoso", "Source": "defender", "IncidentTitle": "Ransomware", "Status": "active", "Severity": "high",
		"Owner": "alexw@contoso.com", "Classification": "true_positive", "Determination": "malware", "AlertCount": 2,
		"DefenderIncidentID": "1234", "DefenderIncidentURL": "https://security.microsoft.com/incidents/1234",
		"SentinelIncidentName": "9f0c", "SentinelWorkspace": "sub/rg/ws", "ChangedBy": "graph", "TimeClamped": false,
	}
	v := reflect.ValueOf(row)
	for field, w := range want {
		if got := v.FieldByName(field).Interface(); !reflect.DeepEqual(got, w) {
			t.Errorf("%s = %#v, want %#v", field, got, w)
		}
	}
	if !row.TimeGenerated.Equal(r.Record.Change.At) || !row.ChangeTime.Equal(r.Record.Change.At) {
		t.Errorf("TimeGenerated %v, ChangeTime %v: want the change time %v", row.TimeGenerated, row.ChangeTime, r.Record.Change.At)
	}
	if !slices.Equal(row.Sources, []string{"defender", "sentinel"}) || len(row.Links) != 2 || !slices.Equal(row.Tags, []string{"ransomware", "vip"}) {
		t.Errorf("sources %v, links %v, tags %v", row.Sources, row.Links, row.Tags)
	}
}

func TestRowFor_ClampsTimeGeneratedIntoTheIngestionWindow(t *testing.T) {
	committed := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		name    string
		change  time.Time
		want    time.Time
		clamped bool
	}{
		{"recent", committed.Add(-time.Minute), committed.Add(-time.Minute), false},
		{"a week old", committed.Add(-7 * 24 * time.Hour), committed.Add(-maxPast), true},
		{"just inside", committed.Add(-maxPast), committed.Add(-maxPast), false},
		{"a day ahead", committed.Add(30 * time.Hour), committed.Add(maxFuture), true},
		{"no change time", time.Time{}, committed, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := sampleRecord()
			r.CreatedAt, r.Record.Change.At = committed, c.change
			row := rowFor(r, "x")
			if !row.TimeGenerated.Equal(c.want) || row.TimeClamped != c.clamped {
				t.Errorf("TimeGenerated %v clamped %v, want %v %v", row.TimeGenerated, row.TimeClamped, c.want, c.clamped)
			}
			if !c.change.IsZero() && !row.ChangeTime.Equal(c.change) {
				t.Errorf("ChangeTime %v, want the unclamped %v", row.ChangeTime, c.change)
			}
		})
	}
	// A row sent long after its commit is clamped again around the time it is sent.
	r := sampleRecord()
	row := rowFor(r, "x")
	sent := r.CreatedAt.Add(5 * 24 * time.Hour)
	clampNow(&row, sent)
	if !row.TimeGenerated.Equal(sent.Add(-maxPast)) || !row.TimeClamped {
		t.Errorf("sent 5 days later: TimeGenerated %v clamped %v", row.TimeGenerated, row.TimeClamped)
	}
}

func TestFit_CutsValuesOver64KBDeterministicallyAndNamesThem(t *testing.T) {
	r := sampleRecord()
	r.Record.Incident.Description = strings.Repeat("long description ", 20000) // 340 KB
	r.Record.Incident.Title = strings.Repeat("T", 70_000)
	for i := range 5000 {
		r.Record.Incident.Tags = append(r.Record.Incident.Tags, strings.Repeat("t", 20)+itoa(int64(i)))
	}
	row := rowFor(r, "Contoso")
	b := fit(&row, DefaultMaxRowBytes)
	again := rowFor(r, "Contoso")
	if b2 := fit(&again, DefaultMaxRowBytes); string(b) != string(b2) {
		t.Fatal("the same row cut twice came out different")
	}
	if !slices.Equal(row.TruncatedFields, []string{"IncidentTitle", "Description", "Tags"}) {
		t.Errorf("TruncatedFields = %v", row.TruncatedFields)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range m {
		if len(v) > FieldLimit {
			t.Errorf("%s is %d bytes of JSON, over %d", k, len(v), FieldLimit)
		}
	}
	if !strings.HasPrefix(r.Record.Incident.Description, row.Description) || !strings.HasPrefix(r.Record.Incident.Title, row.IncidentTitle) {
		t.Error("a cut value is not a prefix of the full one")
	}
	if len(row.Tags) == 0 || !slices.Equal(row.Tags, r.Record.Incident.Tags[:len(row.Tags)]) {
		t.Error("cut tags are not the first tags")
	}
}

func TestFit_KeepsTheRowWithinItsBudgetByHalvingTheLargestValues(t *testing.T) {
	r := sampleRecord()
	big := strings.Repeat("x", 100_000)
	inc := &r.Record.Incident
	inc.Title, inc.Description, inc.Owner, inc.ClassificationComment = big, big, big, big
	r.Record.Change.Summary, r.Record.Change.Actor = big, big
	for _, budget := range []int{DefaultMaxRowBytes, 128 << 10, 64 << 10, minRowBudget} {
		row := rowFor(r, "Contoso")
		b := fit(&row, budget)
		if len(b) > budget {
			t.Errorf("budget %d: row is %d bytes", budget, len(b))
		}
		if !slices.Contains(row.TruncatedFields, "Description") {
			t.Errorf("budget %d: TruncatedFields %v lacks Description", budget, row.TruncatedFields)
		}
	}
	small := rowFor(sampleRecord(), "Contoso")
	if fit(&small, minRowBudget); len(small.TruncatedFields) != 0 {
		t.Errorf("a small row was cut: %v", small.TruncatedFields)
	}
}

func TestPack_KeepsEveryBatchUnderTheLimitInOrder(t *testing.T) {
	var entries []*entry
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 3000 {
		entries = append(entries, &entry{row: store.OutboxRow{IncidentID: itoa(int64(i)), Version: 1}, json: []byte(`{"x":"` + strings.Repeat("a", rng.IntN(4000)) + `"}`)})
	}
	const limit = 100_000
	batches := pack(entries, limit)
	n := 0
	for _, b := range batches {
		body := b.body()
		if len(body) > limit {
			t.Errorf("batch of %d bytes", len(body))
		}
		var arr []json.RawMessage
		if err := json.Unmarshal(body, &arr); err != nil || len(arr) != len(b.entries) {
			t.Fatalf("batch body is not the JSON array of its rows: %v", err)
		}
		for _, e := range b.entries {
			if e != entries[n] {
				t.Fatal("rows out of order")
			}
			n++
		}
		l, r := b.halves()
		if len(l.entries)+len(r.entries) != len(b.entries) || len(l.body())+len(r.body()) != len(body)+1 {
			t.Error("halves do not add up to the batch")
		}
	}
	if n != len(entries) {
		t.Errorf("%d of %d rows packed", n, len(entries))
	}
}

var (
	columnNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,44}$`)
	reserved     = []string{"_ResourceId", "id", "_SubscriptionId", "TenantId", "Type", "UniqueId", "Title"}
)

func TestColumns_AreTheRowsJSONNamesTypedToMatch(t *testing.T) {
	// A row with every field set: its JSON keys must be exactly the columns, and each value's
	// JSON kind must fit the column's type.
	r := sampleRecord()
	row := rowFor(r, "Contoso")
	row.TruncatedFields = []string{"Description"}
	row.TimeClamped = true
	b := encode(&row)
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	cols := Columns()
	if len(cols) != len(m) {
		t.Errorf("%d columns, the row has %d keys", len(cols), len(m))
	}
	seen := map[string]bool{}
	for _, c := range cols {
		switch {
		case !columnNameRE.MatchString(c.Name):
			t.Errorf("column %q: not a valid Log Analytics column name", c.Name)
		case slices.ContainsFunc(reserved, func(r string) bool { return strings.EqualFold(r, c.Name) }):
			t.Errorf("column %q: reserved by Log Analytics", c.Name)
		case seen[strings.ToLower(c.Name)]:
			t.Errorf("column %q twice", c.Name)
		}
		seen[strings.ToLower(c.Name)] = true
		v, ok := m[c.Name]
		if !ok {
			t.Errorf("column %s is not in the row's JSON", c.Name)
			continue
		}
		var fits bool
		switch c.Type {
		case "string":
			_, fits = v.(string)
		case "datetime":
			s, isString := v.(string)
			_, err := time.Parse(time.RFC3339Nano, s)
			fits = isString && err == nil
		case "int", "long":
			n, isNumber := v.(json.Number)
			_, err := n.Int64()
			fits = isNumber && err == nil
		case "real":
			_, fits = v.(json.Number)
		case "boolean":
			_, fits = v.(bool)
		case "dynamic":
			switch v.(type) {
			case []any, map[string]any:
				fits = true
			}
		default:
			t.Errorf("column %s: type %q is not a Logs Ingestion column type", c.Name, c.Type)
		}
		if !fits {
			t.Errorf("column %s (%s): the row holds %T %v", c.Name, c.Type, v, v)
		}
	}
	for _, c := range cols {
		if c.Description == "" {
			t.Errorf("column %s has no description (columnDocs)", c.Name)
		}
	}
	if len(columnDocs) != len(cols) {
		t.Errorf("%d column descriptions for %d columns", len(columnDocs), len(cols))
	}
	if cols[0].Name != "TimeGenerated" || cols[0].Type != "datetime" {
		t.Error("the first column must be TimeGenerated (datetime)")
	}
}

func TestTemplate_DeclaresEveryColumnOfTheRowInTheStreamAndTheTable(t *testing.T) {
	b, err := Template("Custom-SocsyncIncidents", "test")
	if err != nil {
		t.Fatal(err)
	}
	var tpl struct {
		Resources []struct {
			Type       string `json:"type"`
			Kind       string `json:"kind"`
			Properties struct {
				Schema struct {
					Name    string   `json:"name"`
					Columns []Column `json:"columns"`
				} `json:"schema"`
				StreamDeclarations map[string]struct {
					Columns []Column `json:"columns"`
				} `json:"streamDeclarations"`
				DataFlows []struct {
					Streams      []string `json:"streams"`
					TransformKql string   `json:"transformKql"`
					OutputStream string   `json:"outputStream"`
				} `json:"dataFlows"`
				RoleDefinitionID string `json:"roleDefinitionId"`
			} `json:"properties"`
		} `json:"resources"`
		Parameters map[string]any `json:"parameters"`
		Outputs    map[string]struct {
			Value string `json:"value"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal(b, &tpl); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"workspaceResourceId", "location"} {
		if _, ok := tpl.Parameters[p]; !ok {
			t.Errorf("no parameter %s", p)
		}
	}
	var table, stream []Column
	var flow, kind, role string
	for _, r := range tpl.Resources {
		switch r.Type {
		case "Microsoft.OperationalInsights/workspaces/tables":
			table = r.Properties.Schema.Columns
			if r.Properties.Schema.Name != "[variables('tableName')]" {
				t.Errorf("table schema name %q", r.Properties.Schema.Name)
			}
		case "Microsoft.Insights/dataCollectionRules":
			stream = r.Properties.StreamDeclarations["Custom-SocsyncIncidents"].Columns
			kind = r.Kind
			if len(r.Properties.DataFlows) == 1 {
				f := r.Properties.DataFlows[0]
				flow = strings.Join(f.Streams, ",") + " " + f.TransformKql + " " + f.OutputStream
			}
		case "Microsoft.Authorization/roleAssignments":
			role = r.Properties.RoleDefinitionID
		}
	}
	bare := func(cs []Column) []Column {
		out := make([]Column, len(cs))
		for i, c := range cs {
			out[i] = Column{Name: c.Name, Type: c.Type}
		}
		return out
	}
	if !slices.Equal(table, Columns()) || !slices.Equal(stream, bare(Columns())) {
		t.Errorf("template columns differ from Row's:\n table  %v\n stream %v\n row    %v", table, stream, Columns())
	}
	if flow != "Custom-SocsyncIncidents source Custom-SocsyncIncidents_CL" || kind != "Direct" {
		t.Errorf("data flow %q, kind %q", flow, kind)
	}
	if !strings.Contains(role, MonitoringMetricsPublisher) {
		t.Errorf("role assignment %q is not Monitoring Metrics Publisher", role)
	}
	if q := tpl.Outputs["analyticsRuleQuery"].Value; !strings.HasPrefix(strings.SplitN(q, "\n", 6)[5], "SocsyncIncidents_CL") || !strings.Contains(q, "Version == 1") {
		t.Errorf("analytics rule query:\n%s", q)
	}
	if _, err := Template("SocsyncIncidents", "test"); err == nil {
		t.Error("a stream without Custom- was accepted")
	}
}
