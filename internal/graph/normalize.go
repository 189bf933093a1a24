package graph

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/socsync/socsync/internal/incident"
)

// Flags an observation can carry (incident.Observation.Flags).
const (
	FlagFutureTimestamp = "future-timestamp"
	FlagNonUTCTimestamp = "non-utc-timestamp"
	FlagUnknownEnum     = "unknown-enum:" // + the Graph field, e.g. "unknown-enum:status"
)

// DefaultMaxSkew is how far in the future a timestamp may lie before it is flagged.
const DefaultMaxSkew = 5 * time.Minute

// Normalizer turns Graph payloads into socsync's normalised form. The zero value works: no
// tenant check, the wall clock, DefaultMaxSkew.
type Normalizer struct {
	// TenantID, when set, is the tenant the payloads must belong to: an incident whose tenantId
	// differs is refused with ErrWrongTenant, and alerts are stamped with it.
	TenantID string
	// Now is the clock that future timestamps are judged by (default time.Now).
	Now func() time.Time
	// MaxSkew is how far ahead of Now a timestamp may be before it is flagged (default
	// DefaultMaxSkew).
	MaxSkew time.Duration
}

// Wire shapes: only the fields socsync reads. Strings that Graph sends as null decode as "".
type wireIncident struct {
	ID                 string             `json:"id"`
	TenantID           string             `json:"tenantId"`
	Status             string             `json:"status"`
	IncidentWebURL     string             `json:"incidentWebUrl"`
	RedirectIncidentID string             `json:"redirectIncidentId"`
	DisplayName        string             `json:"displayName"`
	Description        string             `json:"description"`
	CreatedDateTime    string             `json:"createdDateTime"`
	LastUpdateDateTime string             `json:"lastUpdateDateTime"`
	AssignedTo         string             `json:"assignedTo"`
	Classification     string             `json:"classification"`
	Determination      string             `json:"determination"`
	Severity           string             `json:"severity"`
	CustomTags         []string           `json:"customTags"`
	ResolvingComment   string             `json:"resolvingComment"`
	LastModifiedBy     string             `json:"lastModifiedBy"`
	Comments           []wireComment      `json:"comments"`
	Alerts             *[]json.RawMessage `json:"alerts"` // nil unless $expand=alerts
}

// wireComment is an alertComment. createdBy/createdTime are the older documentation's names,
// read as a fallback.
type wireComment struct {
	Comment              string `json:"comment"`
	CreatedByDisplayName string `json:"createdByDisplayName"`
	CreatedDateTime      string `json:"createdDateTime"`
	CreatedBy            string `json:"createdBy"`
	CreatedTime          string `json:"createdTime"`
}

type wireAlert struct {
	ID                    string `json:"id"`
	Title                 string `json:"title"`
	Severity              string `json:"severity"`
	Status                string `json:"status"`
	ServiceSource         string `json:"serviceSource"`
	DetectionSource       string `json:"detectionSource"`
	ProductName           string `json:"productName"`
	Category              string `json:"category"`
	CreatedDateTime       string `json:"createdDateTime"`
	LastUpdateDateTime    string `json:"lastUpdateDateTime"`
	FirstActivityDateTime string `json:"firstActivityDateTime"`
	LastActivityDateTime  string `json:"lastActivityDateTime"`
}

// Incident normalises one Graph incident (as JSON, alerts expanded or not). Raw keeps the
// payload. Alerts is nil when the payload has no alerts property (not expanded) and then
// AlertCount is 0 without meaning "no alerts". Unknown enum values are kept as foreign values
// and flagged; timestamps not in UTC or in the future are kept (in UTC) and flagged. A payload
// that cannot be read (not an object, wrong types, no id, unreadable timestamps) is an error
// naming the field.
func (n Normalizer) Incident(raw []byte) (incident.Observation, error) {
	var w wireIncident
	if err := json.Unmarshal(raw, &w); err != nil {
		return incident.Observation{}, fmt.Errorf("%w: incident: %w", ErrMalformed, err)
	}
	if strings.TrimSpace(w.ID) == "" {
		return incident.Observation{}, fmt.Errorf("%w: incident has no id", ErrMalformed)
	}
	if n.TenantID != "" && w.TenantID != "" && !strings.EqualFold(w.TenantID, n.TenantID) {
		return incident.Observation{}, fmt.Errorf("%w: incident %s belongs to tenant %s, not %s", ErrWrongTenant, w.ID, w.TenantID, n.TenantID)
	}
	fl := n.flags()
	o := incident.Observation{
		System:         incident.Graph,
		ExternalID:     w.ID,
		URL:            w.IncidentWebURL,
		Title:          w.DisplayName,
		Description:    w.Description,
		MergedInto:     w.RedirectIncidentID,
		LastModifiedBy: w.LastModifiedBy,
		Raw:            slices.Clone(json.RawMessage(raw)),
	}
	o.Status = enum(incident.GraphStatus, "status", w.Status, fl)
	o.Severity = enum(incident.GraphSeverity, "severity", w.Severity, fl)
	o.Owner = incident.OwnerFromGraph(w.AssignedTo)
	o.Classification = enum(incident.GraphClassification, "classification", w.Classification, fl)
	o.Determination = enum(incident.GraphDetermination, "determination", w.Determination, fl)
	o.ClassificationComment = w.ResolvingComment
	o.Tags = incident.NormalizeTags(w.CustomTags)

	var err error
	if o.CreatedAt, err = fl.time("createdDateTime", w.CreatedDateTime); err != nil {
		return incident.Observation{}, err
	}
	if o.UpdatedAt, err = fl.time("lastUpdateDateTime", w.LastUpdateDateTime); err != nil {
		return incident.Observation{}, err
	}
	if o.Comments, err = n.comments(w.Comments, fl); err != nil {
		return incident.Observation{}, err
	}
	o.CommentCount = len(o.Comments)
	if w.Alerts != nil {
		if err := n.alerts(&o, *w.Alerts, fl); err != nil {
			return incident.Observation{}, err
		}
	}
	o.Flags = fl.list()
	return o, nil
}

// Page normalises a page of the incidents collection: {"value": […], "@odata.nextLink"}.
// Incidents that cannot be read go to Page.Bad; an incident of another tenant fails the whole
// page with ErrWrongTenant, since the credential, not the incident, is wrong.
func (n Normalizer) Page(body []byte) (Page, error) {
	var env struct {
		Value    *[]json.RawMessage `json:"value"`
		NextLink string             `json:"@odata.nextLink"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return Page{}, fmt.Errorf("%w: page: %w", ErrMalformed, err)
	}
	if env.Value == nil {
		return Page{}, fmt.Errorf("%w: page has no value array", ErrMalformed)
	}
	p := Page{Next: env.NextLink, Incidents: make([]incident.Observation, 0, len(*env.Value))}
	for _, raw := range *env.Value {
		o, err := n.Incident(raw)
		switch {
		case errors.Is(err, ErrWrongTenant):
			return Page{}, err
		case err != nil:
			p.Bad = append(p.Bad, BadItem{ID: idOf(raw), Err: err, Raw: raw})
		default:
			p.Incidents = append(p.Incidents, o)
		}
	}
	return p, nil
}

// idOf returns the id of an incident payload, if it has a readable one.
func idOf(raw []byte) string {
	var v struct {
		ID any `json:"id"`
	}
	if json.Unmarshal(raw, &v) != nil || v.ID == nil {
		return ""
	}
	return fmt.Sprint(v.ID)
}

// alerts normalises the expanded alerts into o, with what they tell about the incident: the
// product names and the first and last activity (Graph's incident has neither).
func (n Normalizer) alerts(o *incident.Observation, raws []json.RawMessage, fl *flagSet) error {
	o.Alerts = make([]incident.ObservedAlert, 0, len(raws))
	var products []string
	for i, raw := range raws {
		var w wireAlert
		if err := json.Unmarshal(raw, &w); err != nil {
			return fmt.Errorf("%w: alerts[%d]: %w", ErrMalformed, i, err)
		}
		if strings.TrimSpace(w.ID) == "" {
			return fmt.Errorf("%w: alerts[%d] has no id", ErrMalformed, i)
		}
		a := incident.ObservedAlert{Raw: slices.Clone(raw)}
		a.TenantID = n.TenantID
		a.RemoteID = w.ID
		a.Title = w.Title
		a.Severity = enum(incident.GraphSeverity, "alerts.severity", w.Severity, fl)
		a.Status = enum(incident.GraphAlertStatus, "alerts.status", w.Status, fl)
		a.ServiceSource, a.DetectionSource = w.ServiceSource, w.DetectionSource
		a.ProductName, a.Category = w.ProductName, w.Category
		var err error
		at := func(field, v string) time.Time {
			if err != nil {
				return time.Time{}
			}
			var t time.Time
			t, err = fl.time(fmt.Sprintf("alerts[%d].%s", i, field), v)
			return t
		}
		a.CreatedAt = at("createdDateTime", w.CreatedDateTime)
		a.Version = at("lastUpdateDateTime", w.LastUpdateDateTime)
		first := at("firstActivityDateTime", w.FirstActivityDateTime)
		last := at("lastActivityDateTime", w.LastActivityDateTime)
		if err != nil {
			return err
		}
		if !first.IsZero() && (o.FirstActivityAt.IsZero() || first.Before(o.FirstActivityAt)) {
			o.FirstActivityAt = first
		}
		if last.After(o.LastActivityAt) {
			o.LastActivityAt = last
		}
		if w.ProductName != "" && !slices.Contains(products, w.ProductName) {
			products = append(products, w.ProductName)
		}
		o.Alerts = append(o.Alerts, a)
	}
	slices.Sort(products)
	o.AlertCount, o.ProductNames = len(o.Alerts), products
	return nil
}

func (n Normalizer) comments(ws []wireComment, fl *flagSet) ([]incident.RemoteComment, error) {
	out := make([]incident.RemoteComment, 0, len(ws))
	for i, w := range ws {
		c := incident.RemoteComment{Author: cmpOr(w.CreatedByDisplayName, w.CreatedBy), Text: w.Comment}
		var err error
		if c.CreatedAt, err = fl.time(fmt.Sprintf("comments[%d].createdDateTime", i), cmpOr(w.CreatedDateTime, w.CreatedTime)); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// Comments normalises the answer to a comment POST: {"value": [alertComment, …]}.
func (n Normalizer) Comments(raw []byte) ([]incident.RemoteComment, error) {
	var env struct {
		Value *[]wireComment `json:"value"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, fmt.Errorf("%w: comments: %w", ErrMalformed, err)
	}
	if env.Value == nil {
		return nil, fmt.Errorf("%w: comments: no value array", ErrMalformed)
	}
	return n.comments(*env.Value, n.flags())
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// enum reads a remote enum value through its mapping table, flagging values it does not know.
func enum[H ~string](t incident.Table[H], field, raw string, fl *flagSet) H {
	v, known := t.FromRemote(raw)
	if !known {
		fl.add(FlagUnknownEnum + field)
	}
	return v
}

// flagSet collects an observation's flags and judges its timestamps.
type flagSet struct {
	now     time.Time
	maxSkew time.Duration
	set     map[string]bool
}

func (n Normalizer) flags() *flagSet {
	now := time.Now
	if n.Now != nil {
		now = n.Now
	}
	skew := n.MaxSkew
	if skew <= 0 {
		skew = DefaultMaxSkew
	}
	return &flagSet{now: now(), maxSkew: skew, set: map[string]bool{}}
}

func (f *flagSet) add(flag string) { f.set[flag] = true }

func (f *flagSet) list() []string {
	if len(f.set) == 0 {
		return nil
	}
	out := make([]string, 0, len(f.set))
	for k := range f.set {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// errTimestamp is the cause of an unreadable timestamp.
var errTimestamp = errors.New("not an ISO 8601 timestamp")

// time parses a Graph DateTimeOffset, with or without fractional seconds and offset. It
// returns the time in UTC: one with a non-zero offset, or none at all (read as UTC, the
// documented zone), is flagged non-UTC; one beyond now + maxSkew is flagged future. Empty is
// the zero time.
func (f *flagSet) time(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err == nil {
		if _, off := t.Zone(); off != 0 {
			f.add(FlagNonUTCTimestamp)
		}
	} else {
		t, err = time.ParseInLocation("2006-01-02T15:04:05.999999999", s, time.UTC)
		if err != nil {
			return time.Time{}, fmt.Errorf("%w: %s: %q %w", ErrMalformed, field, s, errTimestamp)
		}
		f.add(FlagNonUTCTimestamp)
	}
	t = t.UTC()
	if t.After(f.now.Add(f.maxSkew)) {
		f.add(FlagFutureTimestamp)
	}
	return t, nil
}
