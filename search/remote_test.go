package search

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/effnas/effnas/space"
	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/store/sqlite"
)

// plan proposes and writes n trials of a study, as a coordinator would.
func plan(t *testing.T, st store.Store, study store.Study, n int) {
	t.Helper()
	ctx := context.Background()
	src, err := Open(ctx, st, study)
	if err != nil {
		t.Fatal(err)
	}
	trials, err := st.Trials(ctx, study.ID)
	if err != nil {
		t.Fatal(err)
	}
	plans, state, err := src.Plan(ctx, trials, n)
	if err != nil || len(plans) != n {
		t.Fatalf("propose %d: %d plans, %v", n, len(plans), err)
	}
	if _, err := st.PlanTrials(ctx, study.ID, plans, state); err != nil {
		t.Fatal(err)
	}
}

// TestCoordinatorWaitsForDeadWorker: a trial claimed by a process that
// died holds the study open; the coordinator waits instead of exiting,
// and claims the trial again when its lease lapses.
func TestCoordinatorWaitsForDeadWorker(t *testing.T) {
	ctx := context.Background()
	st, _ := openStore(t)
	study, err := Create(ctx, st, "test", tinyConfig(1, "random"))
	if err != nil {
		t.Fatal(err)
	}
	plan(t, st, study, 1)
	lease := 1500 * time.Millisecond
	dead, err := st.ClaimTrials(ctx, study.ID, store.Claim{Worker: "dead", Limit: 1, Lease: lease})
	if err != nil || len(dead) != 1 {
		t.Fatalf("claim: %v, %v", dead, err)
	}
	src, err := Open(ctx, st, study)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	// The trial fails at once when the coordinator gets it: this test is
	// about waiting and claiming, not training.
	sum, err := Run(ctx, st, study, unbuildable{src}, Options{Workers: 1, Worker: "coord", Poll: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < lease-100*time.Millisecond {
		t.Errorf("run took %v: it cannot have waited for the %v lease", el, lease)
	}
	if !sum.Complete || sum.Trained != 1 {
		t.Errorf("summary %+v: want complete with the trial trained here", sum)
	}
	trials := checkFinished(t, st, study.ID, 1)
	if tr := trials[0]; tr.Worker != "coord" || tr.Attempt != 2 || tr.State != store.TrialFailed || !strings.Contains(tr.Error, "unbuildable") {
		t.Errorf("the dead worker's trial: worker %q attempt %d %s %q; want coord, attempt 2, failed as unbuildable", tr.Worker, tr.Attempt, tr.State, tr.Error)
	}
	if s, _ := st.Study(ctx, study.ID); s.Status != store.StudyComplete {
		t.Errorf("study status %q; want complete", s.Status)
	}
}

// unbuildable is a Source whose trials fail before training.
type unbuildable struct{ *Searcher }

func (unbuildable) Arch(store.Trial) (space.Arch, error) {
	return space.Arch{}, errors.New("unbuildable")
}

// trainHook is a Searcher that calls before at the start of every
// training. Arch is also called when a trial is planned, before any claim
// (attempt 0): that call does not.
type trainHook struct {
	*Searcher
	before func()
}

func (s trainHook) Arch(t store.Trial) (space.Arch, error) {
	if t.Attempt > 0 {
		s.before()
	}
	return s.Searcher.Arch(t)
}

// TestCoordinatorAndWorker: a coordinator and a worker, each with its own
// connection to one SQLite file, finish a study between them: the
// coordinator keeps Queue trials planned, the worker proposes none, every
// trial runs once. The coordinator's training waits until the worker has
// begun one: else a fast machine trains the study in the coordinator
// before the worker, polling every 20 ms, has claimed the queued trial.
func TestCoordinatorAndWorker(t *testing.T) {
	ctx := context.Background()
	st, path := openStore(t)
	other, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	const budget = 2
	study, err := Create(ctx, st, "test", tinyConfig(budget, "evolution"))
	if err != nil {
		t.Fatal(err)
	}
	workerBegan := make(chan struct{})
	wctx, stopWorker := context.WithCancel(ctx)
	defer stopWorker()
	var wg sync.WaitGroup
	var workerTrained int
	var workerErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		src, err := Open(ctx, other, study)
		if err != nil {
			workerErr = err
			return
		}
		hooked := trainHook{src, sync.OnceFunc(func() { close(workerBegan) })}
		for wctx.Err() == nil {
			sum, err := Run(wctx, other, study, hooked, Options{Workers: 1, Worker: "worker", NoPropose: true, Poll: 20 * time.Millisecond})
			workerTrained += sum.Trained
			if err != nil && !errors.Is(err, ErrInterrupted) {
				workerErr = err
				return
			}
			select {
			case <-wctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	src, err := Open(ctx, st, study)
	if err != nil {
		t.Fatal(err)
	}
	waitForWorker := func() {
		select {
		case <-workerBegan:
		case <-time.After(time.Minute): // the worker claimed nothing: the check below fails
		}
	}
	sum, err := Run(ctx, st, study, trainHook{src, waitForWorker}, Options{Workers: 1, Worker: "coord", Queue: 1, Poll: 20 * time.Millisecond})
	stopWorker()
	wg.Wait()
	if err != nil || workerErr != nil {
		t.Fatalf("coordinator: %v; worker: %v", err, workerErr)
	}
	if !sum.Complete || sum.Trained+workerTrained != budget || workerTrained == 0 {
		t.Errorf("coordinator trained %d, worker %d (summary %+v); want %d between them, some by each", sum.Trained, workerTrained, sum, budget)
	}
	if sum.Best == nil {
		t.Error("no best trial in the summary")
	}
	for _, tr := range checkFinished(t, st, study.ID, budget) {
		if tr.Attempt != 1 {
			t.Errorf("trial %d ran %d times; want once", tr.Number, tr.Attempt)
		}
	}
}

// TestWorkerHandsBackOnCancel: a stopped worker's trial is claimable by
// another process at once, without a resume, and the worker leaves the
// study's status and its plan alone.
func TestWorkerHandsBackOnCancel(t *testing.T) {
	st, _ := openStore(t)
	study, err := Create(context.Background(), st, "test", tinyConfig(3, "random"))
	if err != nil {
		t.Fatal(err)
	}
	plan(t, st, study, 2)
	ctx, cancel := context.WithCancel(context.Background())
	ev := &interrupter{cancel: cancel}
	_, err = runStudy(ctx, t, st, study, Options{Workers: 1, Worker: "worker", NoPropose: true, Events: ev})
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("stopped worker returned %v, want ErrInterrupted", err)
	}
	bg := context.Background()
	c, err := st.CountTrials(bg, study.ID)
	if err != nil || c.Total() != 2 || c.Complete+c.Failed != 0 {
		t.Errorf("after the worker stopped: %+v, %v; want the 2 planned trials, none finished, none proposed", c, err)
	}
	if s, _ := st.Study(bg, study.ID); s.Status != store.StudyRunning {
		t.Errorf("study status %q after a worker stopped; want running", s.Status)
	}
	if c.Pending != 2 || c.Running != 0 {
		t.Errorf("after the hand-back: %+v; want both trials pending", c)
	}
	got, err := st.ClaimTrials(bg, study.ID, store.Claim{Worker: "next", Limit: 2, Lease: time.Minute})
	if err != nil || len(got) != 2 {
		t.Fatalf("claim after the hand-back: %v, %v; want both trials", got, err)
	}
	if got[0].Number != 0 || got[0].Attempt != 2 {
		t.Errorf("handed-back trial: number %d attempt %d; want 0, attempt 2", got[0].Number, got[0].Attempt)
	}
}

// TestDataCache: runs that share a cache load a dataset once; a failed
// load is not kept.
func TestDataCache(t *testing.T) {
	ctx := context.Background()
	c := NewDataCache()
	p := tinyConfig(1, "random").WithDefaults().Proxy
	a, err := c.load(ctx, p.Dataset, p.data(16))
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.load(ctx, p.Dataset, p.data(16))
	if err != nil || a != b {
		t.Errorf("second load: %p, %v; want the same data %p", b, err, a)
	}
	if other, err := c.load(ctx, p.Dataset, p.data(8)); err != nil || other == a {
		t.Errorf("another resolution: %p, %v; want other data", other, err)
	}
	missing := filepath.Join(t.TempDir(), "missing")
	if _, err := c.load(ctx, missing, p.data(16)); err == nil {
		t.Errorf("load of %s: no error", missing)
	}
	if len(c.m) != 2 {
		t.Errorf("cache holds %d datasets; want the 2 that loaded", len(c.m))
	}
}

// TestWorkerTooSmallLeavesTrials: a worker whose memory is too small for a
// trial that fits the study leaves it to others: it does not claim a trial
// whose estimate it knows, and hands back one it claimed without an
// estimate; neither is failed.
func TestWorkerTooSmallLeavesTrials(t *testing.T) {
	ctx := context.Background()
	st, _ := openStore(t)
	study, err := Create(ctx, st, "small", tinyConfig(2, "random"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := Open(ctx, st, study)
	if err != nil {
		t.Fatal(err)
	}
	plans, state, err := src.Plan(ctx, nil, 2)
	if err != nil || len(plans) != 2 {
		t.Fatal(plans, err)
	}
	Annotate(src, plans[:1], 1, 10) // the second has no estimate, as a trial of an older effnas
	if plans[0].Memory == 0 || plans[1].Memory != 0 {
		t.Fatalf("memory estimates %d, %d", plans[0].Memory, plans[1].Memory)
	}
	if _, err := st.PlanTrials(ctx, study.ID, plans, state); err != nil {
		t.Fatal(err)
	}
	sum, err := Run(ctx, st, study, src, Options{Workers: 1, Worker: "tiny", NoPropose: true, MaxMemory: 1 << 20})
	if err != nil || sum.Trained != 0 {
		t.Fatalf("a worker with 1 MiB per training: %+v, %v; want nothing trained", sum, err)
	}
	trials, err := st.Trials(ctx, study.ID)
	if err != nil {
		t.Fatal(err)
	}
	if tr := trials[0]; tr.State != store.TrialPending || tr.Attempt != 0 {
		t.Errorf("trial with an estimate: %s, attempt %d; want pending, never claimed", tr.State, tr.Attempt)
	}
	if tr := trials[1]; tr.State != store.TrialPending || tr.Attempt != 1 || tr.Crashes != 0 || !strings.Contains(tr.Error, "too big for this worker") {
		t.Errorf("trial without an estimate: %s, attempt %d, %d crashes, %q; want handed back, pending", tr.State, tr.Attempt, tr.Crashes, tr.Error)
	}
}
