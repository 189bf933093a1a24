package check

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/socsync/socsync/internal/emulator"
	"github.com/socsync/socsync/internal/incident"
)

// Arrivals records when the hub stored each remote incident's change times: a run passes its
// Observed method as hub.Options.Observed, which the poller calls for every observation once
// its page is committed. Safe for concurrent use.
type Arrivals struct {
	mu   sync.Mutex
	seen map[string][]arrival // tenant/external id → (remote change time, stored at), both increasing
}

type arrival struct{ updated, at time.Time }

// NewArrivals returns an empty record.
func NewArrivals() *Arrivals { return &Arrivals{seen: map[string][]arrival{}} }

func arrivalKey(tenant, external string) string { return strings.ToLower(tenant) + "/" + external }

// Observed notes that the hub stored obs of tenant at (hub.Options.Observed's signature).
func (a *Arrivals) Observed(tenant string, obs incident.Observation, at time.Time) {
	k := arrivalKey(tenant, obs.ExternalID)
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.seen[k]
	if n := len(s); n > 0 && !obs.UpdatedAt.After(s[n-1].updated) {
		return // nothing newer than what the hub already had
	}
	a.seen[k] = append(s, arrival{obs.UpdatedAt, at})
}

// storedBy returns when the hub first stored a version of the remote incident changed at or
// after t, and whether it ever did.
func (a *Arrivals) storedBy(tenant, external string, t time.Time) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.seen[arrivalKey(tenant, external)]
	// The store keeps change times to the millisecond; the emulator's history to 100 ns.
	t = t.Truncate(time.Millisecond)
	i := sort.Search(len(s), func(i int) bool { return !s[i].updated.Before(t) })
	if i == len(s) {
		return time.Time{}, false
	}
	return s[i].at, true
}

// Timeliness is what Timely found: how many remote changes it checked and the longest time
// one took to reach the hub.
type Timeliness struct {
	Checked int
	Worst   time.Duration
}

// Timely checks I1's time bound: every remote change visible at t — the first change of each
// new version of a remote incident, which moves its change time — is in the hub (a poll stored
// a version at least that new) by t + within(tenant), the poll interval plus slack. A change the
// remote made silently (source "drift": its change time did not move) is exempt: only the full
// resync finds it (R18). Changes after until (zero: none) are left out: the run may end
// before their time is up. The times are the emulator's (remote changes) and the hub's
// (arrivals): the same clock, unless a test skews one.
func Timely(h []emulator.HistoryEntry, a *Arrivals, within func(tenant string) time.Duration, until time.Time) (*Violation, Timeliness) {
	var res Timeliness
	versions := map[string]int{} // tenant/graph id/sentinel id → the newest version seen
	for _, e := range h {
		if e.AlertID != "" {
			continue
		}
		k := strings.ToLower(e.Tenant) + "/" + e.GraphID + "/" + e.SentinelID
		if e.Version <= versions[k] {
			continue // a further field of the same write
		}
		versions[k] = e.Version
		if e.Source == "drift" || (!until.IsZero() && e.Time.After(until)) {
			continue
		}
		bound := within(e.Tenant)
		var at time.Time
		found := false
		for _, id := range []string{e.GraphID, e.SentinelID} {
			if id == "" {
				continue
			}
			if t, ok := a.storedBy(e.Tenant, id, e.Time); ok && (!found || t.Before(at)) {
				at, found = t, true
			}
		}
		res.Checked++
		if !found {
			return violation("I1", fmt.Sprintf("the change of remote incident %s at %s (version %d) never reached the hub (bound %s)",
				strings.TrimSpace(e.GraphID+" "+e.SentinelID), e.Time.Format("15:04:05.000"), e.Version, bound), fmtHistory(e)), res
		}
		lag := max(0, at.Sub(e.Time))
		res.Worst = max(res.Worst, lag)
		if lag > bound {
			return violation("I1", fmt.Sprintf("the change of remote incident %s at %s (version %d) reached the hub %s later, bound %s",
				strings.TrimSpace(e.GraphID+" "+e.SentinelID), e.Time.Format("15:04:05.000"), e.Version, lag.Round(time.Millisecond), bound),
				fmtHistory(e), "hub stored it at "+at.Format("15:04:05.000")), res
		}
	}
	return nil, res
}
