package bench

import (
	"sort"
	"sync"
	"time"

	"github.com/socsync/socsync/internal/incident"
)

// probe records when socsync stored each remote incident's versions (the scheduler's
// observation hook).
type probe struct {
	mu   sync.Mutex
	seen map[string][]sighting // tenant/external id → sightings in order
}

type sighting struct {
	version time.Time // the remote's change time
	at      time.Time // when socsync stored it
}

func newProbe() *probe { return &probe{seen: map[string][]sighting{}} }

func (p *probe) observe(tenantID string, obs incident.Observation, at time.Time) {
	k := tenantID + "/" + obs.ExternalID
	p.mu.Lock()
	defer p.mu.Unlock()
	ss := p.seen[k]
	if n := len(ss); n > 0 && !obs.UpdatedAt.After(ss[n-1].version) {
		return // a re-read of a version already seen
	}
	p.seen[k] = append(ss, sighting{version: obs.UpdatedAt, at: at})
}

// firstSeen is when socsync first stored a version of the incident at least as new as t.
func (p *probe) firstSeen(tenant, id string, t time.Time) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ss := p.seen[tenant+"/"+id]
	i := sort.Search(len(ss), func(i int) bool { return !ss[i].version.Before(t) })
	if i == len(ss) {
		return time.Time{}, false
	}
	return ss[i].at, true
}

// lags returns, for every change socsync caught, how long after the change it stored it.
func (p *probe) lags(cs []change) []time.Duration {
	var out []time.Duration
	for _, c := range cs {
		if at, ok := p.firstSeen(c.tenant, c.remoteID, c.at); ok {
			out = append(out, max(0, at.Sub(c.at)))
		}
	}
	return out
}

func (p *probe) unobserved(cs []change) int {
	n := 0
	for _, c := range cs {
		if _, ok := p.firstSeen(c.tenant, c.remoteID, c.at); !ok {
			n++
		}
	}
	return n
}
