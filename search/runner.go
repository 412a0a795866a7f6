package search

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/effnas/effnas/space"
	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/trainer/dataset"
)

// Source says what a study's trials are: a search proposes candidates as it
// learns and promotes them through successive halving's rungs; a grid plans
// its points when it is created and runs them through the same halving (by
// default one rung: every point once, then the finalists' seeds); a proxy
// benchmark plans every run when it is created.
type Source interface {
	// Expected is about how many trials the study trains in all, for
	// progress displays.
	Expected() int
	// Plan returns up to n trials to add now, given every trial so far (in
	// number order), and the controller state to save with them (nil:
	// none). No plans while trials are unfinished means "wait for them";
	// no plans when every trial is finished means the study is done.
	Plan(ctx context.Context, trials []store.Trial, n int) ([]store.Plan, []byte, error)
	// Arch returns the proxy architecture a trial trains; the runner sets
	// its input channels and classes from the data.
	Arch(t store.Trial) (space.Arch, error)
	// Fidelity is how much a trial trains: the images and epochs of its rung.
	Fidelity(t store.Trial) Fidelity
	// Reward turns a validation accuracy into the trial's objective.
	Reward(t store.Trial, valAccuracy float64) float64
	// Proxy is how trials are trained.
	Proxy() Proxy
}

// Events receives what the runner does, for progress bars and logs. Its
// methods are called from the runner's goroutines one at a time.
type Events interface {
	// Started is called once with the trials expected in all and those
	// already finished.
	Started(expected, finished int)
	// TrialStarted is called when a worker begins training a trial.
	TrialStarted(t store.Trial)
	// TrialFinished is called with the trial as recorded and the best
	// candidate so far (nil: none at the top rung yet).
	TrialFinished(t store.Trial, best *Standing)
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
	// in-flight trials are handed back (ReleaseTrial), so any process
	// claims them again at once without a resume.
	NoPropose bool
	// Data keeps the datasets trials train on; a process that calls Run
	// again and again (a worker) passes one cache to load each dataset
	// once. Default: a cache for this run.
	Data *DataCache
	// MaxMemory is the most memory one training may take on this machine,
	// in bytes: trials estimated to need more are left to other workers.
	// Default: MemoryBudget(Workers).
	MaxMemory int64
	// Retry is how long a store call that fails (a busy database, a
	// network blip) is retried before the fault counts as persistent and
	// stops the run; default Lease.
	Retry time.Duration
}

// Patience is how long a store call is retried: Retry, or its default, a
// lease. A caller that retries its own store calls beside a run (with
// Retry) waits as long as the run would.
func (o Options) Patience() time.Duration {
	switch {
	case o.Retry > 0:
		return o.Retry
	case o.Lease > 0:
		return o.Lease
	}
	return 2 * time.Minute // the default lease
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

type dataResult struct {
	once sync.Once
	d    *dataset.Data
	err  error
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
	Best     *Standing    `json:"best,omitempty"`
	Seconds  float64      `json:"seconds"`
	Expected int          `json:"expected"` // trials the study was expected to train in all
	Complete bool         `json:"complete"` // nothing is left to plan or train
	Classes  int          `json:"classes"`  // of the study's data (0 when a worker loaded none)
}

// Run trains the study's trials until nothing is left: it claims pending
// trials, asks the source for new ones (promotions, new candidates) when
// none are pending (and keeps Queue more planned for other processes), and
// trains up to Workers of them at once. When nothing is left to claim but
// trials are running or pending in other processes sharing the database,
// it waits for them, polling every Poll, and claims again; the lease of a
// dead process's trial lapses and the trial is claimed again. A trial that
// fails, diverges or panics is recorded as failed and the run goes on. A
// store call that fails is retried for up to Retry: only a fault that
// persists stops the run. When ctx is cancelled it stops within one
// training step, records in-flight trials as interrupted and returns
// ErrInterrupted. Call store.RecoverTrials before resuming a study that a
// dead process left behind. See Options.NoPropose for workers.
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
	opts.Retry = opts.Patience()
	if opts.MaxMemory <= 0 {
		opts.MaxMemory = MemoryBudget(opts.Workers)
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
	if store.IsDiskFull(err) {
		// No retry mends it: say what will.
		err = fmt.Errorf("%w: free space and run effnas resume --study %d: %w", store.ErrDiskFull, study.ID, err)
	}
	return sum, err
}

type runner struct {
	st    store.Store
	study store.Study
	src   Source
	opts  Options
	done  bool // the source has nothing more to plan and nothing is unfinished

	mu     sync.Mutex
	tooBig []int // trials handed back as too big for this machine: not claimed again
}

// dataset loads the proxy's data at one resolution once.
func (r *runner) dataset(ctx context.Context, res int) (*dataset.Data, error) {
	p := r.src.Proxy()
	return r.opts.Data.load(ctx, p.Dataset, p.data(res))
}

// outcome is what a worker reports to the coordinator.
type outcome struct {
	trial   store.Trial
	trained bool  // the trial's outcome was recorded (complete or failed)
	err     error // a persistent store fault: stop the run
}

func (r *runner) run(ctx context.Context) (Summary, error) {
	sum := Summary{Study: r.study.ID, Expected: r.src.Expected()}
	var counts store.Counts
	if err := r.call(ctx, "count trials", func(ctx context.Context) (err error) {
		counts, err = r.st.CountTrials(ctx, r.study.ID)
		return err
	}); err != nil {
		return sum, err
	}
	if !r.opts.NoPropose {
		// A coordinator runs the study: workers claim only trials of
		// running studies.
		if err := r.call(ctx, "set the study's status", func(ctx context.Context) error {
			return r.st.SetStudyStatus(ctx, r.study.ID, store.StudyRunning)
		}); err != nil {
			return sum, err
		}
	}
	if ev := r.opts.Events; ev != nil {
		ev.Started(sum.Expected, counts.Complete+counts.Failed)
	}
	// Load the data before claiming anything, so a bad dataset fails the
	// run with nothing claimed. A worker loads it when it first claims a
	// trial: it looks for work far more often than it finds some.
	if !r.opts.NoPropose {
		d, err := r.dataset(ctx, r.src.Proxy().Res)
		if err != nil {
			return sum, err
		}
		sum.Classes = d.Classes
		if sc, ok := r.src.(*Searcher); ok && sc.cfg.Screen != nil {
			if err := sc.screen(ctx, r, d); err != nil {
				// The study stops (interrupted) or fails here, as it
				// would in its trials.
				status := store.StudyFailed
				if ctx.Err() != nil || errors.Is(err, ErrInterrupted) {
					status = store.StudyStopped
					if !errors.Is(err, ErrInterrupted) {
						err = fmt.Errorf("%w: %w", ErrInterrupted, err)
					}
				}
				if serr := r.call(context.WithoutCancel(ctx), "set the study's status", func(ctx context.Context) error {
					return r.st.SetStudyStatus(ctx, r.study.ID, status)
				}); serr != nil {
					err = errors.Join(err, serr)
				}
				return sum, err
			}
		}
	} else if sc, ok := r.src.(*Searcher); ok && sc.cfg.Screen != nil {
		// A worker trains a supernet whose trainer died.
		if err := sc.takeOver(ctx, r); err != nil {
			return sum, err
		}
	}

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.opts.Workers)
	done := make(chan outcome, r.opts.Workers)
	inflight := 0
	var runErr error
	for ctx.Err() == nil {
		if err := r.call(ctx, "count trials", func(ctx context.Context) (err error) {
			counts, err = r.st.CountTrials(ctx, r.study.ID)
			return err
		}); err != nil {
			runErr = err
			break
		}
		claimed, err := r.claim(ctx, r.opts.Workers-inflight, counts)
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
		if inflight == 0 && (r.opts.NoPropose || r.done) {
			break // nothing to claim (a worker), or the study is done
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
			runErr = r.report(ctx, o, &sum)
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
		if err := r.report(ctx, o, &sum); err != nil && runErr == nil {
			runErr = err
		}
	}
	if runErr != nil && ctx.Err() != nil && errors.Is(runErr, context.Canceled) {
		runErr = nil // a store call cut short by Ctrl-C: an interruption, not a fault
	}
	// The store writes below must happen even when ctx is cancelled.
	wctx := context.WithoutCancel(ctx)
	if err := r.call(wctx, "count trials", func(ctx context.Context) (err error) {
		sum.Counts, err = r.st.CountTrials(ctx, r.study.ID)
		return err
	}); err != nil && runErr == nil {
		runErr = err
	}
	if runErr == nil && (!r.opts.NoPropose || sum.Trained > 0) {
		// Other processes may have found a better candidate.
		if b, err := r.best(wctx); err == nil {
			sum.Best = b
		} else {
			runErr = err
		}
	}
	sum.Complete = r.done && sum.Counts.Pending+sum.Counts.Running+sum.Counts.Interrupted == 0
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
	if err := r.call(wctx, "set the study's status", func(ctx context.Context) error {
		return r.st.SetStudyStatus(ctx, r.study.ID, status)
	}); err != nil && runErr == nil {
		runErr = err
	}
	return sum, runErr
}

// report counts a finished training and tells the events.
func (r *runner) report(ctx context.Context, o outcome, sum *Summary) error {
	if o.err != nil {
		return o.err
	}
	if !o.trained {
		return nil
	}
	sum.Trained++
	if ev := r.opts.Events; ev != nil {
		var best *Standing
		if !r.opts.NoPropose { // a worker only logs its own trials
			b, err := r.best(context.WithoutCancel(ctx))
			if err != nil {
				return err
			}
			best = b
		}
		ev.TrialFinished(o.trial, best)
	}
	return nil
}

// claim claims up to n trials: pending ones first, then new plans from the
// source. A coordinator also plans enough to leave Queue trials pending
// for other processes. When the source has nothing to plan and no trial is
// unfinished, the study is done.
func (r *runner) claim(ctx context.Context, n int, counts store.Counts) ([]store.Trial, error) {
	var claimed []store.Trial
	if n > 0 {
		var err error
		if claimed, err = r.claimN(ctx, n); err != nil {
			return nil, err
		}
	}
	if r.opts.NoPropose || r.done {
		return claimed, nil
	}
	want := max(0, n-len(claimed))
	if left := max(0, counts.Pending-len(claimed)); left < r.opts.Queue {
		want += r.opts.Queue - left
	}
	if want == 0 {
		return claimed, nil
	}
	var trials []store.Trial
	if err := r.call(ctx, "read trials", func(ctx context.Context) (err error) {
		trials, err = r.st.Trials(ctx, r.study.ID)
		return err
	}); err != nil {
		return nil, err
	}
	plans, state, err := r.src.Plan(ctx, trials, want)
	if err != nil {
		return nil, fmt.Errorf("plan trials for study %d: %w", r.study.ID, err)
	}
	if len(plans) == 0 {
		unfinished := 0
		for _, t := range trials {
			if !finished(t) {
				unfinished++
			}
		}
		r.done = unfinished == 0 && len(claimed) == 0
		return claimed, nil
	}
	r.annotate(ctx, plans)
	first := true
	var written []store.Trial
	if err := r.call(ctx, "plan trials", func(ctx context.Context) (err error) {
		written, err = r.st.PlanTrials(ctx, r.study.ID, plans, state)
		if !first && errors.Is(err, store.ErrDuplicateKey) {
			return nil // the first call was written after all; its reply was lost
		}
		first = false
		return err
	}); err != nil {
		return nil, err
	}
	if ev := r.opts.Events; ev != nil {
		for _, t := range written {
			if t.State == store.TrialFailed { // rejected before training
				ev.TrialFinished(t, nil)
			}
		}
	}
	if len(claimed) == n {
		return claimed, nil
	}
	more, err := r.claimN(ctx, n-len(claimed))
	if err != nil {
		return nil, err
	}
	return append(claimed, more...), nil
}

// claimN claims up to n pending trials that fit this machine's memory.
func (r *runner) claimN(ctx context.Context, n int) ([]store.Trial, error) {
	var got []store.Trial
	r.mu.Lock()
	skip := slices.Clone(r.tooBig)
	r.mu.Unlock()
	err := r.call(ctx, "claim trials", func(ctx context.Context) (err error) {
		got, err = r.st.ClaimTrials(ctx, r.study.ID, store.Claim{Worker: r.opts.Worker, Limit: n, Lease: r.opts.Lease, MaxMemory: r.opts.MaxMemory, Skip: skip})
		return err
	})
	return got, err
}

// best returns the best candidate at the top rung so far.
func (r *runner) best(ctx context.Context) (*Standing, error) {
	var trials []store.Trial
	if err := r.call(ctx, "read trials", func(ctx context.Context) (err error) {
		trials, err = r.st.Trials(ctx, r.study.ID)
		return err
	}); err != nil {
		return nil, err
	}
	if b, ok := r.src.(interface{ Best([]store.Trial) *Standing }); ok {
		return b.Best(trials), nil // a grid's, its base point left out
	}
	return Best(trials, r.src.Proxy().Halving), nil
}
