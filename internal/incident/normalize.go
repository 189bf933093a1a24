package incident

import (
	"fmt"
	"slices"
	"strings"
)

// Values are compared after normalisation, so that a remote that changes case or whitespace
// is never seen as having changed the value (and never causes a write back).

// NormalizeText trims a free-text value, turns CRLF into LF and collapses runs of spaces and
// tabs, as remotes have been seen to do to text they store.
func NormalizeText(s string) string {
	s = strings.ReplaceAll(strings.TrimSpace(s), "\r\n", "\n")
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	return strings.Join(lines, "\n")
}

// EqualText reports whether two free-text values are the same after normalisation.
func EqualText(a, b string) bool { return NormalizeText(a) == NormalizeText(b) }

// NormalizeOwner returns the comparable form of an owner (a UPN or e-mail address): trimmed and
// lower-cased. Foreign owners keep their raw part as it is.
func NormalizeOwner(s string) string {
	if IsForeign(s) {
		return strings.TrimSpace(s)
	}
	return strings.ToLower(strings.TrimSpace(s))
}

// NormalizeTags trims tags, drops empty ones and case-insensitive duplicates (keeping the first
// spelling) and sorts them case-insensitively, so that two tag lists that differ only in order,
// case of duplicates or whitespace compare equal.
func NormalizeTags(tags []string) []string {
	out := make([]string, 0, len(tags))
	seen := make(map[string]bool, len(tags))
	for _, t := range tags {
		t = strings.TrimSpace(t)
		k := strings.ToLower(t)
		if t == "" || seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, t)
	}
	slices.SortStableFunc(out, func(a, b string) int {
		return strings.Compare(strings.ToLower(a), strings.ToLower(b))
	})
	return out
}

// EqualTags reports whether two tag lists are the same set, ignoring order and case.
func EqualTags(a, b []string) bool {
	na, nb := NormalizeTags(a), NormalizeTags(b)
	return slices.EqualFunc(na, nb, strings.EqualFold)
}

// Label is a Sentinel incident label. Type is "User" for analysts' labels and "AutoAssigned"
// for those the service adds (such as Redirected) — the two labelType values of the contract.
// A label of no type is an analyst's; one of a type socsync does not know is, like an
// AutoAssigned one, kept as it came and never taken for a tag.
type Label struct {
	Name string `json:"labelName"`
	Type string `json:"labelType,omitempty"`
}

// IsUser reports whether the label is an analyst's (labelType User, or none): a hub tag.
func (l Label) IsUser() bool { return l.Type == "" || strings.EqualFold(l.Type, "User") }

// HasLabel reports whether a label of that name (case-insensitive) is present, of any type.
func HasLabel(labels []Label, name string) bool {
	return slices.ContainsFunc(labels, func(l Label) bool { return strings.EqualFold(l.Name, name) })
}

// TagsFromLabels returns the hub tags of a Sentinel incident: its user labels. Labels the
// service assigned itself (or of a type socsync does not know) are not tags an analyst can edit.
func TagsFromLabels(labels []Label) []string {
	var tags []string
	for _, l := range labels {
		if l.IsUser() {
			tags = append(tags, l.Name)
		}
	}
	return NormalizeTags(tags)
}

// LabelsWithTags returns the labels to write to Sentinel for the hub tags: the labels that are
// not user labels (AutoAssigned, or of a type socsync does not know) as they are, and one user
// label per tag.
func LabelsWithTags(current []Label, tags []string) []Label {
	var out []Label
	for _, l := range current {
		if !l.IsUser() {
			out = append(out, l)
		}
	}
	for _, t := range NormalizeTags(tags) {
		if !HasLabel(out, t) {
			out = append(out, Label{Name: t, Type: "User"})
		}
	}
	return out
}

// Owners maps owner UPNs to Sentinel owner object ids for one tenant, from configuration.
// Graph names an owner by UPN (assignedTo); Sentinel by object id, and fills in the UPN itself.
type Owners struct {
	byUPN map[string]string
	byID  map[string]string
}

// NewOwners builds the owner map from UPN → object id pairs. A UPN or object id listed twice is
// an error, since the mapping must be one-to-one to work both ways.
func NewOwners(upnToObjectID map[string]string) (Owners, error) {
	o := Owners{byUPN: map[string]string{}, byID: map[string]string{}}
	for upn, id := range upnToObjectID {
		u, i := NormalizeOwner(upn), strings.ToLower(strings.TrimSpace(id))
		if u == "" || i == "" {
			return Owners{}, fmt.Errorf("owner mapping %q → %q: both the UPN and the object id are required", upn, id)
		}
		if prev, dup := o.byUPN[u]; dup {
			return Owners{}, fmt.Errorf("owner %q is mapped twice (%s, %s)", upn, prev, i)
		}
		if prev, dup := o.byID[i]; dup {
			return Owners{}, fmt.Errorf("object id %q is mapped to two owners (%s, %s)", id, prev, u)
		}
		o.byUPN[u], o.byID[i] = i, u
	}
	return o, nil
}

// ObjectID returns the object id configured for an owner UPN.
func (o Owners) ObjectID(upn string) (string, bool) {
	id, ok := o.byUPN[NormalizeOwner(upn)]
	return id, ok
}

// UPN returns the UPN configured for an object id.
func (o Owners) UPN(objectID string) (string, bool) {
	u, ok := o.byID[strings.ToLower(strings.TrimSpace(objectID))]
	return u, ok
}

// OwnerFromSentinel returns the hub owner of a Sentinel incident: its UPN as the service fills
// it in, else the configured UPN of its object id, else its e-mail address. An owner known only
// by an unmapped object id stays a foreign value, so that it is kept and shown but never
// written to Graph as if it were a UPN. No owner at all is "".
func OwnerFromSentinel(upn, email, objectID string, o Owners) string {
	switch {
	case strings.TrimSpace(upn) != "":
		return NormalizeOwner(upn)
	case objectID != "":
		if u, ok := o.UPN(objectID); ok {
			return u
		}
	}
	if strings.TrimSpace(email) != "" {
		return NormalizeOwner(email)
	}
	if objectID != "" {
		return Foreign[string](Sentinel, strings.ToLower(objectID))
	}
	return ""
}

// OwnerToSentinel returns what to write as a Sentinel owner for a hub owner: the object id
// (configured, or the raw id of a foreign Sentinel owner) and the UPN. ok is false when the
// owner cannot be expressed in Sentinel: a UPN with no object id configured, or a foreign owner
// from another system. The empty owner is written as unassigned.
func OwnerToSentinel(owner string, o Owners) (objectID, upn string, ok bool) {
	if owner == "" {
		return "", "", true
	}
	if sys, raw, foreign := ForeignParts(owner); foreign {
		return raw, "", sys == Sentinel
	}
	id, ok := o.ObjectID(owner)
	return id, NormalizeOwner(owner), ok
}

// OwnerFromGraph returns the hub owner of a Graph incident's assignedTo, which is free text
// (normally a UPN). Text that happens to look like a foreign value is wrapped so that it still
// round-trips unchanged.
func OwnerFromGraph(assignedTo string) string {
	if IsForeign(assignedTo) {
		return Foreign[string](Graph, assignedTo)
	}
	return NormalizeOwner(assignedTo)
}

// OwnerToGraph returns what to write as Graph's assignedTo for a hub owner. A foreign Sentinel
// owner (an unmapped object id) cannot be written.
func OwnerToGraph(owner string) (string, bool) {
	if sys, raw, foreign := ForeignParts(owner); foreign {
		return raw, sys == Graph
	}
	return owner, true
}
