package search

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/effnas/effnas/controller"
	"github.com/effnas/effnas/space"
	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/trainer/dataset"
)

// Source says what a study's trials are: a search proposes candidates as it
// learns, a grid plans all its points when it is created.
type Source interface {
	// Budget is the number of trials the study finishes (complete or failed).
	Budget() int
	// Propose returns up to n new plans given every trial so far (in number
	// order) and the controller state to save with them (nil: none). It
	// returns no plans when it has nothing more to propose.
	Propose(ctx context.Context, trials []store.Trial, n int) ([]store.Plan, []byte, error)
	// Arch returns the proxy architecture a trial trains; the runner sets
	// its input channels and classes from the data.
	Arch(t store.Trial) (space.Arch, error)
	// Reward turns a validation accuracy into the trial's objective.
	Reward(t store.Trial, valAccuracy float64) float64
	// Proxy is how trials are trained.
	Proxy() Proxy
}

// Events receives what the runner does, for progress bars and logs. Its
// methods are called from the runner's goroutines one at a time.
type Events interface {
	// Started is called once with the budget and the trials already finished.
	Started(budget, finished int)
	// TrialStarted is called when a worker begins training a trial.
	TrialStarted(t store.Trial)
	// TrialFinished is called with the trial as recorded and the best reward so far.
	TrialFinished(t store.Trial, best float64)
}

// Options tunes a run; zero fields take the defaults in each comment.
type Options struct {
	Workers int           // trials trained at once; default the number of CPUs
	Threads int           // kernel goroutines per trial; default max(1, CPUs/Workers)
	Lease   time.Duration // claim lease, renewed while training; default 2 minutes
	Worker  string        // worker name prefix; default host:pid
	Events  Events        // default none

	// Queue is how many pending trials a coordinator keeps planned beyond
	// the ones it trains, so that workers in other processes (effnas
	// worker) have something to claim; default 0 (plan only what this run
	// trains). A search's controller sees queued trials as pending.
	Queue int
	// Poll is how often a run looks for work done or planned by other
	// processes while it waits for them; default 1 second. A run alone on
	// its study never waits.
	Poll time.Duration
	// NoPropose makes the run a worker's: it trains pending trials other
	// processes planned and returns when none is left to claim; it never
	// asks the source for new trials, never waits for trials running
	// elsewhere and never changes the study's status. On cancellation its
	// in-flight trials are handed back: their lease is made to lapse, so
	// any process claims them again at once (as another attempt) without a
	// resume.
	NoPropose bool
	// Data keeps the datasets trials train on; a process that calls Run
	// again and again (a worker) passes one cache to load each dataset
	// once. Default: a cache for this run.
	Data *DataCache
}

// DataCache keeps loaded datasets, keyed by dataset and options, for runs
// that share it. It is safe for concurrent use; a load that failed is not
// kept, so a later run tries again.
type DataCache struct {
	mu sync.Mutex
	m  map[dataKey]*dataResult
}

type dataKey struct {
	spec string
	opts dataset.Options
}

// NewDataCache returns an empty cache.
func NewDataCache() *DataCache { return &DataCache{m: map[dataKey]*dataResult{}} }

// load returns the dataset spec with opts, loading it on first use.
func (c *DataCache) load(ctx context.Context, spec string, opts dataset.Options) (*dataset.Data, error) {
	k := dataKey{spec, opts}
	c.mu.Lock()
	dr, ok := c.m[k]
	if !ok {
		dr = &dataResult{}
		c.m[k] = dr
	}
	c.mu.Unlock()
	dr.once.Do(func() {
		dr.d, dr.err = dataset.Load(ctx, spec, opts)
		if dr.err != nil {
			c.mu.Lock()
			delete(c.m, k)
			c.mu.Unlock()
		}
	})
	return dr.d, dr.err
}

// ErrInterrupted is returned by Run when its context was cancelled: in-flight
// trials were recorded as interrupted and the study can be resumed.
var ErrInterrupted = errors.New("interrupted")

// Summary is what a run did.
type Summary struct {
	Study    int64        `json:"study"`
	Counts   store.Counts `json:"counts"`
	Trained  int          `json:"trained"` // trials trained by this run
	Best     *store.Trial `json:"best,omitempty"`
	Seconds  float64      `json:"seconds"`
	Budget   int          `json:"budget"`
	Complete bool         `json:"complete"` // the budget is spent
}

// Run trains the study's trials until its budget is spent: it claims pending
// trials, asks the source for new ones when none are pending (and keeps
// Queue more planned for other processes), and trains up to Workers of them
// at once. When nothing is left to claim but trials are running or pending
// in other processes sharing the database, it waits for them, polling every
// Poll, and claims again; the lease of a dead process's trial lapses and the
// trial is claimed again. A trial that fails or panics is recorded as failed
// and the run goes on; only a store fault stops it. When ctx is cancelled it
// stops within one training step, records in-flight trials as interrupted
// and returns ErrInterrupted. Call store.RecoverTrials before resuming a
// study that a dead process left behind. See Options.NoPropose for workers.
func Run(ctx context.Context, st store.Store, study store.Study, src Source, opts Options) (Summary, error) {
	start := time.Now()
	ncpu := runtime.NumCPU()
	if opts.Workers <= 0 {
		opts.Workers = ncpu
	}
	if opts.Threads <= 0 {
		opts.Threads = max(1, ncpu/opts.Workers)
	}
	if opts.Lease <= 0 {
		opts.Lease = 2 * time.Minute
	}
	if opts.Poll <= 0 {
		opts.Poll = time.Second
	}
	if opts.Queue < 0 {
		opts.Queue = 0
	}
	if opts.Worker == "" {
		host, _ := os.Hostname()
		opts.Worker = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	if opts.Data == nil {
		opts.Data = NewDataCache()
	}
	r := &runner{st: st, study: study, src: src, opts: opts}
	sum, err := r.run(ctx)
	sum.Seconds = time.Since(start).Seconds()
	return sum, err
}

type runner struct {
	st    store.Store
	study store.Study
	src   Source
	opts  Options
}

type dataResult struct {
	once sync.Once
	d    *dataset.Data
	err  error
}

// dataset loads the proxy's data at one resolution once.
func (r *runner) dataset(ctx context.Context, res int) (*dataset.Data, error) {
	p := r.src.Proxy()
	return r.opts.Data.load(ctx, p.Dataset, p.data(res))
}

// outcome is what a worker reports to the coordinator.
type outcome struct {
	trial store.Trial
	err   error // a store fault: stop the run
}

func (r *runner) run(ctx context.Context) (Summary, error) {
	sum := Summary{Study: r.study.ID, Budget: r.src.Budget()}
	counts, err := r.st.CountTrials(ctx, r.study.ID)
	if err != nil {
		return sum, err
	}
	var best *store.Trial
	if !r.opts.NoPropose { // a worker seldom trains and only logs its own trials
		if best, err = r.best(ctx); err != nil {
			return sum, err
		}
	}
	if ev := r.opts.Events; ev != nil {
		ev.Started(sum.Budget, counts.Complete+counts.Failed)
	}
	// Load the data before claiming anything, so a bad dataset fails the
	// run with nothing claimed. A worker loads it when it first claims a
	// trial: it looks for work far more often than it finds some.
	if !r.opts.NoPropose {
		if _, err := r.dataset(ctx, r.src.Proxy().Res); err != nil {
			return sum, err
		}
	}

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.opts.Workers)
	done := make(chan outcome, r.opts.Workers)
	inflight := 0
	var runErr error
	exhausted := false
	for {
		if ctx.Err() != nil {
			break
		}
		counts, err = r.st.CountTrials(ctx, r.study.ID)
		if err != nil {
			runErr = err
			break
		}
		finished := counts.Complete + counts.Failed
		n := 0
		if free := r.opts.Workers - inflight; free > 0 && finished+inflight < sum.Budget {
			n = min(free, sum.Budget-finished-inflight)
		}
		claimed, err := r.claim(ctx, n, counts, &exhausted)
		if err != nil {
			runErr = err
			break
		}
		for _, t := range claimed {
			inflight++
			g.Go(func() error {
				done <- r.train(gctx, t)
				return nil
			})
		}
		if inflight == 0 {
			// Nothing runs here. Wait only for what other processes hold:
			// trials they run, or pending ones they claimed first (counts
			// were taken before this claim, so all of them are theirs).
			if r.opts.NoPropose || finished >= sum.Budget || counts.Running+counts.Pending == 0 {
				break // the budget is spent or the source is exhausted
			}
		}
		// Poll only when other processes may change what is claimable:
		// while waiting for them, to keep their queue filled, or for a
		// worker's free slots.
		var poll <-chan time.Time
		var timer *time.Timer
		if inflight == 0 || r.opts.Queue > 0 || (r.opts.NoPropose && inflight < r.opts.Workers) {
			timer = time.NewTimer(r.opts.Poll)
			poll = timer.C
		}
		select {
		case o := <-done:
			inflight--
			if o.err != nil {
				runErr = o.err
			} else if o.trial.State == store.TrialComplete && (best == nil || o.trial.Reward > best.Reward) {
				b := o.trial
				best = &b
			}
			if o.err == nil && o.trial.State != store.TrialInterrupted {
				sum.Trained++
				if ev := r.opts.Events; ev != nil {
					bestReward := 0.0
					if best != nil {
						bestReward = best.Reward
					}
					ev.TrialFinished(o.trial, bestReward)
				}
			}
		case <-ctx.Done():
		case <-poll:
		}
		if timer != nil {
			timer.Stop()
		}
		if runErr != nil {
			break
		}
	}
	// Wait for the workers: on cancellation each records its trial as
	// interrupted within one training step.
	go func() { _ = g.Wait(); close(done) }()
	for o := range done {
		if o.err != nil && runErr == nil {
			runErr = o.err
		}
		if o.err == nil && o.trial.State != store.TrialInterrupted {
			sum.Trained++
		}
	}
	if runErr != nil && ctx.Err() != nil && errors.Is(runErr, context.Canceled) {
		runErr = nil // a store call cut short by Ctrl-C: an interruption, not a fault
	}
	sum.Best = best
	// The store writes below must happen even when ctx is cancelled.
	wctx := context.WithoutCancel(ctx)
	if runErr == nil && (!r.opts.NoPropose || sum.Trained > 0) {
		// Other processes may have found a better trial.
		if b, err := r.best(wctx); err == nil {
			sum.Best = b
		} else {
			runErr = err
		}
	}
	if c, err := r.st.CountTrials(wctx, r.study.ID); err == nil {
		sum.Counts = c
	} else if runErr == nil {
		runErr = err
	}
	sum.Complete = sum.Counts.Complete+sum.Counts.Failed >= sum.Budget || (exhausted && sum.Counts.Pending+sum.Counts.Running+sum.Counts.Interrupted == 0)
	if r.opts.NoPropose {
		// The coordinator owns the study's status.
		if runErr == nil && ctx.Err() != nil {
			runErr = ErrInterrupted
		}
		return sum, runErr
	}
	status := store.StudyRunning
	switch {
	case runErr != nil:
		status = store.StudyFailed
	case ctx.Err() != nil:
		status = store.StudyStopped
		runErr = ErrInterrupted
	case sum.Complete:
		status = store.StudyComplete
	}
	if err := r.st.SetStudyStatus(wctx, r.study.ID, status); err != nil && runErr == nil {
		runErr = err
	}
	return sum, runErr
}

// claim claims up to n trials: pending ones first, then new plans from the
// source when the budget allows more trials to be planned. A coordinator
// also plans enough to leave Queue trials pending for other processes.
func (r *runner) claim(ctx context.Context, n int, counts store.Counts, exhausted *bool) ([]store.Trial, error) {
	var claimed []store.Trial
	if n > 0 {
		var err error
		if claimed, err = r.st.ClaimTrials(ctx, r.study.ID, r.opts.Worker, n, r.opts.Lease); err != nil {
			return nil, err
		}
	}
	if r.opts.NoPropose || *exhausted {
		return claimed, nil
	}
	want := n - len(claimed)
	if left := max(0, counts.Pending-len(claimed)); left < r.opts.Queue {
		want += r.opts.Queue - left
	}
	planned := counts.Total() - counts.Interrupted // interrupted trials are re-run, not re-planned
	room := r.src.Budget() - planned
	if want <= 0 || room <= 0 {
		return claimed, nil
	}
	trials, err := r.st.Trials(ctx, r.study.ID)
	if err != nil {
		return nil, err
	}
	plans, state, err := r.src.Propose(ctx, trials, min(want, room))
	if err != nil {
		return nil, fmt.Errorf("propose trials for study %d: %w", r.study.ID, err)
	}
	if len(plans) == 0 {
		*exhausted = true
		return claimed, nil
	}
	if _, err := r.st.PlanTrials(ctx, r.study.ID, plans, state); err != nil {
		return nil, err
	}
	if len(claimed) == n {
		return claimed, nil
	}
	more, err := r.st.ClaimTrials(ctx, r.study.ID, r.opts.Worker, n-len(claimed), r.opts.Lease)
	if err != nil {
		return nil, err
	}
	return append(claimed, more...), nil
}

// best returns the complete trial with the highest reward so far.
func (r *runner) best(ctx context.Context) (*store.Trial, error) {
	trials, err := r.st.Trials(ctx, r.study.ID)
	if err != nil {
		return nil, err
	}
	return Best(trials), nil
}

// Best returns the complete trial with the highest reward (the lowest
// number among equals), or nil when none is complete.
func Best(trials []store.Trial) *store.Trial {
	var best *store.Trial
	for i := range trials {
		t := &trials[i]
		if t.State == store.TrialComplete && (best == nil || t.Reward > best.Reward) {
			best = t
		}
	}
	if best == nil {
		return nil
	}
	b := *best
	return &b
}

// Pareto returns the complete trials on the accuracy / multiply-adds Pareto
// front (full-size multiply-adds, proxy accuracy), fewest multiply-adds first.
func Pareto(trials []store.Trial) []store.Trial {
	byKey := map[string]store.Trial{}
	var pts []controller.Point
	for _, t := range trials {
		if t.State == store.TrialComplete {
			byKey[t.Key] = t
			pts = append(pts, controller.Point{Key: t.Key, Accuracy: t.Accuracy, FLOPs: t.FLOPs})
		}
	}
	var front []store.Trial
	for _, p := range controller.ParetoFront(pts) {
		front = append(front, byKey[p.Key])
	}
	return front
}
