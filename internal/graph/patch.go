package graph

import (
	"fmt"
	"strings"

	"github.com/socsync/socsync/internal/incident"
)

// Patch is a change to a Graph incident, in hub terms. A nil field is left as it is; a set
// field is written, even when it is the empty value: Owner set to "" unassigns the incident
// and Tags set to an empty list clears them. So an owner is only ever reset on purpose.
type Patch struct {
	Status                *incident.Status
	Severity              *incident.Severity
	Owner                 *string // hub owner (UPN); "" unassigns
	Classification        *incident.Classification
	Determination         *incident.Determination
	ClassificationComment *string // resolvingComment
	Tags                  *[]string
	Title                 *string // displayName
	Description           *string
}

// Set returns a pointer to v, for filling a Patch: graph.Patch{Owner: graph.Set("")}.
func Set[T any](v T) *T { return &v }

// PatchOf returns the Patch that writes the named hub fields (incident.Fields' JSON names:
// status, severity, owner, classification, determination, classification_comment, tags) of
// v. Names Graph has no field for (classification_reason) are ignored; an unknown name is an
// error.
func PatchOf(v incident.Fields, fields ...string) (Patch, error) {
	var p Patch
	for _, f := range fields {
		switch f {
		case "status":
			p.Status = Set(v.Status)
		case "severity":
			p.Severity = Set(v.Severity)
		case "owner":
			p.Owner = Set(v.Owner)
		case "classification":
			p.Classification = Set(v.Classification)
		case "determination":
			p.Determination = Set(v.Determination)
		case "classification_comment":
			p.ClassificationComment = Set(v.ClassificationComment)
		case "tags":
			p.Tags = Set(incident.NormalizeTags(v.Tags))
		case "classification_reason":
		default:
			return Patch{}, fmt.Errorf("graph: no incident field %q", f)
		}
	}
	return p, nil
}

// IsZero reports whether the patch changes nothing.
func (p Patch) IsZero() bool { return p == Patch{} }

// body returns the PATCH body: only the set fields, enum values in Graph's spelling. A value
// Graph cannot express is an ErrNotWritable error naming the field, and nothing is written.
func (p Patch) body() (map[string]any, error) {
	b := map[string]any{}
	var bad []string
	refuse := func(field string, v any, why string) { bad = append(bad, fmt.Sprintf("%s %q: %s", field, v, why)) }
	if p.Status != nil {
		switch r, ok := incident.GraphStatus.ToRemote(*p.Status); {
		case *p.Status == incident.StatusMerged:
			// Only Defender's correlation merges (it sets redirectIncidentId); a bare
			// "redirected" would orphan the incident.
			refuse("status", *p.Status, "only correlation merges incidents")
		case !ok || r == "":
			refuse("status", *p.Status, "no Graph status")
		default:
			b["status"] = r
		}
	}
	if p.Severity != nil {
		if r, ok := incident.GraphSeverity.ToRemote(*p.Severity); ok && r != "" {
			b["severity"] = r
		} else {
			refuse("severity", *p.Severity, "no Graph severity")
		}
	}
	if p.Owner != nil {
		switch r, ok := incident.OwnerToGraph(*p.Owner); {
		case !ok:
			refuse("owner", *p.Owner, "not a UPN Graph can assign")
		case r == "":
			b["assignedTo"] = nil // unassigned: the property's null
		default:
			b["assignedTo"] = r
		}
	}
	if p.Classification != nil {
		if r, ok := incident.GraphClassification.ToRemote(*p.Classification); ok && r != "" {
			b["classification"] = r
		} else {
			refuse("classification", *p.Classification, "no Graph classification")
		}
	}
	if p.Determination != nil {
		if r, ok := incident.GraphDetermination.ToRemote(*p.Determination); ok && r != "" {
			b["determination"] = r
		} else {
			refuse("determination", *p.Determination, "no Graph determination")
		}
	}
	if p.ClassificationComment != nil {
		b["resolvingComment"] = *p.ClassificationComment
	}
	if p.Tags != nil {
		tags := incident.NormalizeTags(*p.Tags) // replaces the whole list; never null
		b["customTags"] = tags
	}
	if p.Title != nil {
		if strings.TrimSpace(*p.Title) == "" {
			refuse("title", *p.Title, "a title cannot be empty")
		} else {
			b["displayName"] = *p.Title
		}
	}
	if p.Description != nil {
		b["description"] = *p.Description
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrNotWritable, strings.Join(bad, "; "))
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty patch", ErrNotWritable)
	}
	return b, nil
}
