package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/effnas/effnas/grid"
	"github.com/effnas/effnas/search"
	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/store/postgres"
	"github.com/effnas/effnas/store/sqlite"
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
		workers   = fs.Int("workers", runtime.NumCPU(), "proxies trained at once")
		threads   = fs.Int("threads", 0, "kernel goroutines per proxy (0: cores / workers)")
		poll      = fs.Duration("poll", 2*time.Second, "how often to look for new trials when there is nothing to train")
		lease     = fs.Duration("lease", 2*time.Minute, "claim lease, renewed while training; another process takes a trial over when it lapses")
		once      = fs.Bool("once", false, "exit as soon as no open study has a trial to claim, instead of waiting for more")
		untilDone = fs.Bool("until-done", false, "exit 0 once the study named by --study-name (without it: every open study) is complete; for batch jobs, where --once would end while the coordinator still plans")
		study     = fs.String("study-name", "", "work only on the newest study of this name: the coordinator's --name")
		wait      = fs.Duration("wait", defaultWait, "how long a worker that starts first waits for the coordinator to create the database's tables and the study; it never creates them (0 with --once unless given)")
		name      = fs.String("name", "", "this worker's name in the database (default host:pid)")
		maxMem    = fs.String("max-memory", "", "most memory one training may take here; bigger trials are left to other workers (default: a share of this machine's memory divided by --workers)")
		db        = dbFlag(fs, "", "database shared with the coordinator: postgres://user@host/db or a SQLite file")
	)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if db.Raw() == "" {
		return db.missing("the database the coordinator uses, e.g. --db postgres://user@host/effnas or --db effnas.db")
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
	if *wait < 0 || *wait > maxWait {
		return usagef("--wait %v: must be 0 (do not wait) to %v, e.g. 10m", *wait, maxWait)
	}
	if *once && *untilDone {
		return usagef("--once and --until-done: give one; --once ends when nothing is claimable, --until-done when the study is complete")
	}
	if *once && !flagGiven(fs, "wait") {
		*wait = 0
	}
	mem, err := localMemory(*maxMem, *workers)
	if err != nil {
		return err
	}
	if *name == "" {
		host, _ := os.Hostname()
		*name = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	start := time.Now()
	// A worker joins studies someone created: it waits for their tables
	// and never creates them, nor a SQLite file.
	waited, err := waitForSchema(ctx, db, *wait, *poll, env.Stderr, *name)
	if err != nil {
		return err
	}
	st, err := openExisting(ctx, db)
	if err != nil {
		return err
	}
	defer st.Close()

	w := &worker{
		st: st, log: env.Stderr, once: *once, untilDone: *untilDone, study: *study, poll: *poll,
		waitUntil: start.Add(*wait), wait: *wait, db: db,
		opts: search.Options{Workers: *workers, Threads: *threads, Lease: *lease, Worker: *name, NoPropose: true, Data: search.NewDataCache(),
			MaxMemory: mem},
		sources: map[int64]sourceOrErr{},
	}
	if waited {
		// The tables came after the worker: so did every study, however
		// quickly one finished.
		w.old = map[int64]bool{}
	}
	fmt.Fprintf(env.Stderr, "worker %s on %s: %d at once, lease %v, up to %s per training\n", *name, db, *workers, *lease, search.FormatBytes(mem))
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

// Limits of --wait, and its default without --once.
const (
	defaultWait = 10 * time.Minute
	maxWait     = 7 * 24 * time.Hour
)

// flagGiven reports whether the command line set the flag.
func flagGiven(fs *flag.FlagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}

// waitForSchema returns once the database holds effnas's tables, looking
// every poll for up to wait: a worker started beside its coordinator (a
// batch job, a Kubernetes Job) may come up first, before the database
// server itself, and must not create the tables or a SQLite file. Past
// wait it fails naming the database (its password hidden) and the last
// reason. It reports whether the tables came only after its first look.
func waitForSchema(ctx context.Context, db *dbName, wait, poll time.Duration, log io.Writer, name string) (waited bool, err error) {
	deadline := time.Now().Add(wait)
	for tries := 1; ; tries++ {
		var ok bool
		// One look never outlasts the wait (a server that accepts and
		// never answers), nor ten seconds.
		lctx, cancel := context.WithTimeout(ctx, min(max(time.Until(deadline), time.Second), 10*time.Second))
		if postgres.IsURL(db.Raw()) {
			ok, err = postgres.HasSchema(lctx, db.Raw())
		} else {
			ok, err = sqlite.HasSchema(lctx, db.Raw())
		}
		cancel()
		if ok {
			return tries > 1, nil
		}
		if ctx.Err() != nil {
			return false, errInterrupted
		}
		if time.Now().Add(poll).After(deadline) {
			why := "it has no effnas tables"
			if err != nil {
				why = scrub(err, db).Error()
			}
			hint := "start the coordinator (effnas search or effnas grid) on it first, or give --wait 10m"
			if wait > 0 {
				hint = fmt.Sprintf("after waiting %v (%d looks): is the coordinator running on this database? A longer --wait gives it more time", wait, tries)
			}
			return false, fmt.Errorf("database %s: %s; a worker joins the studies a coordinator created and never creates the tables; %s", db, why, hint)
		}
		if tries == 1 {
			fmt.Fprintf(log, "worker %s: waiting up to %v for the coordinator to create effnas's tables in %s\n", name, wait.Round(time.Second), db)
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return false, errInterrupted
		case <-t.C:
		}
	}
}

// scrub removes the database's password from an error's text, whatever
// the driver put in it.
func scrub(err error, db *dbName) error {
	pw := ""
	if u, perr := url.Parse(db.Raw()); perr == nil && u.User != nil {
		pw, _ = u.User.Password()
	}
	if pw == "" || !strings.Contains(err.Error(), pw) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), pw, "xxxxx"))
}

type sourceOrErr struct {
	src search.Source
	err error
	at  time.Time // when it was opened
}

// worker trains the pending trials of every open study, oldest first, or
// of the newest study named study.
type worker struct {
	st        store.Store
	log       io.Writer
	opts      search.Options
	once      bool
	untilDone bool
	study     string    // --study-name: "" for every study
	waitUntil time.Time // the study must have appeared by then
	wait      time.Duration
	poll      time.Duration
	db        *dbName

	sources map[int64]sourceOrErr // opened studies, by id

	mu                        sync.Mutex
	trained, complete, failed int
	waiting                   string         // why an --until-done worker waits, said once
	giveUp                    time.Time      // when it stops waiting for that
	seen                      int            // looks that found an open study
	old                       map[int64]bool // studies already over at the first look
	faultSince                time.Time      // when the store started failing beyond retries; zero when it answers
}

func (w *worker) run(ctx context.Context) error {
	for {
		if ctx.Err() != nil {
			return search.ErrInterrupted
		}
		var studies []store.Study
		err := search.Retry(ctx, w.opts.Patience(), "list the studies", func(ctx context.Context) error {
			var err error
			studies, err = w.st.Studies(ctx)
			return err
		})
		if err != nil {
			if ctx.Err() != nil {
				return search.ErrInterrupted
			}
			if err := w.pause(ctx, err); err != nil {
				return err
			}
			continue
		}
		w.faultSince = time.Time{}
		studies = w.mine(studies)
		if w.untilDone {
			if done, err := w.done(studies); done || err != nil {
				return err
			}
		}
		trained := 0
		var fault error
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
			if errors.Is(err, search.ErrInterrupted) || ctx.Err() != nil {
				return search.ErrInterrupted
			}
			if err != nil {
				fault = err
				break
			}
		}
		if fault != nil {
			// Only a store fault that outlasted the retries ends a run: the
			// database is down or out of reach. A worker outlives it and
			// rejoins when the database is back.
			if err := w.pause(ctx, fault); err != nil {
				return err
			}
			continue
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

// pause reports a store fault that outlasted the retries and waits a poll
// before the worker tries again.
func (w *worker) pause(ctx context.Context, fault error) error {
	switch {
	case w.once:
		return fault // --once ends at the first thing it cannot do
	case w.faultSince.IsZero():
		w.faultSince = time.Now()
		fmt.Fprintf(w.log, "worker %s: %v; trying again every %v for up to %v\n", w.opts.Worker, scrub(fault, w.db), w.poll, w.outage())
	case time.Since(w.faultSince) > w.outage():
		return fmt.Errorf("database %s kept failing for %v: %w", w.db, time.Since(w.faultSince).Round(time.Second), scrub(fault, w.db))
	}
	select {
	case <-ctx.Done():
		return search.ErrInterrupted
	case <-time.After(w.poll):
		return nil
	}
}

// outage is how long a worker outlives a database that keeps failing:
// --wait, and at least a minute.
func (w *worker) outage() time.Duration { return max(w.wait, time.Minute) }

// mine keeps the studies this worker works on: all of them, or the newest
// of the name it was given.
func (w *worker) mine(studies []store.Study) []store.Study {
	if w.study == "" {
		return studies
	}
	for i := len(studies) - 1; i >= 0; i-- { // oldest first: the newest is last
		if studies[i].Name == w.study {
			return studies[i : i+1]
		}
	}
	return nil
}

// done reports whether an --until-done worker's work is over: its study
// (or every study) is complete. Until the study appears, or while it is
// stopped or failed (its coordinator may resume it), the worker waits, up
// to --wait from its start; past that it fails saying why.
func (w *worker) done(all []store.Study) (bool, error) {
	// Studies that were already over when the worker first looked are not
	// its work: a worker started for a second sweep (a study name used
	// again, a database kept from an earlier run) must wait for the new
	// study rather than end at once on the old one. One resumed since is
	// open again, and counts. A store benchmark's study is never a
	// worker's.
	if w.old == nil {
		w.old = map[int64]bool{}
		for _, s := range all {
			if s.Status != store.StudyRunning {
				w.old[s.ID] = true
			}
		}
	}
	var studies []store.Study
	for _, s := range all {
		if s.SpaceHash != benchStoreSpaceHash && (!w.old[s.ID] || s.Status == store.StudyRunning) {
			studies = append(studies, s)
		}
	}
	var (
		waiting string // why the worker waits, "" when it has work
		fail    error
		over    bool // ending when the wait runs out is success: there was nothing new to do
	)
	switch {
	case len(studies) == 0 && len(all) > 0 && w.study != "":
		// The newest study of the name was over before the worker started.
		waiting = fmt.Sprintf("for a new study named %q (study %d of that name is %s)", w.study, all[0].ID, all[0].Status)
		over = true
	case len(studies) == 0 && w.study != "":
		waiting = fmt.Sprintf("for a study named %q", w.study)
		fail = fmt.Errorf("no study named %q appeared in %s within --wait %v; is it the coordinator's --name?", w.study, w.db, w.wait)
	case len(studies) == 0 && len(w.old) > 0:
		waiting = "for a new study (every study in the database was over when this worker started)"
		over = true
	case len(studies) == 0:
		waiting = "for a study"
		fail = fmt.Errorf("no study appeared in %s within --wait %v; is the coordinator running on this database?", w.db, w.wait)
	default:
		open, complete := 0, 0
		var stopped *store.Study
		for i, s := range studies {
			switch s.Status {
			case store.StudyRunning:
				open++
			case store.StudyComplete:
				complete++
			default:
				stopped = &studies[i]
			}
		}
		switch {
		case open > 0:
			w.waiting = ""
			w.seen++
			return false, nil
		case w.study == "" || complete == len(studies):
			// Every open study is complete (those stopped or failed are not
			// open: their coordinators ended them).
			fmt.Fprintf(w.log, "worker %s: %s complete; done\n", w.opts.Worker, w.what())
			return true, nil
		default:
			waiting = fmt.Sprintf("for study %d (%q), which is %s, to be resumed", stopped.ID, stopped.Name, stopped.Status)
			fail = fmt.Errorf("study %d (%q) is %s and was not resumed within --wait %v: its coordinator stopped; effnas resume --study %d%s continues it", stopped.ID, stopped.Name, stopped.Status, w.wait, stopped.ID, w.db.Flag())
		}
	}
	if waiting != w.waiting {
		// A new reason to wait gets a whole --wait, counted from the
		// worker's start for the first.
		w.waiting, w.giveUp = waiting, time.Now().Add(w.wait)
		if w.giveUp.After(w.waitUntil) && w.trained == 0 && w.seen == 0 {
			w.giveUp = w.waitUntil
		}
		fmt.Fprintf(w.log, "worker %s: waiting %s (until %s)\n", w.opts.Worker, waiting, w.giveUp.Format(time.TimeOnly))
	}
	if time.Now().After(w.giveUp) {
		if over {
			fmt.Fprintf(w.log, "worker %s: no new study within --wait %v; done\n", w.opts.Worker, w.wait)
			return true, nil
		}
		return false, fail
	}
	return false, nil
}

// what names the studies the worker works on.
func (w *worker) what() string {
	if w.study != "" {
		return fmt.Sprintf("study %q is", w.study)
	}
	return "every open study is"
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

// SupernetStart implements search.ScreenEvents: a worker taking over the
// training of a study's supernet says so.
func (e *workerEvents) SupernetStart(from, total int) {
	e.w.mu.Lock()
	defer e.w.mu.Unlock()
	fmt.Fprintf(e.w.log, "study %d supernet: taking its training over from the checkpoint at step %d of %d\n", e.study.ID, from, total)
}

// SupernetStep implements search.ScreenEvents.
func (e *workerEvents) SupernetStep(done, total int) {
	if done == total {
		e.w.mu.Lock()
		defer e.w.mu.Unlock()
		fmt.Fprintf(e.w.log, "study %d supernet: trained, %d steps\n", e.study.ID, total)
	}
}

// ScreenProgress implements search.ScreenEvents (a worker never scores).
func (e *workerEvents) ScreenProgress(done, total int, best float64) {}

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
