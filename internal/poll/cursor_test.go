package poll

import (
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
