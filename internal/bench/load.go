package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/socsync/socsync/internal/emulator"
)

// load makes the run's changes: edits by remote analysts (Defender and Sentinel), new incidents,
// and edits by analysts in the hub, mostly in a few busy tenants. An incident is not changed
// again until socsync has seen its last change, so that every change is a version of its own.
type load struct {
	o         Options
	em        *emulator.Emulator
	info      emulator.Info
	byTenant  map[string][]remoteIncident
	tenants   []string
	busy      []string
	hubAddr   string
	token     string
	rnd       *rand.Rand
	waitUntil map[string]time.Time // incident → not before
	changes   []change             // remote changes
	hubEdits  []change             // hub edits (tenant, Graph id, time)
	defender  map[string]bool      // tenants whose Defender is collected
	workspace map[string]bool      // tenants with Sentinel
	seq       int
}

func newLoad(o Options, em *emulator.Emulator, info emulator.Info, initial []remoteIncident, hubAddr, token string) *load {
	l := &load{o: o, em: em, info: info, byTenant: map[string][]remoteIncident{}, hubAddr: hubAddr, token: token,
		rnd: rand.New(rand.NewPCG(uint64(o.Seed), 99)), waitUntil: map[string]time.Time{},
		defender: map[string]bool{}, workspace: map[string]bool{}}
	for _, r := range initial {
		l.byTenant[r.tenant] = append(l.byTenant[r.tenant], r)
	}
	for _, t := range info.Tenants {
		l.tenants = append(l.tenants, t.TenantID)
		l.defender[t.TenantID] = t.Defender
		l.workspace[t.TenantID] = len(t.Sentinel) > 0
	}
	nBusy := max(1, int(float64(len(l.tenants))*o.BusyShare))
	l.busy = l.tenants[:nBusy]
	return l
}

func (l *load) run(ctx context.Context) {
	interval := time.Duration(float64(time.Second) / l.o.ChangeRate)
	per := 1
	for interval < 2*time.Millisecond {
		interval *= 2
		per *= 2
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			for range per {
				l.one(ctx)
			}
		}
	}
}

// one makes one change.
func (l *load) one(ctx context.Context) {
	tenant := l.tenants[l.rnd.IntN(len(l.tenants))]
	if l.rnd.Float64() < l.o.BusyLoad {
		tenant = l.busy[l.rnd.IntN(len(l.busy))]
	}
	r := l.rnd.Float64()
	switch {
	case r < l.o.HubEditShare:
		if inc, ok := l.pick(tenant, true); ok && l.hubEdit(ctx, inc) {
			return
		}
		l.create(tenant)
	case r < l.o.HubEditShare+0.2:
		l.create(tenant)
	default:
		if inc, ok := l.pick(tenant, false); ok {
			l.remoteEdit(inc)
			return
		}
		l.create(tenant)
	}
}

// pick returns an incident of the tenant that is free to change again.
func (l *load) pick(tenant string, graphOnly bool) (remoteIncident, bool) {
	cands := l.byTenant[tenant]
	now := time.Now()
	for range 8 {
		if len(cands) == 0 {
			return remoteIncident{}, false
		}
		c := cands[l.rnd.IntN(len(cands))]
		if graphOnly && c.graphID == "" {
			continue
		}
		if now.Before(l.waitUntil[c.tenant+"/"+c.id()]) {
			continue
		}
		return c, true
	}
	return remoteIncident{}, false
}

// busyFor keeps an incident from changing again until socsync has surely polled it.
func (l *load) busyFor(r remoteIncident) {
	l.waitUntil[r.tenant+"/"+r.id()] = time.Now().Add(l.o.Idle + 2*time.Second)
}

var severities = []string{"low", "medium", "high"}

// otherSeverity picks a severity different from the current one, so that every change the load
// makes is a real change.
func (l *load) otherSeverity(current string) string {
	for {
		if s := severities[l.rnd.IntN(3)]; !strings.EqualFold(s, current) {
			return s
		}
	}
}

// remoteSeverity is an incident's current severity in the emulator.
func (l *load) remoteSeverity(r remoteIncident) string {
	v, err := l.em.IncidentViews(r.tenant, r.id())
	if err != nil {
		return ""
	}
	b, _ := json.Marshal(v)
	var views struct {
		Graph *struct {
			Severity string `json:"severity"`
		} `json:"graph"`
		Sentinel *struct {
			Properties struct {
				Severity string `json:"severity"`
			} `json:"properties"`
		} `json:"sentinel"`
	}
	json.Unmarshal(b, &views)
	switch {
	case views.Graph != nil:
		return views.Graph.Severity
	case views.Sentinel != nil:
		return views.Sentinel.Properties.Severity
	}
	return ""
}

func (l *load) remoteEdit(r remoteIncident) {
	sev := l.otherSeverity(l.remoteSeverity(r))
	at := l.em.Now()
	var err error
	if r.graphID != "" {
		err = l.em.PatchIncident(r.tenant, r.graphID, []byte(fmt.Sprintf(`{"severity":%q}`, sev)))
	} else {
		err = l.em.PatchIncident(r.tenant, r.sentinelID, []byte(fmt.Sprintf(`{"severity":%q}`, strings.ToUpper(sev[:1])+sev[1:])))
	}
	if err == nil {
		l.changes = append(l.changes, change{tenant: r.tenant, remoteID: r.id(), at: at})
		l.busyFor(r)
	}
}

func (l *load) create(tenant string) {
	l.seq++
	where := "defender" // never mirrored: a mirror joining later is the connector's change, not the load's
	if !l.defender[tenant] || (l.workspace[tenant] && l.rnd.IntN(3) == 0) {
		where = "sentinel"
	}
	if where == "sentinel" && !l.workspace[tenant] {
		return
	}
	at := l.em.Now()
	c, err := l.em.CreateIncident(tenant, emulator.NewIncident{Title: fmt.Sprintf("bench %d", l.seq), Where: where,
		Severity: severities[l.seq%3], Alerts: []emulator.NewAlert{{Title: "bench alert"}}})
	if err != nil {
		return
	}
	r := remoteIncident{tenant: tenant, graphID: c.GraphID, sentinelID: c.SentinelID}
	l.byTenant[tenant] = append(l.byTenant[tenant], r)
	l.changes = append(l.changes, change{tenant: tenant, remoteID: r.id(), at: at})
	l.busyFor(r)
}

// hubEdit changes an incident's severity in the hub, as an analyst would.
func (l *load) hubEdit(ctx context.Context, r remoteIncident) bool {
	id, current, ok := l.hubID(ctx, r)
	if !ok {
		return false
	}
	at := time.Now()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPatch, "http://"+l.hubAddr+"/api/v1/incidents/"+id,
		strings.NewReader(fmt.Sprintf(`{"severity":%q}`, l.otherSeverity(current))))
	req.Header.Set("Authorization", "Bearer "+l.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false
	}
	l.hubEdits = append(l.hubEdits, change{tenant: r.tenant, remoteID: r.graphID, at: at})
	l.busyFor(r)
	return true
}

// hubID finds the hub incident of a Defender incident, and its severity, through the API.
func (l *load) hubID(ctx context.Context, r remoteIncident) (id, severity string, ok bool) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+l.hubAddr+"/api/v1/incidents?limit=1&tenant="+r.tenant+"&remote_id="+r.graphID, nil)
	req.Header.Set("Authorization", "Bearer "+l.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", "", false
	}
	defer resp.Body.Close()
	var list struct {
		Items []struct {
			ID       string `json:"id"`
			Severity string `json:"severity"`
		} `json:"items"`
	}
	if err := decodeJSON(resp, &list); err != nil || len(list.Items) != 1 {
		return "", "", false
	}
	return list.Items[0].ID, list.Items[0].Severity, true
}
