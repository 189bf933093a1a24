package poll

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/socsync/socsync/internal/graph"
	"github.com/socsync/socsync/internal/incident"
	"github.com/socsync/socsync/internal/sentinel"
)

func TestUsableCursor_FutureAndNonUTCChangeTimesNeverMoveACursor(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	at := now.Add(-time.Minute)
	tests := []struct {
		name string
		obs  incident.Observation
		want bool
	}{
		{"a plain UTC change time", incident.Observation{UpdatedAt: at}, true},
		{"other flags do not matter", incident.Observation{UpdatedAt: at, Flags: []string{"unknown-enum:status"}}, true},
		{"graph: flagged future", incident.Observation{UpdatedAt: at, Flags: []string{graph.FlagFutureTimestamp}}, false},
		{"graph: flagged non-UTC", incident.Observation{UpdatedAt: at, Flags: []string{graph.FlagNonUTCTimestamp}}, false},
		{"sentinel: flagged non-UTC among others", incident.Observation{UpdatedAt: at, Flags: []string{"unknown-enum:severity", sentinel.FlagNonUTCTimestamp}}, false},
		{"unflagged but beyond now + 5 minutes", incident.Observation{UpdatedAt: now.Add(6 * time.Minute)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := usableCursor(tt.obs, now); got != tt.want {
				t.Errorf("usableCursor = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSeenSet_SkipsOnlyUnchangedVersionsAndKeepsTheNextPollsWindow(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	s := seenSet{}
	a := incident.Observation{ExternalID: "a", UpdatedAt: t0}
	b := incident.Observation{ExternalID: "b", UpdatedAt: t0.Add(2 * time.Minute), ETag: `"1"`}
	future := incident.Observation{ExternalID: "f", UpdatedAt: t0.Add(3 * time.Minute), Flags: []string{sentinel.FlagFutureTimestamp}}
	s.add([]incident.Observation{a, b, future})

	aLater := a
	aLater.UpdatedAt = t0.Add(time.Second)
	bNewEtag := b
	bNewEtag.ETag = `"2"`
	got := s.unseen([]incident.Observation{a, aLater, b, bNewEtag, future, {ExternalID: "new", UpdatedAt: t0}})
	var ids []string
	for _, o := range got {
		ids = append(ids, o.ExternalID+"@"+seenVersion(o))
	}
	want := []string{"a@" + seenVersion(aLater), "b@" + seenVersion(bNewEtag), "f@" + seenVersion(future), "new@" + seenVersion(incident.Observation{UpdatedAt: t0})}
	if !slices.Equal(ids, want) {
		t.Errorf("unseen = %v, want %v (a flagged future change time is always read again)", ids, want)
	}

	kept := s.forCursor(t0.Add(time.Minute))
	if len(kept) != 1 || kept["b"] != seenVersion(b) {
		t.Errorf("kept for the cursor %v, want only b (a is older than the next poll's since)", kept)
	}

	// A cursor carries it, and one without it reads as an empty set.
	c, err := decodeCursor(cursor{V: cursorVersion, Time: t0, Seen: kept}.encode())
	if err != nil || c.Seen["b"] != seenVersion(b) {
		t.Errorf("round trip: %+v, %v", c, err)
	}
	if c, err := decodeCursor(`{"v":1,"t":"2026-11-22T12:00:00Z"}`); err != nil || len(c.Seen) != 0 {
		t.Errorf("a cursor without a seen set: %+v, %v", c, err)
	}
}

func TestSeenSet_ACursorKeepsAtMostMaxSeenOfTheNewest(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	s := seenSet{}
	for i := range maxSeen + 500 {
		s.add([]incident.Observation{{ExternalID: fmt.Sprint(i), UpdatedAt: t0.Add(time.Duration(i) * time.Millisecond)}})
	}
	kept := s.forCursor(time.Unix(0, 0))
	if len(kept) != maxSeen {
		t.Fatalf("kept %d, want %d", len(kept), maxSeen)
	}
	if _, ok := kept["0"]; ok {
		t.Error("the oldest version was kept over newer ones")
	}
	if _, ok := kept[fmt.Sprint(maxSeen+499)]; !ok {
		t.Error("the newest version was dropped")
	}
}
