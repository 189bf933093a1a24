package chaos

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/socsync/socsync/internal/chaos/check"
	"github.com/socsync/socsync/internal/emulator"
	"github.com/socsync/socsync/internal/hub"
	"github.com/socsync/socsync/internal/hub/hubtest"
	"github.com/socsync/socsync/internal/store"
)

// activity makes remote changes in every tenant of a run: n new incidents per tenant, every
// other one edited with a comment.
func activity(f *faultRun, prefix string, n int) int {
	made := 0
	for i := range n {
		for _, ti := range f.env.Info.Tenants {
			c := f.create(ti.TenantID, emulator.NewIncident{Title: fmt.Sprintf("%s-%d", prefix, i), Description: strings.Repeat("x", 2000), Where: where(ti)})
			made++
			if i%2 == 0 {
				f.env.Emulator.PatchIncident(ti.TenantID, c.GraphID, []byte(`{"severity":"high","comment":"note `+prefix+`"}`))
			}
		}
	}
	return made
}

// TestR9_SQLiteBusy_PausesRetriesResumes (R9, busy): another process holds SQLite's write lock
// for 12 s — longer than socsync's 10 s busy timeout — while incidents arrive and an analyst
// edits. socsync's writes wait, fail, are retried; once the lock is gone everything is stored
// once, every checker passes and the database is intact.
func TestR9_SQLiteBusy_PausesRetriesResumes(t *testing.T) {
	t.Parallel()
	f := startRun(t, hubtest.Options{Tenants: 3}, nil, hub.Options{})
	n := activity(f, "r9-before", 2)
	f.collected(n)
	path := strings.TrimPrefix(hub.DatabaseDSN(f.env.Config), "sqlite:")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(20000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	held := time.Now()
	n += activity(f, "r9-busy", 3)
	list, _ := f.store().ListIncidents(context.Background(), store.AllTenants(), store.ListFilter{}, store.ListPage{}, 1)
	edit := make(chan int, 1)
	go func() {
		edit <- f.hub.API(t, f.token, "PATCH", "/api/v1/incidents/"+list[0].ID, `{"owner":"r9@example.com"}`, nil)
	}()
	time.Sleep(12*time.Second - time.Since(held))
	if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	code := <-edit
	f.collected(n)
	f.settle()
	f.checkAll(check.Options{})
	if err := integrityCheck(hub.DatabaseDSN(f.env.Config)); err != nil {
		t.Error(err)
	}
	busy := strings.Count(f.logs.String(), "SQLITE_BUSY") + strings.Count(f.logs.String(), "database is locked")
	t.Logf("R9 figures: busy: write lock held 12 s; %d log lines of busy errors; the analyst's edit during it answered %d; %d incidents stored once, database intact; %d requests",
		busy, code, n, len(f.requests()))
}

// TestR9_DiskFull_PausesRetriesResumes (R9, disk full): the SQLite database lives on a small
// tmpfs that is filled up while incidents with large descriptions arrive. Writes fail with
// SQLITE_FULL; once space is freed everything is stored once, every checker passes and the
// database is intact.
//
// It always runs; it never skips. Mounting the tmpfs needs CAP_SYS_ADMIN: as root (CI) the test
// mounts it itself; otherwise it runs itself again (the same test binary, this test only) in a
// user and mount namespace of its own (unshare --user --map-root-user --mount), where Linux lets
// an unprivileged user mount a tmpfs, and passes or fails with it. Where neither is possible it
// fails and says so. (A file size limit — RLIMIT_FSIZE — is no stand-in: a write past it fails
// with EFBIG, which SQLite reports as SQLITE_IOERR_WRITE, a disk I/O error, not SQLITE_FULL;
// and it limits every file the process writes, other tests' included. A loop-mounted ext4
// image needs the same privilege as the tmpfs.)
func TestR9_DiskFull_PausesRetriesResumes(t *testing.T) {
	t.Parallel()
	mnt := filepath.Join(t.TempDir(), "fs")
	os.MkdirAll(mnt, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", mnt).CombinedOutput(); err != nil {
		if os.Getenv(diskFullNamespace) != "" {
			t.Fatalf("cannot mount a size-limited tmpfs even in a user and mount namespace of the test's own (%v: %s)", err, out)
		}
		t.Logf("cannot mount a tmpfs here (%v: %s); running the test again in a user and mount namespace of its own", err, bytes.TrimSpace(out))
		rerunInMountNamespace(t)
		return
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	f := startRun(t, hubtest.Options{Tenants: 3, Database: "sqlite:" + filepath.Join(mnt, "hub.db")}, nil, hub.Options{})
	n := activity(f, "r9-before", 2)
	f.collected(n)
	// Fill the file system, leaving almost nothing.
	filler := filepath.Join(mnt, "filler")
	fill, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	for {
		if _, err := fill.Write(buf); err != nil {
			break
		}
	}
	fill.Close()
	n += activity(f, "r9-full", 6)
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(f.logs.String(), "full") && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	full := strings.Count(f.logs.String(), "full")
	if full == 0 {
		t.Error("no write failed for the full disk: the test did not test it")
	}
	os.Remove(filler)
	f.collected(n)
	f.settle()
	f.checkAll(check.Options{})
	if err := integrityCheck(hub.DatabaseDSN(f.env.Config)); err != nil {
		t.Error(err)
	}
	t.Logf("R9 figures: disk full: %d log lines about the full disk; %d incidents stored once after space was freed, database intact; %d requests",
		full, n, len(f.requests()))
}

// diskFullNamespace is set in the environment of a test binary that R9's disk-full test ran again
// in a user and mount namespace of its own.
const diskFullNamespace = "SOCSYNC_CHAOS_MOUNT_NAMESPACE"

// rerunInMountNamespace runs the calling test again, alone, in a new user and mount namespace
// where the test process is root (unprivileged user namespaces), and passes or fails with it.
func rerunInMountNamespace(t *testing.T) {
	t.Helper()
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Fatalf("R9's disk-full run needs a size-limited file system: run it as root, or where util-linux's unshare can make a user namespace (%v)", err)
	}
	args := []string{"--user", "--map-root-user", "--mount", os.Args[0], "-test.run", "^" + t.Name() + "$", "-test.count", "1", "-test.v"}
	if d, ok := t.Deadline(); ok {
		args = append(args, "-test.timeout", time.Until(d).Round(time.Second).String())
	}
	cmd := exec.Command(unshare, args...)
	cmd.Env = append(os.Environ(), diskFullNamespace+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("the run in its own namespace (%s):\n%s", strings.Join(cmd.Args, " "), out)
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("the disk-full run in its own user and mount namespace failed (%v); its output is above. Where user namespaces are disabled (sysctl kernel.unprivileged_userns_clone, user.max_user_namespaces), run it as root", err)
	}
}

// TestR9_PostgresRestart_PausesRetriesResumes (R9, restart): a PostgreSQL server of the test's
// own (initdb in a temporary directory, on a free port: the shared server other tests use is
// never touched) is restarted twice — fast, then immediate (a crash) — while incidents arrive
// and analysts edit. socsync's writes fail while it is down and are retried; in the end
// everything is stored once and every checker passes. It fails where PostgreSQL's binaries are
// missing (CI has them: .ci/run needs PostgreSQL anyway).
func TestR9_PostgresRestart_PausesRetriesResumes(t *testing.T) {
	t.Parallel()
	pg := newPostgres(t)
	f := startRun(t, hubtest.Options{Tenants: 3, Database: pg.dsn}, nil, hub.Options{})
	n := activity(f, "r9-pg-before", 2)
	f.collected(n)
	restarts := 0
	for _, mode := range []string{"fast", "immediate"} {
		n += activity(f, "r9-pg-"+mode, 2)
		pg.ctl(t, "restart", "-m", mode)
		restarts++
		n += activity(f, "r9-pg-after-"+mode, 2)
	}
	f.collected(n)
	f.settle()
	f.checkAll(check.Options{})
	lost := strings.Count(f.logs.String(), "connection") + strings.Count(f.logs.String(), "terminating")
	t.Logf("R9 figures: PostgreSQL restart: %d restarts (fast, immediate) under load; %d log lines about lost connections; %d incidents stored once; %d requests",
		restarts, lost, n, len(f.requests()))
}

// postgres is a PostgreSQL server of one test's own.
type postgres struct {
	bin, data, dsn, opts, log string
}

func newPostgres(t *testing.T) *postgres {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		t.Fatal("PostgreSQL's initdb is not installed (/usr/lib/postgresql/*/bin): R9 needs a server of its own to restart")
	}
	bin := filepath.Dir(bins[len(bins)-1])
	dir, err := os.MkdirTemp("", "socsync-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o777)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	pg := &postgres{bin: bin, data: filepath.Join(dir, "data"),
		dsn: fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port), log: filepath.Join(dir, "log")}
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(args[0], args[1:]...)
		if os.Geteuid() == 0 {
			cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--"}, args...)...)
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("cannot run a PostgreSQL server of the test's own (%s: %v): %s", args[0], err, out)
		}
	}
	run(filepath.Join(bin, "initdb"), "-D", pg.data, "-U", "postgres", "--auth=trust", "-E", "UTF8")
	pg.opts = fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", port, dir)
	pg.ctl(t, "start")
	t.Cleanup(func() { pg.ctl(t, "stop", "-m", "immediate") })
	return pg
}

// ctl runs pg_ctl. The server's output goes to its log file (-l on every command): a server
// started by "restart" without it would hold pg_ctl's output pipe open, and the wait for that
// output would never end.
func (pg *postgres) ctl(t *testing.T, args ...string) {
	args = append([]string{filepath.Join(pg.bin, "pg_ctl"), "-D", pg.data, "-o", pg.opts, "-w", "-l", pg.log}, args...)
	cmd := exec.Command(args[0], args[1:]...)
	if os.Geteuid() == 0 {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--"}, args...)...)
	}
	cmd.WaitDelay = 10 * time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("pg_ctl %v: %v: %s", args[len(args)-3:], err, out)
	}
}

// TestR10_ReplicaPausedPastItsLease_StaleWritesFencedOff (R10): two socsync serve processes
// share a PostgreSQL database with a 5 s lease (the shortest the configuration allows); Graph list pages take 1–2 s, so a replica is
// mid-poll most of the time. One replica is frozen (SIGSTOP) while it holds a poll open, for
// three lease periods; the other takes its sources over; then it is thawed (SIGCONT) and
// finishes the poll it had started. Its writes are refused — its log says "lease lost" — and
// no incident is stored twice; every sink row repeated is the same row.
func TestR10_ReplicaPausedPastItsLease_StaleWritesFencedOff(t *testing.T) {
	t.Parallel()
	env := hubtest.New(t, hubtest.Options{Tenants: 3, Database: hubtest.PostgresDSN(t), Idle: "300ms", Hot: "150ms", Lease: "5s",
		Emulator: emulator.Options{MaxRequestHistory: 1_000_000}})
	if err := env.Emulator.SetFaults(emulator.FaultProfile{Rules: []emulator.FaultRule{{API: "graph", Route: "/v1.0/security/incidents", LatencyMs: []int{1000, 2000}}}}); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		for _, ti := range env.Info.Tenants {
			env.Emulator.CreateIncident(ti.TenantID, emulator.NewIncident{Title: fmt.Sprintf("r10-%d", i), Where: where(ti)})
		}
	}
	a := startServe(t, env.ConfigPath(), "SOCSYNC_LOG_LEVEL=debug")
	b := startServe(t, env.ConfigPath(), "SOCSYNC_LOG_LEVEL=debug")
	pauses := pick(1, 5)
	fenced := 0
	for round := range pauses {
		hubtest.Eventually(t, "replica A holds a poll open", func() bool {
			for _, s := range a.spans() {
				if s.end.After(time.Now().Add(30 * time.Minute)) {
					return true
				}
			}
			return false
		})
		a.cmd.Process.Signal(syscall.SIGSTOP)
		for _, ti := range env.Info.Tenants { // changes while A is frozen
			env.Emulator.CreateIncident(ti.TenantID, emulator.NewIncident{Title: fmt.Sprintf("r10-paused-%d", round), Where: where(ti)})
		}
		time.Sleep(3 * 5 * time.Second)
		before := strings.Count(a.Log(), "lease lost")
		a.cmd.Process.Signal(syscall.SIGCONT)
		hubtest.Eventually(t, "replica A's stale poll ends", func() bool {
			return strings.Count(a.Log(), "lease lost") > before || strings.Count(a.Log(), "poll end") > strings.Count(a.Log(), "poll start")-2
		})
		fenced += strings.Count(a.Log(), "lease lost") - before
	}
	env.Emulator.SetFaults(emulator.FaultProfile{})
	st := openStore(t, env)
	hubtest.Eventually(t, "the replicas settle", func() bool { return check.Settled(context.Background(), st) })
	time.Sleep(2 * time.Second)
	hubtest.Eventually(t, "the replicas settle again", func() bool { return check.Settled(context.Background(), st) })
	a.stop(t)
	b.stop(t)
	run := check.Run{Emulator: env.Emulator, Store: st}
	for _, c := range []func() *check.Violation{
		func() *check.Violation { return check.Collected(context.Background(), run) },
		func() *check.Violation { return check.SinkOnce(context.Background(), run, -1) },
		func() *check.Violation { return check.Converged(context.Background(), run, false) },
	} {
		if v := c(); v != nil {
			logOutbox(t, env, v)
			t.Fatal(v)
		}
	}
	if fenced == 0 {
		t.Error(`replica A never logged "lease lost" after its pauses: its stale writes were not fenced`)
	}
	t.Logf("R10 figures: %d pauses of a replica mid-poll for three lease periods; %d stale polls fenced off (\"lease lost\"); no incident stored twice; %d sink rows checked; %d requests",
		pauses, fenced, env.Emulator.IngestedTotal("Custom-SocsyncIncidents"), len(requests(env.Emulator)))
}

// logOutbox logs the outbox rows of the incident a violation names: which versions were
// written, claimed by whom, and sent or set aside when. (R10 failed once in CI with a second
// version that never reached the sink, and has not failed again in runs made to catch it.)
func logOutbox(t *testing.T, env *hubtest.Env, v *check.Violation) {
	_, after, ok := strings.Cut(v.Message, "incident ")
	if !ok {
		return
	}
	id, _, _ := strings.Cut(after, " ")
	db, err := sql.Open("pgx", hub.DatabaseDSN(env.Config))
	if err != nil {
		t.Logf("outbox of %s: %v", id, err)
		return
	}
	defer db.Close()
	rows, err := db.Query(`SELECT version, created_at, sent_at, claimed_by, claim_expires_at, failed_at, fail_reason
		FROM outbox WHERE incident_id = $1 ORDER BY version`, id)
	if err != nil {
		t.Logf("outbox of %s: %v", id, err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var version, created, sent, expires, failed int64
		var by, reason string
		if rows.Scan(&version, &created, &sent, &by, &expires, &failed, &reason) == nil {
			at := func(ms int64) string { return time.UnixMilli(ms).Format(time.StampMilli) }
			t.Logf("outbox %s v%d: created %s, sent %s, claimed by %q until %s, failed %s %q", id, version,
				at(created), at(sent), by, at(expires), at(failed), reason)
		}
	}
}
