package emulator

import (
	"errors"
	"math"
	"slices"
	"strconv"
	"time"
)

// ScenarioConfig sets the rates (events per minute of emulator time, across the chosen
// tenants) of the scenario generator: new incidents with alerts and evidence, remote analyst
// edits, merges (correlation) and alert status changes.
type ScenarioConfig struct {
	NewIncidentsPerMin     float64  `json:"new_incidents_per_min"`
	EditsPerMin            float64  `json:"edits_per_min"`
	MergesPerMin           float64  `json:"merges_per_min"`
	AlertResolutionsPerMin float64  `json:"alert_resolutions_per_min"`
	Tenants                []string `json:"tenants,omitempty"` // tenant ids, domains or indexes; default all
	// TickMs is how often (wall clock) a running generator looks at the emulator clock and
	// catches up (default 1000).
	TickMs int `json:"tick_ms,omitempty"`
}

// ScenarioStatus reports the generator's state.
type ScenarioStatus struct {
	Running bool           `json:"running"`
	Config  ScenarioConfig `json:"config"`
	Events  map[string]int `json:"events"` // counts by kind since the emulator started
}

type scenarioRun struct {
	cfg    ScenarioConfig
	stop   chan struct{}
	done   chan struct{}
	last   time.Time
	acc    [4]float64
	n      int // events generated, for the dice
	events map[string]int
}

func (cfg ScenarioConfig) validate() error {
	for _, r := range []float64{cfg.NewIncidentsPerMin, cfg.EditsPerMin, cfg.MergesPerMin, cfg.AlertResolutionsPerMin} {
		if r < 0 || math.IsNaN(r) || math.IsInf(r, 0) || r > 1e6 {
			return badf("scenario rates must be between 0 and 1,000,000 per minute")
		}
	}
	if cfg.TickMs < 0 {
		return badf("tick_ms must not be negative")
	}
	return nil
}

// StartScenario starts (or restarts) the generator. It follows the emulator clock, catching
// up every TickMs of wall time; the events depend only on the seed and the sequence of clock
// steps it sees.
func (e *Emulator) StartScenario(cfg ScenarioConfig) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	e.StopScenario()
	e.mu.Lock()
	if _, err := e.scenarioTenants(cfg); err != nil {
		e.mu.Unlock()
		return err
	}
	run := e.scenarioState()
	run.cfg = cfg
	stop, done := make(chan struct{}), make(chan struct{})
	run.stop, run.done = stop, done
	run.last = e.Now()
	e.mu.Unlock()
	tick := time.Duration(cfg.TickMs) * time.Millisecond
	if tick <= 0 {
		tick = time.Second
	}
	go func() {
		defer close(done)
		t := time.NewTicker(tick)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-e.done:
				return
			case <-t.C:
				now := e.Now()
				e.mu.Lock()
				d := now.Sub(run.last)
				run.last = now
				e.stepLocked(run, run.cfg, d)
				e.mu.Unlock()
			}
		}
	}()
	return nil
}

// StopScenario stops a running generator (a no-op when none runs).
func (e *Emulator) StopScenario() {
	e.mu.Lock()
	run := e.scenario
	var stop, done chan struct{}
	if run != nil && run.stop != nil {
		stop, done = run.stop, run.done
		run.stop, run.done = nil, nil
	}
	e.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
}

// ScenarioStep generates the events of d of emulator time at cfg's rates, synchronously (for
// tests and benchmarks that drive the clock themselves).
func (e *Emulator) ScenarioStep(cfg ScenarioConfig, d time.Duration) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, err := e.scenarioTenants(cfg); err != nil {
		return err
	}
	e.stepLocked(e.scenarioState(), cfg, d)
	return nil
}

// ScenarioStatus returns the generator's state.
func (e *Emulator) ScenarioStatus() ScenarioStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	run := e.scenarioState()
	ev := map[string]int{}
	for k, v := range run.events {
		ev[k] = v
	}
	return ScenarioStatus{Running: run.stop != nil, Config: run.cfg, Events: ev}
}

func (e *Emulator) scenarioState() *scenarioRun {
	if e.scenario == nil {
		e.scenario = &scenarioRun{events: map[string]int{}}
	}
	return e.scenario
}

func (e *Emulator) scenarioTenants(cfg ScenarioConfig) ([]*tenant, error) {
	if len(cfg.Tenants) == 0 {
		return e.tenants, nil
	}
	var out []*tenant
	for _, k := range cfg.Tenants {
		t, err := e.tenantByKey(k)
		if err != nil {
			return nil, badf("scenario: %v", err)
		}
		out = append(out, t)
	}
	return out, nil
}

var errNoCandidate = errors.New("no candidate")

// stepLocked generates the events due in d. Callers hold e.mu.
func (e *Emulator) stepLocked(run *scenarioRun, cfg ScenarioConfig, d time.Duration) {
	if d <= 0 {
		return
	}
	tenants, err := e.scenarioTenants(cfg)
	if err != nil || len(tenants) == 0 {
		return
	}
	rates := [4]float64{cfg.NewIncidentsPerMin, cfg.EditsPerMin, cfg.MergesPerMin, cfg.AlertResolutionsPerMin}
	kinds := [4]string{"new_incident", "edit", "merge", "alert_status"}
	for k := range rates {
		run.acc[k] += rates[k] * d.Minutes()
		for run.acc[k] >= 1 {
			run.acc[k]--
			run.n++
			r := e.rng("scenario", kinds[k], strconv.Itoa(run.n))
			t := tenants[r.IntN(len(tenants))]
			var err error
			switch k {
			case 0:
				err = e.scenarioNewIncident(t, run.n)
			case 1:
				err = e.scenarioEdit(t, run.n)
			case 2:
				err = e.scenarioMerge(t)
			case 3:
				err = e.scenarioAlert(t, run.n)
			}
			if err == nil {
				run.events[kinds[k]]++
			}
		}
	}
}

func (e *Emulator) scenarioNewIncident(t *tenant, n int) error {
	r := e.rng("scenario-incident", t.ID, strconv.Itoa(n))
	sev := []string{"high", "medium", "low", "informational"}[r.IntN(4)]
	req := NewIncident{Severity: sev}
	if len(t.Workspaces) == 2 && r.IntN(2) == 0 {
		req.Where, req.Workspace = "sentinel", t.Workspaces[r.IntN(2)].Name
		req.Title = cloudTitles[r.IntN(len(cloudTitles))]
		for range 1 + r.IntN(2) {
			req.Alerts = append(req.Alerts, NewAlert{Severity: sev, ServiceSource: "microsoftDefenderForCloud"})
		}
	} else {
		req.Title = defenderTitles[r.IntN(len(defenderTitles))]
		for j := range 1 + r.IntN(3) {
			src := []string{"microsoftDefenderForEndpoint", "microsoftDefenderForOffice365", "microsoftDefenderForIdentity"}[(n+j)%3]
			req.Alerts = append(req.Alerts, NewAlert{Severity: sev, ServiceSource: src})
		}
	}
	_, err := e.createIncident(t, req, e.now(), "scenario", "Microsoft 365 Defender")
	return err
}

func openIncidents(t *tenant) []*incident {
	var out []*incident
	for _, inc := range t.incidents {
		if inc.status != "resolved" && inc.status != "redirected" {
			out = append(out, inc)
		}
	}
	return out
}

// scenarioEdit makes one analyst change to an open incident.
func (e *Emulator) scenarioEdit(t *tenant, n int) error {
	open := openIncidents(t)
	if len(open) == 0 {
		return errNoCandidate
	}
	r := e.rng("scenario-edit", t.ID, strconv.Itoa(n))
	inc := open[r.IntN(len(open))]
	u := t.Users[r.IntN(len(t.Users))]
	m := e.mutate(inc, "scenario", u.UPN)
	switch r.IntN(6) {
	case 0:
		m.setOwner(ownerFromUser(u))
	case 1:
		m.setOwner(ownerFromUser(u))
		m.setStatus("inProgress")
	case 2:
		m.setSeverity([]string{"high", "medium", "low"}[r.IntN(3)])
	case 3:
		m.addComment("", "Investigating: "+[]string{"checked the device timeline", "contacted the user", "blocked the sender", "reset the password"}[r.IntN(4)]+".", ownerFromUser(u), false)
	case 4:
		m.setTags(append(slices.Clone(inc.tags), []string{"VIP", "Escalated", "Phishing", "Customer-notified"}[r.IntN(4)]))
	default:
		class := []string{"TruePositive", "BenignPositive", "FalsePositive"}[r.IntN(3)]
		det := determinationFor(class, "", inc.determination)
		m.setClassification(class, reasonFor(class, det), det)
		m.setClassComment("Closed by " + u.DisplayName + ".")
		m.setStatus("resolved")
	}
	m.commit(u.UPN)
	return nil
}

// scenarioMerge correlates the newest open Defender incident into an older one.
func (e *Emulator) scenarioMerge(t *tenant) error {
	var cands []*incident
	for _, inc := range openIncidents(t) {
		if inc.graphID != "" {
			cands = append(cands, inc)
		}
	}
	if len(cands) < 2 {
		return errNoCandidate
	}
	return e.mergeLocked(cands[len(cands)-1], cands[len(cands)-2])
}

// scenarioAlert moves one open alert forward: in progress, resolved, or (Defender for Cloud)
// dismissed.
func (e *Emulator) scenarioAlert(t *tenant, n int) error {
	var open []*alert
	for _, inc := range openIncidents(t) {
		for _, a := range inc.alerts {
			if a.status == "new" || a.status == "inProgress" {
				open = append(open, a)
			}
		}
	}
	if len(open) == 0 {
		return errNoCandidate
	}
	r := e.rng("scenario-alert", t.ID, strconv.Itoa(n))
	a := open[r.IntN(len(open))]
	next := "resolved"
	switch {
	case a.status == "new" && r.IntN(3) == 0:
		next = "inProgress"
	case a.inc.graphID == "" && r.IntN(2) == 0:
		next = "dismissed"
	}
	m := e.mutate(a.inc, "scenario", productName(a.serviceSource))
	m.setAlertStatus(a, next)
	if a.inc.graphID != "" {
		m.commit("")
	} else {
		m.flush()
	}
	return nil
}
