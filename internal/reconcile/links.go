package reconcile

import (
	"encoding/json"
	"fmt"

	"github.com/socsync/socsync/internal/incident"
	"github.com/socsync/socsync/internal/store"
)

// LinkState is a stored link decoded: what was last observed there and what both sides last
// agreed on.
type LinkState struct {
	store.Link
	Obs  incident.Observation
	Base *incident.Fields // nil: never agreed
}

// DecodeLinks decodes stored links.
func DecodeLinks(links []store.Link) ([]LinkState, error) {
	out := make([]LinkState, 0, len(links))
	for _, l := range links {
		v := LinkState{Link: l}
		if err := json.Unmarshal(l.Observed, &v.Obs); err != nil {
			return nil, fmt.Errorf("link %d observed: %w", l.ID, err)
		}
		if len(l.Base) > 0 {
			var b incident.Fields
			if err := json.Unmarshal(l.Base, &b); err != nil {
				return nil, fmt.Errorf("link %d base: %w", l.ID, err)
			}
			v.Base = &b
		}
		out = append(out, v)
	}
	return out, nil
}

// PlanID names the link in plans: unique within an incident, stable.
func (l LinkState) PlanID() string { return string(l.Kind) + ":" + l.SourceID + ":" + l.ExternalID }

// ReadOnly reports whether the link is a Sentinel mirror of a Defender incident that socsync
// also collects through Graph: Microsoft's connector carries Graph's changes to it, so socsync
// writes the pair through Graph alone. A webhook link has nothing to write back to.
func (l LinkState) ReadOnly(defenderPolled bool) bool {
	return l.Kind == store.LinkWebhook || (l.Obs.Mirrored && defenderPolled)
}

// Writable reports whether socsync writes to the link.
func (l LinkState) Writable(defenderPolled bool) bool { return !l.ReadOnly(defenderPolled) }

// InputFor builds the planner's input for a hub incident and its links.
func InputFor(hub store.StoredIncident, links []LinkState, owners incident.Owners, defenderPolled bool, policy Policy) Input {
	in := Input{Hub: hub.Fields, HubChangedAt: hub.HubChangedAt, Policy: policy}
	for _, l := range links {
		if l.Kind == store.LinkWebhook {
			continue // a webhook alert has no remote fields to sync
		}
		in.Links = append(in.Links, Link{ID: l.PlanID(), System: l.Obs.System, Base: l.Base, Observed: l.Obs.Fields,
			ChangedAt: l.Obs.UpdatedAt, ReadOnly: l.ReadOnly(defenderPolled), Owners: owners})
	}
	return in
}

// PolicyFrom turns configured rule names into a Policy.
func PolicyFrom(def string, fields map[string]string) Policy {
	p := Policy{Default: Rule(def), Fields: map[Field]Rule{}}
	for f, r := range fields {
		p.Fields[Field(f)] = Rule(r)
	}
	return p
}
