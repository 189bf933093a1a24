package sentinel

import (
	"fmt"
	"slices"

	"github.com/socsync/socsync/internal/incident"
)

// Changes are hub field changes to write to a Sentinel incident. A nil field is left as it
// is; a set field is written, even when it is the empty value: Owner set to "" unassigns the
// incident, Tags set to an empty list removes the user labels. So an owner is only ever reset
// on purpose.
type Changes struct {
	Status                *incident.Status
	Severity              *incident.Severity
	Owner                 *string // hub owner (UPN, or a foreign Sentinel object id); "" unassigns
	Classification        *incident.Classification
	ClassificationReason  *incident.ClassificationReason
	ClassificationComment *string
	Tags                  *[]string
	// Determination is not a Sentinel field: it picks the classification reason when the hub
	// has none (incident.ReasonFor).
	Determination *incident.Determination
}

// Set returns a pointer to v, for filling Changes: sentinel.Changes{Owner: sentinel.Set("")}.
func Set[T any](v T) *T { return &v }

// ChangesOf returns the Changes that write the named hub fields (incident.Fields' JSON names:
// status, severity, owner, classification, determination, classification_reason,
// classification_comment, tags) of v. An unknown name is an error.
func ChangesOf(v incident.Fields, fields ...string) (Changes, error) {
	var c Changes
	for _, f := range fields {
		switch f {
		case "status":
			c.Status = Set(v.Status)
		case "severity":
			c.Severity = Set(v.Severity)
		case "owner":
			c.Owner = Set(v.Owner)
		case "classification":
			c.Classification = Set(v.Classification)
		case "determination":
			c.Determination = Set(v.Determination)
		case "classification_reason":
			c.ClassificationReason = Set(v.ClassificationReason)
		case "classification_comment":
			c.ClassificationComment = Set(v.ClassificationComment)
		case "tags":
			c.Tags = Set(slices.Clone(v.Tags))
		default:
			return Changes{}, fmt.Errorf("sentinel: no incident field %q", f)
		}
	}
	// The determination only matters with a classification to pick a reason for.
	if c.Determination != nil && c.Classification == nil && v.Classification != "" {
		c.Classification = Set(v.Classification)
	}
	return c, nil
}

// Unwritten is a change Apply could not make, and why. Field is the hub field name.
type Unwritten struct {
	Field  string
	Value  string
	Reason string
}

func (u Unwritten) String() string { return fmt.Sprintf("%s %q: %s", u.Field, u.Value, u.Reason) }

// Apply writes the hub changes ch into inc (a wire incident as Get returned it), through the
// mapping tables, and returns the changes it could not make; those leave inc's field as it
// was. The rules Sentinel enforces are applied here so that a PUT is not refused:
//
//   - closing (status resolved or merged → Closed) needs a classification, from ch or already
//     on the incident; without one the status is not changed;
//   - TruePositive, BenignPositive and FalsePositive need a reason: one that fits is kept,
//     otherwise incident.ReasonFor picks it from the determination; Undetermined has none;
//   - an owner is written by object id (incident.OwnerToSentinel); a UPN without a configured
//     object id is refused rather than written as nobody, and the owner is only cleared when
//     ch.Owner is explicitly "";
//   - tags become the User labels; AutoAssigned labels (Redirected, …) and labels of a type
//     socsync does not know are kept as they came.
func Apply(inc *Incident, ch Changes, owners incident.Owners) []Unwritten {
	p := &inc.Properties
	var out []Unwritten
	refuse := func(field string, v any, why string) {
		out = append(out, Unwritten{Field: field, Value: fmt.Sprint(v), Reason: why})
	}
	if ch.Severity != nil {
		if r, ok := incident.SentinelSeverity.ToRemote(*ch.Severity); ok && r != "" {
			p.Severity = r
		} else {
			refuse("severity", *ch.Severity, "no Sentinel severity")
		}
	}
	if ch.Owner != nil {
		switch id, upn, ok := incident.OwnerToSentinel(*ch.Owner, owners); {
		case !ok:
			refuse("owner", *ch.Owner, "no Sentinel object id is configured for this owner")
		case id == "" && *ch.Owner == "":
			p.Owner = Owner{}
		default:
			p.Owner = Owner{ObjectID: id, UserPrincipalName: upn}
		}
	}
	if ch.ClassificationComment != nil {
		p.ClassificationComment = *ch.ClassificationComment
	}
	if ch.Tags != nil {
		p.Labels = incident.LabelsWithTags(p.Labels, *ch.Tags)
	}

	// Classification, then the reason that must go with it.
	classChanged := false
	if ch.Classification != nil {
		if r, ok := incident.SentinelClassification.ToRemote(*ch.Classification); ok {
			classChanged = p.Classification != r
			p.Classification = r
		} else {
			refuse("classification", *ch.Classification, "no Sentinel classification")
		}
	}
	if ch.ClassificationReason != nil {
		if r, ok := incident.SentinelReason.ToRemote(*ch.ClassificationReason); !ok {
			refuse("classification_reason", *ch.ClassificationReason, "no Sentinel classification reason")
		} else if class, _ := incident.SentinelClassification.FromRemote(p.Classification); !ch.ClassificationReason.Fits(class) {
			refuse("classification_reason", *ch.ClassificationReason, fmt.Sprintf("does not go with classification %s", class))
		} else {
			p.ClassificationReason = r
		}
	}
	if classChanged || ch.Determination != nil || ch.ClassificationReason != nil || ch.Status != nil {
		fixReason(p, ch.Determination)
	}

	if ch.Status != nil {
		r, ok := incident.SentinelStatus.ToRemote(*ch.Status)
		switch {
		case !ok || r == "":
			refuse("status", *ch.Status, "no Sentinel status")
		case r == "Closed" && p.Classification == "":
			refuse("status", *ch.Status, "closing a Sentinel incident needs a classification")
		default:
			p.Status = r
		}
	}
	return out
}

// fixReason makes the reason fit the classification, as Sentinel requires of a closed
// incident: none for Undetermined (or no classification); else the current reason if it fits;
// else the one incident.ReasonFor derives from the determination. Foreign values are left
// alone: socsync cannot judge them.
func fixReason(p *IncidentProperties, det *incident.Determination) {
	class, classKnown := incident.SentinelClassification.FromRemote(p.Classification)
	reason, reasonKnown := incident.SentinelReason.FromRemote(p.ClassificationReason)
	switch {
	case !classKnown || !reasonKnown:
	case !incident.ReasonRequired(class):
		p.ClassificationReason = ""
	case reason != "" && reason.Fits(class):
	default:
		var d incident.Determination
		if det != nil {
			d = *det
		}
		p.ClassificationReason, _ = incident.SentinelReason.ToRemote(incident.ReasonFor(class, d))
	}
}
