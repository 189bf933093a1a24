package check

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/socsync/socsync/internal/emulator"
)

// sinkRow is the identity of a forward row (forward.Row's IncidentKey, Version and tenant).
type sinkRow struct {
	IncidentKey string `json:"IncidentKey"`
	Version     int64  `json:"Version"`
	Tenant      string `json:"CustomerTenantId"`
}

// SinkOnce checks I2: the central workspace received every version of every hub incident
// (1 … its current version) and nothing else; a (incident, version) received more than once is
// the same row each time, and at most repeats rows are such repeats (negative: any number).
// The caller waits until the outbox is drained (Settled).
func SinkOnce(ctx context.Context, r Run, repeats int) *Violation {
	raw := r.Emulator.Ingested(r.stream())
	if total := r.Emulator.IngestedTotal(r.stream()); total != len(raw) {
		return violation("I2", fmt.Sprintf("the emulator kept %d of %d rows: raise MaxIngestedRows for this run", len(raw), total))
	}
	snap, err := takeSnapshot(ctx, r.Store)
	if err != nil {
		return violation("I2", err.Error())
	}
	type key struct {
		incident string
		version  int64
	}
	first := map[key]json.RawMessage{}
	byIncident := map[string][]int64{}
	repeated := 0
	for i, b := range raw {
		var row sinkRow
		if err := json.Unmarshal(b, &row); err != nil {
			return violation("I2", fmt.Sprintf("row %d is not a forward row: %v", i, err), clip(string(b)))
		}
		k := key{row.IncidentKey, row.Version}
		if prev, ok := first[k]; ok {
			repeated++
			if !bytes.Equal(prev, b) {
				return violation("I2", fmt.Sprintf("incident %s version %d was sent twice with different contents", row.IncidentKey, row.Version),
					"first: "+string(prev), "again: "+string(b))
			}
			if repeats >= 0 && repeated > repeats {
				return violation("I2", fmt.Sprintf("%d rows repeat an earlier row, at most %d allowed (latest: incident %s version %d)",
					repeated, repeats, row.IncidentKey, row.Version))
			}
			continue
		}
		first[k] = b
		byIncident[row.IncidentKey] = append(byIncident[row.IncidentKey], row.Version)
	}
	hubByID := map[string]*hubIncident{}
	for i := range snap.incidents {
		hubByID[snap.incidents[i].ID] = &snap.incidents[i]
	}
	for id, versions := range byIncident {
		hi, ok := hubByID[id]
		if !ok {
			return violation("I2", fmt.Sprintf("the sink has rows of incident %s, which the hub does not have", id))
		}
		var row sinkRow
		json.Unmarshal(first[key{id, versions[0]}], &row)
		if !strings.EqualFold(row.Tenant, hi.TenantID) {
			return violation("I8", fmt.Sprintf("a row of incident %s names tenant %s, the incident is tenant %s's", id, row.Tenant, hi.TenantID))
		}
	}
	for _, hi := range snap.incidents {
		have := map[int64]bool{}
		for _, v := range byIncident[hi.ID] {
			have[v] = true
		}
		for v := int64(1); v <= hi.Version; v++ {
			if !have[v] {
				return violation("I2", fmt.Sprintf("incident %s (%q) version %d of %d never reached the sink", hi.ID, hi.Title, v, hi.Version),
					hubHistory(ctx, r.Store, hi.TenantID, hi.ID)...)
			}
		}
		for v := range have {
			if v > hi.Version || v < 1 {
				return violation("I2", fmt.Sprintf("the sink has version %d of incident %s, whose version is %d", v, hi.ID, hi.Version))
			}
		}
	}
	return nil
}

// scope is what a 429's Retry-After applies to, as the real services document their limits:
// Graph per tenant and app; ARM per subscription, principal and kind of operation (reads,
// writes — Sentinel's PUTs —, Sentinel's detail reads, deletes); Logs Ingestion per data
// collection rule; Entra's token endpoint per tenant and app.
func scope(r emulator.RequestRecord) string {
	switch r.API {
	case "arm":
		return "arm|" + r.Subscription + "|" + r.Principal + "|" + armClass(r)
	case "ingestion":
		return "ingestion|" + r.Path
	default:
		return r.API + "|" + r.Tenant + "|" + r.Principal
	}
}

// armClass sorts a Sentinel request as socsync's budgets do (internal/throttle): PUT incident or
// comment (Sentinel writes), GET comments and POST alerts (Sentinel's limited reads), other GETs
// (ARM reads), DELETEs.
func armClass(r emulator.RequestRecord) string {
	switch {
	case r.Method == http.MethodPut:
		return "write"
	case r.Method == http.MethodDelete:
		return "delete"
	case r.Method == http.MethodPost || strings.HasSuffix(r.Route, "/comments"):
		return "sentinel-read"
	}
	return "read"
}

func fmtRequest(r emulator.RequestRecord) string {
	s := fmt.Sprintf("request #%d %s %s %s %s %s → %d", r.Seq, r.Time.Format("15:04:05.000000"), r.Tenant, r.API, r.Method, r.Path, r.Status)
	if r.RetryAfter > 0 {
		s += fmt.Sprintf(" Retry-After %ds (%s)", r.RetryAfter, r.Throttled)
	}
	if r.Fault != "" {
		s += " fault " + r.Fault
	}
	return s
}

// inFlight is how soon after a 429 arrived another request of its scope may arrive without
// having been sent after the client read the 429: requests already on their way when it was
// answered (a poll's list and a write-back's read of one tenant race often). The emulator
// answers an injected or limit 429 at once, before any handler runs, but the 429's way back to
// the client and a request racing it on the way out are goroutines on a shared machine: with
// the race detector on two loaded cores, 35 ms between the two has been seen. A client that
// ignored Retry-After (at least 1 s) would still call within the rest of the window.
const inFlight = 100 * time.Millisecond

// RetryAfter checks I7's first half: no request reached the emulator before the Retry-After of
// a 429 sent earlier for the same scope had passed (see scope), except one already in flight
// when the 429 was answered: within inFlight of it, plus however long the processes were
// stalled meanwhile (stalled; nil: never). The records are the emulator's request history
// (times on its clock).
func RetryAfter(records []emulator.RequestRecord, stalled func(from, to time.Time) time.Duration) *Violation {
	type hold struct {
		until time.Time
		by    emulator.RequestRecord
	}
	holds := map[string]hold{}
	for _, r := range records {
		k := scope(r)
		if h, ok := holds[k]; ok && r.Time.Before(h.until) {
			window := inFlight
			if stalled != nil {
				window += stalled(h.by.Time, r.Time)
			}
			if r.Time.Sub(h.by.Time) > window {
				return violation("I7", fmt.Sprintf("a call %s before the Retry-After of an earlier 429 had passed", h.until.Sub(r.Time).Round(time.Millisecond)),
					fmtRequest(h.by), fmtRequest(r))
			}
		}
		if r.Status == http.StatusTooManyRequests && r.RetryAfter > 0 {
			if end := r.Time.Add(time.Duration(r.RetryAfter) * time.Second); end.After(holds[k].until) {
				holds[k] = hold{end, r}
			}
		}
	}
	return nil
}

// NoLimit429 checks I7's second half where the emulator enforces a limit at or above socsync's
// budget: the emulator never had to refuse a request for a limit (injected 429s are faults, not
// limits, and are allowed).
func NoLimit429(records []emulator.RequestRecord) *Violation {
	for _, r := range records {
		if r.Status == http.StatusTooManyRequests && r.Throttled != "" && r.Throttled != "fault" {
			return violation("I7", "the emulator refused a request for its "+r.Throttled+" limit", fmtRequest(r))
		}
	}
	return nil
}

// WithinBudget checks I7's rate half against a token bucket (burst, then perSecond): replaying
// the selected requests' arrival times, the bucket never runs dry. One token of slack absorbs the
// network reordering arrival times against send times.
func WithinBudget(records []emulator.RequestRecord, selected func(emulator.RequestRecord) bool, burst int, perSecond float64) *Violation {
	tokens := float64(burst) + 1
	var last time.Time
	var recent []string
	for _, r := range records {
		if !selected(r) {
			continue
		}
		if !last.IsZero() {
			tokens = min(float64(burst)+1, tokens+r.Time.Sub(last).Seconds()*perSecond)
		}
		last = r.Time
		recent = append(recent, fmtRequest(r))
		if len(recent) > 12 {
			recent = recent[1:]
		}
		tokens--
		if tokens < -1e-9 {
			return violation("I7", fmt.Sprintf("requests above the budget of %d then %.3g/s", burst, perSecond), recent...)
		}
	}
	return nil
}

// IsWrite reports whether a request is one of socsync's remote writes: a Graph PATCH of an
// incident or comment POST, a Sentinel PUT of an incident or a comment.
func IsWrite(r emulator.RequestRecord) bool {
	switch r.API {
	case "graph":
		return r.Method == http.MethodPatch || r.Method == http.MethodPost
	case "arm":
		return r.Method == http.MethodPut
	}
	return false
}

// Writes counts the writes among records that the remote took (2xx).
func Writes(records []emulator.RequestRecord) int {
	n := 0
	for _, r := range records {
		if IsWrite(r) && r.Status >= 200 && r.Status < 300 {
			n++
		}
	}
	return n
}

// NoEcho checks I4: the writes the remotes took since the run's mark are no more than the real
// changes made (hub edits and comments that had something to write), and none came after quiet
// (the time edits stopped and the run settled: nothing is left that needs writing).
func NoEcho(records []emulator.RequestRecord, realChanges int, quiet time.Time) *Violation {
	if n := Writes(records); n > realChanges {
		var h []string
		for _, r := range records {
			if IsWrite(r) {
				h = append(h, fmtRequest(r))
			}
		}
		return violation("I4", fmt.Sprintf("%d writes for %d real changes", n, realChanges), h...)
	}
	if !quiet.IsZero() {
		for _, r := range records {
			if IsWrite(r) && r.Time.After(quiet) {
				return violation("I4", "a write after the run had settled (an echo)", fmtRequest(r))
			}
		}
	}
	return nil
}

// RequestsStayInTheirTenant checks I8 for requests: every call to a tenant's Graph or Sentinel
// carried a token of that tenant (an app's token is per tenant; a token of tenant A used on
// tenant B's data is a leak).
func RequestsStayInTheirTenant(records []emulator.RequestRecord) *Violation {
	for _, r := range records {
		if (r.API == "graph" || r.API == "arm") && r.PrincipalTenant != "" && r.Tenant != "" && !strings.EqualFold(r.PrincipalTenant, r.Tenant) {
			return violation("I8", fmt.Sprintf("a call to tenant %s with a token of tenant %s", r.Tenant, r.PrincipalTenant), fmtRequest(r))
		}
	}
	return nil
}

// Canaries are strings planted in each tenant's data (tenant → canary); Leak reports where one
// turns up outside its tenant.
type Canaries map[string]string

// Leak returns a violation if text, which belongs to tenant owner ("" for text no tenant may
// see another's data in, e.g. a log line of no tenant), holds another tenant's canary. where
// says what text is, for the message.
func (c Canaries) Leak(owner, where, text string) *Violation {
	tenants := make([]string, 0, len(c))
	for t := range c {
		tenants = append(tenants, t)
	}
	sort.Strings(tenants)
	for _, t := range tenants {
		if strings.EqualFold(t, owner) {
			continue
		}
		if i := strings.Index(text, c[t]); i >= 0 {
			lo, hi := max(0, i-200), min(len(text), i+len(c[t])+200)
			return violation("I8", fmt.Sprintf("tenant %s's canary %q in %s (tenant %q)", t, c[t], where, owner), text[lo:hi])
		}
	}
	return nil
}
