// Package throttle keeps socsync within the remote services' budgets: an HTTP transport that
// paces requests per budget key (token buckets), honours Retry-After across requests (no call
// before it has passed), retries transient failures with jittered backoff, and — when a wait
// would be longer than a request should block — fails fast with *Throttled so that the caller
// can reschedule instead of spinning.
package throttle

import (
	"context"
	"fmt"
	"time"
)

// Key names one budget: an API and the scope the remote counts it per (a tenant for Graph, a
// subscription for ARM, a data collection rule for Logs Ingestion).
type Key struct {
	API   string // graph, arm-read, arm-write, sentinel-write, sentinel-read, ingestion, token
	Scope string
}

func (k Key) String() string { return k.API + "/" + k.Scope }

type keyCtx struct{}

// WithKey returns a context whose requests count against the budget k. A client sets it on
// every request it sends through the Transport.
func WithKey(ctx context.Context, k Key) context.Context {
	return context.WithValue(ctx, keyCtx{}, k)
}

// KeyFrom returns the budget key of a request's context.
func KeyFrom(ctx context.Context) (Key, bool) {
	k, ok := ctx.Value(keyCtx{}).(Key)
	return k, ok
}

// Throttled is returned instead of sending (or re-sending) a request whose budget does not
// allow it before NotBefore, when that is further away than the Transport may block. The
// caller should hand the work back to its scheduler with this time.
type Throttled struct {
	Key       Key
	NotBefore time.Time
	Status    int // the remote's status (429 or 503) when it asked to wait; 0 when our own budget did
}

func (e *Throttled) Error() string {
	who := "local budget"
	if e.Status != 0 {
		who = fmt.Sprintf("remote said %d", e.Status)
	}
	return fmt.Sprintf("throttled on %s until %s (%s)", e.Key, e.NotBefore.UTC().Format(time.RFC3339), who)
}
