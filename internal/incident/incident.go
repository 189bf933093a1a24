// Package incident holds socsync's domain model: hub incidents, alerts and comments, their
// enums, and the mapping tables between those enums and Microsoft Graph's and Sentinel's. It
// does no I/O.
//
// Enum values that a remote system sends but socsync does not know are never dropped and never
// turned into a default: they are kept as a "foreign" value (see Foreign), which carries the
// system it came from and its raw spelling, so that writing it back to that system yields the
// raw value unchanged and writing it anywhere else is refused.
package incident

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Source is where an incident came from. An incident may have several.
type Source string

// Sources.
const (
	SourceDefender Source = "defender" // Microsoft Defender XDR, through Microsoft Graph
	SourceSentinel Source = "sentinel" // a Microsoft Sentinel workspace, through ARM
	SourceWebhook  Source = "webhook"  // another SIEM, through an inbound webhook
)

// Fields are the fields socsync keeps in two-way sync, in hub terms. The reconcile planner
// compares three of these per link: the last agreed state, the observed remote state and the
// hub's desired state.
type Fields struct {
	Status                Status               `json:"status"`
	Severity              Severity             `json:"severity"`
	Owner                 string               `json:"owner"`
	Classification        Classification       `json:"classification"`
	Determination         Determination        `json:"determination"`
	ClassificationReason  ClassificationReason `json:"classification_reason"`
	ClassificationComment string               `json:"classification_comment"`
	Tags                  []string             `json:"tags"`
}

// Incident is a hub incident: one per real incident, belonging to exactly one tenant.
type Incident struct {
	ID          string `json:"id"`
	TenantID    string `json:"tenant_id"`
	Title       string `json:"title"`
	Description string `json:"description"`
	Fields
	Sources         []Source  `json:"sources"`
	AlertCount      int       `json:"alert_count"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
	FirstActivityAt time.Time `json:"first_activity_at"`
	LastActivityAt  time.Time `json:"last_activity_at"`
	MergedInto      string    `json:"merged_into,omitempty"`
	// Version increases by one with every change of the hub incident; the forward stream
	// writes one record per (incident, version).
	Version int64 `json:"version"`
}

// Alert is one alert of an incident, deduplicated by its remote alert id across connectors.
// Version is the remote's own change time; a version never replaces a newer one.
type Alert struct {
	TenantID        string      `json:"tenant_id"`
	RemoteID        string      `json:"remote_id"`
	IncidentID      string      `json:"incident_id"`
	Title           string      `json:"title"`
	Severity        Severity    `json:"severity"`
	Status          AlertStatus `json:"status"`
	ServiceSource   string      `json:"service_source,omitempty"`
	DetectionSource string      `json:"detection_source,omitempty"`
	ProductName     string      `json:"product_name,omitempty"`
	Category        string      `json:"category,omitempty"`
	CreatedAt       time.Time   `json:"created_at"`
	Version         time.Time   `json:"version"`
}

// CommentOrigin says where a comment was first written.
type CommentOrigin string

// Comment origins.
const (
	OriginHub      CommentOrigin = "hub"
	OriginGraph    CommentOrigin = "graph"
	OriginSentinel CommentOrigin = "sentinel"
	OriginWebhook  CommentOrigin = "webhook"
)

// Comment is one comment of an incident, written once to each link.
type Comment struct {
	ID         string        `json:"id"`
	IncidentID string        `json:"incident_id"`
	Origin     CommentOrigin `json:"origin"`
	Author     string        `json:"author"`
	CreatedAt  time.Time     `json:"created_at"`
	Text       string        `json:"text"`
}

// A comment socsync writes to a remote carries a marker, [socsync:<ref>], with a reference to
// its hub comment. Graph has no comment ids, so before writing a comment again (after a crash
// between the write and its record) the reconciler looks for the marker in the incident's
// comments; and a poll that reads socsync's own comment back recognises it as the hub's, not as
// a new remote comment.
var commentMarkerRE = regexp.MustCompile(`\[socsync:([0-9a-f]{12})\]`)

// CommentRef is the short reference of a hub comment that its marker carries.
func CommentRef(commentID string) string {
	id := strings.ReplaceAll(commentID, "-", "")
	if len(id) < 12 {
		return fmt.Sprintf("%012s", id)
	}
	return id[len(id)-12:]
}

// CommentMarker is the marker a remote copy of the hub comment carries.
func CommentMarker(commentID string) string { return "[socsync:" + CommentRef(commentID) + "]" }

// CommentRefOf returns the hub comment reference in a remote comment's text, if it has one.
func CommentRefOf(text string) (string, bool) {
	m := commentMarkerRE.FindStringSubmatch(text)
	if m == nil {
		return "", false
	}
	return m[1], true
}
