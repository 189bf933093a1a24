// Package reconcile keeps every copy of an incident in agreement. Its core is Plan, a pure
// field-level three-way merge of the hub's desired state against each link's last agreed state
// (base) and what was last observed there: a field changed on one side flows to the others; a
// field changed on two sides is decided by a per-field policy and recorded as a conflict;
// values are compared after normalisation, so an echo of socsync's own write plans nothing.
package reconcile

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/socsync/socsync/internal/incident"
)

// Rule decides a field changed on two sides.
type Rule string

// Rules.
const (
	HubWins    Rule = "hub_wins"
	RemoteWins Rule = "remote_wins"
	// LatestWins takes the later change; a tie goes to the hub, so the outcome never depends on
	// anything but the inputs.
	LatestWins Rule = "latest_wins"
)

// Policy gives each field its rule; fields not listed use Default.
type Policy struct {
	Default Rule
	Fields  map[Field]Rule
}

// DefaultPolicy decides every field by its latest change.
func DefaultPolicy() Policy { return Policy{Default: LatestWins} }

func (p Policy) rule(f Field) Rule {
	if r, ok := p.Fields[f]; ok {
		return r
	}
	if p.Default == "" {
		return LatestWins
	}
	return p.Default
}

// Link is one remote copy of the incident as the planner sees it.
type Link struct {
	ID     string // stable and unique within the incident, e.g. "graph:29"; orders ties
	System incident.System
	// Base is the state both sides last agreed on; nil for a link never agreed with (new).
	Base     *incident.Fields
	Observed incident.Fields
	// ChangedAt is the remote's own time of its last change (for latest-wins).
	ChangedAt time.Time
	// ReadOnly links are never written and their changes never flow in: the Sentinel view of a
	// Defender incident, which Microsoft's connector keeps in sync with the Graph one.
	ReadOnly bool
	// Owners maps owners to Sentinel object ids (Sentinel links only).
	Owners incident.Owners
}

// Input is everything Plan decides from.
type Input struct {
	Hub incident.Fields
	// HubChangedAt is when an analyst last changed the hub's fields (for latest-wins).
	HubChangedAt time.Time
	Links        []Link
	Policy       Policy
}

// Change is a field taken into the hub from a remote.
type Change struct {
	Field Field
	Link  string
	From  string
	To    string
}

// Conflict is a field changed on two sides since they last agreed.
type Conflict struct {
	Field  Field
	Rule   Rule
	Hub    string // the hub's value before the decision
	Link   string // the remote whose change competed
	Remote string // its value
	Winner string // "hub" or the link id
}

// Write is what to write to one link: the fields, with their hub values in Values.
type Write struct {
	Link   string
	Fields []Field
	Values incident.Fields
}

// Skip is a difference the plan cannot write: the remote cannot express the hub's value.
type Skip struct {
	Link  string
	Field Field
	Value string
}

// Result is a plan: the hub's new fields, what came in, the conflicts decided, the writes to
// make, and each link's new base once its write (if any) has succeeded.
type Result struct {
	Hub       incident.Fields
	Inbound   []Change
	Conflicts []Conflict
	Writes    []Write
	Skipped   []Skip
	// Bases holds, per link id, the state to record as agreed after the link's write succeeds
	// (or at once, for a link with nothing to write).
	Bases map[string]incident.Fields
}

// Empty reports whether the plan changes nothing and writes nothing.
func (p Result) Empty() bool {
	return len(p.Inbound) == 0 && len(p.Conflicts) == 0 && len(p.Writes) == 0
}

// WriteFor returns the write planned for a link.
func (p Result) WriteFor(link string) (Write, bool) {
	for _, w := range p.Writes {
		if w.Link == link {
			return w, true
		}
	}
	return Write{}, false
}

// Plan computes the plan. It is pure: the same input always gives the same plan.
func Plan(in Input) Result {
	links := slices.Clone(in.Links)
	slices.SortFunc(links, func(a, b Link) int { return cmp.Compare(a.ID, b.ID) })
	p := Result{Hub: in.Hub, Bases: map[string]incident.Fields{}}
	p.Hub.Tags = slices.Clone(in.Hub.Tags)
	merged := in.Hub.Status == incident.StatusMerged

	if !merged { // a merged incident never takes changes in: it must never reopen
		for _, f := range Fields {
			p.inbound(in, links, f)
		}
		p.dropUnfitRefinements()
	}
	for _, l := range links {
		w := Write{Link: l.ID, Values: p.Hub}
		for _, f := range Fields {
			if merged || l.ReadOnly || !has(l.System, f) || equal(l.System, f, p.Hub, l.Observed) {
				continue
			}
			if refinement(f) && value(p.Hub, f) == "" {
				continue // an empty refinement leaves the remote's value standing
			}
			if !writable(l.System, f, p.Hub, l.Owners) {
				p.Skipped = append(p.Skipped, Skip{Link: l.ID, Field: f, Value: value(p.Hub, f)})
				continue
			}
			w.Fields = append(w.Fields, f)
		}
		base := l.Observed
		for _, f := range w.Fields {
			set(&base, p.Hub, f)
		}
		p.Bases[l.ID] = base
		if len(w.Fields) > 0 {
			p.Writes = append(p.Writes, w)
		}
	}
	return p
}

// inbound decides one field: which remote change, if any, the hub takes.
func (p *Result) inbound(in Input, links []Link, f Field) {
	var winner *Link
	for i := range links {
		l := &links[i]
		if l.ReadOnly || l.Base == nil || !has(l.System, f) || equal(l.System, f, l.Observed, *l.Base) {
			continue
		}
		if refinement(f) && value(l.Observed, f) == "" {
			continue // a remote that dropped a refinement did not change it
		}
		if winner != nil && value(l.Observed, f) != value(winner.Observed, f) {
			// Two remotes changed the field differently: the later change wins (ties go to the
			// first link by id), whatever the policy, since the hub's value is not in play.
			c := Conflict{Field: f, Rule: LatestWins, Hub: value(p.Hub, f), Link: l.ID, Remote: value(l.Observed, f), Winner: winner.ID}
			if l.ChangedAt.After(winner.ChangedAt) {
				c.Link, c.Remote, c.Winner = winner.ID, value(winner.Observed, f), l.ID
			}
			p.Conflicts = append(p.Conflicts, c)
		}
		if winner == nil || l.ChangedAt.After(winner.ChangedAt) {
			winner = l
		}
	}
	if winner == nil || equal(winner.System, f, p.Hub, winner.Observed) {
		return // nothing changed remotely, or the hub already has the value
	}
	takeRemote := true
	if !equal(winner.System, f, p.Hub, *winner.Base) {
		// The hub changed the field too, to something else: a conflict for the policy.
		rule := in.Policy.rule(f)
		switch rule {
		case HubWins:
			takeRemote = false
		case LatestWins:
			takeRemote = winner.ChangedAt.After(in.HubChangedAt)
		}
		c := Conflict{Field: f, Rule: rule, Hub: value(p.Hub, f), Link: winner.ID,
			Remote: value(winner.Observed, f), Winner: "hub"}
		if takeRemote {
			c.Winner = winner.ID
		}
		p.Conflicts = append(p.Conflicts, c)
	}
	if takeRemote {
		p.Inbound = append(p.Inbound, Change{Field: f, Link: winner.ID, From: value(p.Hub, f), To: value(winner.Observed, f)})
		set(&p.Hub, winner.Observed, f)
	}
}

// dropUnfitRefinements clears the hub's determination and classification reason when a
// classification taken in from a remote leaves no room for them, as an analyst's change of the
// classification in the hub does: a remote that clears or changes a classification drops its
// refinements with it (Sentinel clears both when an incident is reopened), and "a remote that
// dropped a refinement did not change it" must not keep one that no longer fits — it would be
// written back to a remote that refuses it, for ever.
func (p *Result) dropUnfitRefinements() {
	link := ""
	for _, c := range p.Inbound {
		if c.Field == FieldClassification {
			link = c.Link
		}
	}
	if link == "" {
		return
	}
	if !p.Hub.Determination.Fits(p.Hub.Classification) {
		p.Inbound = append(p.Inbound, Change{Field: FieldDetermination, Link: link, From: value(p.Hub, FieldDetermination)})
		p.Hub.Determination = ""
	}
	if !p.Hub.ClassificationReason.Fits(p.Hub.Classification) {
		p.Inbound = append(p.Inbound, Change{Field: FieldClassificationReason, Link: link, From: value(p.Hub, FieldClassificationReason)})
		p.Hub.ClassificationReason = ""
	}
}

func (c Conflict) String() string {
	return fmt.Sprintf("%s: hub %q vs %s %q, %s → %s", c.Field, c.Hub, c.Link, c.Remote, c.Rule, c.Winner)
}
