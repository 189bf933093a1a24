package emulator

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// snapshot is everything a seed determines: the info and every incident view.
func snapshot(t *testing.T, e *Emulator) string {
	t.Helper()
	out := map[string]any{"info": e.Info("https://x", "ca.pem")}
	e.mu.Lock()
	var ids [][2]string
	for _, tn := range e.tenants {
		for _, inc := range tn.incidents {
			id := inc.graphID
			if id == "" {
				id = inc.name
			}
			ids = append(ids, [2]string{tn.ID, id})
		}
	}
	e.mu.Unlock()
	for _, k := range ids {
		v, err := e.IncidentViews(k[0], k[1])
		if err != nil {
			t.Fatal(err)
		}
		out[k[0]+"/"+k[1]] = v
	}
	out["history"] = e.History()
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func newQuiet(t *testing.T, seed int64) *Emulator {
	t.Helper()
	e, err := New(Options{Seed: seed, Tenants: 4, Now: func() time.Time { return testBase }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

func TestNew_SameSeedSameState_DifferentSeedDifferentIDs(t *testing.T) {
	a, b, c := newQuiet(t, 9), newQuiet(t, 9), newQuiet(t, 10)
	if snapshot(t, a) != snapshot(t, b) {
		t.Fatal("same seed and clock gave different state")
	}
	ia, ic := a.Info("", ""), c.Info("", "")
	if ia.Tenants[0].TenantID == ic.Tenants[0].TenantID || ia.Tenants[0].ClientSecret == ic.Tenants[0].ClientSecret {
		t.Fatal("different seeds gave the same ids")
	}
	if _, err := New(Options{Tenants: -1}); err == nil {
		t.Fatal("negative tenants accepted")
	}
	if _, err := New(Options{Limits: &Limits{GraphPerMinute: -5}}); err == nil {
		t.Fatal("negative limit accepted")
	}
}

func TestScenarioStep_DeterministicEvents(t *testing.T) {
	cfg := ScenarioConfig{NewIncidentsPerMin: 6, EditsPerMin: 4, MergesPerMin: 1, AlertResolutionsPerMin: 3}
	run := func(seed int64) (string, ScenarioStatus) {
		e := newQuiet(t, seed)
		for range 10 {
			e.Advance(30 * time.Second)
			if err := e.ScenarioStep(cfg, 30*time.Second); err != nil {
				t.Fatal(err)
			}
		}
		return snapshot(t, e), e.ScenarioStatus()
	}
	s1, st1 := run(3)
	s2, st2 := run(3)
	if s1 != s2 || !reflect.DeepEqual(st1, st2) {
		t.Fatal("same seed and steps gave different scenarios")
	}
	ev := st1.Events
	if ev["new_incident"] != 30 || ev["edit"] != 20 || ev["merge"] < 1 || ev["alert_status"] != 15 {
		t.Fatalf("events %v (5 minutes at 6/4/1/3 per minute)", ev)
	}
	if st1.Running {
		t.Error("stepping reported a running generator")
	}
	if err := newQuiet(t, 1).ScenarioStep(ScenarioConfig{EditsPerMin: -1}, time.Minute); err == nil {
		t.Error("negative rate accepted")
	}
	if err := newQuiet(t, 1).ScenarioStep(ScenarioConfig{Tenants: []string{"nope"}}, time.Minute); err == nil {
		t.Error("unknown tenant accepted")
	}
}

func TestScenario_StartStopOverAdminAPI(t *testing.T) {
	v := newEnv(t, Options{})
	status, m := v.admin("POST", "/scenario", map[string]any{"action": "start", "new_incidents_per_min": 60, "tick_ms": 5, "tenants": []string{"0"}})
	wantStatus(t, status, 200, m)
	if m["running"] != true {
		t.Fatalf("%v", m)
	}
	before := len(v.e.History())
	v.e.Advance(time.Minute) // the generator follows the emulator clock
	waitFor(t, func() bool { return v.e.ScenarioStatus().Events["new_incident"] >= 60 })
	status, m = v.admin("POST", "/scenario", map[string]any{"action": "stop"})
	wantStatus(t, status, 200, m)
	if m["running"] != false || len(v.e.History()) <= before {
		t.Fatalf("%v", m)
	}
	status, m = v.admin("POST", "/scenario", map[string]any{"action": "step", "duration": "1m", "edits_per_min": 2})
	wantStatus(t, status, 200, m)
	if m["events"].(map[string]any)["edit"] != float64(2) {
		t.Errorf("step: %v", m)
	}
	for _, bad := range []map[string]any{{"action": "dance"}, {"action": "step", "duration": "x"}, {"action": "start", "edits_per_min": -1}} {
		status, m := v.admin("POST", "/scenario", bad)
		wantStatus(t, status, 400, m)
	}
	status, m = v.admin("GET", "/scenario", nil)
	wantStatus(t, status, 200, m)
}
