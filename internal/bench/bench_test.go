package bench

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

// TestBench_ShortRunKeepsTheInvariants runs a small benchmark with the baseline and checks what
// must hold whatever the machine: one sink record per change, no call before a Retry-After, and
// every change caught. It checks no timings.
func TestBench_ShortRunKeepsTheInvariants(t *testing.T) {
	rep, err := Run(context.Background(), Options{Tenants: 12, Incidents: 8, ChangeRate: 6, Duration: 8 * time.Second,
		Idle: 3 * time.Second, Hot: time.Second, Baseline: "logicapp", BaselineInterval: 2 * time.Second, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.MarshalIndent(rep, "", "  ")
	t.Logf("%s", b)
	s := rep.Socsync
	if s.Changes == 0 || s.SinkRecordsPerChange != 1 || s.SinkRecords != s.Changes {
		t.Errorf("socsync: %d sink records for %d changes, want exactly one each", s.SinkRecords, s.Changes)
	}
	if s.RetryAfterViolations != 0 || rep.Baseline.RetryAfterViolations != 0 {
		t.Errorf("Retry-After violations: socsync %d, baseline %d", s.RetryAfterViolations, rep.Baseline.RetryAfterViolations)
	}
	if s.Unobserved != 0 {
		t.Errorf("%d changes never reached the hub", s.Unobserved)
	}
	if rep.Baseline.SinkRecordsPerChange <= s.SinkRecordsPerChange {
		t.Errorf("the baseline wrote %.2f records per change, socsync %.2f: the baseline should duplicate", rep.Baseline.SinkRecordsPerChange, s.SinkRecordsPerChange)
	}
	var fields map[string]any
	json.Unmarshal(b, &fields)
	for _, k := range []string{"api_calls", "changes", "calls_per_changed_incident", "sink_records", "sink_records_per_change",
		"lag_remote_to_hub_p50_s", "lag_remote_to_hub_p99_s", "lag_hub_to_remote_p99_s", "lag_hub_to_sink_p99_s", "upserts_per_s",
		"peak_rss_mb", "retry_after_violations"} {
		if _, ok := fields["socsync"].(map[string]any)[k]; !ok {
			t.Errorf("the JSON lacks socsync.%s", k)
		}
	}
	if _, ok := fields["ratios"]; !ok {
		t.Error("the JSON lacks the ratios")
	}
}
