package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"

	"github.com/effnas/effnas/search"
	"github.com/effnas/effnas/store"
)

func init() {
	register("resume", "continue an unfinished search, grid or proxy study with its stored config", runResume)
}

func runResume(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet("resume", env.Stderr)
	var (
		studyID = fs.Int64("study", 0, "study to resume (default: the newest unfinished one)")
		workers = fs.Int("workers", runtime.NumCPU(), "proxies trained at once")
		threads = fs.Int("threads", 0, "kernel goroutines per proxy (0: cores / workers)")
		maxMem  = fs.String("max-memory", "", "most memory one training may take on this machine (default: a share of its memory divided by --workers)")
		asJSON  = fs.Bool("json", false, "print the result as JSON")
		db      = dbFlag(fs, "effnas.db", "database of the study (SQLite file or postgres:// URL)")
	)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *workers < 1 || *workers > 256 {
		return usagef("--workers %d: must be 1 to 256", *workers)
	}
	if *threads < 0 || *threads > 256 {
		return usagef("--threads %d: must be 0 (cores / workers) to 256", *threads)
	}
	if *studyID < 0 {
		return usagef("--study %d: must be a study id from 'effnas list%s'", *studyID, db.Flag())
	}
	mem, err := localMemory(*maxMem, *workers)
	if err != nil {
		return err
	}
	// Resuming needs an existing database: refuse to create one.
	st, err := openExisting(ctx, db)
	if err != nil {
		return err
	}
	defer st.Close()
	study, err := pickStudy(ctx, st, db, *studyID)
	if errors.Is(err, errNothingToResume) {
		fmt.Fprintln(env.Stdout, err.Error())
		return nil
	}
	if err != nil {
		return err
	}
	rec, err := st.RecoverTrials(ctx, study.ID)
	if err != nil {
		return err
	}
	if err := st.SetStudyStatus(ctx, study.ID, store.StudyRunning); err != nil {
		return err
	}
	if !*asJSON {
		fmt.Fprintf(env.Stderr, "resuming %s study %d in %s", study.Kind, study.ID, db)
		if rec.Requeued > 0 || rec.Failed > 0 {
			fmt.Fprintf(env.Stderr, " (%d unfinished trials back to pending, %d out of attempts)", rec.Requeued, rec.Failed)
		}
		fmt.Fprintln(env.Stderr)
	}
	opts := search.Options{Workers: *workers, Threads: *threads, MaxMemory: mem}
	switch study.Kind {
	case store.KindSearch:
		return runStudy(ctx, env, st, db, study, opts, *asJSON)
	case store.KindGrid:
		return runGridStudy(ctx, env, st, db, study, opts, *asJSON)
	case store.KindProxy:
		return runProxyStudy(ctx, env, st, db, study, opts, *asJSON)
	}
	return fmt.Errorf("study %d has unknown kind %q", study.ID, study.Kind)
}

// localMemory reads a --max-memory flag: the memory one training may take
// on this machine, by default a share of it divided among the workers.
func localMemory(flag string, workers int) (int64, error) {
	if flag == "" {
		return search.MemoryBudget(workers), nil
	}
	n, err := search.ParseBytes(flag)
	if err != nil || n < 1<<20 {
		return 0, usagef("--max-memory %q: want an amount of memory per training of at least 1M, such as 4G or 512M", flag)
	}
	return n, nil
}

// errNothingToResume: every study asked for is complete. Scripts loop
// "resume until done", so it is not an error.
var errNothingToResume = errors.New("nothing to resume")

// pickStudy returns the study with id, or when id is 0 the newest study
// that is not complete. A complete study is errNothingToResume.
func pickStudy(ctx context.Context, st store.Store, db *dbName, id int64) (store.Study, error) {
	if id != 0 {
		s, err := st.Study(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return s, usagef("--study %d: no such study in %s; %s", id, db, studyIDs(ctx, st, db))
		}
		if err == nil && s.Status == store.StudyComplete {
			return s, fmt.Errorf("%w: %s study %d is complete", errNothingToResume, s.Kind, s.ID)
		}
		return s, err
	}
	all, err := st.Studies(ctx)
	if err != nil {
		return store.Study{}, err
	}
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].Status != store.StudyComplete {
			return all[i], nil
		}
	}
	return store.Study{}, fmt.Errorf("%w: every study in %s is complete", errNothingToResume, db)
}
