package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/effnas/effnas/grid"
	"github.com/effnas/effnas/internal/testenv"
	"github.com/effnas/effnas/search"
	"github.com/effnas/effnas/space"
	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/store/postgres"
	"github.com/effnas/effnas/store/sqlite"
	"github.com/effnas/effnas/trainer"
)

func TestWorkerBadFlags(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "w.db")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{}, "--db is required"},
		{[]string{"--db", db, "--workers", "0"}, "--workers 0"},
		{[]string{"--db", db, "--threads", "-1"}, "--threads -1"},
		{[]string{"--db", db, "--poll", "1ns"}, "--poll 1ns"},
		{[]string{"--db", db, "--lease", "10ms"}, "--lease 10ms"},
		{[]string{"--db", db, "--poll", "soon"}, "-poll"},
		{[]string{"--db", db, "stray"}, "stray"},
	} {
		_, err := runCmd(t, append([]string{"worker"}, tc.args...)...)
		var u *usageError
		if err == nil || !errors.As(err, &u) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("worker %v: error %v; want a usage error naming %q", tc.args, err, tc.want)
		}
	}
	// A worker joins a database; it never creates one.
	if _, err := runCmd(t, "worker", "--db", db, "--once"); err == nil {
		t.Error("worker on a missing SQLite file: no error")
	}
	if _, err := os.Stat(db); err == nil {
		t.Fatalf("worker created %s", db)
	}
}

// oneRung trains every candidate once, as the tests of planning and
// claiming expect.
var oneRung = search.Halving{Rungs: 1, TopSeeds: 1}

// planStudy creates a tiny search study and plans n trials through its
// controller, as a coordinator would, without training any.
func planStudy(t *testing.T, st store.Store, n int) store.Study {
	t.Helper()
	return planNamed(t, st, "planned", n)
}

// planNamed is planStudy with the study's name.
func planNamed(t *testing.T, st store.Store, name string, n int) store.Study {
	t.Helper()
	ctx := t.Context()
	cfg := search.Config{Controller: "random", Trials: n, Seed: 3, Proxy: search.Proxy{
		TrainSize: 256, ValSize: 128, TestSize: 64, Width: 0.25, Res: 16,
		Train: trainer.Config{Epochs: 1, Batch: 32}, Halving: oneRung,
	}}
	study, err := search.Create(ctx, st, name, cfg)
	if err != nil {
		t.Fatal(err)
	}
	src, err := search.Open(ctx, st, study)
	if err != nil {
		t.Fatal(err)
	}
	plans, state, err := src.Plan(ctx, nil, n)
	if err != nil || len(plans) != n {
		t.Fatalf("propose %d: %d plans, %v", n, len(plans), err)
	}
	if _, err := st.PlanTrials(ctx, study.ID, plans, state); err != nil {
		t.Fatal(err)
	}
	return study
}

// TestWorkerOnceSQLite: a worker on a SQLite file trains the planned trials
// of the open studies (a search and a grid), proposes none, leaves the study's status to its
// coordinator and skips studies that are not running.
func TestWorkerOnceSQLite(t *testing.T) {
	ctx := t.Context()
	db := filepath.Join(t.TempDir(), "w.db")
	st, err := sqlite.Open(ctx, db, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	open := planStudy(t, st, 2)
	stopped := planStudy(t, st, 2)
	// A grid study: its points are planned when it is created.
	g, err := grid.Create(ctx, st, "grid", grid.StudyConfig{
		Grid: grid.Config{Step: 0.5, Max: 2, Tolerance: 0.3}, Dimension: "width", Base: space.B0(), Seed: 3, // the search's data, loaded once
		Proxy: search.Proxy{TrainSize: 256, ValSize: 128, TestSize: 64, Width: 0.25, Res: 16, Train: trainer.Config{Epochs: 1, Batch: 32}, Halving: oneRung},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetStudyStatus(ctx, stopped.ID, store.StudyStopped); err != nil {
		t.Fatal(err)
	}
	out, err := runCmd(t, "worker", "--db", db, "--once", "--workers", "2", "--name", "w-test")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "4 trials trained (4 complete") {
		t.Errorf("worker output %q; want 4 trials trained", out)
	}
	trials := checkTrials(t, st, open.ID, 2)
	for _, tr := range append(trials, checkTrials(t, st, g.ID, 2)...) {
		if tr.Worker != "w-test" || tr.Attempt != 1 {
			t.Errorf("trial %d: worker %q attempt %d; want w-test, 1", tr.Number, tr.Worker, tr.Attempt)
		}
	}
	if s, err := st.Study(ctx, open.ID); err != nil || s.Status != store.StudyRunning {
		t.Errorf("open study after the worker: %v, %v; want it still running (its coordinator ends it)", s.Status, err)
	}
	if c, err := st.CountTrials(ctx, stopped.ID); err != nil || c.Pending != 2 {
		t.Errorf("stopped study after the worker: %+v, %v; want its 2 trials untouched", c, err)
	}
}

// checkTrials checks that the study has exactly n trials, all complete.
func checkTrials(t *testing.T, st store.Store, study int64, n int) []store.Trial {
	t.Helper()
	trials, err := st.Trials(context.Background(), study)
	if err != nil {
		t.Fatal(err)
	}
	if len(trials) != n {
		t.Errorf("study %d has %d trials; want %d", study, len(trials), n)
	}
	for _, tr := range trials {
		if tr.State != store.TrialComplete || tr.Accuracy <= 0 {
			t.Errorf("trial %d: %s (%s) accuracy %v; want complete", tr.Number, tr.State, tr.Error, tr.Accuracy)
		}
	}
	return trials
}

// proc is a running effnas process whose stderr the tests scan.
type proc = testenv.Proc

func startProc(t *testing.T, bin, name string, args ...string) *proc {
	t.Helper()
	return testenv.StartProc(t, name, exec.Command(bin, args...))
}

var finishedLine = regexp.MustCompile(`^study (\d+) trial (\d+): accuracy ([0-9.]+)`)

// pgTrials opens the schema and returns the newest study's trials.
func pgTrials(t *testing.T, url string) (store.Study, []store.Trial) {
	t.Helper()
	ctx := t.Context()
	st, err := postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	study, err := st.LatestStudy(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	trials := checkTrials(t, st, study.ID, 6)
	return study, trials
}

// holdTrial waits until the database at url shows a trial running under
// worker and locks its row (SELECT ... FOR UPDATE) in a transaction kept
// open until release is called or the test ends. While the row is held
// the worker can neither finish, fail nor hand back the trial, nor renew
// its lease (every write to the row waits for the lock), and no claim
// takes it (claims skip locked rows): the trial stays running under the
// worker for as long as the test needs, however fast the machine trains.
// A process with --workers 1 holding it claims nothing else meanwhile.
func holdTrial(t *testing.T, url, worker string, timeout time.Duration) (number int, release func()) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	var tx pgx.Tx
	var once sync.Once
	release = func() {
		once.Do(func() {
			if tx != nil {
				tx.Rollback(ctx)
			}
			conn.Close(ctx)
		})
	}
	t.Cleanup(release) // before the schema is dropped
	for deadline := time.Now().Add(timeout); ; time.Sleep(2 * time.Millisecond) {
		if tx, err = conn.Begin(ctx); err != nil {
			t.Fatal(err)
		}
		err = tx.QueryRow(ctx, "SELECT number FROM trials WHERE state = 'running' AND worker = $1 ORDER BY number LIMIT 1 FOR UPDATE", worker).Scan(&number)
		if err == nil {
			return number, release
		}
		tx.Rollback(ctx)
		tx = nil
		// No such trial yet, or no table yet: the coordinator creates it.
		var pe *pgconn.PgError
		if !errors.Is(err, pgx.ErrNoRows) && !(errors.As(err, &pe) && pe.Code == "42P01") {
			t.Fatalf("look for a trial running under %s: %v", worker, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no trial running under %s within %v", worker, timeout)
		}
	}
}

// waitTrials polls the newest study in the database at url until ok
// holds for its trials.
func waitTrials(t *testing.T, url string, timeout time.Duration, what string, ok func([]store.Trial) bool) {
	t.Helper()
	ctx := t.Context()
	st, err := postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for deadline := time.Now().Add(timeout); ; time.Sleep(20 * time.Millisecond) {
		if study, err := st.LatestStudy(ctx, ""); err == nil {
			if trials, err := st.Trials(ctx, study.ID); err == nil && ok(trials) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not %s within %v", what, timeout)
		}
	}
}

// TestWorkersPostgres runs real processes against one PostgreSQL database:
// a coordinator (effnas search) and effnas worker processes. A trial takes
// a tenth of a second on a fast machine and seconds on a slow one; no
// subtest depends on it: where one needs a process to hold a trial, or
// the workers to get some, it holds a trial's row (holdTrial) rather than
// racing the training.
func TestWorkersPostgres(t *testing.T) {
	testenv.PostgresURL(t) // skips without a server, or fails in CI
	bin := buildEffnas(t)
	// Two epochs of a few hundred images.
	proxy := append([]string{"--epochs", "2", "--threads", "1"}, tiny...)
	coordinator := func(t *testing.T, url string) *proc {
		return startProc(t, bin, "coordinator", append([]string{"search", "--db", url, "--trials", "6", "--workers", "1", "--controller", "random", "--json"}, proxy...)...)
	}
	worker := func(t *testing.T, url, name string, extra ...string) *proc {
		return startProc(t, bin, name, append([]string{"worker", "--db", url, "--workers", "1", "--threads", "1", "--poll", "100ms"}, extra...)...)
	}

	// One coordinator and two workers finish a study: every trial run
	// exactly once, by more than one process; SIGTERM stops the idle
	// workers cleanly.
	t.Run("share", func(t *testing.T) {
		url := testenv.PostgresSchema(t, testenv.PostgresURL(t))
		c := coordinator(t, url)
		w1 := worker(t, url, "worker 1")
		w2 := worker(t, url, "worker 2")
		// A fast coordinator could train every trial before a worker
		// claims one: hold its trial until a worker has finished one. It
		// keeps one trial queued meanwhile.
		_, release := holdTrial(t, url, c.Worker(), 40*time.Second)
		waitTrials(t, url, 40*time.Second, "a trial finished by a worker", func(trials []store.Trial) bool {
			for _, tr := range trials {
				if tr.State == store.TrialComplete && (tr.Worker == w1.Worker() || tr.Worker == w2.Worker()) {
					return true
				}
			}
			return false
		})
		release()
		if code := c.Wait(60 * time.Second); code != 0 {
			t.Fatalf("coordinator exited with %d:\n%s", code, c.Log())
		}
		for _, w := range []*proc{w1, w2} {
			if err := w.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if code := w.Wait(20 * time.Second); code != 0 {
				t.Errorf("%s exited with %d after SIGTERM; want 0", w.Name, code)
			}
		}
		study, trials := pgTrials(t, url)
		if study.Status != store.StudyComplete {
			t.Errorf("study status %s; want complete", study.Status)
		}
		by := map[string]int{}
		for _, tr := range trials {
			by[tr.Worker]++
			if tr.Attempt != 1 {
				t.Errorf("trial %d ran %d times; want once", tr.Number, tr.Attempt)
			}
		}
		t.Logf("trials by process: coordinator %d, worker 1 %d, worker 2 %d", by[c.Worker()], by[w1.Worker()], by[w2.Worker()])
		if by[c.Worker()]+by[w1.Worker()]+by[w2.Worker()] != 6 {
			t.Errorf("trials by worker %v; want all by the coordinator %s or the workers %s, %s", by, c.Worker(), w1.Worker(), w2.Worker())
		}
		if by[w1.Worker()]+by[w2.Worker()] == 0 || len(by) < 2 {
			t.Errorf("trials by worker %v; want them spread over the processes", by)
		}
	})

	// A worker killed with SIGKILL mid-trial: what it finished stays, and
	// its trial is re-run by another process once its lease lapses.
	t.Run("sigkill", func(t *testing.T) {
		url := testenv.PostgresSchema(t, testenv.PostgresURL(t))
		c := coordinator(t, url)
		// Hold the coordinator's trial until the victim is dead: the
		// coordinator keeps one trial queued but claims no other, so the
		// victim trains one after another, however fast the coordinator.
		_, releaseCoordinator := holdTrial(t, url, c.Worker(), 40*time.Second)
		victim := worker(t, url, "victim", "--lease", "3s")
		fin := victim.WaitFor(finishedLine, 1, 40*time.Second)
		doneNum, _ := strconv.Atoi(fin[2])
		doneAcc, _ := strconv.ParseFloat(fin[3], 64)
		// Kill it during its next trial, holding that trial's row so that
		// the victim cannot finish it between this look and the kill.
		killed, releaseKilled := holdTrial(t, url, victim.Worker(), 40*time.Second)
		if err := victim.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		killedAt := time.Now()
		if code := victim.Wait(10 * time.Second); code != -1 && code != 137 {
			t.Logf("victim exit status %d", code)
		}
		releaseKilled()
		releaseCoordinator()
		other := worker(t, url, "other")
		if code := c.Wait(60 * time.Second); code != 0 {
			t.Fatalf("coordinator exited with %d:\n%s", code, c.Log())
		}
		took := time.Since(killedAt)
		if err := other.Cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		if code := other.Wait(20 * time.Second); code != 0 {
			t.Errorf("other worker exited with %d after SIGINT; want 0", code)
		}
		_, trials := pgTrials(t, url)
		for _, tr := range trials {
			switch tr.Number {
			case doneNum:
				if tr.Worker != victim.Worker() || tr.Attempt != 1 || fmt.Sprintf("%.4f", tr.Accuracy) != fmt.Sprintf("%.4f", doneAcc) {
					t.Errorf("trial %d the victim finished: worker %q attempt %d accuracy %v; want %q, 1, %.4f",
						tr.Number, tr.Worker, tr.Attempt, tr.Accuracy, victim.Worker(), doneAcc)
				}
			case killed:
				if tr.Worker == victim.Worker() || tr.Attempt != 2 || tr.Crashes != 1 {
					t.Errorf("trial %d the victim was training when killed: worker %q attempt %d, %d crashes; want another worker, attempt 2 after 1 crash",
						tr.Number, tr.Worker, tr.Attempt, tr.Crashes)
				}
			default:
				if tr.Attempt != 1 {
					t.Errorf("trial %d ran %d times; want once", tr.Number, tr.Attempt)
				}
			}
		}
		t.Logf("victim finished trial %d, was killed in trial %d; the study finished %v after the kill", doneNum, killed, took.Round(100*time.Millisecond))
	})
}

// TestWorkerRetriesMissingDataset: a study whose dataset is not on the
// worker's machine is skipped and reported once, and opened once the data
// is there (after reopenAfter), without restarting the worker.
func TestWorkerRetriesMissingDataset(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "w.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	data := filepath.Join(dir, "later")
	s, err := search.Create(ctx, st, "elsewhere", search.Config{Controller: "random", Trials: 2, Seed: 1,
		Proxy: search.Proxy{Dataset: "idx:" + data}})
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	w := &worker{st: st, log: &log, sources: map[int64]sourceOrErr{}}
	for range 2 {
		if _, err := w.source(ctx, s); err == nil || !strings.Contains(err.Error(), "not on this machine") {
			t.Fatalf("source of a study without its data: %v", err)
		}
	}
	if n := strings.Count(log.String(), "skipping study"); n != 1 {
		t.Fatalf("reported %d times, want once:\n%s", n, log.String())
	}
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := w.source(ctx, s); err == nil {
		t.Fatal("opened again before reopenAfter")
	}
	so := w.sources[s.ID]
	so.at = so.at.Add(-reopenAfter)
	w.sources[s.ID] = so
	if src, err := w.source(ctx, s); err != nil || src == nil {
		t.Fatalf("source once the data is there: %v", err)
	}
}
