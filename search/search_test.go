package search

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/effnas/effnas/space"
	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/store/sqlite"
	"github.com/effnas/effnas/trainer"
)

// tinyConfig is a search small enough for a test: real MNIST, real
// training, a few hundred images at 16x16.
func tinyConfig(trials int, ctl string) Config {
	return Config{
		Controller: ctl,
		Trials:     trials,
		Seed:       7,
		Proxy: Proxy{
			TrainSize: 256, ValSize: 128, TestSize: 64, Width: 0.25, Res: 16,
			Train:   trainer.Config{Epochs: 1, Batch: 32},
			Halving: Halving{Rungs: 1, TopSeeds: 1}, // one fidelity, one seed: a trial per candidate
		},
	}
}

func openStore(t *testing.T) (store.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "effnas.db")
	st, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, path
}

func runStudy(ctx context.Context, t *testing.T, st store.Store, study store.Study, opts Options) (Summary, error) {
	t.Helper()
	src, err := Open(ctx, st, study)
	if err != nil {
		t.Fatal(err)
	}
	return Run(ctx, st, study, src, opts)
}

func checkFinished(t *testing.T, st store.Store, study int64, budget int) []store.Trial {
	t.Helper()
	trials, err := st.Trials(context.Background(), study)
	if err != nil {
		t.Fatal(err)
	}
	done := 0
	keys := map[string]bool{}
	for i, tr := range trials {
		if tr.Number != trials[0].Number+i {
			t.Errorf("trial numbers not consecutive: %d at position %d", tr.Number, i)
		}
		if keys[tr.Key] {
			t.Errorf("candidate %q planned twice", tr.Key)
		}
		keys[tr.Key] = true
		switch tr.State {
		case store.TrialComplete:
			done++
			if tr.Accuracy <= 0 || tr.Accuracy > 1 || tr.Reward <= 0 || tr.FLOPs <= 0 || tr.Params <= 0 {
				t.Errorf("trial %d: implausible result %+v", tr.Number, tr)
			}
		case store.TrialFailed:
			done++
		default:
			t.Errorf("trial %d left %s", tr.Number, tr.State)
		}
	}
	if done != budget || len(trials) != budget {
		t.Errorf("%d trials, %d finished; want exactly the budget %d", len(trials), done, budget)
	}
	return trials
}

func TestSearchRunsToBudget(t *testing.T) {
	ctx := context.Background()
	st, _ := openStore(t)
	study, err := Create(ctx, st, "test", tinyConfig(4, "evolution"))
	if err != nil {
		t.Fatal(err)
	}
	sum, err := runStudy(ctx, t, st, study, Options{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if !sum.Complete || sum.Trained != 4 || sum.Best == nil {
		t.Fatalf("summary %+v: want complete, 4 trained, a best trial", sum)
	}
	trials := checkFinished(t, st, study.ID, 4)
	for _, tr := range trials {
		if tr.State != store.TrialComplete {
			t.Errorf("trial %d: %s (%s)", tr.Number, tr.State, tr.Error)
		}
	}
	s, err := st.Study(ctx, study.ID)
	if err != nil || s.Status != store.StudyComplete {
		t.Errorf("study status %q (%v), want complete", s.Status, err)
	}
	// Running a finished study again trains nothing.
	sum, err = runStudy(ctx, t, st, study, Options{Workers: 2})
	if err != nil || sum.Trained != 0 || !sum.Complete {
		t.Errorf("second run: %+v, %v; want nothing trained", sum, err)
	}
}

// interrupter cancels the run as soon as the first trial starts.
type interrupter struct {
	cancel  context.CancelFunc
	started atomic.Int32
}

func (e *interrupter) Started(budget, finished int) {}
func (e *interrupter) TrialStarted(store.Trial) {
	if e.started.Add(1) == 1 {
		e.cancel()
	}
}
func (e *interrupter) TrialFinished(store.Trial, *Standing) {}

func TestSearchInterruptAndResume(t *testing.T) {
	st, _ := openStore(t)
	study, err := Create(context.Background(), st, "test", tinyConfig(3, "reinforce"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ev := &interrupter{cancel: cancel}
	_, err = runStudy(ctx, t, st, study, Options{Workers: 2, Events: ev})
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("interrupted run returned %v, want ErrInterrupted", err)
	}
	c, err := st.CountTrials(context.Background(), study.ID)
	if err != nil {
		t.Fatal(err)
	}
	if c.Interrupted == 0 || c.Running != 0 {
		t.Errorf("after Ctrl-C: %+v; want interrupted trials and none running", c)
	}
	if s, _ := st.Study(context.Background(), study.ID); s.Status != store.StudyStopped {
		t.Errorf("study status %q after interrupt, want stopped", s.Status)
	}
	before, _ := st.Trials(context.Background(), study.ID)

	if _, err := st.RecoverTrials(context.Background(), study.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := runStudy(context.Background(), t, st, study, Options{Workers: 2}); err != nil {
		t.Fatal(err)
	}
	after := checkFinished(t, st, study.ID, 3)
	// The interrupted candidates were re-run, not re-sampled.
	for i, b := range before {
		if after[i].Key != b.Key {
			t.Errorf("trial %d: candidate changed on resume", b.Number)
		}
	}
}

func TestFailedTrialDoesNotStopSweep(t *testing.T) {
	ctx := context.Background()
	st, _ := openStore(t)
	cfg := tinyConfig(3, "random")
	cfg.Reward.MaxFLOPs = 1 // every candidate is over the bound: rejected before training
	study, err := Create(ctx, st, "test", cfg)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := runStudy(ctx, t, st, study, Options{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	trials := checkFinished(t, st, study.ID, 3)
	for _, tr := range trials {
		if tr.State != store.TrialFailed || tr.Error == "" {
			t.Errorf("trial %d: %s %q; want failed with a reason", tr.Number, tr.State, tr.Error)
		}
	}
	if sum.Best != nil {
		t.Errorf("best %+v from a sweep where everything failed", sum.Best)
	}
}

// panicky is a Source whose first trial panics while it is being built.
type panicky struct{ *Searcher }

func (p panicky) Arch(t store.Trial) (space.Arch, error) {
	if t.Number == 0 {
		panic("broken candidate")
	}
	return p.Searcher.Arch(t)
}

func TestPanickingTrialIsRecorded(t *testing.T) {
	ctx := context.Background()
	st, _ := openStore(t)
	study, err := Create(ctx, st, "test", tinyConfig(2, "random"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := Open(ctx, st, study)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Run(ctx, st, study, panicky{src}, Options{Workers: 1}); err != nil {
		t.Fatal(err)
	}
	trials := checkFinished(t, st, study.ID, 2)
	if trials[0].State != store.TrialFailed || !strings.Contains(trials[0].Error, "broken candidate") {
		t.Errorf("trial 0: %s %q; want failed with the panic's message", trials[0].State, trials[0].Error)
	}
	if trials[1].State != store.TrialComplete {
		t.Errorf("trial 1: %s %q; want complete", trials[1].State, trials[1].Error)
	}
}

func TestSmallBudgetGetsSmallPopulation(t *testing.T) {
	for _, tc := range []struct{ trials, pop, sample int }{
		{12, 4, 2}, {30, 10, 6}, {300, 25, 15},
	} {
		c := Config{Trials: tc.trials}.WithDefaults()
		if e := c.ControllerConfig.Evolution; e.Population != tc.pop || e.Sample != tc.sample {
			t.Errorf("%d trials: population %d, sample %d; want %d, %d", tc.trials, e.Population, e.Sample, tc.pop, tc.sample)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("%d trials: %v", tc.trials, err)
		}
	}
}
