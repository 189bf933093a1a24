package sentinel

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/socsync/socsync/internal/incident"
)

// Incident is a Sentinel incident as the API sends and takes it (2025-12-01). Sentinel has no
// PATCH: to change an incident, Get it, change Properties (see Apply), and Put it back; the
// body ETag makes a concurrent change a 409 (ErrConflict) instead of a lost update.
//
// Properties this type does not know are kept from the payload and sent back on Put, so a
// newer api-version's writable fields survive socsync's writes.
type Incident struct {
	ID         string             `json:"id,omitempty"`
	Name       string             `json:"name,omitempty"`
	Type       string             `json:"type,omitempty"`
	ETag       string             `json:"etag,omitempty"` // quoted, as the service sends it
	Properties IncidentProperties `json:"properties"`

	raw []byte // the payload this was decoded from
}

// IncidentProperties are an incident's properties. The read-only ones are never sent.
type IncidentProperties struct {
	Title                 string           `json:"title"`
	Description           string           `json:"description,omitempty"`
	Severity              string           `json:"severity"`
	Status                string           `json:"status"`
	Classification        string           `json:"classification,omitempty"`
	ClassificationReason  string           `json:"classificationReason,omitempty"`
	ClassificationComment string           `json:"classificationComment,omitempty"`
	Owner                 Owner            `json:"owner"`
	Labels                []incident.Label `json:"labels"`
	FirstActivityTimeUtc  string           `json:"firstActivityTimeUtc,omitempty"`
	LastActivityTimeUtc   string           `json:"lastActivityTimeUtc,omitempty"`

	// Read-only.
	CreatedTimeUtc         string         `json:"createdTimeUtc,omitempty"`
	LastModifiedTimeUtc    string         `json:"lastModifiedTimeUtc,omitempty"`
	IncidentNumber         int            `json:"incidentNumber,omitempty"`
	IncidentURL            string         `json:"incidentUrl,omitempty"`
	ProviderName           string         `json:"providerName,omitempty"`
	ProviderIncidentID     string         `json:"providerIncidentId,omitempty"`
	RelatedAnalyticRuleIDs []string       `json:"relatedAnalyticRuleIds,omitempty"`
	AdditionalData         AdditionalData `json:"additionalData"`

	extra map[string]json.RawMessage // properties not listed above, sent back as they came
}

// Owner is an incident's owner. Sentinel fills in email, assignedTo (display name) and
// userPrincipalName from the objectId it is given.
type Owner struct {
	ObjectID          string `json:"objectId,omitempty"`
	Email             string `json:"email,omitempty"`
	AssignedTo        string `json:"assignedTo,omitempty"`
	UserPrincipalName string `json:"userPrincipalName,omitempty"`
	OwnerType         string `json:"ownerType,omitempty"`
}

// IsZero reports whether the incident is unassigned.
func (o Owner) IsZero() bool {
	return o.ObjectID == "" && o.Email == "" && o.UserPrincipalName == "" && o.AssignedTo == ""
}

// AdditionalData is the read-only summary Sentinel computes.
type AdditionalData struct {
	AlertsCount         int      `json:"alertsCount"`
	BookmarksCount      int      `json:"bookmarksCount"`
	CommentsCount       int      `json:"commentsCount"`
	AlertProductNames   []string `json:"alertProductNames"`
	Tactics             []string `json:"tactics"`
	ProviderIncidentURL string   `json:"providerIncidentUrl,omitempty"`
}

// knownProperties are the property names IncidentProperties reads and writes itself.
var knownProperties = []string{"title", "description", "severity", "status", "classification",
	"classificationReason", "classificationComment", "owner", "labels", "firstActivityTimeUtc",
	"lastActivityTimeUtc", "createdTimeUtc", "lastModifiedTimeUtc", "incidentNumber",
	"incidentUrl", "providerName", "providerIncidentId", "relatedAnalyticRuleIds", "additionalData"}

// readOnlyProperties are left out of a PUT: the service ignores them, and leaving them out
// keeps them from being mistaken for something socsync meant to write.
var readOnlyProperties = []string{"createdTimeUtc", "lastModifiedTimeUtc", "incidentNumber",
	"incidentUrl", "providerName", "providerIncidentId", "relatedAnalyticRuleIds", "additionalData"}

// UnmarshalJSON decodes an incident, keeping the payload and any unknown properties. Nulls
// decode as empty values; a known field of the wrong type is an error.
func (inc *Incident) UnmarshalJSON(b []byte) error {
	type wireIncident Incident // without this method
	var v wireIncident
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*inc = Incident(v)
	inc.raw = slices.Clone(b)
	return nil
}

// UnmarshalJSON decodes the properties and keeps the unknown ones.
func (p *IncidentProperties) UnmarshalJSON(b []byte) error {
	type wireProperties IncidentProperties // without this method
	var v wireProperties
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	for k := range all {
		// Also a known name in other case: it was decoded into the field (JSON field names
		// match case-insensitively) and must not be sent twice.
		if slices.ContainsFunc(knownProperties, func(p string) bool { return strings.EqualFold(p, k) }) {
			delete(all, k)
		}
	}
	if len(all) == 0 {
		all = nil
	}
	v.extra = all
	*p = IncidentProperties(v)
	return nil
}

// MarshalJSON writes the PUT body of the properties: the writable ones this type knows (an
// empty optional one left out, which a PUT takes as "clear it"), the unknown ones as they came,
// and no read-only ones.
func (p IncidentProperties) MarshalJSON() ([]byte, error) {
	type wireProperties IncidentProperties // without this method
	v := wireProperties(p)
	if v.Labels == nil {
		v.Labels = []incident.Label{} // an absent list would clear them just the same; be explicit
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for _, k := range readOnlyProperties {
		delete(m, k)
	}
	if p.Owner.IsZero() {
		delete(m, "owner") // unassigned: an owner object with no fields is not the way to say so
	}
	for k, raw := range p.extra {
		if _, ok := m[k]; !ok {
			m[k] = raw
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// putBody is what Put sends: the properties and the etag; the envelope's read-only id, name
// and type stay out.
func (inc Incident) putBody() ([]byte, error) {
	body := struct {
		ETag       string             `json:"etag,omitempty"`
		Properties IncidentProperties `json:"properties"`
	}{inc.ETag, inc.Properties}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encoding incident %s: %w", inc.Name, err)
	}
	return b, nil
}

// Raw returns the payload the incident was decoded from (nil for one built in code).
func (inc Incident) Raw() json.RawMessage { return slices.Clone(json.RawMessage(inc.raw)) }
