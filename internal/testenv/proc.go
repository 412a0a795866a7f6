package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Proc is a running process (an effnas command) whose stderr is kept and
// scanned by the tests of several packages.
type Proc struct {
	t    *testing.T
	Name string        // for messages
	Cmd  *exec.Cmd     // started
	done chan struct{} // closed when stderr is drained

	mu    sync.Mutex
	cond  *sync.Cond
	lines []string
	ended bool // stderr reached its end
}

// StartProc starts cmd and keeps its stderr, line by line, for the test
// to scan; the test's cleanup kills the process if it still runs (waking
// it first if it was stopped), and a failed test logs its stderr.
func StartProc(t *testing.T, name string, cmd *exec.Cmd) *Proc {
	t.Helper()
	p := &Proc{t: t, Name: name, Cmd: cmd, done: make(chan struct{})}
	p.cond = sync.NewCond(&p.mu)
	stderr, err := p.Cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.cond.Broadcast()
			p.mu.Unlock()
		}
		p.mu.Lock()
		p.ended = true
		p.cond.Broadcast()
		p.mu.Unlock()
	}()
	t.Cleanup(func() {
		if p.Cmd.ProcessState == nil {
			p.Cmd.Process.Signal(syscall.SIGCONT) // a stopped process cannot die
			p.Cmd.Process.Kill()
			<-p.done
			p.Cmd.Wait()
		}
		if t.Failed() {
			t.Logf("%s stderr:\n%s", p.Name, p.Log())
		}
	})
	return p
}

func (p *Proc) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// Count is how many lines of stderr so far match re.
func (p *Proc) Count(re *regexp.Regexp) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, l := range p.lines {
		if re.MatchString(l) {
			n++
		}
	}
	return n
}

// WaitFor waits until the n-th line (counting from 1) matching re has
// been written and returns its submatches; it fails the test when stderr
// ends first or after the timeout.
func (p *Proc) WaitFor(re *regexp.Regexp, n int, timeout time.Duration) []string {
	p.t.Helper()
	m, err := p.LookFor(re, n, timeout)
	if err != nil {
		p.t.Fatalf("%s: %v:\n%s", p.Name, err, p.Log())
	}
	return m
}

// LookFor is waitFor returning an error instead of failing the test.
func (p *Proc) LookFor(re *regexp.Regexp, n int, timeout time.Duration) ([]string, error) {
	timedOut := false
	timer := time.AfterFunc(timeout, func() {
		p.mu.Lock()
		timedOut = true
		p.cond.Broadcast()
		p.mu.Unlock()
	})
	defer timer.Stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, seen := 0, 0; ; {
		for ; i < len(p.lines); i++ {
			if m := re.FindStringSubmatch(p.lines[i]); m != nil {
				if seen++; seen == n {
					return m, nil
				}
			}
		}
		switch {
		case p.ended:
			return nil, fmt.Errorf("no %d lines matching %q before its stderr ended", n, re)
		case timedOut:
			return nil, fmt.Errorf("no %d lines matching %q within %v", n, re, timeout)
		}
		p.cond.Wait()
	}
}

// Wait waits for the process to exit and returns its exit status.
func (p *Proc) Wait(timeout time.Duration) int {
	p.t.Helper()
	exited := make(chan error, 1)
	go func() { <-p.done; exited <- p.Cmd.Wait() }()
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			p.t.Fatalf("%s: %v", p.Name, err)
		}
		return 0
	case <-time.After(timeout):
		p.Cmd.Process.Kill()
		p.t.Fatalf("%s did not exit within %v:\n%s", p.Name, timeout, p.Log())
		return -1
	}
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig os.Signal) {
	p.t.Helper()
	if err := p.Cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %s to %s: %v", sig, p.Name, err)
	}
}

// Stop ends an effnas worker with SIGTERM and checks that it exits 0.
func (p *Proc) Stop() {
	p.t.Helper()
	p.Signal(syscall.SIGTERM)
	if code := p.Wait(20 * time.Second); code != 0 {
		p.t.Errorf("%s exited with %d after SIGTERM; want 0", p.Name, code)
	}
}

// Worker is the name an effnas process records as the worker of its trials.
func (p *Proc) Worker() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s:%d", host, p.Cmd.Process.Pid)
}
