package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/effnas/effnas/grid"
	"github.com/effnas/effnas/search"
	"github.com/effnas/effnas/store"
)

func init() {
	register("worker", "train the pending trials of every open study in a shared database (PostgreSQL URL or SQLite file)", runWorker)
}

// Limits of the worker's durations.
const (
	minPoll  = 10 * time.Millisecond
	maxPoll  = time.Hour
	minLease = time.Second
	maxLease = 24 * time.Hour
)

func runWorker(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet("worker", env.Stderr)
	var (
		workers = fs.Int("workers", runtime.NumCPU(), "proxies trained at once")
		threads = fs.Int("threads", 0, "kernel goroutines per proxy (0: cores / workers)")
		poll    = fs.Duration("poll", 2*time.Second, "how often to look for new trials when there is nothing to train")
		lease   = fs.Duration("lease", 2*time.Minute, "claim lease, renewed while training; another process takes a trial over when it lapses")
		once    = fs.Bool("once", false, "exit as soon as no open study has a trial to claim, instead of waiting for more")
		name    = fs.String("name", "", "this worker's name in the database (default host:pid)")
		maxMem  = fs.String("max-memory", "", "most memory one training may take here; bigger trials are left to other workers (default: a share of this machine's memory divided by --workers)")
		db      = dbFlag(fs, "", "database shared with the coordinator: postgres://user@host/db or a SQLite file")
	)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if db.Raw() == "" {
		return usagef("--db is required: the database the coordinator uses, e.g. --db postgres://user@host/effnas or --db effnas.db (or set %s)", envDB)
	}
	if *workers < 1 || *workers > 256 {
		return usagef("--workers %d: must be 1 to 256", *workers)
	}
	if *threads < 0 || *threads > 256 {
		return usagef("--threads %d: must be 0 (cores / workers) to 256", *threads)
	}
	if *poll < minPoll || *poll > maxPoll {
		return usagef("--poll %v: must be %v to %v, e.g. 2s", *poll, minPoll, maxPoll)
	}
	if *lease < minLease || *lease > maxLease {
		return usagef("--lease %v: must be %v to %v, e.g. 2m", *lease, minLease, maxLease)
	}
	mem, err := localMemory(*maxMem, *workers)
	if err != nil {
		return err
	}
	if *name == "" {
		host, _ := os.Hostname()
		*name = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	// A worker joins a study someone created: refuse to create a database.
	st, err := openExisting(ctx, db)
	if err != nil {
		return err
	}
	defer st.Close()

	w := &worker{
		st: st, log: env.Stderr, once: *once, poll: *poll,
		opts: search.Options{Workers: *workers, Threads: *threads, Lease: *lease, Worker: *name, NoPropose: true, Data: search.NewDataCache(),
			MaxMemory: mem},
		sources: map[int64]sourceOrErr{},
	}
	fmt.Fprintf(env.Stderr, "worker %s on %s: %d at once, lease %v, up to %s per training\n", *name, db, *workers, *lease, search.FormatBytes(mem))
	start := time.Now()
	err = w.run(ctx)
	fmt.Fprintf(env.Stdout, "worker %s: %d trials trained (%d complete, %d failed) in %.0fs\n",
		*name, w.trained, w.complete, w.failed, time.Since(start).Seconds())
	if errors.Is(err, search.ErrInterrupted) {
		// Stopping a worker is how it ends: its in-flight trials were
		// handed back, nothing is lost.
		fmt.Fprintf(env.Stderr, "worker %s stopped; its unfinished trials are back for other workers\n", *name)
		return nil
	}
	return err
}

type sourceOrErr struct {
	src search.Source
	err error
	at  time.Time // when it was opened
}

// worker trains the pending trials of every open study, oldest first.
type worker struct {
	st   store.Store
	log  io.Writer
	opts search.Options
	once bool
	poll time.Duration

	sources map[int64]sourceOrErr // opened studies, by id

	mu                        sync.Mutex
	trained, complete, failed int
}

func (w *worker) run(ctx context.Context) error {
	for {
		if ctx.Err() != nil {
			return search.ErrInterrupted
		}
		studies, err := w.st.Studies(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return search.ErrInterrupted
			}
			return err
		}
		trained := 0
		for _, s := range studies {
			if s.Status != store.StudyRunning {
				continue
			}
			src, err := w.source(ctx, s)
			if err != nil {
				continue // reported once by source
			}
			opts := w.opts
			opts.Events = &workerEvents{w: w, study: s}
			sum, err := search.Run(ctx, w.st, s, src, opts)
			trained += sum.Trained
			if err != nil {
				return err
			}
		}
		if trained > 0 {
			continue // look again at once: more may be pending
		}
		if w.once {
			return nil
		}
		select {
		case <-ctx.Done():
			return search.ErrInterrupted
		case <-time.After(w.poll):
		}
	}
}

// reopenAfter is how long a worker skips a study it could not open (its
// dataset missing, say) before it tries again.
const reopenAfter = time.Minute

// source returns the Source of a study, opening it on first use. A study
// that cannot be opened is skipped, and tried again after reopenAfter (the
// data may have been installed since); each new reason is reported once.
func (w *worker) source(ctx context.Context, s store.Study) (search.Source, error) {
	so, ok := w.sources[s.ID]
	if ok && (so.err == nil || time.Since(so.at) < reopenAfter) {
		return so.src, so.err
	}
	src, err := openSource(ctx, w.st, s)
	if err == nil {
		// Every trial this worker claims would fail without the data.
		if d := src.Proxy().Dataset; d != search.DefaultDataset {
			for _, f := range []string{"idx:", "cifar10:", "cifar100:", "folder:"} {
				d = strings.TrimPrefix(d, f)
			}
			if _, serr := os.Stat(d); serr != nil {
				err = fmt.Errorf("its dataset is not on this machine: %w", serr)
			}
		}
	}
	if err != nil && (so.err == nil || so.err.Error() != err.Error()) {
		fmt.Fprintf(w.log, "worker %s: skipping study %d: %v\n", w.opts.Worker, s.ID, err)
	}
	w.sources[s.ID] = sourceOrErr{src, err, time.Now()}
	return src, err
}

// openSource returns what trains a stored study's trials: the Searcher of
// a search study, the Grid of a grid study or the Panel of a proxy
// benchmark.
func openSource(ctx context.Context, st store.Store, s store.Study) (search.Source, error) {
	switch s.Kind {
	case store.KindSearch:
		return search.Open(ctx, st, s)
	case store.KindGrid:
		return grid.Open(s)
	case store.KindProxy:
		return openProxySource(s)
	}
	return nil, fmt.Errorf("study %d has unknown kind %q; want search or grid", s.ID, s.Kind)
}

// workerEvents logs a worker's trials, one line each.
type workerEvents struct {
	w     *worker
	study store.Study
}

func (e *workerEvents) Started(expected, finished int) {}

func (e *workerEvents) TrialStarted(t store.Trial) {
	e.w.mu.Lock()
	defer e.w.mu.Unlock()
	fmt.Fprintf(e.w.log, "study %d trial %d: training rung %d seed %d (attempt %d) %s\n", t.Study, t.Number, t.Rung, t.Seed, t.Attempt, t.Key)
}

func (e *workerEvents) TrialFinished(t store.Trial, _ *search.Standing) {
	e.w.mu.Lock()
	defer e.w.mu.Unlock()
	e.w.trained++
	switch t.State {
	case store.TrialComplete:
		e.w.complete++
		fmt.Fprintf(e.w.log, "study %d trial %d: accuracy %.4f, reward %.4f, %.1fs\n", t.Study, t.Number, t.Accuracy, t.Reward, t.Seconds)
	default:
		e.w.failed++
		fmt.Fprintf(e.w.log, "study %d trial %d: %s: %s\n", t.Study, t.Number, t.State, t.Error)
	}
}
