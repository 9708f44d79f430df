package chaos

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// buildBinaries builds cmd/poller and cmd/worker into dir with one go build.
func buildBinaries(t *testing.T, dir string) {
	t.Helper()
	start := time.Now()
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./cmd/poller", "./cmd/worker")
	cmd.Dir = ".." // the module root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built poller and worker in %s", time.Since(start).Round(time.Millisecond))
}

// proc is one of the system's binaries, run as a child process that the
// test kills and restarts. Its stdout and stderr go, across restarts, to one
// log file.
type proc struct {
	name string
	path string
	args []string
	env  []string
	log  string

	mu        sync.Mutex
	cmd       *exec.Cmd
	done      chan struct{} // closed when the current process has exited
	killing   bool          // the current process is being killed by the test
	starts    int
	selfExits []string // exits the test did not cause
}

func newProc(t *testing.T, name, path string, args, env []string) *proc {
	p := &proc{name: name, path: path, args: args, env: env, log: filepath.Join(t.TempDir(), name+".log")}
	t.Cleanup(func() {
		p.kill()
		if t.Failed() || os.Getenv("CHAOS_LOGS") != "" {
			t.Logf("tail of %s's log:\n%s", p.name, tail(p.log, 40))
		}
	})
	return p
}

// start starts the process; it must not be running.
func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return fmt.Errorf("%s: already running", p.name)
	}
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	fmt.Fprintf(f, "--- start %d at %s\n", p.starts+1, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(p.path, p.args...)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", p.name, err)
	}
	p.starts++
	p.cmd, p.killing = cmd, false
	done := make(chan struct{})
	p.done = done
	go func() {
		err := cmd.Wait()
		f.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		if !p.killing {
			p.selfExits = append(p.selfExits, fmt.Sprintf("start %d: %v", p.starts, err))
		}
		p.cmd = nil
		close(done)
	}()
	return nil
}

// kill sends SIGKILL and waits for the process to be gone. It does nothing
// when the process is not running.
func (p *proc) kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	if cmd == nil {
		p.mu.Unlock()
		return
	}
	p.killing = true
	p.mu.Unlock()
	if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		panic(fmt.Sprintf("%s: kill: %v", p.name, err))
	}
	<-done
}

// exitedByItself reports whether the process is gone without the test
// killing it, and why.
func (p *proc) exitedByItself() (bool, []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd == nil && len(p.selfExits) > 0, append([]string(nil), p.selfExits...)
}

func (p *proc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
