package faults_test

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/effnas/effnas/search"
	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/trainer"
)

// bin is the effnas binary the tests run, built once by TestMain.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "effnas-faults-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "effnas")
	_, here, _, _ := runtime.Caller(0)
	build := exec.Command("go", "build", "-o", bin, "./cmd/effnas")
	build.Dir = filepath.Join(filepath.Dir(here), "..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build ./cmd/effnas: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// tiny is the proxy of every study here: a few hundred images at 16x16,
// one rung, one seed; the tests choose the epochs.
var tiny = []string{"--train-size", "256", "--val-size", "128", "--test-size", "64", "--proxy-width", "0.25", "--proxy-res", "16",
	"--batch", "32", "--rungs", "1", "--top-seeds", "1", "--threads", "1", "--controller", "random"}

// tinyConfig is the same proxy as a search config, for studies a test
// plans itself.
func tinyConfig(trials, epochs int) search.Config {
	return search.Config{Controller: "random", Trials: trials, Seed: 5, Proxy: search.Proxy{
		TrainSize: 256, ValSize: 128, TestSize: 64, Width: 0.25, Res: 16,
		Train: trainer.Config{Epochs: epochs, Batch: 32}, Halving: search.Halving{Rungs: 1, TopSeeds: 1},
	}}
}

// planMore plans n more trials of the study through its controller, as a
// coordinator would, and returns their numbers.
func planMore(t *testing.T, st store.Store, study store.Study, n int) []int {
	t.Helper()
	ctx := t.Context()
	src, err := search.Open(ctx, st, study)
	if err != nil {
		t.Fatal(err)
	}
	trials, err := st.Trials(ctx, study.ID)
	if err != nil {
		t.Fatal(err)
	}
	plans, state, err := src.Plan(ctx, trials, n)
	if err != nil || len(plans) != n {
		t.Fatalf("plan %d trials: %d plans, %v", n, len(plans), err)
	}
	got, err := st.PlanTrials(ctx, study.ID, plans, state)
	if err != nil {
		t.Fatal(err)
	}
	var nums []int
	for _, tr := range got {
		nums = append(nums, tr.Number)
	}
	return nums
}

// proc is a running effnas process whose stderr is kept and scanned.
type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when stderr is drained

	mu    sync.Mutex
	cond  *sync.Cond
	lines []string
	ended bool // stderr reached its end
}

// start runs effnas with args; the test's cleanup kills it if it still
// runs, and a failed test logs its stderr.
func start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	return startCmd(t, name, exec.Command(bin, args...))
}

func startCmd(t *testing.T, name string, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{t: t, name: name, cmd: cmd, done: make(chan struct{})}
	p.cond = sync.NewCond(&p.mu)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
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
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Signal(syscall.SIGCONT) // a stopped process cannot die
			p.cmd.Process.Kill()
			<-p.done
			p.cmd.Wait()
		}
		if t.Failed() {
			t.Logf("%s stderr:\n%s", p.name, p.log())
		}
	})
	return p
}

func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// count is how many lines of stderr so far match re.
func (p *proc) count(re *regexp.Regexp) int {
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

// waitFor waits until the n-th line (counting from 1) matching re has
// been written and returns its submatches; it fails the test when stderr
// ends first or after the timeout.
func (p *proc) waitFor(re *regexp.Regexp, n int, timeout time.Duration) []string {
	p.t.Helper()
	m, err := p.lookFor(re, n, timeout)
	if err != nil {
		p.t.Fatalf("%s: %v:\n%s", p.name, err, p.log())
	}
	return m
}

// lookFor is waitFor returning an error instead of failing the test.
func (p *proc) lookFor(re *regexp.Regexp, n int, timeout time.Duration) ([]string, error) {
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

// wait waits for the process to exit and returns its exit status.
func (p *proc) wait(timeout time.Duration) int {
	p.t.Helper()
	exited := make(chan error, 1)
	go func() { <-p.done; exited <- p.cmd.Wait() }()
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			p.t.Fatalf("%s: %v", p.name, err)
		}
		return 0
	case <-time.After(timeout):
		p.cmd.Process.Kill()
		p.t.Fatalf("%s did not exit within %v:\n%s", p.name, timeout, p.log())
		return -1
	}
}

// signal sends sig to the process.
func (p *proc) signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %s to %s: %v", sig, p.name, err)
	}
}

// stop ends an effnas worker with SIGTERM and checks that it exits 0.
func (p *proc) stop() {
	p.t.Helper()
	p.signal(syscall.SIGTERM)
	if code := p.wait(20 * time.Second); code != 0 {
		p.t.Errorf("%s exited with %d after SIGTERM; want 0", p.name, code)
	}
}

// worker is the name an effnas process records as the worker of its trials.
func (p *proc) worker() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s:%d", host, p.cmd.Process.Pid)
}

// Lines the tests look for.
var (
	trainingLine   = regexp.MustCompile(`^study (\d+) trial (\d+): training rung \d+ seed \d+ \(attempt (\d+)\)`)
	finishedLine   = regexp.MustCompile(`^study (\d+) trial (\d+): accuracy ([0-9.]+)`)
	unreachable    = regexp.MustCompile(`^store unreachable: .*; retrying$`)
	reachableAgain = regexp.MustCompile(`^store reachable again after [0-9.]+s, \d+ calls? retried$`)
)

// waitTrials polls the study until ok holds for its trials, and returns
// them; it fails the test after timeout.
func waitTrials(t *testing.T, st store.Store, study int64, timeout time.Duration, what string, ok func([]store.Trial) bool) []store.Trial {
	t.Helper()
	for deadline := time.Now().Add(timeout); ; time.Sleep(20 * time.Millisecond) {
		trials, err := st.Trials(t.Context(), study)
		if err == nil && ok(trials) {
			return trials
		}
		if time.Now().After(deadline) {
			t.Fatalf("not %s within %v (last: %v, %v)", what, timeout, describe(trials), err)
		}
	}
}

// trialOf returns the trial numbered n, or ok false.
func trialOf(trials []store.Trial, n int) (store.Trial, bool) {
	for _, tr := range trials {
		if tr.Number == n {
			return tr, true
		}
	}
	return store.Trial{}, false
}

// describe lists trials in one line each, for messages.
func describe(trials []store.Trial) string {
	var b strings.Builder
	for _, tr := range trials {
		fmt.Fprintf(&b, "\n  trial %d: %s, attempt %d, %d crashes, worker %s %s", tr.Number, tr.State, tr.Attempt, tr.Crashes, tr.Worker, tr.Error)
	}
	return b.String()
}

// accounted checks the end of a study: every trial complete, with a
// result, claimed once more than it crashed (no attempt unexplained: a
// crash is a lapsed lease), by one of the workers named.
func accounted(t *testing.T, trials []store.Trial, want int, workers ...string) {
	t.Helper()
	if len(trials) != want {
		t.Errorf("%d trials; want %d", len(trials), want)
	}
	for _, tr := range trials {
		if tr.State != store.TrialComplete || tr.Accuracy <= 0 {
			t.Errorf("trial %d: %s (%s), accuracy %v; want complete", tr.Number, tr.State, tr.Error, tr.Accuracy)
		}
		if tr.Attempt != 1+tr.Crashes {
			t.Errorf("trial %d: attempt %d after %d crashes; want each attempt but the last to be a crash", tr.Number, tr.Attempt, tr.Crashes)
		}
		found := false
		for _, w := range workers {
			found = found || tr.Worker == w
		}
		if !found {
			t.Errorf("trial %d finished by %q; want one of %q", tr.Number, tr.Worker, workers)
		}
	}
}

// freePort returns a TCP port on 127.0.0.1 nobody listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// must fails the test on an error.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
