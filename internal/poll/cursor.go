package poll

import (
	"encoding/json"
	"fmt"
	"time"
)

// cursor is where a source's polling stands: the newest server change time stored. Each poll
// re-reads from Time minus the overlap, so late-visible changes near the boundary are caught;
// re-read incidents that did not change cost nothing downstream. The format is versioned.
type cursor struct {
	V    int       `json:"v"`
	Time time.Time `json:"t"`
	// Resynced is when the last full re-read finished: every so often a poll reads everything
	// the API keeps, to repair silent drift (a change the remote made without a newer change
	// time).
	Resynced time.Time `json:"r,omitempty"`
}

const cursorVersion = 1

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
	b, _ := json.Marshal(c) // a struct of a number and a time always marshals
	return string(b)
}

// since is the time a poll asks for changes from.
func (c cursor) since(overlap time.Duration) time.Time {
	if c.Time.IsZero() {
		return time.Unix(0, 0).UTC() // first poll: everything the API keeps
	}
	return c.Time.Add(-overlap)
}
