// Package workqueue is a level-triggered work queue of keys, after client-go's: adding a key
// that is already queued does nothing, a key is never handed to two workers at once (an add
// while it is in flight is kept and handed out after Done), failed keys come back after a
// per-key exponential backoff, and hand-outs are paced by a global rate. The clock is
// injectable.
package workqueue

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// Clock is the time source; tests inject their own.
type Clock interface {
	Now() time.Time
	// After is time.After on this clock.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Options tune a queue.
type Options struct {
	BaseDelay time.Duration // first retry delay (default 100ms)
	MaxDelay  time.Duration // cap of the per-key backoff (default 5m)
	Rate      float64       // hand-outs per second across all keys; 0 = unlimited
	Burst     int           // hand-outs allowed at once above the rate (default 1)
	Clock     Clock         // default: the real clock
}

// Queue is a queue of keys. The zero value is not usable; use New.
type Queue[K comparable] struct {
	opts Options

	mu       sync.Mutex
	ready    []K          // keys to hand out, in order
	queued   map[K]bool   // keys in ready
	inFlight map[K]bool   // keys handed out and not Done
	dirty    map[K]bool   // keys added while in flight
	delayed  delayHeap[K] // keys waiting for their time
	waiting  map[K]time.Time
	failures map[K]int
	wake     chan struct{} // signalled when ready or delayed changes
	tokens   float64
	tokensAt time.Time
}

// New returns an empty queue.
func New[K comparable](opts Options) *Queue[K] {
	if opts.BaseDelay <= 0 {
		opts.BaseDelay = 100 * time.Millisecond
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = 5 * time.Minute
	}
	if opts.Burst <= 0 {
		opts.Burst = 1
	}
	if opts.Clock == nil {
		opts.Clock = realClock{}
	}
	return &Queue[K]{opts: opts, queued: map[K]bool{}, inFlight: map[K]bool{}, dirty: map[K]bool{},
		waiting: map[K]time.Time{}, failures: map[K]int{}, wake: make(chan struct{}, 1),
		tokens: float64(opts.Burst), tokensAt: opts.Clock.Now()}
}

func (q *Queue[K]) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Add queues k now, unless it is already queued; a key in flight is queued again after Done.
func (q *Queue[K]) Add(k K) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.addLocked(k)
}

func (q *Queue[K]) addLocked(k K) {
	if q.inFlight[k] {
		q.dirty[k] = true
		return
	}
	if q.queued[k] {
		return
	}
	delete(q.waiting, k) // an add now supersedes a delayed one
	q.queued[k] = true
	q.ready = append(q.ready, k)
	q.signal()
}

// AddAfter queues k once d has passed (at once if d ≤ 0). An earlier pending time wins.
func (q *Queue[K]) AddAfter(k K, d time.Duration) {
	if d <= 0 {
		q.Add(k)
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.queued[k] {
		return
	}
	at := q.opts.Clock.Now().Add(d)
	if prev, ok := q.waiting[k]; ok && !at.Before(prev) {
		return
	}
	q.waiting[k] = at
	heap.Push(&q.delayed, delayed[K]{key: k, at: at})
	q.signal()
}

// Retry queues k again after its backoff (BaseDelay doubling per consecutive failure, capped
// at MaxDelay) and returns the delay.
func (q *Queue[K]) Retry(k K) time.Duration {
	q.mu.Lock()
	n := q.failures[k]
	q.failures[k] = n + 1
	q.mu.Unlock()
	d := q.opts.BaseDelay
	for range n {
		d *= 2
		if d >= q.opts.MaxDelay {
			d = q.opts.MaxDelay
			break
		}
	}
	q.AddAfter(k, d)
	return d
}

// Forget resets k's backoff (after a success).
func (q *Queue[K]) Forget(k K) {
	q.mu.Lock()
	delete(q.failures, k)
	q.mu.Unlock()
}

// Done marks k finished; if it was added while in flight it is queued again.
func (q *Queue[K]) Done(k K) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.inFlight, k)
	if q.dirty[k] {
		delete(q.dirty, k)
		q.addLocked(k)
	}
}

// Len is the number of keys queued or waiting (not those in flight).
func (q *Queue[K]) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.ready) + len(q.waiting)
}

// Get blocks until a key is ready and the rate allows a hand-out, marks it in flight and
// returns it. It returns ctx's error when ctx is done.
func (q *Queue[K]) Get(ctx context.Context) (K, error) {
	for {
		q.mu.Lock()
		now := q.opts.Clock.Now()
		q.promoteLocked(now)
		wait := time.Duration(-1)
		if len(q.ready) > 0 {
			if d := q.takeTokenLocked(now); d > 0 {
				wait = d
			} else {
				k := q.ready[0]
				q.ready = q.ready[1:]
				delete(q.queued, k)
				q.inFlight[k] = true
				q.mu.Unlock()
				return k, nil
			}
		} else if len(q.delayed) > 0 {
			wait = q.delayed[0].at.Sub(now)
		}
		q.mu.Unlock()
		var timer <-chan time.Time
		if wait >= 0 {
			timer = q.opts.Clock.After(wait)
		}
		select {
		case <-ctx.Done():
			var zero K
			return zero, ctx.Err()
		case <-q.wake:
		case <-timer:
		}
	}
}

// promoteLocked moves delayed keys whose time has come to ready.
func (q *Queue[K]) promoteLocked(now time.Time) {
	for len(q.delayed) > 0 && !q.delayed[0].at.After(now) {
		d := heap.Pop(&q.delayed).(delayed[K])
		if at, ok := q.waiting[d.key]; !ok || !at.Equal(d.at) {
			continue // superseded by an earlier time or an immediate add
		}
		delete(q.waiting, d.key)
		if q.inFlight[d.key] {
			q.dirty[d.key] = true
			continue
		}
		if !q.queued[d.key] {
			q.queued[d.key] = true
			q.ready = append(q.ready, d.key)
		}
	}
}

// takeTokenLocked takes a token of the global rate, or says how long until one is available.
func (q *Queue[K]) takeTokenLocked(now time.Time) time.Duration {
	if q.opts.Rate <= 0 {
		return 0
	}
	q.tokens = min(float64(q.opts.Burst), q.tokens+now.Sub(q.tokensAt).Seconds()*q.opts.Rate)
	q.tokensAt = now
	if q.tokens >= 1 {
		q.tokens--
		return 0
	}
	return time.Duration((1 - q.tokens) / q.opts.Rate * float64(time.Second))
}

type delayed[K comparable] struct {
	key K
	at  time.Time
}

type delayHeap[K comparable] []delayed[K]

func (h delayHeap[K]) Len() int           { return len(h) }
func (h delayHeap[K]) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h delayHeap[K]) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *delayHeap[K]) Push(x any)        { *h = append(*h, x.(delayed[K])) }
func (h *delayHeap[K]) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
