package sentinel

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
	FlagUnknownEnum     = "unknown-enum:" // + the Sentinel field, e.g. "unknown-enum:status"
)

// DefaultMaxSkew is how far in the future a timestamp may lie before it is flagged.
const DefaultMaxSkew = 5 * time.Minute

// mirrorProviders are the providerName spellings of incidents Microsoft's Defender XDR
// connector mirrors (compared case-insensitively): "Microsoft XDR" since Sentinel moved into
// the Defender portal, "Microsoft 365 Defender" before, and the product's current name.
var mirrorProviders = []string{"Microsoft XDR", "Microsoft 365 Defender", "Microsoft Defender XDR"}

// Mirrored reports whether a providerName is Microsoft's Defender XDR connector.
func Mirrored(providerName string) bool {
	return slices.ContainsFunc(mirrorProviders, func(p string) bool {
		return strings.EqualFold(strings.TrimSpace(providerName), p)
	})
}

// Normalizer turns Sentinel payloads into socsync's normalised form. The zero value works:
// no owner map, the wall clock, DefaultMaxSkew.
type Normalizer struct {
	// TenantID stamps alerts with the tenant they belong to.
	TenantID string
	// Owners maps owner object ids to UPNs (from the tenant's configuration).
	Owners incident.Owners
	// Now is the clock that future timestamps are judged by (default time.Now).
	Now func() time.Time
	// MaxSkew is how far ahead of Now a timestamp may be before it is flagged (default
	// DefaultMaxSkew).
	MaxSkew time.Duration
}

// Incident decodes and normalises one incident payload.
func (n Normalizer) Incident(raw []byte) (incident.Observation, Incident, error) {
	var inc Incident
	if err := json.Unmarshal(raw, &inc); err != nil {
		return incident.Observation{}, Incident{}, fmt.Errorf("%w: incident: %w", ErrMalformed, err)
	}
	o, err := n.Observe(inc)
	if err != nil {
		return incident.Observation{}, Incident{}, err
	}
	return o, inc, nil
}

// Page normalises a page of the incidents collection: {"value": […], "nextLink"}. Incidents
// that cannot be read go to Page.Bad. Next is the nextLink as sent (unescaped).
func (n Normalizer) Page(body []byte) (Page, error) {
	var env struct {
		Value    *[]json.RawMessage `json:"value"`
		NextLink string             `json:"nextLink"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return Page{}, fmt.Errorf("%w: page: %w", ErrMalformed, err)
	}
	if env.Value == nil {
		return Page{}, fmt.Errorf("%w: page has no value array", ErrMalformed)
	}
	p := Page{Next: env.NextLink, Incidents: make([]incident.Observation, 0, len(*env.Value))}
	for _, raw := range *env.Value {
		o, _, err := n.Incident(raw)
		if err != nil {
			p.Bad = append(p.Bad, BadItem{ID: nameOf(raw), Err: err, Raw: raw})
			continue
		}
		p.Incidents = append(p.Incidents, o)
	}
	return p, nil
}

// nameOf returns the name of an incident payload, if it has a readable one.
func nameOf(raw []byte) string {
	var v struct {
		Name any `json:"name"`
	}
	if json.Unmarshal(raw, &v) != nil || v.Name == nil {
		return ""
	}
	return fmt.Sprint(v.Name)
}

// Observe normalises a decoded incident. Status is read with the labels (Closed + Redirected
// is merged); a merged incident's providerIncidentId names the incident it was merged into
// (MergedInto) — the target's Defender id, or its Sentinel incident number when the target is
// a Sentinel-only incident — so it is not reported as ProviderIncidentID, which would link it
// to its target. Unknown enum values are kept as foreign values and flagged; timestamps not in
// UTC or in the future are kept (in UTC) and flagged. An incident without a name, or with an
// unreadable timestamp, is an error.
func (n Normalizer) Observe(inc Incident) (incident.Observation, error) {
	if strings.TrimSpace(inc.Name) == "" {
		return incident.Observation{}, fmt.Errorf("%w: incident has no name", ErrMalformed)
	}
	p := inc.Properties
	fl := n.flags()
	o := incident.Observation{
		System:      incident.Sentinel,
		ExternalID:  inc.Name,
		URL:         p.IncidentURL,
		ProviderURL: p.AdditionalData.ProviderIncidentURL,
		ETag:        inc.ETag,
		Title:       p.Title,
		Description: p.Description,
		Mirrored:    Mirrored(p.ProviderName),
		Raw:         inc.Raw(),
	}
	status, known := incident.StatusFromSentinel(p.Status, p.Labels)
	if !known {
		fl.add(FlagUnknownEnum + "status")
	}
	o.Status = status
	o.Severity = enum(incident.SentinelSeverity, "severity", p.Severity, fl)
	o.Owner = incident.OwnerFromSentinel(p.Owner.UserPrincipalName, p.Owner.Email, p.Owner.ObjectID, n.Owners)
	o.Classification = enum(incident.SentinelClassification, "classification", p.Classification, fl)
	o.ClassificationReason = enum(incident.SentinelReason, "classificationReason", p.ClassificationReason, fl)
	o.ClassificationComment = p.ClassificationComment
	o.Tags = incident.TagsFromLabels(p.Labels)
	switch {
	case status == incident.StatusMerged:
		o.MergedInto = p.ProviderIncidentID
	case o.Mirrored:
		o.ProviderIncidentID = p.ProviderIncidentID
	}
	var err error
	for _, t := range []struct {
		field string
		in    string
		out   *time.Time
	}{
		{"createdTimeUtc", p.CreatedTimeUtc, &o.CreatedAt},
		{"lastModifiedTimeUtc", p.LastModifiedTimeUtc, &o.UpdatedAt},
		{"firstActivityTimeUtc", p.FirstActivityTimeUtc, &o.FirstActivityAt},
		{"lastActivityTimeUtc", p.LastActivityTimeUtc, &o.LastActivityAt},
	} {
		if *t.out, err = fl.time(t.field, t.in); err != nil {
			return incident.Observation{}, err
		}
	}
	o.AlertCount = p.AdditionalData.AlertsCount
	o.CommentCount = p.AdditionalData.CommentsCount
	if len(p.AdditionalData.AlertProductNames) > 0 {
		o.ProductNames = slices.Clone(p.AdditionalData.AlertProductNames)
	}
	o.Flags = fl.list()
	return o, nil
}

// wireAlert is a SecurityAlert entity of POST …/incidents/{id}/alerts.
type wireAlert struct {
	Name       string `json:"name"`
	Kind       string `json:"kind"`
	Properties struct {
		SystemAlertID       string   `json:"systemAlertId"`
		ProviderAlertID     string   `json:"providerAlertId"`
		AlertDisplayName    string   `json:"alertDisplayName"`
		Severity            string   `json:"severity"`
		Status              string   `json:"status"`
		ProductName         string   `json:"productName"`
		Tactics             []string `json:"tactics"`
		TimeGenerated       string   `json:"timeGenerated"`
		ProcessingEndTime   string   `json:"processingEndTime"`
		LastModifiedTimeUtc string   `json:"lastModifiedTimeUtc"`
	} `json:"properties"`
}

// Alert normalises one SecurityAlert entity.
//
// RemoteID is the id the alert has in the product that raised it (providerAlertId): for a
// Defender XDR alert that is its Graph alert id, so the alert seen through both APIs is one
// alert; systemAlertId (Sentinel's own GUID) stands in when there is none.
//
// Version is the alert's latest change time: the latest of processingEndTime (when Sentinel
// finished processing this version of the alert — a status change gives a new version),
// timeGenerated and lastModifiedTimeUtc, whichever are present. CreatedAt is timeGenerated.
// Category is the tactics, comma-separated.
func (n Normalizer) Alert(raw []byte) (incident.ObservedAlert, error) {
	var w wireAlert
	if err := json.Unmarshal(raw, &w); err != nil {
		return incident.ObservedAlert{}, fmt.Errorf("%w: alert: %w", ErrMalformed, err)
	}
	p := w.Properties
	a := incident.ObservedAlert{Raw: slices.Clone(json.RawMessage(raw))}
	a.RemoteID = cmpOr(p.ProviderAlertID, p.SystemAlertID, w.Name)
	if strings.TrimSpace(a.RemoteID) == "" {
		return incident.ObservedAlert{}, fmt.Errorf("%w: alert has no providerAlertId, systemAlertId or name", ErrMalformed)
	}
	fl := n.flags()
	a.TenantID = n.TenantID
	a.Title = p.AlertDisplayName
	a.Severity = enum(incident.SentinelSeverity, "severity", p.Severity, fl)
	a.Status = enum(incident.SentinelAlertStatus, "status", p.Status, fl)
	a.ProductName = p.ProductName
	a.Category = strings.Join(p.Tactics, ",")
	var err error
	if a.CreatedAt, err = fl.time("timeGenerated", p.TimeGenerated); err != nil {
		return incident.ObservedAlert{}, err
	}
	a.Version = a.CreatedAt
	for _, f := range [][2]string{{"processingEndTime", p.ProcessingEndTime}, {"lastModifiedTimeUtc", p.LastModifiedTimeUtc}} {
		t, err := fl.time(f[0], f[1])
		if err != nil {
			return incident.ObservedAlert{}, err
		}
		if t.After(a.Version) {
			a.Version = t
		}
	}
	return a, nil
}

// wireComment is an incident comment.
type wireComment struct {
	Name       string `json:"name"`
	Properties struct {
		Message        string `json:"message"`
		CreatedTimeUtc string `json:"createdTimeUtc"`
		Author         struct {
			Name              string `json:"name"`
			UserPrincipalName string `json:"userPrincipalName"`
			Email             string `json:"email"`
			ObjectID          string `json:"objectId"`
		} `json:"author"`
	} `json:"properties"`
}

// Comment normalises one incident comment. Author is the author's UPN, else e-mail address,
// else name, else object id.
func (n Normalizer) Comment(raw []byte) (incident.RemoteComment, error) {
	var w wireComment
	if err := json.Unmarshal(raw, &w); err != nil {
		return incident.RemoteComment{}, fmt.Errorf("%w: comment: %w", ErrMalformed, err)
	}
	if strings.TrimSpace(w.Name) == "" {
		return incident.RemoteComment{}, fmt.Errorf("%w: comment has no name", ErrMalformed)
	}
	p := w.Properties
	c := incident.RemoteComment{ID: w.Name, Text: p.Message,
		Author: cmpOr(p.Author.UserPrincipalName, p.Author.Email, p.Author.Name, p.Author.ObjectID)}
	var err error
	if c.CreatedAt, err = n.flags().time("createdTimeUtc", p.CreatedTimeUtc); err != nil {
		return incident.RemoteComment{}, err
	}
	return c, nil
}

func cmpOr(vs ...string) string {
	for _, v := range vs {
		if strings.TrimSpace(v) != "" {
			return v
		}
	}
	return ""
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

// time parses an ARM date-time, with or without fractional seconds and offset. It returns the
// time in UTC: one with a non-zero offset, or none at all (read as UTC, the documented zone),
// is flagged non-UTC; one beyond now + maxSkew is flagged future. Empty is the zero time.
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
