package incident

import (
	"encoding/json"
	"time"
)

// Observation is what a poll saw of one remote incident, normalised into hub terms by the
// client of its API. Enum values the mapping tables do not know are kept as foreign values, so
// nothing the remote said is lost. The reconciler compares observations field by field.
type Observation struct {
	System     System `json:"system"`      // graph or sentinel
	ExternalID string `json:"external_id"` // Graph incident id, or Sentinel incident name (GUID)
	// ProviderIncidentID is, on a Sentinel incident that Microsoft's connector mirrors from
	// Defender XDR, the Defender (Graph) incident id; Mirrored says the incident is such a mirror.
	ProviderIncidentID string `json:"provider_incident_id,omitempty"`
	Mirrored           bool   `json:"mirrored,omitempty"`
	URL                string `json:"url,omitempty"`          // portal link of this remote incident
	ProviderURL        string `json:"provider_url,omitempty"` // Sentinel: the Defender portal link
	ETag               string `json:"etag,omitempty"`         // Sentinel body etag

	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
	Fields
	// MergedInto is the remote id of the incident this one was merged into (Graph
	// redirectIncidentId; Sentinel: the providerIncidentId of a Redirected incident).
	MergedInto string `json:"merged_into,omitempty"`

	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"` // the remote's own change time; cursors use it
	FirstActivityAt time.Time `json:"first_activity_at,omitempty"`
	LastActivityAt  time.Time `json:"last_activity_at,omitempty"`
	LastModifiedBy  string    `json:"last_modified_by,omitempty"`

	AlertCount   int             `json:"alert_count"`
	Alerts       []ObservedAlert `json:"-"` // when the API returned them with the incident
	CommentCount int             `json:"comment_count"`
	Comments     []RemoteComment `json:"-"` // when the API returned them with the incident
	ProductNames []string        `json:"product_names,omitempty"`

	// Flags note what was odd about the payload and kept as is: "future-timestamp",
	// "non-utc-timestamp", "unknown-enum:<field>".
	Flags []string `json:"flags,omitempty"`
	// Raw is the payload as received, for the detail view.
	Raw json.RawMessage `json:"-"`
}

// ObservedAlert is an alert as a remote API returned it, normalised.
type ObservedAlert struct {
	Alert
	Raw json.RawMessage `json:"-"`
}

// RemoteComment is a comment as a remote API returned it.
type RemoteComment struct {
	ID        string    `json:"id,omitempty"` // Sentinel comment name; Graph has none
	Author    string    `json:"author"`
	CreatedAt time.Time `json:"created_at"`
	Text      string    `json:"text"`
}
