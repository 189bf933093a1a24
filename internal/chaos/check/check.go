// Package check holds the invariant checkers of DESIGN.md §3 (I1–I9), run over what a test run
// leaves behind: the emulator's history of remote changes and of requests, its ingested sink
// rows, and the hub's store (incidents, links, comments, audit, outbox, sources).
//
// Each checker returns nil or the first Violation it finds, with the records that show it (the
// emulator's and the hub's), so that a failing run can be debugged from the test's output
// alone. The checkers read; they never change the run.
package check

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/socsync/socsync/internal/emulator"
	"github.com/socsync/socsync/internal/store"
)

// Violation is the first breach of an invariant found in a run.
type Violation struct {
	Invariant string   // I1 … I9
	Message   string   // what is wrong
	History   []string // the records that show it, oldest first
}

func (v *Violation) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s violated: %s", v.Invariant, v.Message)
	for _, h := range v.History {
		b.WriteString("\n    ")
		b.WriteString(h)
	}
	return b.String()
}

func violation(inv, msg string, history ...string) *Violation {
	const keep = 40
	if len(history) > keep {
		history = append(history[:keep/2:keep/2], append([]string{fmt.Sprintf("… %d more …", len(history)-keep)}, history[len(history)-keep/2:]...)...)
	}
	return &Violation{Invariant: inv, Message: msg, History: history}
}

// Run is what a fault run leaves behind.
type Run struct {
	Emulator *emulator.Emulator
	Store    *store.Store
	// Stream is the forward stream whose ingested rows are checked (default
	// Custom-SocsyncIncidents).
	Stream string
}

func (r Run) stream() string {
	if r.Stream == "" {
		return "Custom-SocsyncIncidents"
	}
	return r.Stream
}

// Options loosen what a run is expected to show.
type Options struct {
	// RepeatedRows is how many sink rows may repeat an earlier row (each one identical to it):
	// 0 for a run without crashes or lost ingestion answers; at most one batch per kill.
	// Negative: any number, as long as every repeat is identical.
	RepeatedRows int
	// FailedLinksOK lets a link shown as failed (a value the remote refused) disagree.
	FailedLinksOK bool
	// Stalled, if set, says how long the processes of the run were stalled (not scheduled:
	// starved cores, collections) between two times; RetryAfter widens its in-flight window
	// by as much. nil: never.
	Stalled func(from, to time.Time) time.Duration
	// Arrivals, if set (fed by hub.Options.Observed), adds I1's time bound: every remote change
	// reached the hub within Within(tenant) of its time (Timely).
	Arrivals *Arrivals
	Within   func(tenant string) time.Duration
	// Records, if set, maps the emulator's request records before the request checkers read
	// them: a run that moved the emulator's clock back puts them on one timeline again.
	Records func([]emulator.RequestRecord) []emulator.RequestRecord
}

// All runs every checker that needs only the run (I1, I2, I3, I5, I6, I8's request and sink
// checks, I7's Retry-After, and I1's time bound if the options have arrivals) and returns the
// first violation. The caller waits for the run to
// settle first (faults off, edits stopped, the outbox drained: see Settled).
func All(ctx context.Context, r Run, o Options) *Violation {
	recs, dropped := r.Emulator.RequestHistory()
	if o.Records != nil {
		recs = o.Records(recs)
	}
	for _, c := range []func() *Violation{
		func() *Violation {
			if dropped > 0 {
				return violation("I7", fmt.Sprintf("the emulator dropped %d request records: raise MaxRequestHistory for this run", dropped))
			}
			return nil
		},
		func() *Violation { return Collected(ctx, r) },
		func() *Violation {
			if o.Arrivals == nil {
				return nil
			}
			v, _ := Timely(r.Emulator.History(), o.Arrivals, o.Within, time.Time{})
			return v
		},
		func() *Violation { return SinkOnce(ctx, r, o.RepeatedRows) },
		func() *Violation { return Converged(ctx, r, o.FailedLinksOK) },
		func() *Violation { return Conflicts(ctx, r) },
		func() *Violation { return CommentsOnce(ctx, r) },
		func() *Violation { return RetryAfter(recs, o.Stalled) },
		func() *Violation { return RequestsStayInTheirTenant(recs) },
	} {
		if v := c(); v != nil {
			return v
		}
	}
	return nil
}

// Settled reports whether the hub has nothing left to do: no incident pending write-back, no
// alerts or comments waiting to be fetched (a read budget held them back), and no outbox row
// unsent. Tests wait for it (with hubtest.Eventually) before checking.
func Settled(ctx context.Context, st *store.Store) bool {
	n, err := st.OutboxPending(ctx)
	if err != nil || n > 0 {
		return false
	}
	if n, err := st.CountFlagged(ctx, "details-pending"); err != nil || n > 0 {
		return false
	}
	list, err := st.ListIncidents(ctx, store.AllTenants(), store.ListFilter{}, store.ListPage{}, 1_000_000)
	if err != nil {
		return false
	}
	for _, si := range list {
		if si.SyncState == "pending" {
			return false
		}
	}
	return true
}
