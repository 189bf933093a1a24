package poll

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/socsync/socsync/internal/graph"
	"github.com/socsync/socsync/internal/incident"
	"github.com/socsync/socsync/internal/sentinel"
)

// cursor is where a source's polling stands: the newest server change time stored, and the
// seen set of the boundary. Each poll re-reads from Time minus the overlap, so late-visible
// changes near the boundary are caught; the incidents it re-reads in that window that did not
// change since they were stored — their remote id and version (change time, and etag where the
// API has one) are in Seen — are skipped before anything is read or written for them: no
// detail read, no store write, no new version, no reconcile work. The format is versioned;
// Seen was added within version 1 (a cursor without it has an empty seen set).
type cursor struct {
	V    int       `json:"v"`
	Time time.Time `json:"t"`
	// Resynced is when the last full re-read finished: every so often a poll reads everything
	// the API keeps, to repair silent drift (a change the remote made without a newer change
	// time).
	Resynced time.Time `json:"r,omitempty"`
	// Seen maps the remote ids of the stored incidents whose change time is not older than
	// the next poll's since (Time minus the overlap) to their stored version (seenVersion).
	Seen map[string]string `json:"s,omitempty"`
}

const cursorVersion = 1

// maxSeen bounds the seen set a cursor carries (the newest versions are kept): beyond it a
// boundary incident is merely stored again, unchanged, as before there was a seen set.
const maxSeen = 1000

func decodeCursor(s string) (cursor, error) {
	if s == "" {
		return cursor{V: cursorVersion}, nil
	}
	var c cursor
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return cursor{}, fmt.Errorf("cursor %q: %w", s, err)
	}
	if c.V != cursorVersion {
		return cursor{}, fmt.Errorf("cursor version %d, want %d", c.V, cursorVersion)
	}
	return c, nil
}

func (c cursor) encode() string {
	b, _ := json.Marshal(c) // a struct of a number, times and strings always marshals
	return string(b)
}

// since is the time a poll asks for changes from.
func (c cursor) since(overlap time.Duration) time.Time {
	if c.Time.IsZero() {
		return time.Unix(0, 0).UTC() // first poll: everything the API keeps
	}
	return c.Time.Add(-overlap)
}

// seenVersion is the version of a remote incident the seen set compares: its change time and
// its etag (Sentinel's; Graph has none). Any change moves the change time.
func seenVersion(o incident.Observation) string {
	v := o.UpdatedAt.UTC().Format(time.RFC3339Nano)
	if o.ETag != "" {
		v += " " + o.ETag
	}
	return v
}

// seenAt is the change time a seen version starts with.
func seenAt(v string) time.Time {
	at, _, _ := strings.Cut(v, " ")
	t, _ := time.Parse(time.RFC3339Nano, at)
	return t
}

// seenSet is a poll's seen set: the cursor's, plus what the poll stored.
type seenSet map[string]string

// unseen returns the observations whose version is not the one stored (the rest are re-reads
// of unchanged incidents).
func (s seenSet) unseen(items []incident.Observation) []incident.Observation {
	var out []incident.Observation
	for _, o := range items {
		if v, ok := s[o.ExternalID]; !ok || v != seenVersion(o) {
			out = append(out, o)
		}
	}
	return out
}

// add records stored observations. One flagged with a future change time is left out: its
// flag is judged by the clock when it is read, and is dropped by a later read of the same
// version once the time has come.
func (s seenSet) add(items []incident.Observation) {
	for _, o := range items {
		if slices.Contains(o.Flags, graph.FlagFutureTimestamp) || slices.Contains(o.Flags, sentinel.FlagFutureTimestamp) {
			delete(s, o.ExternalID)
			continue
		}
		s[o.ExternalID] = seenVersion(o)
	}
}

// forCursor returns the part of the set a cursor keeps: the versions not older than since (the
// next poll re-reads only those), at most maxSeen of them, the newest.
func (s seenSet) forCursor(since time.Time) map[string]string {
	type entry struct {
		id, v string
		at    time.Time
	}
	var keep []entry
	for id, v := range s {
		if at := seenAt(v); !at.Before(since) {
			keep = append(keep, entry{id, v, at})
		}
	}
	if len(keep) > maxSeen {
		slices.SortFunc(keep, func(a, b entry) int { return b.at.Compare(a.at) })
		keep = keep[:maxSeen]
	}
	if len(keep) == 0 {
		return nil
	}
	out := make(map[string]string, len(keep))
	for _, e := range keep {
		out[e.id] = e.v
	}
	return out
}
