package main

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/effnas/effnas/internal/testenv"
	"github.com/effnas/effnas/store"
)

// screenArgs are a tiny one-shot search: 40 candidates screened on a
// supernet of 60 steps, the best 3 trained at one rung.
func screenArgs(db string, more ...string) []string {
	args := append([]string{"search", "--db", db, "--trials", "3", "--seed", "3", "--screen", "40", "--supernet-steps", "60",
		"--checkpoint-every", "20", "--score-calib", "2", "--score-images", "64"}, tiny...)
	return append(args, more...)
}

// screenShown is what show --json says of a screening.
type screenShown struct {
	Screened int `json:"screened"`
	Supernet *struct {
		Steps       int     `json:"steps"`
		Budget      int     `json:"budget"`
		Checkpoints int     `json:"checkpoints"`
		Seconds     float64 `json:"seconds"`
		Done        bool    `json:"done"`
		// ScoreSeconds is the scoring's time, summed over resumes.
		ScoreSeconds float64 `json:"score_seconds"`
	} `json:"supernet"`
	Screening *struct {
		Screened int `json:"screened"`
		Promoted int `json:"promoted"`
		K        int `json:"k"`
		V        int `json:"v"`
	} `json:"screening"`
	Trials []struct {
		Key  string `json:"key"`
		Rung int    `json:"rung"`
	} `json:"trials"`
}

func showScreen(t *testing.T, db string) screenShown {
	t.Helper()
	out, err := runCmd(t, "show", "--db", db, "--json")
	if err != nil {
		t.Fatalf("show: %v", err)
	}
	var s screenShown
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// screenedOf returns the newest study's screened candidates and trials.
func screenedOf(t *testing.T, db string) ([]store.Screened, []store.Trial) {
	t.Helper()
	st := openBenchTestDB(t, db)
	study, err := st.LatestStudy(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	rows, err := st.Screened(t.Context(), study.ID)
	if err != nil {
		t.Fatal(err)
	}
	trials, err := st.Trials(t.Context(), study.ID)
	if err != nil {
		t.Fatal(err)
	}
	return rows, trials
}

// TestSearchScreen: search --screen scores N candidates on a supernet,
// records them apart from the trials with their scores and checkpoint,
// and sends the best --trials by reward to rung 0, which keeps its
// meaning; show --json reports screened and supernet; the screening is
// reproducible from the seed; on SQLite and PostgreSQL.
func TestSearchScreen(t *testing.T) {
	// A binary of its own: under the race detector an in-process
	// supernet trains ten times slower.
	bin := buildEffnas(t)
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			db := func() string {
				if backend == "postgres" {
					return testenv.PostgresSchema(t, testenv.PostgresURL(t))
				}
				return filepath.Join(t.TempDir(), "s.db")
			}
			// Two runs on SQLite check that the screening is
			// reproducible; one on PostgreSQL suffices.
			a, b := db(), ""
			runs := []string{a}
			if backend == "sqlite" {
				b = db()
				runs = append(runs, b)
			}
			for _, d := range runs {
				if out, err := exec.Command(bin, screenArgs(d, "--workers", "2", "--json")...).CombinedOutput(); err != nil {
					t.Fatalf("search --screen: %v\n%s", err, out)
				}
			}
			s := showScreen(t, a)
			if s.Screened != 40 || s.Supernet == nil || s.Screening == nil {
				t.Fatalf("show --json: screened %d, supernet %v, screening %v; want 40 and both", s.Screened, s.Supernet, s.Screening)
			}
			if sn := s.Supernet; sn.Steps != 60 || sn.Budget != 60 || sn.Checkpoints != 3 || sn.Seconds <= 0 || !sn.Done {
				t.Errorf("supernet %+v: want 60 of 60 steps, 3 checkpoints, seconds > 0, done", *sn)
			}
			if sc := s.Screening; sc.Promoted != 3 || sc.K != 2 || sc.V != 64 {
				t.Errorf("screening %+v: want 3 promoted, K 2, V 64", *sc)
			}
			rows, trials := screenedOf(t, a)
			if len(rows) != 40 || len(trials) != 3 {
				t.Fatalf("%d screened and %d trials; want 40 screened apart from 3 trials", len(rows), len(trials))
			}
			byReward := slices.Clone(rows)
			slices.SortStableFunc(byReward, func(x, y store.Screened) int { return cmp.Compare(y.Reward, x.Reward) })
			var top, promoted, rung0 []string
			for i, r := range byReward {
				if i < 3 {
					top = append(top, r.Key)
				}
				if r.Promoted {
					promoted = append(promoted, r.Key)
				}
				if r.Step != 60 || r.Score <= 0 || r.Score > 1 || len(r.Blocks) == 0 {
					t.Errorf("screened %d: step %d score %v blocks %v; want the step-60 checkpoint and a score in (0, 1]", r.Number, r.Step, r.Score, r.Blocks)
				}
			}
			for _, tr := range trials {
				if tr.Rung == 0 {
					rung0 = append(rung0, tr.Key)
				}
			}
			slices.Sort(top)
			slices.Sort(promoted)
			slices.Sort(rung0)
			if !slices.Equal(top, promoted) || !slices.Equal(promoted, rung0) {
				t.Errorf("the best 3 by reward %v, promoted %v, rung 0 %v: want the same", top, promoted, rung0)
			}

			if b == "" {
				return
			}
			other, otherTrials := screenedOf(t, b)
			same := func(x, y store.Screened) bool {
				return x.Number == y.Number && x.Key == y.Key && x.Score == y.Score && x.Reward == y.Reward && x.Promoted == y.Promoted
			}
			if !slices.EqualFunc(rows, other, same) {
				t.Error("two screenings with the same seed differ")
			}
			if len(otherTrials) != 3 {
				t.Errorf("the second study has %d trials", len(otherTrials))
			}
		})
	}
}

// TestSearchWithoutScreen: a search without --screen reports screened 0
// and supernet null.
func TestSearchWithoutScreen(t *testing.T) {
	db := filepath.Join(t.TempDir(), "p.db")
	if _, err := runCmd(t, append([]string{"search", "--db", db, "--trials", "1", "--workers", "1"}, tiny...)...); err != nil {
		t.Fatal(err)
	}
	out, err := runCmd(t, "show", "--db", db, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatal(err)
	}
	if string(raw["screened"]) != "0" || string(raw["supernet"]) != "null" {
		t.Errorf("screened %s, supernet %s; want 0 and null", raw["screened"], raw["supernet"])
	}
}

// TestSearchScreenBadInput: bad screening settings are refused with a
// usage error naming them, before anything is written.
func TestSearchScreenBadInput(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--screen", "-1"}, "--screen -1"},
		{[]string{"--screen", "2", "--trials", "3"}, "smaller than trials 3"},
		{[]string{"--supernet-steps", "10"}, "give --screen"},
		{[]string{"--score-images", "100"}, "give --screen"},
		{[]string{"--screen", "40", "--supernet-steps", "0"}, "--supernet-steps 0"},
		{[]string{"--screen", "40", "--checkpoint-every", "-5"}, "--checkpoint-every -5"},
		{[]string{"--screen", "40", "--score-calib", "0"}, "--score-calib 0"},
		{[]string{"--screen", "100", "--supernet-warmup", "2"}, "warm-up 2"},
		{[]string{"--supernet-warmup", "0.5"}, "give --screen"},
		{[]string{"--screen", "100", "--score-calib", "9"}, "lower --score-calib"},
	} {
		db := filepath.Join(t.TempDir(), "bad.db")
		_, err := runCmd(t, append(append([]string{"search", "--db", db}, tiny...), c.args...)...)
		var u *usageError
		if !errors.As(err, &u) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want a usage error naming %q", c.args, err, c.want)
		}
		if _, err := os.Stat(db); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%v: the database was written", c.args)
		}
	}
}

// holdSQLiteWrites takes SQLite's write lock on path until release: the
// supernet's next checkpoint waits for it, so a kill lands between two
// checkpoints however fast the machine trains.
func holdSQLiteWrites(t *testing.T, path string) (release func()) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_txlock=immediate&_busy_timeout=30000")
	if err != nil {
		t.Fatal(err)
	}
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	done := false
	release = func() {
		if !done {
			done = true
			tx.Rollback()
			db.Close()
		}
	}
	t.Cleanup(release)
	return release
}

// supernetStep returns the step of the newest study's supernet
// checkpoint (-1 before its first claim).
func supernetStep(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var step int
	err = db.QueryRow("SELECT step FROM supernets ORDER BY study_id DESC LIMIT 1").Scan(&step)
	if errors.Is(err, sql.ErrNoRows) || (err != nil && strings.Contains(err.Error(), "no such table")) {
		return -1
	}
	if err != nil {
		t.Fatal(err)
	}
	return step
}

var (
	snResumed = regexp.MustCompile(`^supernet: resuming from the checkpoint at step (\d+) of`)
	snFresh   = regexp.MustCompile(`^supernet: training \d+ steps`)
)

// TestSearchScreenKillResume: a search killed (kill -9) while it trains
// its supernet resumes from the last checkpoint in the database, losing
// at most one interval; one killed before its first checkpoint starts
// the training again. Either way, with one worker, the resumed supernet
// ends bit for bit as an uninterrupted one's, and so does the screening.
func TestSearchScreenKillResume(t *testing.T) {
	bin := buildEffnas(t)
	args := func(db string) []string {
		return screenArgs(db, "--workers", "1", "--threads", "1", "--supernet-steps", "120", "--checkpoint-every", "20")
	}
	dir := t.TempDir()
	straight := filepath.Join(dir, "straight.db")
	if out, err := exec.Command(bin, args(straight)...).CombinedOutput(); err != nil {
		t.Fatalf("uninterrupted search: %v\n%s", err, out)
	}
	want := lastCheckpoint(t, straight)
	wantRows, _ := screenedOf(t, straight)

	for _, c := range []struct {
		name  string
		after int // the kill comes once this checkpoint is saved (0: before the first)
	}{{"mid-training", 40}, {"before-first-checkpoint", 0}} {
		t.Run(c.name, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "killed.db")
			p := startProc(t, bin, "search", args(db)...)
			p.WaitFor(snFresh, 1, time.Minute)
			deadline := time.Now().Add(time.Minute)
			for supernetStep(t, db) < c.after {
				if time.Now().After(deadline) {
					t.Fatalf("no checkpoint at step %d within a minute:\n%s", c.after, p.Log())
				}
				time.Sleep(5 * time.Millisecond)
			}
			release := holdSQLiteWrites(t, db) // the next checkpoint waits
			held := supernetStep(t, db)
			if err := p.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			p.Wait(10 * time.Second)
			release()
			if held >= 120 {
				t.Fatalf("the supernet finished (step %d) before the kill", held)
			}
			out, err := exec.Command(bin, "resume", "--db", db, "--workers", "1", "--threads", "1").CombinedOutput()
			if err != nil {
				t.Fatalf("resume: %v\n%s", err, out)
			}
			log := string(out)
			if c.after == 0 && held <= 0 {
				if !snFresh.MatchString(firstLine(log, "supernet:")) {
					t.Errorf("killed before its first checkpoint: want a fresh start, got:\n%s", log)
				}
			} else if m := snResumed.FindStringSubmatch(firstLine(log, "supernet:")); m == nil || m[1] != strconv.Itoa(held) {
				t.Errorf("killed with the checkpoint at step %d: want a resume from it, got:\n%s", held, log)
			}
			got := lastCheckpoint(t, db)
			if !got.Done || got.Step != 120 || !slices.Equal(got.Weights, want.Weights) {
				t.Errorf("resumed supernet: step %d done %v, weights equal %v; want step 120, done, the uninterrupted weights",
					got.Step, got.Done, slices.Equal(got.Weights, want.Weights))
			}
			if got.Seconds <= 0 || got.Checkpoints < 6 {
				t.Errorf("resumed supernet: %v seconds, %d checkpoints", got.Seconds, got.Checkpoints)
			}
			rows, _ := screenedOf(t, db)
			if !slices.EqualFunc(rows, wantRows, func(x, y store.Screened) bool { return x.Key == y.Key && x.Score == y.Score }) {
				t.Error("the resumed study's screening differs from the uninterrupted one's")
			}
		})
	}
}

// TestSearchScreenForeignCheckpoint: a supernet checkpoint that says it
// was trained at another proxy is refused on resume, and left as it is.
func TestSearchScreenForeignCheckpoint(t *testing.T) {
	bin := buildEffnas(t)
	db := filepath.Join(t.TempDir(), "f.db")
	p := startProc(t, bin, "search", screenArgs(db, "--workers", "1", "--supernet-steps", "120", "--checkpoint-every", "20")...)
	p.WaitFor(snFresh, 1, time.Minute)
	deadline := time.Now().Add(time.Minute)
	for supernetStep(t, db) < 20 {
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint within a minute:\n%s", p.Log())
		}
		time.Sleep(5 * time.Millisecond)
	}
	release := holdSQLiteWrites(t, db)
	p.Cmd.Process.Signal(syscall.SIGKILL)
	p.Wait(10 * time.Second)
	release()
	sdb, err := sql.Open("sqlite3", "file:"+db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sdb.Exec(`UPDATE supernets SET meta = CAST(replace(CAST(meta AS TEXT), '"res":16', '"res":24') AS BLOB)`); err != nil {
		t.Fatal(err)
	}
	sdb.Close()
	before := lastCheckpoint(t, db)
	out, err := exec.Command(bin, "resume", "--db", db, "--workers", "1").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "another proxy") {
		t.Fatalf("resume from a checkpoint of another proxy: %v\n%s", err, out)
	}
	after := lastCheckpoint(t, db)
	if after.Step != before.Step || !slices.Equal(after.Weights, before.Weights) {
		t.Error("the refused checkpoint was changed")
	}
}

// lastCheckpoint returns the newest study's supernet checkpoint.
func lastCheckpoint(t *testing.T, db string) store.SupernetCheckpoint {
	t.Helper()
	st := openBenchTestDB(t, db)
	ctx := context.Background()
	study, err := st.LatestStudy(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	ck, err := st.Supernet(ctx, study.ID)
	if err != nil {
		t.Fatal(err)
	}
	return ck
}

// firstLine returns the first line of log that starts with prefix.
func firstLine(log, prefix string) string {
	for _, l := range strings.Split(log, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

var (
	snTakeover = regexp.MustCompile(`^study \d+ supernet: taking its training over from the checkpoint at step (\d+) of`)
	snTrained  = regexp.MustCompile(`^study \d+ supernet: trained`)
)

// TestWorkerTakesOverSupernet: on PostgreSQL, when the process training a
// study's supernet dies (kill -9), an effnas worker takes the training
// over from the last checkpoint once its lease lapses and finishes it; a
// resumed coordinator then scores and runs the study to its end, which
// the --until-done worker sees.
func TestWorkerTakesOverSupernet(t *testing.T) {
	bin := buildEffnas(t)
	db := testenv.PostgresSchema(t, testenv.PostgresURL(t))
	args := screenArgs(db, "--name", "oneshot", "--lease", "3s", "--workers", "1", "--threads", "1", "--supernet-steps", "200", "--checkpoint-every", "25")
	coord := startProc(t, bin, "coordinator", args...)
	coord.WaitFor(snFresh, 1, time.Minute)
	st := openBenchTestDB(t, db)
	ctx := t.Context()
	study, err := st.LatestStudy(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		ck, err := st.SupernetInfo(ctx, study.ID)
		if err == nil && ck.Step >= 25 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint within a minute:\n%s", coord.Log())
		}
		time.Sleep(10 * time.Millisecond)
	}
	coord.Cmd.Process.Signal(syscall.SIGKILL)
	coord.Wait(10 * time.Second)
	held, err := st.SupernetInfo(ctx, study.ID)
	if err != nil {
		t.Fatal(err)
	}
	if held.Done {
		t.Fatal("the supernet finished before the kill")
	}

	w := startProc(t, bin, "worker", "worker", "--db", db, "--until-done", "--study-name", "oneshot", "--lease", "3s",
		"--workers", "1", "--threads", "1", "--wait", "1m")
	m := w.WaitFor(snTakeover, 1, 30*time.Second)
	if got := snTakeover.FindStringSubmatch(m[0]); got[1] != strconv.Itoa(held.Step) {
		t.Errorf("the worker took over from step %s; the last checkpoint was at step %d", got[1], held.Step)
	}
	w.WaitFor(snTrained, 1, 2*time.Minute)
	ck, err := st.SupernetInfo(ctx, study.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !ck.Done || ck.Step != 200 || ck.Holder != w.Worker() || ck.Checkpoints != 8 {
		t.Errorf("after the takeover: step %d done %v holder %q checkpoints %d; want 200, done, %q, 8", ck.Step, ck.Done, ck.Holder, ck.Checkpoints, w.Worker())
	}
	out, err := exec.Command(bin, "resume", "--db", db, "--study", strconv.FormatInt(study.ID, 10), "--workers", "1").CombinedOutput()
	if err != nil {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "supernet: resuming") || strings.Contains(string(out), "supernet: training") {
		t.Errorf("the resumed coordinator trained the supernet again:\n%s", out)
	}
	if code := w.Wait(time.Minute); code != 0 {
		t.Errorf("the --until-done worker exited %d:\n%s", code, w.Log())
	}
	if n, err := st.CountScreened(ctx, study.ID); err != nil || n != 40 {
		t.Errorf("%d screened (%v); want 40", n, err)
	}
}

// TestSearchScreenInterruptScoring: Ctrl-C while candidates are scored
// stops the study (exit 130, status stopped, a resume hint), and the
// resumed screening scores exactly the candidates an uninterrupted one
// does (the controller's state is saved with each chunk), with its
// scoring time kept.
func TestSearchScreenInterruptScoring(t *testing.T) {
	bin := buildEffnas(t)
	args := func(db string) []string {
		return screenArgs(db, "--workers", "1", "--threads", "1", "--screen", "96")
	}
	straight := filepath.Join(t.TempDir(), "straight.db")
	if out, err := exec.Command(bin, args(straight)...).CombinedOutput(); err != nil {
		t.Fatalf("uninterrupted search: %v\n%s", err, out)
	}
	want, _ := screenedOf(t, straight)

	db := filepath.Join(t.TempDir(), "int.db")
	p := startProc(t, bin, "search", args(db)...)
	p.WaitFor(snFresh, 1, time.Minute)
	deadline := time.Now().Add(time.Minute)
	for countScreened(t, db) < 32 {
		if time.Now().After(deadline) {
			t.Fatalf("no chunk scored within a minute:\n%s", p.Log())
		}
		time.Sleep(2 * time.Millisecond)
	}
	release := holdSQLiteWrites(t, db) // the next chunk waits: the interrupt lands mid-scoring
	if n := countScreened(t, db); n >= 96 {
		t.Fatalf("all %d scored before the interrupt", n)
	}
	p.Signal(syscall.SIGINT)
	time.Sleep(200 * time.Millisecond)
	release()
	if code := p.Wait(time.Minute); code != 130 {
		t.Fatalf("interrupted while scoring: exit %d, want 130:\n%s", code, p.Log())
	}
	if !strings.Contains(p.Log(), "resume") {
		t.Errorf("no resume hint:\n%s", p.Log())
	}
	st := openBenchTestDB(t, db)
	study, err := st.LatestStudy(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	if study.Status != store.StudyStopped {
		t.Errorf("status %s after the interrupt, want stopped", study.Status)
	}
	if out, err := exec.Command(bin, "resume", "--db", db, "--workers", "1", "--threads", "1").CombinedOutput(); err != nil {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	got, _ := screenedOf(t, db)
	if !slices.EqualFunc(got, want, func(x, y store.Screened) bool {
		return x.Key == y.Key && x.Score == y.Score && x.Promoted == y.Promoted
	}) {
		t.Error("the resumed screening scored other candidates than the uninterrupted one")
	}
	s := showScreen(t, db)
	if s.Supernet == nil || s.Supernet.ScoreSeconds <= 0 {
		t.Errorf("supernet %+v: want the scoring time kept", s.Supernet)
	}
}

// countScreened counts the newest study's screened candidates (0 before
// the table exists).
func countScreened(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM screened").Scan(&n); err != nil {
		return 0
	}
	return n
}
