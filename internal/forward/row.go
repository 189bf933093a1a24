package forward

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/socsync/socsync/internal/incident"
	"github.com/socsync/socsync/internal/store"
)

// Row is one record of the forward stream: one version of one hub incident, as the central
// workspace's custom table stores it. The JSON names are the table's columns and the kql tags
// their types there; `socsync dcr-template` prints the table and the data collection rule from
// this type, so the two cannot drift. Column names avoid the names Log Analytics reserves
// (TenantId, Title, Type, id, …).
//
// There is exactly one row per (IncidentKey, Version), and the row of a version is a function
// of that version alone, so `SocsyncIncidents_CL | summarize arg_max(Version, *) by IncidentKey`
// is the current state of every incident even if a row was sent twice (after a crash).
type Row struct {
	// TimeGenerated is ChangeTime, clamped into the window Logs Ingestion accepts (2 days past,
	// 1 day future; see TimeClamped).
	TimeGenerated time.Time `json:"TimeGenerated" kql:"datetime"`
	// RecordKey is IncidentKey:Version, the row's identity.
	RecordKey string `json:"RecordKey" kql:"string"`
	// IncidentKey is the hub incident's id, the same for all its versions and across tenants.
	IncidentKey string `json:"IncidentKey" kql:"string"`
	// Version counts the hub incident's changes from 1.
	Version            int64  `json:"Version" kql:"long"`
	CustomerTenantID   string `json:"CustomerTenantId" kql:"string"`
	CustomerTenantName string `json:"CustomerTenantName" kql:"string"`
	// Source is where the incident came from first: defender, sentinel or webhook (Sources
	// lists all of them).
	Source                string   `json:"Source" kql:"string"`
	Sources               []string `json:"Sources" kql:"dynamic"`
	IncidentTitle         string   `json:"IncidentTitle" kql:"string"`
	Description           string   `json:"Description" kql:"string"`
	Status                string   `json:"Status" kql:"string"`
	Severity              string   `json:"Severity" kql:"string"`
	Owner                 string   `json:"Owner" kql:"string"`
	Classification        string   `json:"Classification" kql:"string"`
	Determination         string   `json:"Determination" kql:"string"`
	ClassificationReason  string   `json:"ClassificationReason" kql:"string"`
	ClassificationComment string   `json:"ClassificationComment" kql:"string"`
	Tags                  []string `json:"Tags" kql:"dynamic"`
	AlertCount            int      `json:"AlertCount" kql:"int"`
	ProductNames          []string `json:"ProductNames" kql:"dynamic"`
	// MergedIntoKey is the IncidentKey of the incident this one was merged into.
	MergedIntoKey       string `json:"MergedIntoKey" kql:"string"`
	DefenderIncidentID  string `json:"DefenderIncidentId" kql:"string"`
	DefenderIncidentURL string `json:"DefenderIncidentUrl" kql:"string"`
	// SentinelIncidentName is the Sentinel incident's name (a GUID); SentinelWorkspace is
	// subscription/resourceGroup/workspace.
	SentinelIncidentName string `json:"SentinelIncidentName" kql:"string"`
	SentinelIncidentURL  string `json:"SentinelIncidentUrl" kql:"string"`
	SentinelWorkspace    string `json:"SentinelWorkspace" kql:"string"`
	// WebhookName is the configured webhook an alert came in by; WebhookAlertID its delivery id
	// (Splunk's sid) and WebhookAlertURL the link the sender gave (Splunk's results_link).
	WebhookName     string    `json:"WebhookName" kql:"string"`
	WebhookAlertID  string    `json:"WebhookAlertId" kql:"string"`
	WebhookAlertURL string    `json:"WebhookAlertUrl" kql:"string"`
	Links           []RowLink `json:"Links" kql:"dynamic"`
	// FirstActivityTime and LastActivityTime are the incident's activity window;
	// CreatedTime and UpdatedTime when the hub incident was created and last changed.
	FirstActivityTime time.Time `json:"FirstActivityTime,omitzero" kql:"datetime"`
	LastActivityTime  time.Time `json:"LastActivityTime,omitzero" kql:"datetime"`
	CreatedTime       time.Time `json:"CreatedTime,omitzero" kql:"datetime"`
	UpdatedTime       time.Time `json:"UpdatedTime,omitzero" kql:"datetime"`
	// ChangeTime is when the change was made at its source (the remote's change time, or when
	// the hub made it), unclamped.
	ChangeTime    time.Time `json:"ChangeTime,omitzero" kql:"datetime"`
	ChangeSummary string    `json:"ChangeSummary" kql:"string"`
	ChangedBy     string    `json:"ChangedBy" kql:"string"`
	// TimeClamped says TimeGenerated is not ChangeTime: it was outside the ingestion window.
	TimeClamped bool `json:"TimeClamped" kql:"boolean"`
	// TruncatedFields names the columns whose values were cut to fit the limits (64 KB per
	// field, 1 MB per request); each kept value is a prefix of the full one.
	TruncatedFields []string `json:"TruncatedFields" kql:"dynamic"`
}

// RowLink is one remote incident (or webhook alert) a hub incident is linked to.
type RowLink struct {
	Kind               string `json:"kind"` // graph, sentinel or webhook
	SourceID           string `json:"source_id"`
	ExternalID         string `json:"external_id"`
	ProviderIncidentID string `json:"provider_incident_id,omitempty"`
	URL                string `json:"url,omitempty"`
}

// Column is a column of the custom table, from Row.
type Column struct {
	Name        string `json:"name"`                  // the JSON name
	Type        string `json:"type"`                  // string, int, long, real, boolean, datetime or dynamic
	Description string `json:"description,omitempty"` // what it holds
}

// Columns returns the columns of the forward stream's rows, in Row's order.
func Columns() []Column {
	t := reflect.TypeFor[Row]()
	out := make([]Column, 0, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		out = append(out, Column{Name: name, Type: f.Tag.Get("kql"), Description: columnDocs[name]})
	}
	return out
}

// columnDocs describe the columns (in the table's schema and the README).
var columnDocs = map[string]string{
	"TimeGenerated":         "ChangeTime moved into the window Logs Ingestion accepts (2 days past, 1 day future); see TimeClamped",
	"RecordKey":             "IncidentKey:Version, the row's identity",
	"IncidentKey":           "the hub incident's id: the same for all its versions, unique across tenants",
	"Version":               "the hub incident's version, from 1; one row per version",
	"CustomerTenantId":      "the customer's Entra tenant id",
	"CustomerTenantName":    "the customer tenant's configured name",
	"Source":                "where the incident came from first: defender, sentinel or webhook",
	"Sources":               "every source of the incident, e.g. [\"defender\",\"sentinel\"]",
	"IncidentTitle":         "the incident's title",
	"Description":           "the incident's description",
	"Status":                "new, active, in_progress, resolved or merged",
	"Severity":              "informational, low, medium or high",
	"Owner":                 "the assigned analyst (UPN)",
	"Classification":        "undetermined, true_positive, benign_positive or false_positive",
	"Determination":         "Defender XDR's determination (hub spelling)",
	"ClassificationReason":  "Sentinel's classification reason (hub spelling)",
	"ClassificationComment": "the closing comment",
	"Tags":                  "the incident's tags (Defender custom tags, Sentinel labels)",
	"AlertCount":            "number of alerts",
	"ProductNames":          "products that raised the incident's alerts",
	"MergedIntoKey":         "IncidentKey of the incident this one was merged into",
	"DefenderIncidentId":    "the Defender XDR incident id",
	"DefenderIncidentUrl":   "link to the incident in the Defender portal",
	"SentinelIncidentName":  "the Sentinel incident's name (a GUID)",
	"SentinelIncidentUrl":   "link to the incident in Sentinel",
	"SentinelWorkspace":     "the Sentinel workspace: subscription/resourceGroup/workspace",
	"WebhookName":           "the socsync webhook an alert came in by",
	"WebhookAlertId":        "the sender's id of the alert (Splunk's sid)",
	"WebhookAlertUrl":       "the sender's link to the alert (Splunk's results_link)",
	"Links":                 "every remote incident linked: kind, source_id, external_id, provider_incident_id, url",
	"FirstActivityTime":     "first activity of the incident's alerts",
	"LastActivityTime":      "last activity of the incident's alerts",
	"CreatedTime":           "when the incident was created (at its source)",
	"UpdatedTime":           "when the hub incident last changed",
	"ChangeTime":            "when this version's change was made at its source (unclamped)",
	"ChangeSummary":         "what changed in this version, e.g. status: \"new\" → \"active\"; 1 comment(s) added",
	"ChangedBy":             "who changed it: graph, sentinel, a hub user, socsync, or webhook: and the webhook's name",
	"TimeClamped":           "true when TimeGenerated is not ChangeTime",
	"TruncatedFields":       "columns whose values were cut to fit the 64 KB field or 1 MB request limit (each kept value is a prefix)",
}

// Limits of Logs Ingestion that rows respect, with headroom below the documented ones.
const (
	// FieldLimit bounds the JSON text of one value (quotes included); the service truncates
	// values over 64 KB itself, without saying so.
	FieldLimit = 60_000
	// minFieldLimit is as far as a value is cut to make a row fit its budget.
	minFieldLimit = 256
	// linkStringLimit bounds each string inside Links.
	linkStringLimit = 4_096
	// The ingestion window of TimeGenerated is 2 days past and 1 day future; rows stay an hour
	// inside it.
	maxPast   = 47 * time.Hour
	maxFuture = 23 * time.Hour
)

// rowFor turns an outbox row into the stream's row. tenantName names the customer tenant.
func rowFor(r store.OutboxRow, tenantName string) Row {
	rec := r.Record
	inc := rec.Incident
	row := Row{
		RecordKey:             r.IncidentID + ":" + itoa(r.Version),
		IncidentKey:           r.IncidentID,
		Version:               r.Version,
		CustomerTenantID:      r.TenantID,
		CustomerTenantName:    tenantName,
		IncidentTitle:         inc.Title,
		Description:           inc.Description,
		Status:                string(inc.Status),
		Severity:              string(inc.Severity),
		Owner:                 inc.Owner,
		Classification:        string(inc.Classification),
		Determination:         string(inc.Determination),
		ClassificationReason:  string(inc.ClassificationReason),
		ClassificationComment: inc.ClassificationComment,
		Tags:                  nonNil(inc.Tags),
		AlertCount:            inc.AlertCount,
		ProductNames:          nonNil(rec.ProductNames),
		MergedIntoKey:         inc.MergedInto,
		FirstActivityTime:     utc(inc.FirstActivityAt),
		LastActivityTime:      utc(inc.LastActivityAt),
		CreatedTime:           utc(inc.CreatedAt),
		UpdatedTime:           utc(inc.UpdatedAt),
		ChangeTime:            utc(rec.Change.At),
		ChangeSummary:         rec.Change.Summary,
		ChangedBy:             rec.Change.Actor,
		Links:                 []RowLink{},
		TruncatedFields:       []string{},
	}
	if row.CustomerTenantName == "" {
		row.CustomerTenantName = r.TenantID
	}
	row.Sources = make([]string, 0, len(inc.Sources))
	for _, s := range inc.Sources {
		row.Sources = append(row.Sources, string(s))
	}
	slices.Sort(row.Sources)
	row.Sources = slices.Compact(row.Sources)
	if len(row.Sources) > 0 {
		row.Source = row.Sources[0] // defender < sentinel < webhook
	}
	for _, l := range rec.Links {
		row.Links = append(row.Links, RowLink{Kind: string(l.Kind), SourceID: l.SourceID, ExternalID: l.ExternalID,
			ProviderIncidentID: l.ProviderIncidentID, URL: l.URL})
		switch l.Kind {
		case store.LinkGraph:
			if row.DefenderIncidentID == "" || row.DefenderIncidentURL == "" {
				row.DefenderIncidentID, row.DefenderIncidentURL = l.ExternalID, l.URL
			}
		case store.LinkSentinel:
			if row.SentinelIncidentName == "" {
				row.SentinelIncidentName, row.SentinelIncidentURL = l.ExternalID, l.URL
				row.SentinelWorkspace = afterKind(l.SourceID, "/sentinel/")
			}
		case store.LinkWebhook:
			if row.WebhookAlertID == "" {
				row.WebhookName, row.WebhookAlertID, row.WebhookAlertURL = afterKind(l.SourceID, "/webhook/"), l.ExternalID, l.URL
			}
		}
	}
	if row.DefenderIncidentID == "" {
		// A Sentinel mirror of a Defender incident that socsync does not read through Graph.
		for _, l := range rec.Links {
			if l.Kind == store.LinkSentinel && l.ProviderIncidentID != "" && hasSource(inc.Sources, incident.SourceDefender) {
				row.DefenderIncidentID = l.ProviderIncidentID
				break
			}
		}
	}
	// The change time at the source; the hub's commit time when the change had none.
	at := rec.Change.At
	if at.IsZero() {
		at = r.CreatedAt
		row.ChangeTime = utc(at)
	}
	row.TimeGenerated, row.TimeClamped = clampTime(at, r.CreatedAt)
	return row
}

func hasSource(ss []incident.Source, s incident.Source) bool { return slices.Contains(ss, s) }

// afterKind returns what follows marker in a source id (tenant/sentinel/sub/rg/ws → sub/rg/ws).
func afterKind(sourceID, marker string) string {
	if _, rest, ok := strings.Cut(sourceID, marker); ok {
		return rest
	}
	return ""
}

// clampTime puts t into the ingestion window around the hub's commit time of the change (so
// that a row sent twice is the same row), and, for a row sent long after its commit, into the
// window around now.
func clampTime(t, committed time.Time) (time.Time, bool) {
	clamped := false
	clamp := func(ref time.Time) {
		if ref.IsZero() {
			return
		}
		if lo := ref.Add(-maxPast); t.Before(lo) {
			t, clamped = lo, true
		}
		if hi := ref.Add(maxFuture); t.After(hi) {
			t, clamped = hi, true
		}
	}
	clamp(committed)
	return utc(t), clamped
}

// clampNow applies the ingestion window around now to a row built earlier (an outbox row
// older than the window).
func clampNow(row *Row, now time.Time) {
	if lo := now.Add(-maxPast); row.TimeGenerated.Before(lo) {
		row.TimeGenerated, row.TimeClamped = utc(lo), true
	}
	if hi := now.Add(maxFuture); row.TimeGenerated.After(hi) {
		row.TimeGenerated, row.TimeClamped = utc(hi), true
	}
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

// encode returns the row's JSON text (no HTML escaping, no trailing newline).
func encode(row *Row) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(row); err != nil {
		panic("forward: a Row always encodes: " + err.Error())
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// shrinkable is a column whose value fit cuts: a string, a list of strings or the links.
type shrinkable struct {
	name  string
	index int // field index in Row
}

var shrinkables = func() []shrinkable {
	var out []shrinkable
	t := reflect.TypeFor[Row]()
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "TruncatedFields":
		case f.Type.Kind() == reflect.String, f.Type == reflect.TypeFor[[]string](), f.Type == reflect.TypeFor[[]RowLink]():
			out = append(out, shrinkable{name, i})
		}
	}
	return out
}()

// fit cuts the row's values so that each value's JSON is at most FieldLimit bytes and the
// whole row's JSON at most budget bytes: the largest value is halved until the row fits (ties
// go to the earlier column). The same row and budget always give the same result. It records
// the columns it cut in TruncatedFields and returns the row's JSON.
func fit(row *Row, budget int) []byte {
	v := reflect.ValueOf(row).Elem()
	orig := make([]reflect.Value, len(shrinkables))
	limits := make([]int, len(shrinkables))
	sizes := make([]int, len(shrinkables))
	for i, s := range shrinkables {
		orig[i] = reflect.ValueOf(v.Field(s.index).Interface()) // a copy of the full value
		limits[i] = FieldLimit
		cutTo(v.Field(s.index), orig[i], limits[i])
		sizes[i] = valueSize(v.Field(s.index))
	}
	// TruncatedFields itself is added at the end; keep room for every name in it.
	reserve := 64
	for _, s := range shrinkables {
		reserve += len(s.name) + 3
	}
	total := len(encode(row))
	for total+reserve > budget {
		best := -1
		for i := range shrinkables {
			if limits[i] > minFieldLimit && sizes[i] > minFieldLimit && (best < 0 || sizes[i] > sizes[best]) {
				best = i
			}
		}
		if best < 0 {
			break // nothing left to cut: the caller finds the row too large
		}
		limits[best] = max(minFieldLimit, sizes[best]/2)
		f := v.Field(shrinkables[best].index)
		cutTo(f, orig[best], limits[best])
		n := valueSize(f)
		total += n - sizes[best]
		sizes[best] = n
	}
	row.TruncatedFields = []string{}
	for i, s := range shrinkables {
		if !reflect.DeepEqual(v.Field(s.index).Interface(), orig[i].Interface()) {
			row.TruncatedFields = append(row.TruncatedFields, s.name)
		}
	}
	return encode(row)
}

// valueSize is the length of a value's JSON text.
func valueSize(f reflect.Value) int {
	switch x := f.Interface().(type) {
	case string:
		return jsonStringLen(x)
	case []string:
		n := 2
		for i, s := range x {
			if i > 0 {
				n++
			}
			n += jsonStringLen(s)
		}
		return n
	default:
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(x)
		return buf.Len() - 1
	}
}

// cutTo sets f to the longest prefix of full whose JSON text fits in limit bytes: a string cut
// at a character boundary, a list cut to its first elements (a single first element that does
// not fit is cut itself), links likewise after each of their strings is cut to linkStringLimit.
func cutTo(f, full reflect.Value, limit int) {
	switch x := full.Interface().(type) {
	case string:
		f.SetString(cutString(x, limit))
	case []string:
		out := []string{}
		n := 2
		for i, s := range x {
			sep := 0
			if i > 0 {
				sep = 1
			}
			l := jsonStringLen(s)
			if n+sep+l > limit {
				if i == 0 {
					out = append(out, cutString(s, limit-2))
				}
				break
			}
			out = append(out, s)
			n += sep + l
		}
		f.Set(reflect.ValueOf(out))
	case []RowLink:
		out := []RowLink{}
		n := 2
		for i, l := range x {
			l.Kind, l.SourceID, l.ExternalID = cutString(l.Kind, linkStringLimit), cutString(l.SourceID, linkStringLimit), cutString(l.ExternalID, linkStringLimit)
			l.ProviderIncidentID, l.URL = cutString(l.ProviderIncidentID, linkStringLimit), cutString(l.URL, linkStringLimit)
			sep := 0
			if i > 0 {
				sep = 1
			}
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			_ = enc.Encode(l)
			size := buf.Len() - 1
			if n+sep+size > limit {
				break
			}
			out = append(out, l)
			n += sep + size
		}
		f.Set(reflect.ValueOf(out))
	}
}

// cutString returns the longest prefix of s (at a character boundary) whose JSON text,
// quotes included, is at most limit bytes.
func cutString(s string, limit int) string {
	if 2+len(s) <= limit && jsonStringLen(s) <= limit {
		return s
	}
	n := 2
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		l := runeJSONLen(s[i], r, size)
		if n+l > limit {
			return s[:i]
		}
		n += l
		i += size
	}
	return s
}

// jsonStringLen is the length of s as encoding/json writes it without HTML escaping, quotes
// included.
func jsonStringLen(s string) int {
	n := 2
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		n += runeJSONLen(s[i], r, size)
		i += size
	}
	return n
}

// runeJSONLen is how many bytes encoding/json writes for one character (first byte b, decoded
// as r from size bytes) of a string, without HTML escaping.
func runeJSONLen(b byte, r rune, size int) int {
	if b < utf8.RuneSelf {
		switch {
		case b == '"' || b == '\\' || b == '\b' || b == '\f' || b == '\n' || b == '\r' || b == '\t':
			return 2
		case b < 0x20:
			return 6 // \u00XX
		}
		return 1
	}
	if r == utf8.RuneError && size == 1 {
		return 6 // invalid UTF-8 becomes \ufffd
	}
	if r == '\u2028' || r == '\u2029' {
		return 6
	}
	return size
}
