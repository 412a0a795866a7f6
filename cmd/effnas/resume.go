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
	register("resume", "continue an unfinished search or grid study with its stored config", runResume)
}

func runResume(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet("resume", env.Stderr)
	var (
		db      = fs.String("db", "effnas.db", "database file of the study")
		studyID = fs.Int64("study", 0, "study to resume (default: the newest unfinished one)")
		workers = fs.Int("workers", runtime.NumCPU(), "proxies trained at once")
		threads = fs.Int("threads", 0, "kernel goroutines per proxy (0: cores / workers)")
		asJSON  = fs.Bool("json", false, "print the result as JSON")
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
		return usagef("--study %d: must be a study id from 'effnas list --db %s'", *studyID, *db)
	}
	// Resuming needs an existing database: refuse to create one.
	ro, err := openForReading(ctx, *db)
	if err != nil {
		return err
	}
	ro.Close()
	st, err := openForWriting(ctx, *db)
	if err != nil {
		return err
	}
	defer st.Close()
	study, err := pickStudy(ctx, st, *db, *studyID)
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
		fmt.Fprintf(env.Stderr, "resuming %s study %d in %s", study.Kind, study.ID, *db)
		if rec.Requeued > 0 || rec.Failed > 0 {
			fmt.Fprintf(env.Stderr, " (%d unfinished trials back to pending, %d out of attempts)", rec.Requeued, rec.Failed)
		}
		fmt.Fprintln(env.Stderr)
	}
	opts := search.Options{Workers: *workers, Threads: *threads}
	switch study.Kind {
	case store.KindSearch:
		return runStudy(ctx, env, st, *db, study, opts, *asJSON)
	case store.KindGrid:
		return runGridStudy(ctx, env, st, *db, study, opts, *asJSON)
	}
	return fmt.Errorf("study %d has unknown kind %q", study.ID, study.Kind)
}

// pickStudy returns the study with id, or when id is 0 the newest study
// that is not complete.
func pickStudy(ctx context.Context, st store.Store, db string, id int64) (store.Study, error) {
	if id != 0 {
		s, err := st.Study(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return s, usagef("--study %d: no such study in %s; %s", id, db, studyIDs(ctx, st, db))
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
	return store.Study{}, fmt.Errorf("every study in %s is complete; nothing to resume (effnas list --db %s)", db, db)
}
