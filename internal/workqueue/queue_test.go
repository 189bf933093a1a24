package workqueue

import (
	"context"
	"sync"
	"testing"
	"time"
)

// fakeClock is a manual clock: After fires when Advance passes its time.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, waiter{c.now.Add(d), ch})
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var keep []waiter
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
		} else {
			keep = append(keep, w)
		}
	}
	c.waiters = keep
	c.mu.Unlock()
}

func getNow[K comparable](t *testing.T, q *Queue[K]) (K, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	k, err := q.Get(ctx)
	return k, err == nil
}

func TestQueue_AddingAQueuedKeyTwiceHandsItOutOnce(t *testing.T) {
	q := New[string](Options{Clock: newFakeClock()})
	q.Add("a")
	q.Add("b")
	q.Add("a")
	if q.Len() != 2 {
		t.Fatalf("Len = %d, want 2", q.Len())
	}
	first, _ := getNow(t, q)
	second, _ := getNow(t, q)
	if first != "a" || second != "b" {
		t.Errorf("got %s, %s; want a, b", first, second)
	}
	if _, ok := getNow(t, q); ok {
		t.Error("a third key was handed out")
	}
}

func TestQueue_AKeyInFlightIsNotHandedOutAgainUntilDone(t *testing.T) {
	q := New[string](Options{Clock: newFakeClock()})
	q.Add("a")
	k, _ := getNow(t, q)
	q.Add(k) // changed again while being worked on
	if _, ok := getNow(t, q); ok {
		t.Fatal("a key in flight was handed out to a second worker")
	}
	q.Done(k)
	if again, ok := getNow(t, q); !ok || again != "a" {
		t.Fatal("a key added while in flight was lost")
	}
	q.Done("a")
	if _, ok := getNow(t, q); ok {
		t.Error("key handed out a third time")
	}
}

func TestQueue_RetryBacksOffExponentiallyAndForgetResets(t *testing.T) {
	clock := newFakeClock()
	q := New[string](Options{Clock: clock, BaseDelay: time.Second, MaxDelay: 5 * time.Second})
	var delays []time.Duration
	for range 5 {
		q.Add("a")
		k, _ := getNow(t, q)
		delays = append(delays, q.Retry(k))
		q.Done(k)
		if _, ok := getNow(t, q); ok {
			t.Fatal("retried key handed out before its backoff")
		}
		clock.Advance(delays[len(delays)-1])
		k, ok := getNow(t, q)
		if !ok || k != "a" {
			t.Fatal("retried key not handed out after its backoff")
		}
		q.Done(k)
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
	for i := range want {
		if delays[i] != want[i] {
			t.Errorf("delays = %v, want %v", delays, want)
			break
		}
	}
	q.Forget("a")
	if d := q.Retry("a"); d != time.Second {
		t.Errorf("after Forget the delay is %v, want 1s", d)
	}
}

func TestQueue_AddNowSupersedesADelayedAdd(t *testing.T) {
	clock := newFakeClock()
	q := New[string](Options{Clock: clock})
	q.AddAfter("a", time.Hour)
	q.Add("a")
	if k, ok := getNow(t, q); !ok || k != "a" {
		t.Fatal("immediate add did not win over the delayed one")
	}
	q.Done("a")
	clock.Advance(2 * time.Hour)
	if _, ok := getNow(t, q); ok {
		t.Error("the superseded delayed add fired too")
	}
}

func TestQueue_GlobalRatePacesHandOuts(t *testing.T) {
	clock := newFakeClock()
	q := New[int](Options{Clock: clock, Rate: 2, Burst: 1})
	for i := range 3 {
		q.Add(i)
	}
	if _, ok := getNow(t, q); !ok {
		t.Fatal("first hand-out blocked")
	}
	if _, ok := getNow(t, q); ok {
		t.Fatal("second hand-out not paced")
	}
	clock.Advance(500 * time.Millisecond)
	if _, ok := getNow(t, q); !ok {
		t.Fatal("hand-out blocked after the rate allowed it")
	}
}

func TestQueue_GetReturnsWhenContextEnds(t *testing.T) {
	q := New[string](Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { _, err := q.Get(ctx); done <- err }()
	cancel()
	if err := <-done; err != context.Canceled {
		t.Errorf("Get = %v, want context.Canceled", err)
	}
}

func TestQueue_ConcurrentWorkersNeverShareAKey(t *testing.T) {
	q := New[int](Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	active := map[int]bool{}
	handled := 0
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k, err := q.Get(ctx)
				if err != nil {
					return
				}
				mu.Lock()
				if active[k] {
					t.Errorf("key %d handed to two workers", k)
				}
				active[k] = true
				handled++
				mu.Unlock()
				time.Sleep(time.Millisecond)
				mu.Lock()
				active[k] = false
				mu.Unlock()
				q.Done(k)
			}
		}()
	}
	for i := range 500 {
		q.Add(i % 7)
	}
	for q.Len() > 0 {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	cancel()
	wg.Wait()
	if handled == 0 {
		t.Error("nothing handled")
	}
}
