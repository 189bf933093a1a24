package reconcile

import (
	"slices"
	"strings"

	"github.com/socsync/socsync/internal/incident"
)

// Field is one synced field of an incident.
type Field string

// The synced fields.
const (
	FieldStatus                Field = "status"
	FieldSeverity              Field = "severity"
	FieldOwner                 Field = "owner"
	FieldClassification        Field = "classification"
	FieldDetermination         Field = "determination"
	FieldClassificationReason  Field = "classification_reason"
	FieldClassificationComment Field = "classification_comment"
	FieldTags                  Field = "tags"
)

// Fields lists the synced fields in the order plans handle them.
var Fields = []Field{FieldStatus, FieldSeverity, FieldOwner, FieldClassification, FieldDetermination,
	FieldClassificationReason, FieldClassificationComment, FieldTags}

// has reports whether a remote system has the field: Sentinel has no determination, Graph no
// classification reason.
func has(sys incident.System, f Field) bool {
	switch f {
	case FieldDetermination:
		return sys == incident.Graph
	case FieldClassificationReason:
		return sys == incident.Sentinel
	}
	return true
}

// refinement fields may be left empty by the hub without that meaning "clear it": the remote's
// value stands (Sentinel fills a reason in when socsync closes with only a classification).
func refinement(f Field) bool {
	return f == FieldDetermination || f == FieldClassificationReason || f == FieldClassificationComment
}

// value returns a field's value as text (tags normalised and joined), for comparisons of
// remotes against each other, conflicts and the audit.
func value(v incident.Fields, f Field) string {
	switch f {
	case FieldStatus:
		return string(v.Status)
	case FieldSeverity:
		return string(v.Severity)
	case FieldOwner:
		return incident.NormalizeOwner(v.Owner)
	case FieldClassification:
		return string(v.Classification)
	case FieldDetermination:
		return string(v.Determination)
	case FieldClassificationReason:
		return string(v.ClassificationReason)
	case FieldClassificationComment:
		return incident.NormalizeText(v.ClassificationComment)
	case FieldTags:
		return strings.Join(incident.NormalizeTags(v.Tags), ", ")
	}
	return ""
}

// SetField copies field f from src into dst.
func SetField(dst *incident.Fields, src incident.Fields, f Field) { set(dst, src, f) }

// set copies field f from src into dst.
func set(dst *incident.Fields, src incident.Fields, f Field) {
	switch f {
	case FieldStatus:
		dst.Status = src.Status
	case FieldSeverity:
		dst.Severity = src.Severity
	case FieldOwner:
		dst.Owner = src.Owner
	case FieldClassification:
		dst.Classification = src.Classification
	case FieldDetermination:
		dst.Determination = src.Determination
	case FieldClassificationReason:
		dst.ClassificationReason = src.ClassificationReason
	case FieldClassificationComment:
		dst.ClassificationComment = src.ClassificationComment
	case FieldTags:
		dst.Tags = slices.Clone(src.Tags)
	}
}

// equal reports whether two values of a field are the same as far as the system is concerned:
// compared after normalisation, and in the remote's own vocabulary (hub "active" and
// "in_progress" are both Graph "inProgress"), so that no normalisation difference is ever
// seen as a change.
func equal(sys incident.System, f Field, a, b incident.Fields) bool {
	graph := sys == incident.Graph
	switch f {
	case FieldStatus:
		if graph {
			return incident.GraphStatus.Equivalent(a.Status, b.Status)
		}
		return incident.SentinelStatus.Equivalent(a.Status, b.Status)
	case FieldSeverity:
		if graph {
			return incident.GraphSeverity.Equivalent(a.Severity, b.Severity)
		}
		return incident.SentinelSeverity.Equivalent(a.Severity, b.Severity)
	case FieldClassification:
		if graph {
			return incident.GraphClassification.Equivalent(a.Classification, b.Classification)
		}
		return incident.SentinelClassification.Equivalent(a.Classification, b.Classification)
	case FieldDetermination:
		return incident.GraphDetermination.Equivalent(a.Determination, b.Determination)
	case FieldClassificationReason:
		return incident.SentinelReason.Equivalent(a.ClassificationReason, b.ClassificationReason)
	case FieldTags:
		return incident.EqualTags(a.Tags, b.Tags)
	}
	return value(a, f) == value(b, f)
}

// Equal reports whether two values of a field are the same as far as the system is concerned
// (see equal): what the reconciler compares a remote's state with after a write whose answer
// was lost.
func Equal(sys incident.System, f Field, a, b incident.Fields) bool { return equal(sys, f, a, b) }

// writable reports whether the hub's value of f can be written to the system: a foreign value
// of another system, or an owner Sentinel cannot name, cannot.
func writable(sys incident.System, f Field, v incident.Fields, owners incident.Owners) bool {
	graph := sys == incident.Graph
	ok := true
	switch f {
	case FieldStatus:
		if v.Status == incident.StatusMerged {
			return false // only the remote's correlation merges; socsync never writes it
		}
		if graph {
			_, ok = incident.GraphStatus.ToRemote(v.Status)
		} else {
			_, ok = incident.SentinelStatus.ToRemote(v.Status)
		}
	case FieldSeverity:
		if graph {
			_, ok = incident.GraphSeverity.ToRemote(v.Severity)
		} else {
			_, ok = incident.SentinelSeverity.ToRemote(v.Severity)
		}
	case FieldClassification:
		if graph {
			_, ok = incident.GraphClassification.ToRemote(v.Classification)
		} else {
			_, ok = incident.SentinelClassification.ToRemote(v.Classification)
		}
	case FieldDetermination:
		_, ok = incident.GraphDetermination.ToRemote(v.Determination)
	case FieldClassificationReason:
		_, ok = incident.SentinelReason.ToRemote(v.ClassificationReason)
	case FieldOwner:
		if graph {
			_, ok = incident.OwnerToGraph(v.Owner)
		} else {
			_, _, ok = incident.OwnerToSentinel(v.Owner, owners)
		}
	}
	return ok
}
