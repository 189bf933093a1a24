package forward_test

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/socsync/socsync/internal/emulator"
	"github.com/socsync/socsync/internal/forward"
	"github.com/socsync/socsync/internal/hub"
	"github.com/socsync/socsync/internal/hub/hubtest"
	"github.com/socsync/socsync/internal/store"
)

// buildSocsync builds the socsync binary into the test's directory.
func buildSocsync(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "socsync")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/socsync/socsync/cmd/socsync").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// serveProc is `socsync serve` running as a child process.
type serveProc struct {
	cmd  *exec.Cmd
	done chan error
}

// serve starts `socsync serve --config cfg`, its log going to logPath, and waits until it serves.
func serve(t *testing.T, bin, cfg, logPath string) *serveProc {
	t.Helper()
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--config", cfg)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serveProc{cmd: cmd, done: make(chan error, 1)}
	ready := make(chan struct{})
	go func() {
		defer logf.Close()
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			fmt.Fprintln(logf, sc.Text())
			if strings.Contains(sc.Text(), "socsync serving") {
				once.Do(func() { close(ready) })
			}
		}
		p.done <- cmd.Wait()
	}()
	select {
	case <-ready:
	case err := <-p.done:
		log, _ := os.ReadFile(logPath)
		t.Fatalf("socsync serve stopped: %v\n%s", err, log)
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatal("socsync serve did not start")
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	return p
}

func (p *serveProc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		p.cmd.Process.Kill()
		t.Fatalf("socsync did not stop on %v", sig)
	}
}

// TestForward_SIGKILLMidBatchRepeatsAtMostOneBatchPerKillAndLosesNoVersion kills the hub (a
// child process) with SIGKILL while remote incidents keep changing and Logs Ingestion is slow,
// so that batches are in flight; then lets a last hub drain the outbox. Every version of every
// incident must be in the sink, and the rows sent twice must be at most one batch per kill,
// each the same row again.
//
// The kills take turns: (0) in the window between the service taking a batch and the hub
// acknowledging it — the emulator holds its 204 for seconds after storing the rows
// (latency_after_ms) and the kill follows the rows' arrival — so that batch must be sent again,
// with the same keys and content; (1) at a random point; (2) while another writer holds the
// database, so that a batch answered meanwhile cannot be acknowledged. SOCSYNC_TEST_KILLS sets
// the number of kills (default 3, one of each; try 50).
func TestForward_SIGKILLMidBatchRepeatsAtMostOneBatchPerKillAndLosesNoVersion(t *testing.T) {
	t.Parallel()
	kills := 3
	if v, err := strconv.Atoi(os.Getenv("SOCSYNC_TEST_KILLS")); err == nil && v > 0 {
		kills = v
	}
	seed := time.Now().UnixNano()
	t.Logf("%d kills, seed %d", kills, seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 7))
	bin := buildSocsync(t)
	env := hubtest.New(t, hubtest.Options{Tenants: 2})
	stream := env.Info.LogsIngestion.Stream
	// Slow uploads: a kill lands mid-batch often.
	slow := emulator.FaultRule{API: "ingestion", LatencyMs: []int{150, 500}}
	setFaults := func(r emulator.FaultRule) {
		t.Helper()
		if err := env.Emulator.SetFaults(emulator.FaultProfile{Rules: []emulator.FaultRule{r}}); err != nil {
			t.Fatal(err)
		}
	}
	setFaults(slow)

	// Remote activity all along: new incidents with 20 KB descriptions (about 45 rows per
	// batch) and changes to earlier ones.
	ctx, stopActivity := context.WithCancel(context.Background())
	var activity sync.WaitGroup
	var made []string // tenant/graph id
	var mu sync.Mutex
	activity.Add(1)
	go func() {
		defer activity.Done()
		rng := rand.New(rand.NewPCG(uint64(seed), 8))
		desc := strings.Repeat("slow exfiltration over DNS ", 750)
		for i := 0; ctx.Err() == nil; i++ {
			ti := env.Info.Tenants[i%len(env.Info.Tenants)]
			c, err := env.Emulator.CreateIncident(ti.TenantID, emulator.NewIncident{Title: fmt.Sprintf("incident %d", i), Severity: "low",
				Description: desc, Alerts: []emulator.NewAlert{{Title: "beacon"}}})
			if err == nil {
				mu.Lock()
				made = append(made, ti.TenantID+"/"+c.GraphID)
				mu.Unlock()
			}
			if i%3 == 0 && i > 0 {
				mu.Lock()
				old := made[rng.IntN(len(made))]
				mu.Unlock()
				tenant, id, _ := strings.Cut(old, "/")
				sev := []string{"low", "medium", "high"}[i%3]
				env.Emulator.PatchIncident(tenant, id, []byte(`{"severity":"`+sev+`","comment":"note `+strconv.Itoa(i)+`"}`))
			}
			select {
			case <-ctx.Done():
			case <-time.After(40 * time.Millisecond):
			}
		}
	}()

	cfg := env.ConfigPath()
	dbPath := strings.TrimPrefix(hub.DatabaseDSN(env.Config), "sqlite:")
	// unacked holds the batches the service took from a hub killed before it could hear the
	// 204: their record keys.
	var unacked [][]string
	for k := range kills {
		switch k % 3 {
		case 0:
			// Every answer of Logs Ingestion waits 4 s after the rows are stored; the kill
			// follows the first rows this hub sends, within that window.
			setFaults(emulator.FaultRule{API: "ingestion", LatencyMs: []int{150, 500}, LatencyAfterMs: []int{4000, 4000}})
			before := env.Emulator.IngestedTotal(stream)
			p := serve(t, bin, cfg, filepath.Join(env.Dir, fmt.Sprintf("serve-%d.log", k)))
			deadline := time.Now().Add(60 * time.Second)
			for env.Emulator.IngestedTotal(stream) == before {
				if time.Now().After(deadline) {
					t.Fatalf("kill %d: the hub sent nothing in 60 s", k)
				}
				time.Sleep(5 * time.Millisecond)
			}
			p.signal(t, syscall.SIGKILL)
			var keys []string
			for _, r := range ingested(t, env)[before:] {
				keys = append(keys, r.RecordKey)
			}
			unacked = append(unacked, keys)
			setFaults(slow)
		case 1:
			p := serve(t, bin, cfg, filepath.Join(env.Dir, fmt.Sprintf("serve-%d.log", k)))
			time.Sleep(time.Duration(300+rng.IntN(1700)) * time.Millisecond)
			p.signal(t, syscall.SIGKILL)
		case 2:
			p := serve(t, bin, cfg, filepath.Join(env.Dir, fmt.Sprintf("serve-%d.log", k)))
			time.Sleep(time.Duration(300+rng.IntN(1700)) * time.Millisecond)
			// The database is busy (another writer holds it) for longer than an upload takes:
			// a batch the service takes meanwhile cannot be acknowledged before the kill.
			release := holdWriteLock(t, dbPath)
			time.Sleep(time.Duration(600+rng.IntN(600)) * time.Millisecond)
			p.signal(t, syscall.SIGKILL)
			release()
		}
	}
	stopActivity()
	activity.Wait()

	// A last hub collects what is left and drains the outbox (the killed hubs' claims expire
	// first).
	st, err := store.Open(context.Background(), hub.DatabaseDSN(env.Config), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srcs, err := st.Sources(context.Background(), store.AllTenants())
	if err != nil {
		t.Fatal(err)
	}
	polls := map[string]int64{}
	for _, s := range srcs {
		polls[s.ID] = s.Polls
	}
	last := serve(t, bin, cfg, filepath.Join(env.Dir, "serve-last.log"))
	mu.Lock()
	remote := len(made)
	mu.Unlock()
	missing := func() (bool, string) {
		// Every source polled twice by the last hub, after the remote activity stopped: the
		// hub has every change, and so every version it will make of them.
		srcs, err := st.Sources(context.Background(), store.AllTenants())
		if err != nil {
			return false, err.Error()
		}
		for _, s := range srcs {
			if s.Polls < polls[s.ID]+2 {
				return false, fmt.Sprintf("source %s polled %d times by the last hub, want 2", s.ID, s.Polls-polls[s.ID])
			}
		}
		if n := pending(t, st); n != 0 {
			return false, fmt.Sprintf("%d rows in the outbox", n)
		}
		incs, err := st.ListIncidents(context.Background(), store.AllTenants(), store.ListFilter{}, store.ListPage{}, 1_000_000)
		if err != nil {
			return false, err.Error()
		}
		if len(incs) < remote {
			return false, fmt.Sprintf("%d of %d incidents collected", len(incs), remote)
		}
		counts := byRecord(ingested(t, env))
		for _, si := range incs {
			for v := int64(1); v <= si.Version; v++ {
				if counts[fmt.Sprintf("%s:%d", si.ID, v)] == 0 {
					return false, fmt.Sprintf("%s v%d not in the sink", si.ID, v)
				}
			}
		}
		return true, ""
	}
	eventuallyWhy(t, "every version of every incident is in the sink", missing)
	last.signal(t, syscall.SIGTERM)
	if ok, why := missing(); !ok {
		t.Fatalf("after the last hub stopped: %s", why)
	}

	// Rows sent twice: the same row again, in at most one run per kill, each at most a batch.
	raw := env.Emulator.Ingested(env.Info.LogsIngestion.Stream)
	first := map[string]string{}
	repeated, runs, inRun, minRow := 0, 0, false, 1<<30
	for _, r := range raw {
		var row forward.Row
		if err := json.Unmarshal(r, &row); err != nil {
			t.Fatal(err)
		}
		minRow = min(minRow, len(r))
		prev, seen := first[row.RecordKey]
		if !seen {
			first[row.RecordKey] = string(r)
			inRun = false
			continue
		}
		repeated++
		if prev != string(r) {
			t.Errorf("%s was sent twice with different content:\n%s\n%s", row.RecordKey, prev, r)
		}
		if !inRun {
			runs++
			inRun = true
		}
	}
	perBatch := forward.DefaultMaxBatchBytes / minRow
	t.Logf("%d rows, %d records, %d remote incidents; %d rows repeated in %d runs after %d kills (a batch holds at most %d rows)",
		len(raw), len(first), remote, repeated, runs, kills, perBatch)
	if runs > kills || repeated > kills*perBatch {
		t.Errorf("%d rows repeated in %d runs: more than one batch per kill (%d kills, %d rows per batch)", repeated, runs, kills, perBatch)
	}
	// Each batch the service took from a hub killed before the 204 was sent again, whole: every
	// row of it is in the sink twice or more (with the same content, checked above).
	all := byRecord(ingested(t, env))
	for i, keys := range unacked {
		for _, k := range keys {
			if all[k] < 2 {
				t.Errorf("kill %d: %s was taken by the service before the kill (its 204 held back) and is in the sink %d time(s): the unacknowledged batch was not sent again", i*3, k, all[k])
			}
		}
	}
	if len(unacked) > 0 && repeated == 0 {
		t.Errorf("no batch was repeated after %d kills between an upload and its acknowledgement", len(unacked))
	}
}

// holdWriteLock takes SQLite's write lock on the database at path (as another writer would)
// until release is called.
func holdWriteLock(t *testing.T, path string) (release func()) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	tx, err := db.Begin()
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	return func() {
		tx.Rollback()
		db.Close()
	}
}

// TestForward_ExpiredTokenIsReplacedAfterTheServiceRefusesIt: when Logs Ingestion refuses the
// forwarder's token (401: expired by the service's clock while the SDK's cache, keeping the
// local clock, still holds it), the next upload gets a new token; the outbox drains. (Found by
// the chaos suite's R6: nothing was forwarded until the local clock reached the token's
// expiry, up to 90 minutes.)
func TestForward_ExpiredTokenIsReplacedAfterTheServiceRefusesIt(t *testing.T) {
	t.Parallel()
	env := hubtest.New(t, hubtest.Options{Tenants: 1})
	tenant := env.Info.Tenants[0].TenantID
	r := env.Start(t, hub.Options{})
	env.Emulator.CreateIncident(tenant, emulator.NewIncident{Title: "before"})
	hubtest.Eventually(t, "the first row is forwarded", func() bool { return env.Emulator.IngestedTotal(env.Info.LogsIngestion.Stream) > 0 })
	env.Emulator.Advance(2 * time.Hour) // every token the hub holds has expired for the services
	env.Emulator.CreateIncident(tenant, emulator.NewIncident{Title: "after"})
	hubtest.Eventually(t, "the later incident is forwarded", func() bool {
		for _, raw := range env.Emulator.Ingested(env.Info.LogsIngestion.Stream) {
			var row forward.Row
			if json.Unmarshal(raw, &row) == nil && row.IncidentTitle == "after" {
				return true
			}
		}
		return false
	})
	if st := statuses(env); st[401] == 0 {
		t.Errorf("Logs Ingestion answered %v: it never refused the expired token, so nothing was replaced", st)
	}
	eventuallyWhy(t, "the outbox is drained", func() (bool, string) {
		n := pending(t, r.Hub.Store())
		return n == 0, fmt.Sprintf("%d rows pending", n)
	})
	if failed, err := r.Hub.Store().OutboxFailures(context.Background(), 10); err != nil || len(failed) != 0 {
		t.Errorf("rows set aside: %+v (%v); a refused token must not cost rows", failed, err)
	}
}
