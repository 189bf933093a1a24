package check

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/socsync/socsync/internal/store"
)

// Isolation checks I8 over a run's data: no tenant's canary is in another tenant's hub
// incidents (title, description, comments, links' raw payloads), in another tenant's sink rows,
// or in another tenant's remote incidents (a comment socsync wrote there).
func Isolation(ctx context.Context, r Run, c Canaries) *Violation {
	snap, err := takeSnapshot(ctx, r.Store)
	if err != nil {
		return violation("I8", err.Error())
	}
	for _, hi := range snap.incidents {
		texts := []string{hi.Title, hi.Description, strings.Join(hi.Tags, " "), hi.Owner}
		for _, cm := range hi.Comments {
			texts = append(texts, cm.Text)
		}
		for _, l := range hi.Links {
			texts = append(texts, string(l.Raw), string(l.Observed))
		}
		if alerts, err := r.Store.Alerts(ctx, hi.TenantID, hi.ID); err == nil {
			for _, a := range alerts {
				b, _ := json.Marshal(a)
				texts = append(texts, string(b))
			}
		}
		if v := c.Leak(hi.TenantID, "hub incident "+hi.ID, strings.Join(texts, "\n")); v != nil {
			return v
		}
	}
	for _, b := range r.Emulator.Ingested(r.stream()) {
		var row sinkRow
		json.Unmarshal(b, &row)
		if v := c.Leak(row.Tenant, fmt.Sprintf("sink row %s:%d", row.IncidentKey, row.Version), string(b)); v != nil {
			return v
		}
	}
	for _, e := range r.Emulator.History() {
		if v := c.Leak(e.Tenant, "remote change "+fmtHistory(e), e.New); v != nil {
			return v
		}
	}
	return nil
}

// Cursors samples every source's cursor over a run, to check I9: a cursor never goes back, and
// never runs ahead of the newest server time the remote could have reported (the emulator's
// clock when sampled, plus slack), nor of the hub's own clock by more than the five minutes
// socsync trusts (a future timestamp is kept and flagged, never a cursor).
type Cursors struct {
	mu      sync.Mutex
	last    map[string]cursorSample
	samples int
	first   *Violation
}

type cursorSample struct {
	t  time.Time
	at time.Time
	s  string
}

// NewCursors returns an empty sampler.
func NewCursors() *Cursors { return &Cursors{last: map[string]cursorSample{}} }

// Sample reads the sources' cursors now; server is the remote's clock now (the emulator's
// Now()) and hub the hub's clock (usually time.Now()).
func (c *Cursors) Sample(ctx context.Context, st *store.Store, server, hub time.Time) {
	srcs, err := st.Sources(ctx, store.AllTenants())
	if err != nil {
		return // a database that is down right now (a restart test) is sampled next time
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.samples++
	for _, s := range srcs {
		if s.Cursor == "" {
			continue
		}
		var cur struct {
			T time.Time `json:"t"`
		}
		if err := json.Unmarshal([]byte(s.Cursor), &cur); err != nil {
			c.note(violation("I9", fmt.Sprintf("source %s: unreadable cursor %q", s.ID, s.Cursor)))
			continue
		}
		prev, seen := c.last[s.ID]
		if seen && cur.T.Before(prev.t) {
			c.note(violation("I9", fmt.Sprintf("source %s: cursor went back from %s to %s", s.ID, prev.t.Format(time.RFC3339Nano), cur.T.Format(time.RFC3339Nano)),
				fmt.Sprintf("sampled %s: %s", prev.at.Format("15:04:05.000"), prev.s), fmt.Sprintf("sampled %s: %s", hub.Format("15:04:05.000"), s.Cursor)))
		}
		if cur.T.After(server.Add(time.Second)) {
			c.note(violation("I9", fmt.Sprintf("source %s: cursor %s is later than the server's clock %s", s.ID, cur.T.Format(time.RFC3339Nano), server.Format(time.RFC3339Nano)), s.Cursor))
		}
		if cur.T.After(hub.Add(5*time.Minute + time.Second)) {
			c.note(violation("I9", fmt.Sprintf("source %s: cursor %s is a future timestamp (hub clock %s)", s.ID, cur.T.Format(time.RFC3339Nano), hub.Format(time.RFC3339Nano)), s.Cursor))
		}
		c.last[s.ID] = cursorSample{t: cur.T, at: hub, s: s.Cursor}
	}
}

func (c *Cursors) note(v *Violation) {
	if c.first == nil {
		c.first = v
	}
}

// Run samples every interval until ctx ends (a test runs it in a goroutine).
func (c *Cursors) Run(ctx context.Context, st *store.Store, server func() time.Time, interval time.Duration) {
	for {
		c.Sample(ctx, st, server(), time.Now())
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

// Check returns the first violation seen, and how many samples were taken.
func (c *Cursors) Check() (*Violation, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.first, c.samples
}
