package chaos

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// socsyncBinary builds the socsync command once per test run.
func socsyncBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "socsync-chaos-")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "socsync")
		out, err := exec.Command("go", "build", "-o", binary, "../../cmd/socsync").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

// proc is a socsync serve process.
type proc struct {
	cmd     *exec.Cmd
	addr    string
	log     *strings.Builder
	mu      sync.Mutex
	done    chan struct{}
	started time.Time // when the process was started
	killed  time.Time // when kill was called
}

var servingRE = regexp.MustCompile(`url=http://([0-9.:]+)`)

// startServe starts `socsync serve --config cfg` and waits until it serves.
func startServe(t *testing.T, cfg string, env ...string) *proc {
	t.Helper()
	cmd := exec.Command(socsyncBinary(t), "serve", "--config", cfg)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, log: &strings.Builder{}, done: make(chan struct{}), started: time.Now()}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.log.WriteString(line + "\n")
			p.mu.Unlock()
			if m := servingRE.FindStringSubmatch(line); m != nil {
				select {
				case ready <- m[1]:
				default:
				}
			}
		}
		cmd.Wait()
		close(p.done)
	}()
	select {
	case p.addr = <-ready:
	case <-p.done:
		t.Fatalf("socsync exited at start:\n%s", p.Log())
	case <-time.After(60 * time.Second):
		p.kill()
		t.Fatalf("socsync did not start:\n%s", p.Log())
	}
	return p
}

// ready waits until the process answers GET /readyz with 200 (its database reachable and
// migrated) and returns how long after its start that was; it fails the test if that takes
// longer than within.
func (p *proc) ready(t *testing.T, within time.Duration) time.Duration {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	for {
		resp, err := client.Get("http://" + p.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(p.started)
			}
		}
		if d := time.Since(p.started); d > within {
			t.Fatalf("socsync was not ready %s after its start (bound %s): %v\n%s", d.Round(time.Millisecond), within, err, p.Log())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Log is what the process wrote to stderr.
func (p *proc) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	p.mu.Lock()
	p.killed = time.Now()
	p.mu.Unlock()
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// spans reads the process's poll spans from its debug log. A poll it had not ended when it was
// killed ended then; one still open in a live process is open until the end of time.
func (p *proc) spans() []pollSpan {
	p.mu.Lock()
	open := p.killed
	p.mu.Unlock()
	if open.IsZero() {
		open = time.Now().Add(time.Hour)
	}
	return spans(p.Log(), open)
}

// stop sends SIGTERM and waits.
func (p *proc) stop(t *testing.T) {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.kill()
		t.Errorf("socsync did not stop on SIGTERM")
	}
}
