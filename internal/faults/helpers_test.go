package faults_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/effnas/effnas/internal/testenv"
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

// proc is a running effnas process whose stderr the tests scan.
type proc = testenv.Proc

// start runs effnas with args; the test's cleanup kills it if it still
// runs, and a failed test logs its stderr.
func start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	return testenv.StartProc(t, name, exec.Command(bin, args...))
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
