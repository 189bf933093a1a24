package main

import (
	"bufio"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBinary_DemoStopsOnSIGINTWithExit0AndRemovesItsTemporaryDirectory builds socsync, runs
// `socsync demo` as a newcomer would (no --data), waits for the printed UI address, presses
// Ctrl-C (SIGINT), and checks that it exits 0 within a bound and leaves no temporary directory.
func TestBinary_DemoStopsOnSIGINTWithExit0AndRemovesItsTemporaryDirectory(t *testing.T) {
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	tmp := filepath.Join(dir, "tmp") // the demo's temporary directory goes here
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "demo", "--listen", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	lines := make(chan string)
	go func() {
		defer close(lines)
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			lines <- s.Text()
		}
	}()
	uiRE := regexp.MustCompile(`Web UI:\s+(http://[0-9.:]+)/`)
	filesRE := regexp.MustCompile(`are in (.+)\.$`)
	var ui, files string
	timeout := time.After(60 * time.Second)
	for ui == "" || files == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the demo ended before printing its address; stderr:\n%s", stderr.String())
			}
			if m := uiRE.FindStringSubmatch(l); m != nil {
				ui = m[1]
			}
			if m := filesRE.FindStringSubmatch(l); m != nil {
				files = m[1]
			}
		case <-timeout:
			t.Fatalf("the demo did not print its address within 60s; stderr:\n%s", stderr.String())
		}
	}
	if !strings.HasPrefix(files, tmp+string(filepath.Separator)) {
		t.Fatalf("the demo's files are in %s, want a temporary directory under $TMPDIR %s", files, tmp)
	}
	if _, err := os.Stat(filepath.Join(files, "socsync.yaml")); err != nil {
		t.Fatalf("the demo's temporary directory: %v", err)
	}
	resp, err := http.Get(ui + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s/healthz: %v", ui, err)
	}
	resp.Body.Close()

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	var rest strings.Builder
	done := make(chan error, 1)
	go func() {
		for l := range lines {
			rest.WriteString(l + "\n")
		}
		done <- cmd.Wait()
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("after SIGINT: %v (want exit 0)\nstderr:\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the demo did not stop within 30s of SIGINT")
	}
	if !strings.Contains(rest.String(), "socsync demo stopped.") {
		t.Errorf("the demo did not say it stopped:\n%s", rest.String())
	}
	if _, err := os.Stat(files); !os.IsNotExist(err) {
		t.Errorf("the demo's temporary directory %s is still there (%v)", files, err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("the demo left %d entries in $TMPDIR, e.g. %s", len(left), left[0].Name())
	}
}
