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
	// FollowsClassification is no policy, only what a conflict records when a refinement
	// (determination, classification reason) was decided by the classification it refines
	// rather than by its own rule (see fitRefinements).
	FollowsClassification Rule = "follows_classification"
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
	// PendingBases holds, per link id with a write and an agreed base, the state to record as
	// agreed until that write succeeds: what the link shows, every value of which this plan took
	// in, found equal, or decided against. The hub's values still to write differ from it, so the
	// next plan writes them again; a later remote change shows as a change. Keeping the link's
	// old agreed state instead made a field taken in from the link look unchanged there when the
	// remote changed it back (and the hub's value overwrote it), and a remote value this plan
	// overruled look changed again (re-audited, and deciding differently on a retry).
	PendingBases map[string]incident.Fields
}

// AgreedAfter returns what to record as a link's agreed state once its write succeeded: the
// plan's base for the link (what it showed for every field the plan did not write), with each
// written field as the remote now holds it (after, read after the write). A change the remote
// made to another field since the plan's observation is not agreed, so it flows in next.
func (p Result) AgreedAfter(link string, written []Field, after incident.Fields) incident.Fields {
	agreed := p.Bases[link]
	agreed.Tags = slices.Clone(agreed.Tags)
	for _, f := range written {
		set(&agreed, after, f)
	}
	return agreed
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
	p := Result{Hub: in.Hub, Bases: map[string]incident.Fields{}, PendingBases: map[string]incident.Fields{}}
	p.Hub.Tags = slices.Clone(in.Hub.Tags)
	merged := in.Hub.Status == incident.StatusMerged

	if !merged { // a merged incident never takes changes in: it must never reopen
		for _, f := range Fields {
			p.inbound(in, links, f)
		}
		p.fitRefinements(in, links)
		// A merge taken in now: nothing is written to the merged incident (the reconciler
		// finishes the merge instead), in this plan as in the next.
		merged = p.Hub.Status == incident.StatusMerged
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
			if l.Base != nil {
				pending := l.Observed
				pending.Tags = slices.Clone(l.Observed.Tags)
				p.PendingBases[l.ID] = pending
			}
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

// fitRefinements keeps the hub's determination and classification reason fitting its
// classification: a refinement only means something with the classification it refines, so
// where the field-by-field decisions leave one that does not fit, it follows the
// classification's own source (recorded as FollowsClassification where a conflict is involved).
//
//   - A classification taken in from a remote brings that remote's refinement, when the remote
//     has the field and its value fits; else the refinement is cleared, as an analyst's change of
//     the classification in the hub clears it: a remote that clears or changes a classification
//     drops its refinements with it (Sentinel clears both when an incident is reopened), and "a
//     remote that dropped a refinement did not change it" must not keep one that no longer fits —
//     it would be written back to a remote that refuses it, for ever.
//   - When the hub's classification stands, a remote's refinement that does not fit it (a
//     remote analyst refined the classification the hub has since replaced) is not taken in: the
//     hub keeps its own, and writes it. Taking it in made the hub's classification and
//     determination disagree, which no remote accepts and the API refuses to keep.
func (p *Result) fitRefinements(in Input, links []Link) {
	var from *Link // the remote the classification was taken in from
	for _, c := range p.Inbound {
		if c.Field != FieldClassification {
			continue
		}
		for i := range links {
			if links[i].ID == c.Link {
				from = &links[i]
			}
		}
	}
	for _, f := range []Field{FieldDetermination, FieldClassificationReason} {
		if fits(p.Hub, f) {
			continue
		}
		var taken *Change // the remote value taken in for f, now given up
		p.Inbound = slices.DeleteFunc(p.Inbound, func(c Change) bool {
			if c.Field == f {
				tk := c
				taken = &tk
				return true
			}
			return false
		})
		winner := "hub"
		if from != nil {
			winner = from.ID
			next := incident.Fields{Classification: p.Hub.Classification}
			if has(from.System, f) {
				set(&next, from.Observed, f)
			}
			if !fits(next, f) {
				next = incident.Fields{}
			}
			set(&p.Hub, next, f)
			if value(p.Hub, f) != value(in.Hub, f) {
				p.Inbound = append(p.Inbound, Change{Field: f, Link: from.ID, From: value(in.Hub, f), To: value(p.Hub, f)})
			}
		} else {
			if taken == nil {
				continue // the hub's own value, not a decision of this plan
			}
			set(&p.Hub, in.Hub, f)
		}
		decided := false
		for i := range p.Conflicts {
			if c := &p.Conflicts[i]; c.Field == f {
				decided = true
				if c.Winner != winner {
					c.Winner, c.Rule = winner, FollowsClassification
				}
			}
		}
		if !decided && from == nil {
			p.Conflicts = append(p.Conflicts, Conflict{Field: f, Rule: FollowsClassification, Hub: value(in.Hub, f),
				Link: taken.Link, Remote: taken.To, Winner: "hub"})
		}
	}
}

// fits reports whether v's refinement f fits v's classification.
func fits(v incident.Fields, f Field) bool {
	switch f {
	case FieldDetermination:
		return v.Determination.Fits(v.Classification)
	case FieldClassificationReason:
		return v.ClassificationReason.Fits(v.Classification)
	}
	return true
}

func (c Conflict) String() string {
	return fmt.Sprintf("%s: hub %q vs %s %q, %s → %s", c.Field, c.Hub, c.Link, c.Remote, c.Rule, c.Winner)
}
