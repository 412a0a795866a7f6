package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/effnas/effnas/internal/testenv"
	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/store/postgres"
	"github.com/effnas/effnas/store/sqlite"
)

// bgWorker runs `effnas worker args...` in the background and returns a
// function that waits (up to d) for it to end, with its error and stderr.
type bgWorker struct {
	done   chan struct{}
	err    error
	mu     sync.Mutex
	stderr bytes.Buffer
}

func (b *bgWorker) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stderr.Write(p)
}

func (b *bgWorker) log() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stderr.String()
}

func startWorker(t *testing.T, args ...string) *bgWorker {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b := &bgWorker{done: make(chan struct{})}
	go func() {
		defer close(b.done)
		b.err = Run(ctx, &Env{Stdout: &bytes.Buffer{}, Stderr: b}, append([]string{"worker"}, args...))
	}()
	t.Cleanup(func() {
		cancel()
		<-b.done
	})
	return b
}

// ended reports whether the worker ended within d.
func (b *bgWorker) ended(d time.Duration) bool {
	select {
	case <-b.done:
		return true
	case <-time.After(d):
		return false
	}
}

// trains waits (up to a minute) until the worker has completed n trials of
// the study, and fails the test if it ends first.
func (b *bgWorker) trains(t *testing.T, st store.Store, study store.Study, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for c, _ := st.CountTrials(t.Context(), study.ID); c.Complete < n; c, _ = st.CountTrials(t.Context(), study.ID) {
		if time.Now().After(deadline) || b.ended(0) {
			t.Fatalf("the worker did not train study %d (%q)'s %d trials (%+v): %v\n%s", study.ID, study.Name, n, c, b.err, b.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestWorkerUntilDone: a worker started before anything exists waits for
// the database and its study without creating either, trains the study's
// trials, keeps waiting while the study is open though nothing is left to
// claim (where --once would end), and exits 0 once it is complete.
func TestWorkerUntilDone(t *testing.T) {
	ctx := t.Context()
	db := filepath.Join(t.TempDir(), "u.db")
	w := startWorker(t, "--db", db, "--until-done", "--study-name", "mine", "--wait", "30s", "--poll", "20ms", "--workers", "1", "--threads", "1", "--name", "batch")
	time.Sleep(300 * time.Millisecond)
	if _, err := os.Stat(db); err == nil {
		t.Fatalf("the worker created %s; a worker never creates the database", db)
	}
	if w.ended(0) {
		t.Fatalf("the worker ended before the database existed: %v\n%s", w.err, w.log())
	}
	st, err := sqlite.Open(ctx, db, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	other := planNamed(t, st, "other", 1) // not ours: left alone
	time.Sleep(200 * time.Millisecond)
	mine := planNamed(t, st, "mine", 2)
	w.trains(t, st, mine, 2)
	// Nothing left to claim, but the study is still open: a coordinator
	// may plan more.
	if w.ended(500 * time.Millisecond) {
		t.Fatalf("the worker ended while its study was still running: %v\n%s", w.err, w.log())
	}
	if err := st.SetStudyStatus(ctx, mine.ID, store.StudyComplete); err != nil {
		t.Fatal(err)
	}
	if !w.ended(10 * time.Second) {
		t.Fatalf("the worker did not end once its study was complete\n%s", w.log())
	}
	if w.err != nil {
		t.Fatalf("worker: %v; want a clean exit\n%s", w.err, w.log())
	}
	for _, want := range []string{"waiting up to 30s for the coordinator to create effnas's tables", `waiting for a study named "mine"`, `study "mine" is complete; done`} {
		if !strings.Contains(w.log(), want) {
			t.Errorf("worker log lacks %q:\n%s", want, w.log())
		}
	}
	if c, _ := st.CountTrials(ctx, other.ID); c.Pending != 1 {
		t.Errorf("the other study's trials: %+v; want its one trial left pending", c)
	}
	for _, tr := range checkTrials(t, st, mine.ID, 2) {
		if tr.Worker != "batch" || tr.Attempt != 1 {
			t.Errorf("trial %d: worker %q attempt %d; want batch, 1", tr.Number, tr.Worker, tr.Attempt)
		}
	}
}

// TestWorkerUntilDoneEveryStudy: without --study-name, a worker ends when
// no study is open any more, and not while one is.
func TestWorkerUntilDoneEveryStudy(t *testing.T) {
	ctx := t.Context()
	db := filepath.Join(t.TempDir(), "e.db")
	st, err := sqlite.Open(ctx, db, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a := planNamed(t, st, "a", 1)
	b := planNamed(t, st, "b", 1)
	if err := st.SetStudyStatus(ctx, a.ID, store.StudyComplete); err != nil {
		t.Fatal(err)
	}
	w := startWorker(t, "--db", db, "--until-done", "--poll", "20ms", "--workers", "1", "--threads", "1")
	w.trains(t, st, b, 1)
	if w.ended(300 * time.Millisecond) {
		t.Fatalf("the worker ended while study b was open: %v\n%s", w.err, w.log())
	}
	if err := st.SetStudyStatus(ctx, b.ID, store.StudyStopped); err != nil {
		t.Fatal(err)
	}
	if !w.ended(10*time.Second) || w.err != nil {
		t.Fatalf("worker with no open study left: ended %v, %v; want a clean exit\n%s", w.ended(0), w.err, w.log())
	}
	if !strings.Contains(w.log(), "every open study is complete; done") {
		t.Errorf("worker log lacks the reason it ended:\n%s", w.log())
	}
}

// TestWorkerWaitRunsOut: what a worker says when what it waits for never
// comes, and that it created nothing meanwhile.
func TestWorkerWaitRunsOut(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	missing := filepath.Join(dir, "never.db")
	stopped := filepath.Join(dir, "stopped.db")
	st, err := sqlite.Open(ctx, stopped, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := planNamed(t, st, "halted", 1)
	if err := st.SetStudyStatus(ctx, s.ID, store.StudyFailed); err != nil {
		t.Fatal(err)
	}
	fast := []string{"--wait", "300ms", "--poll", "20ms", "--workers", "1", "--threads", "1"}
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"no database", []string{"--db", missing, "--until-done"}, []string{"database " + missing + ": it has no effnas tables", "after waiting 300ms", "never creates"}},
		{"no database, no wait", []string{"--db", missing, "--once"}, []string{"it has no effnas tables", "start the coordinator"}},
		{"no such study", []string{"--db", stopped, "--until-done", "--study-name", "typo"}, []string{`no study named "typo" appeared`, "--name"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			args := tc.args
			if tc.args[len(tc.args)-1] != "--once" {
				args = append(args, fast...)
			}
			_, err := runCmd(t, append([]string{"worker"}, args...)...)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q; want it to say %q", err, w)
				}
			}
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("took %v to give up after --wait 300ms", took)
			}
		})
	}
	if _, err := os.Stat(missing); err == nil {
		t.Errorf("a worker created %s", missing)
	}
	if c, _ := st.CountTrials(ctx, s.ID); c.Pending != 1 {
		t.Errorf("the failed study's trials %+v; want them untouched", c)
	}
}

// TestWorkerUntilDoneSecondSweep: a study of the same name that was over
// before the worker started is not its work: the worker waits for the new
// one (and ends cleanly if none comes within --wait); a study it watched
// that its coordinator stops makes it fail, once --wait has passed, saying
// how to resume it.
func TestWorkerUntilDoneSecondSweep(t *testing.T) {
	ctx := t.Context()
	db := filepath.Join(t.TempDir(), "again.db")
	st, err := sqlite.Open(ctx, db, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	first := planNamed(t, st, "sweep", 1)
	if err := st.SetStudyStatus(ctx, first.ID, store.StudyComplete); err != nil {
		t.Fatal(err)
	}
	fast := []string{"--db", db, "--until-done", "--study-name", "sweep", "--poll", "20ms", "--workers", "1", "--threads", "1"}

	// Nothing new comes: a clean end once --wait has passed, not before.
	start := time.Now()
	if _, err := runCmd(t, append([]string{"worker", "--wait", "400ms"}, fast...)...); err != nil {
		t.Fatalf("worker with only an old study of its name: %v; want a clean end", err)
	}
	if took := time.Since(start); took < 400*time.Millisecond {
		t.Fatalf("the worker ended after %v, before --wait 400ms: it took the old study for its own", took)
	}

	// A second sweep of the same name: the worker waits for it and trains it.
	w := startWorker(t, append([]string{"--wait", "30s"}, fast...)...)
	if w.ended(300 * time.Millisecond) {
		t.Fatalf("the worker ended on the earlier study of its name: %v\n%s", w.err, w.log())
	}
	second := planNamed(t, st, "sweep", 1)
	w.trains(t, st, second, 1)
	// Its coordinator fails it: the worker waits --wait for a resume, then
	// says what happened.
	if err := st.SetStudyStatus(ctx, second.ID, store.StudyFailed); err != nil {
		t.Fatal(err)
	}
	if w.ended(500 * time.Millisecond) {
		t.Fatalf("the worker ended at once on a failed study; want it to wait --wait for a resume: %v", w.err)
	}
	w.mu.Lock()
	log := w.stderr.String()
	w.mu.Unlock()
	if !strings.Contains(log, "to be resumed") {
		t.Errorf("the worker does not say it waits for a resume:\n%s", log)
	}
	if err := st.SetStudyStatus(ctx, second.ID, store.StudyComplete); err != nil {
		t.Fatal(err)
	}
	if !w.ended(10*time.Second) || w.err != nil {
		t.Fatalf("worker after the second study completed: %v\n%s", w.err, w.log())
	}
	if c, _ := st.CountTrials(ctx, first.ID); c.Pending != 1 {
		t.Errorf("the first study's trials %+v; want them untouched", c)
	}
}

// TestWorkerUntilDoneFastCoordinator: a study that was created and
// completed while the worker waited for the tables is the worker's own,
// however quickly it finished: the worker ends at once, not after --wait.
func TestWorkerUntilDoneFastCoordinator(t *testing.T) {
	ctx := t.Context()
	db := filepath.Join(t.TempDir(), "fast.db")
	w := startWorker(t, "--db", db, "--until-done", "--study-name", "quick", "--wait", "30s", "--poll", "300ms", "--workers", "1", "--threads", "1")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(w.log(), "waiting up to") {
		if time.Now().After(deadline) || w.ended(0) {
			t.Fatalf("the worker did not wait for the tables: %v\n%s", w.err, w.log())
		}
		time.Sleep(10 * time.Millisecond)
	}
	st, err := sqlite.Open(ctx, db, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := planNamed(t, st, "quick", 1)
	if err := st.SetStudyStatus(ctx, s.ID, store.StudyComplete); err != nil {
		t.Fatal(err)
	}
	if !w.ended(10*time.Second) || w.err != nil {
		t.Fatalf("worker after its study completed while it waited: ended %v, %v; want a clean end at once\n%s", w.ended(0), w.err, w.log())
	}
}

// TestWorkerGivesUpOnFailedStudy: a study the worker watched, failed and
// never resumed, ends the worker with an error saying how to resume it.
func TestWorkerGivesUpOnFailedStudy(t *testing.T) {
	ctx := t.Context()
	db := filepath.Join(t.TempDir(), "f.db")
	st, err := sqlite.Open(ctx, db, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := planNamed(t, st, "halted", 1)
	w := startWorker(t, "--db", db, "--until-done", "--study-name", "halted", "--wait", "400ms", "--poll", "20ms", "--workers", "1", "--threads", "1")
	w.trains(t, st, s, 1)
	if err := st.SetStudyStatus(ctx, s.ID, store.StudyFailed); err != nil {
		t.Fatal(err)
	}
	if !w.ended(10 * time.Second) {
		t.Fatalf("the worker still waits for a failed study long after --wait\n%s", w.log())
	}
	for _, want := range []string{`study 1 ("halted") is failed and was not resumed within --wait 400ms`, "effnas resume --study 1 --db " + db} {
		if w.err == nil || !strings.Contains(w.err.Error(), want) {
			t.Errorf("worker: %v; want it to say %q", w.err, want)
		}
	}
}

// TestWorkerWaitsForPostgresSchema: on a PostgreSQL database without
// effnas's tables, a worker creates none, and its error names the database
// without the password.
func TestWorkerWaitsForPostgresSchema(t *testing.T) {
	url := testenv.PostgresSchema(t, testenv.PostgresPasswordURL(t))
	_, err := runCmd(t, "worker", "--db", url, "--until-done", "--wait", "200ms", "--poll", "50ms")
	if err == nil || !strings.Contains(err.Error(), "it has no effnas tables") || !strings.Contains(err.Error(), "xxxxx@127.0.0.1") {
		t.Fatalf("worker on an empty PostgreSQL schema: %v; want an error naming the database, password hidden", err)
	}
	if strings.Contains(err.Error(), "pw-Secret") {
		t.Fatalf("the error shows the password: %v", err)
	}
	if ok, err := postgres.HasSchema(t.Context(), url); err != nil || ok {
		t.Fatalf("after the worker: HasSchema %v, %v; want no tables", ok, err)
	}
	// The pool's settings in a URL are the pool's, not the server's.
	if ok, err := postgres.HasSchema(t.Context(), url+"&pool_max_conns=4"); err != nil || ok {
		t.Fatalf("HasSchema of a URL with pool_max_conns: %v, %v; want no tables and no error", ok, err)
	}
	// A password the server refuses: the reason is given, the password is not.
	bad := strings.Replace(url, "pw-Secret-4711", "wrong-Secret-99", 1)
	_, err = runCmd(t, "worker", "--db", bad, "--until-done", "--wait", "100ms", "--poll", "50ms")
	if err == nil || !strings.Contains(err.Error(), "password authentication failed") || strings.Contains(err.Error(), "wrong-Secret") {
		t.Fatalf("worker with a wrong password: %v; want the server's reason without the password", err)
	}
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()").Scan(&n); err != nil || n != 0 {
		t.Fatalf("tables in the worker's schema: %d, %v; want none", n, err)
	}
}

// TestEmptyDB: an empty or unexpanded database name is refused, naming
// EFFNAS_DB, before anything is written; no effnas.db appears.
func TestEmptyDB(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, tc := range []struct {
		name string
		env  *string
		args []string
		want string
	}{
		{"empty flag", nil, []string{"search", "--db", ""}, `--db is empty: want the database that keeps the study, e.g. --db effnas.db; in a script, --db "$EFFNAS_DB" with EFFNAS_DB unset or empty gives this`},
		{"empty flag, worker", nil, []string{"worker", "--db", ""}, `--db is empty`},
		{"empty flag, show", nil, []string{"show", "--db", ""}, `--db is empty`},
		{"kubernetes", nil, []string{"worker", "--db", "$(EFFNAS_DB)", "--until-done", "--no-such-flag"}, `"$(EFFNAS_DB)" is a variable reference nobody expanded: EFFNAS_DB is not set where this command runs`},
		{"braces", nil, []string{"grid", "--db", "${EFFNAS_DB}", "--no-such-flag"}, `EFFNAS_DB is not set`},
		{"bare", nil, []string{"search", "--db", "$MY_DB", "--no-such-flag"}, `MY_DB is not set`},
		{"empty variable", ptr(""), []string{"search", "--trials", "1"}, "EFFNAS_DB is set but empty"},
		{"empty variable, worker", ptr(""), []string{"worker", "--once"}, "EFFNAS_DB is set but empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != nil {
				t.Setenv(envDB, *tc.env)
			}
			_, err := runCmd(t, tc.args...)
			var u *usageError
			if err == nil || !errors.As(err, &u) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v: %v; want a usage error saying %q", tc.args, err, tc.want)
			}
			if ents, _ := os.ReadDir("."); len(ents) > 0 {
				t.Fatalf("%v wrote %s", tc.args, ents[0].Name())
			}
		})
	}
	// (The refusal comes as --db is parsed: the unknown flag after it is
	// never reached.)
	// A path that only looks like a variable is a path.
	if err := (&dbName{}).Set("$(EFFNAS_DB)x"); err != nil {
		t.Errorf("Set(%q): %v; want it taken as a file name", "$(EFFNAS_DB)x", err)
	}
}

// TestWorkerWaitBoundsEachLook: a server that accepts and never answers
// cannot hold a worker past --wait.
func TestWorkerWaitBoundsEachLook(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // accepted, never answered
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	}()
	start := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second) // a hung look fails the test, not CI
	defer cancel()
	err = Run(ctx, &Env{Stdout: io.Discard, Stderr: io.Discard}, []string{"worker", "--db", "postgres://effnas@" + ln.Addr().String() + "/effnas?sslmode=disable", "--until-done", "--wait", "1s", "--poll", "100ms"})
	if err == nil || !strings.Contains(err.Error(), "after waiting 1s") {
		t.Fatalf("worker against a silent server: %v; want it to give up after --wait", err)
	}
	if took := time.Since(start); took > 8*time.Second {
		t.Fatalf("the worker gave up %v after starting with --wait 1s: a look outlasted the wait", took)
	}
}
