package poll

import (
	"errors"
	"testing"
	"time"

	"github.com/socsync/socsync/internal/store"
)

func TestNextPoll_AdaptsBetweenHotAndIdle(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	tg := Target{Idle: 60 * time.Second, Hot: 10 * time.Second}
	scheduled := func(interval time.Duration) store.Source {
		return store.Source{LastPoll: now.Add(-interval), NextPoll: now}
	}
	tests := []struct {
		name    string
		src     store.Source
		res     result
		err     error
		wantGap time.Duration
	}{
		{"first poll, nothing changed: idle", store.Source{}, result{}, nil, 60 * time.Second},
		{"busy: hot", scheduled(60 * time.Second), result{changed: 5}, nil, 10 * time.Second},
		{"one change: half the last interval", scheduled(40 * time.Second), result{changed: 1}, nil, 20 * time.Second},
		{"quiet: the interval doubles", scheduled(20 * time.Second), result{}, nil, 40 * time.Second},
		{"quiet: never beyond idle", scheduled(50 * time.Second), result{}, nil, 60 * time.Second},
		// Regression: "poll now" had made the last interval a few milliseconds, and the source
		// then polled again at once, doubling from there.
		{"after a poll now: no shorter than twice hot", scheduled(5 * time.Millisecond), result{}, nil, 20 * time.Second},
		{"a failure, the first: hot", scheduled(60 * time.Second), result{}, errors.New("boom"), 10 * time.Second},
		{"a failure again: idle", store.Source{LastError: "boom"}, result{}, errors.New("boom"), 60 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := nextPoll(now, tg, tt.src, tt.res, tt.err).Sub(now); got != tt.wantGap {
				t.Errorf("next poll in %s, want %s", got, tt.wantGap)
			}
		})
	}
}
