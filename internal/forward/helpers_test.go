package forward_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/socsync/socsync/internal/entra"
	"github.com/socsync/socsync/internal/forward"
	"github.com/socsync/socsync/internal/hub"
	"github.com/socsync/socsync/internal/hub/hubtest"
	"github.com/socsync/socsync/internal/incident"
	"github.com/socsync/socsync/internal/store"
	"github.com/socsync/socsync/internal/throttle"
)

// wireRequest is one Logs Ingestion request as it left socsync: its body's size as sent
// (gzip) and as JSON. The emulator does not record request sizes, so the tests measure them on
// socsync's side of the wire.
type wireRequest struct {
	gzip, json int
	status     int
	keys       []string // the rows' RecordKeys, when the wire has a hook that reads them
}

// wire sits between socsync's throttle transport and the network, records every Logs Ingestion
// request, and can answer some itself (refuse rows the way the service would) — fault injection
// the emulator's profile has no knob for. Everything else goes to the emulator unchanged.
type wire struct {
	next   *http.Client
	refuse func(rows []map[string]any) bool // answer 400 to a batch when it returns true
	// tooLarge answers 413 (ContentLengthLimitExceeded, as the service does) to a batch when it
	// returns true.
	tooLarge func(rows []map[string]any) bool

	mu       sync.Mutex
	requests []wireRequest
}

func (w *wire) Do(req *http.Request) (*http.Response, error) {
	if !strings.Contains(req.URL.Path, "/dataCollectionRules/") || req.Body == nil {
		return w.next.Do(req)
	}
	body, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	plain := body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		if plain, err = io.ReadAll(zr); err != nil {
			return nil, err
		}
	}
	out := req.Clone(req.Context())
	out.Body = io.NopCloser(bytes.NewReader(body))
	out.ContentLength = int64(len(body))
	rec := wireRequest{gzip: len(body), json: len(plain)}
	var resp *http.Response
	if w.refuse != nil || w.tooLarge != nil {
		var rows []map[string]any
		if json.Unmarshal(plain, &rows) == nil {
			for _, r := range rows {
				k, _ := r["RecordKey"].(string)
				rec.keys = append(rec.keys, k)
			}
			switch {
			case w.refuse != nil && w.refuse(rows):
				resp = &http.Response{StatusCode: http.StatusBadRequest, Status: "400 Bad Request", Request: req, Header: http.Header{
					"Content-Type": {"application/json"}, "X-Ms-Error-Code": {"InvalidPayload"}},
					Body: io.NopCloser(strings.NewReader(`{"error":{"code":"InvalidPayload","message":"Data of the request is invalid for the stream."}}`))}
			case w.tooLarge != nil && w.tooLarge(rows):
				resp = &http.Response{StatusCode: http.StatusRequestEntityTooLarge, Status: "413 Payload Too Large", Request: req, Header: http.Header{
					"Content-Type": {"application/json"}, "X-Ms-Error-Code": {"ContentLengthLimitExceeded"}},
					Body: io.NopCloser(strings.NewReader(fmt.Sprintf(`{"error":{"code":"ContentLengthLimitExceeded","message":"Maximum allowed content length: 1048576 bytes (1 MB). Provided content length: %d bytes."}}`, len(body))))}
			}
		}
	}
	if resp == nil {
		resp, err = w.next.Do(out)
	}
	if resp != nil {
		rec.status = resp.StatusCode
	}
	w.mu.Lock()
	w.requests = append(w.requests, rec)
	w.mu.Unlock()
	return resp, err
}

func (w *wire) sent() []wireRequest {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]wireRequest(nil), w.requests...)
}

// rig is an emulator, a migrated hub database with the emulator's tenants, and what a
// forwarder needs, without a running hub: the tests make the outbox rows themselves.
type rig struct {
	env    *hubtest.Env
	st     *store.Store
	wire   *wire
	tr     *throttle.Transport
	cred   azcore.TokenCredential
	target forward.Target
	reg    *prometheus.Registry
}

func newRig(t *testing.T, o hubtest.Options) *rig {
	t.Helper()
	env := hubtest.New(t, o)
	ctx := context.Background()
	st, err := store.Open(ctx, hub.DatabaseDSN(env.Config), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	tenants, sources := hub.StoreTenants(env.Config)
	if err := st.SyncTenants(ctx, tenants, sources); err != nil {
		t.Fatal(err)
	}
	client, err := entra.HTTPClient(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	w := &wire{next: client}
	tr := throttle.New(w, throttle.Options{})
	creds, err := entra.New(env.Config, os.Getenv, tr)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := creds.Forward()
	if err != nil {
		t.Fatal(err)
	}
	c := env.Config
	return &rig{env: env, st: st, wire: w, tr: tr, cred: cred, reg: prometheus.NewRegistry(),
		target: forward.Target{Endpoint: c.Cloud.Ingestion, DCRImmutableID: c.Forward.DCRImmutableID, Stream: c.Forward.Stream}}
}

// run starts a forwarder with o (Owner defaults to "r1") until the test ends or stop is called.
func (r *rig) run(t *testing.T, o forward.Options) (stop func()) {
	t.Helper()
	if o.Owner == "" {
		o.Owner = "r1"
	}
	if o.Registerer == nil {
		o.Registerer = r.reg
	}
	f, err := forward.New(r.target, r.cred, r.tr, r.st, o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

// makeChanges gives n new incidents of the given tenants, then changes each versions-1 more
// times (one outbox row per version); edit changes an incident for its version v (2…).
func makeChanges(t *testing.T, st *store.Store, tenants []string, n, versions int, edit func(inc *incident.Incident, i, v int)) []string {
	t.Helper()
	ctx := context.Background()
	ids := make([]string, n)
	const chunk = 500
	for lo := 0; lo < n; lo += chunk {
		err := st.InTx(ctx, func(tx *store.Tx) error {
			for i := lo; i < min(n, lo+chunk); i++ {
				inc := &incident.Incident{TenantID: tenants[i%len(tenants)], Title: fmt.Sprintf("incident %d", i),
					Fields:  incident.Fields{Status: incident.StatusNew, Severity: incident.SeverityMedium},
					Sources: []incident.Source{incident.SourceDefender}, AlertCount: 1}
				if edit != nil {
					edit(inc, i, 1)
				}
				if _, err := tx.CreateIncident(ctx, inc, fmt.Sprintf("test:%d", i), store.Change{Summary: "created", Actor: "test"}); err != nil {
					return err
				}
				ids[i] = inc.ID
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for v := 2; v <= versions; v++ {
		for lo := 0; lo < n; lo += chunk {
			err := st.InTx(ctx, func(tx *store.Tx) error {
				for i := lo; i < min(n, lo+chunk); i++ {
					si, err := tx.Incident(ctx, tenants[i%len(tenants)], ids[i])
					if err != nil {
						return err
					}
					inc := si.Incident
					inc.Severity = []incident.Severity{incident.SeverityLow, incident.SeverityMedium, incident.SeverityHigh}[v%3]
					inc.Owner = fmt.Sprintf("analyst%d@contoso.com", v)
					if edit != nil {
						edit(&inc, i, v)
					}
					if err := tx.UpdateIncident(ctx, &inc, store.Change{Summary: fmt.Sprintf("edit %d", v), Actor: "test"}); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	return ids
}

// fillOutbox writes outbox rows as the store writes them for n incidents of tenants with
// versions versions each (edit shapes incident i at version v), straight into the database in
// one transaction: the forwarder reads only the outbox, and the store's own write path (five
// statements per change) is too slow under the race detector for tens of thousands of rows.
// The hub-level tests go through the real path.
func fillOutbox(t *testing.T, r *rig, n, versions int, edit func(inc *incident.Incident, i, v int)) []string {
	t.Helper()
	path := strings.TrimPrefix(hub.DatabaseDSN(r.env.Config), "sqlite:")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tenants := tenantIDs(r.env)
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO outbox (incident_id, version, tenant_id, created_at, record) VALUES ($1, $2, $3, $4, $5)`)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-time.Minute)
	ids := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("0195f000-0000-7000-8000-%012d", i)
	}
	for v := 1; v <= versions; v++ {
		for i := range n {
			at := base.Add(time.Duration(v) * time.Second)
			inc := incident.Incident{ID: ids[i], TenantID: tenants[i%len(tenants)], Title: fmt.Sprintf("incident %d", i),
				Fields: incident.Fields{Status: incident.StatusNew, Severity: []incident.Severity{incident.SeverityLow, incident.SeverityMedium, incident.SeverityHigh}[v%3],
					Owner: fmt.Sprintf("analyst%d@contoso.com", v), Tags: []string{}},
				Sources: []incident.Source{incident.SourceDefender}, AlertCount: 1, CreatedAt: base, UpdatedAt: at, Version: int64(v)}
			if edit != nil {
				edit(&inc, i, v)
			}
			rec := store.OutboxRecord{Incident: inc, Links: []store.OutboxLink{{Kind: store.LinkGraph, SourceID: inc.TenantID + "/defender",
				ExternalID: fmt.Sprint(i), URL: fmt.Sprintf("https://security.microsoft.com/incidents/%d", i)}},
				Change: store.Change{Summary: fmt.Sprintf("edit %d", v), At: at, Actor: "test"}, ProductNames: []string{"Microsoft Defender for Endpoint"}}
			b, _ := json.Marshal(rec)
			if _, err := stmt.ExecContext(ctx, ids[i], v, inc.TenantID, at.UnixMilli(), string(b)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return ids
}

func tenantIDs(env *hubtest.Env) []string {
	var out []string
	for _, ti := range env.Info.Tenants {
		out = append(out, strings.ToLower(ti.TenantID))
	}
	return out
}

// ingested decodes the rows the emulator received, in arrival order.
func ingested(t *testing.T, env *hubtest.Env) []forward.Row {
	t.Helper()
	raw := env.Emulator.Ingested(env.Info.LogsIngestion.Stream)
	out := make([]forward.Row, 0, len(raw))
	for _, r := range raw {
		var row forward.Row
		if err := json.Unmarshal(r, &row); err != nil {
			t.Fatalf("ingested row %s: %v", r, err)
		}
		out = append(out, row)
	}
	return out
}

// byRecord counts the ingested rows per (IncidentKey, Version).
func byRecord(rows []forward.Row) map[string]int {
	out := map[string]int{}
	for _, r := range rows {
		out[r.RecordKey]++
	}
	return out
}

// latest is arg_max(Version, *) by IncidentKey.
func latest(rows []forward.Row) map[string]forward.Row {
	out := map[string]forward.Row{}
	for _, r := range rows {
		if cur, ok := out[r.IncidentKey]; !ok || r.Version > cur.Version {
			out[r.IncidentKey] = r
		}
	}
	return out
}

func pending(t *testing.T, st *store.Store) int {
	t.Helper()
	n, err := st.OutboxPending(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// counter sums a counter family's series whose labels include want.
func counter(t *testing.T, reg prometheus.Gatherer, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if matches(m, want) {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// gauge reads a gauge without labels.
func gauge(t *testing.T, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}

func matches(m *dto.Metric, want map[string]string) bool {
	for k, v := range want {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == k && l.GetValue() == v {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// statuses counts the emulator's answers to Logs Ingestion requests by status.
func statuses(env *hubtest.Env) map[int]int {
	out := map[int]int{}
	for _, r := range env.Emulator.Requests() {
		if r.API == "ingestion" {
			out[r.Status] += r.Count
		}
	}
	return out
}

// eventually polls cond (every 200 ms: the outbox counts are not free under the race
// detector) until it holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	eventuallyWhy(t, what, func() (bool, string) { return cond(), "" })
}

// eventuallyWhy polls cond until it holds; on timeout it fails with cond's last reason.
func eventuallyWhy(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s: %s", what, why)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
