package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/effnas/effnas/internal/testenv"
	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/store/sqlite"
)

// tiny are proxy flags small enough for tests: real MNIST, real training.
var tiny = []string{"--train-size", "256", "--val-size", "128", "--test-size", "64", "--proxy-width", "0.25", "--proxy-res", "16", "--batch", "32", "--rungs", "1", "--top-seeds", "1"}

func TestSearchBadFlagsWriteNothing(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "s.db")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--trials", "0"}, "--trials 0"},
		{[]string{"--workers", "0"}, "--workers 0"},
		{[]string{"--controller", "bayes"}, `--controller "bayes"`},
		{[]string{"--proxy-width", "-1"}, "--proxy-width -1"},
		{[]string{"--proxy-res", "0"}, "--proxy-res 0"},
		{[]string{"--w", "0.5"}, "--w 0.5"},
		{[]string{"--target-flops", "lots"}, "--target-flops"},
		{[]string{"--max-flops", "-5"}, "--max-flops"},
		{[]string{"--epochs", "0"}, "--epochs 0"},
		{[]string{"--space", filepath.Join(dir, "missing.json")}, "--space"},
		{[]string{"--optimizer", "lbfgs"}, "lbfgs"},
		{[]string{"--trials", "x"}, "-trials"},
		{[]string{"stray"}, "stray"},
		{[]string{"--rungs", "0"}, "--rungs 0"},
		{[]string{"--eta", "1.5"}, "--eta 1.5"},
		{[]string{"--top-seeds", "0"}, "--top-seeds 0"},
		{[]string{"--max-memory", "lots"}, "--max-memory"},
		{[]string{"--train-size", "300", "--epochs", "1", "--rungs", "4"}, "fewer than one batch"},
		{[]string{"--train-size", "2", "--epochs", "1", "--batch", "1", "--rungs", "3", "--eta", "2"}, "do not increase"},
		{[]string{"--train-size", "-1", "--rungs", "2"}, "--rungs 1"},
	} {
		_, err := runCmd(t, append([]string{"search", "--db", db}, tc.args...)...)
		var u *usageError
		if err == nil || !errors.As(err, &u) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("search %v: error %v; want a usage error naming %q", tc.args, err, tc.want)
		}
		if _, err := os.Stat(db); err == nil {
			t.Fatalf("search %v: created %s despite the bad flag", tc.args, db)
		}
	}
}

func TestGridAndResumeBadFlags(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "g.db")
	for _, args := range [][]string{
		{"grid", "--db", db, "--max", "0.9"},
		{"grid", "--db", db, "--step", "0"},
		{"grid", "--db", db, "--tolerance", "-1"},
		{"grid", "--db", db, "--max", "1.05", "--tolerance", "0.01"}, // empty grid
		{"grid", "--db", db, "--dimension", "height"},
		{"grid", "--db", db, "--from", "1", "--blocks", "r1_k3_s11_e1_i32_o16"},
		{"grid", "--db", db, "--blocks", "r1_k3_s33_e1_i32_o16"},
		{"grid", "--db", db}, // no database: nothing to take the base from
		{"resume", "--db", db},
		{"resume", "--db", db, "--workers", "0"},
	} {
		if _, err := runCmd(t, args...); err == nil {
			t.Errorf("%v: no error", args)
		}
		if _, err := os.Stat(db); err == nil {
			t.Fatalf("%v: created %s", args, db)
		}
	}
}

// TestSearchGridExportEndToEnd runs the whole recipe in process on tiny
// proxies: search, grid from its best network, export.
func TestSearchGridExportEndToEnd(t *testing.T) {
	db := filepath.Join(t.TempDir(), "e2e.db")
	out, err := runCmd(t, append([]string{"search", "--db", db, "--trials", "3", "--workers", "2", "--json"}, tiny...)...)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Study    int64 `json:"study"`
		Complete bool  `json:"complete"`
		Best     *struct {
			Blocks   []string `json:"blocks"`
			Params   int64    `json:"params"`
			FLOPs    int64    `json:"flops"`
			Accuracy float64  `json:"accuracy"`
		} `json:"best"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("search --json: %v\n%s", err, out)
	}
	if !rep.Complete || rep.Best == nil || len(rep.Best.Blocks) != 7 || rep.Best.Params <= 0 || rep.Best.FLOPs <= 0 {
		t.Fatalf("search report: %s", out)
	}
	out, err = runCmd(t, append([]string{"grid", "--db", db, "--step", "0.2", "--tolerance", "0.05", "--json"}, tiny...)...)
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		Status string `json:"status"`
		Best   *struct {
			Alpha, Beta, Gamma float64
		} `json:"best"`
		Points []json.RawMessage `json:"points"`
		Family []json.RawMessage `json:"family"`
	}
	if err := json.Unmarshal([]byte(out), &g); err != nil {
		t.Fatalf("grid --json: %v\n%s", err, out)
	}
	if g.Status != "complete" || g.Best == nil || len(g.Family) != 7 || len(g.Points) < 2 {
		t.Fatalf("grid report: %s", out)
	}
	out, err = runCmd(t, "export", "--db", db, "--format", "json")
	if err != nil {
		t.Fatal(err)
	}
	var ex struct {
		B0 struct {
			Blocks []string `json:"blocks"`
		} `json:"b0"`
		Coefficients struct {
			Alpha, Beta, Gamma float64
		} `json:"coefficients"`
	}
	if err := json.Unmarshal([]byte(out), &ex); err != nil {
		t.Fatal(err)
	}
	if strings.Join(ex.B0.Blocks, " ") != strings.Join(rep.Best.Blocks, " ") {
		t.Errorf("export b0 %v, search found %v", ex.B0.Blocks, rep.Best.Blocks)
	}
	if ex.Coefficients.Alpha != g.Best.Alpha || ex.Coefficients.Beta != g.Best.Beta || ex.Coefficients.Gamma != g.Best.Gamma {
		t.Errorf("export coefficients %+v, grid found %+v", ex.Coefficients, *g.Best)
	}
	// show names the grid's winner too.
	out, err = runCmd(t, "show", "--db", db, "--json")
	var sh struct {
		Best *struct {
			Alpha, Beta, Gamma float64
		} `json:"best"`
	}
	if err != nil || json.Unmarshal([]byte(out), &sh) != nil || sh.Best == nil {
		t.Fatalf("show --json of the grid: %v\n%s", err, out)
	}
	if *sh.Best != *g.Best {
		t.Errorf("show's best point %+v, grid's %+v", *sh.Best, *g.Best)
	}
}

// buildEffnas builds the command once for the process tests.
func buildEffnas(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		built.bin = filepath.Join(binDir, "effnas")
		built.out, built.err = exec.Command("go", "build", "-o", built.bin, ".").CombinedOutput()
	})
	if built.err != nil {
		t.Fatalf("go build: %v\n%s", built.err, built.out)
	}
	return built.bin
}

// built is the effnas binary the package's tests run, built once (in
// binDir, which TestMain removes).
var built struct {
	once sync.Once
	bin  string
	out  []byte
	err  error
}

var binDir string

func TestMain(m *testing.M) {
	var err error
	if binDir, err = os.MkdirTemp("", "effnas-test-bin"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(binDir)
	os.Exit(code)
}

// TestCtrlCAndResume sends SIGINT to a real search process while it
// trains, checks that it exits with 130 and leaves its trials interrupted,
// then resumes the study to exactly its budget.
func TestCtrlCAndResume(t *testing.T) {
	bin := buildEffnas(t)
	db := filepath.Join(t.TempDir(), "c.db")
	args := append([]string{"search", "--db", db, "--trials", "3", "--workers", "2", "--epochs", "3"}, tiny...)
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		log.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), ": training") {
			break
		}
	}
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() {
		log.WriteString(sc.Text() + "\n")
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("after SIGINT: %v; want exit status 130\n%s", err, log.String())
	}
	if el := time.Since(start); el > 20*time.Second {
		t.Errorf("took %v to stop after SIGINT", el)
	}
	if !strings.Contains(log.String(), "effnas resume --db") {
		t.Errorf("no resume hint in:\n%s", log.String())
	}
	if strings.Contains(log.String(), "panic") || strings.Contains(log.String(), "goroutine ") {
		t.Errorf("panic trace after SIGINT:\n%s", log.String())
	}
	show := func() (states map[string]int) {
		out, err := exec.Command(bin, "show", "--db", db, "--json").Output()
		if err != nil {
			t.Fatal(err)
		}
		var s struct {
			Trials []struct {
				State string `json:"state"`
			} `json:"trials"`
		}
		if err := json.Unmarshal(out, &s); err != nil {
			t.Fatal(err)
		}
		states = map[string]int{}
		for _, tr := range s.Trials {
			states[tr.State]++
		}
		return states
	}
	if s := show(); s["interrupted"] == 0 || s["running"] != 0 {
		t.Errorf("after SIGINT the trials are %v; want interrupted ones and none running", s)
	}
	out, err := exec.Command(bin, "resume", "--db", db).CombinedOutput()
	if err != nil {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	if s := show(); s["complete"]+s["failed"] != 3 || len(s) > 2 {
		t.Errorf("after resume the trials are %v; want exactly 3 finished", s)
	}
}

// TestSearchRefusesTooBigCandidate: a candidate that would need more memory
// than the machine has (width 4 at 512x512, batch 256: hundreds of GiB) is
// recorded as failed, saying why, without building anything; the process
// does not die and the study completes. Before, Go's out-of-memory death
// left the trial running and crashed every resume.
func TestSearchRefusesTooBigCandidate(t *testing.T) {
	db := filepath.Join(t.TempDir(), "big.db")
	out, err := runCmd(t, "search", "--db", db, "--trials", "1", "--batch", "256", "--proxy-res", "512", "--proxy-width", "4",
		"--train-size", "256", "--val-size", "64", "--test-size", "64", "--rungs", "1", "--top-seeds", "1", "--workers", "1", "--json")
	if err != nil {
		t.Fatalf("search: %v\n%s", err, out)
	}
	st, err := sqlite.Open(t.Context(), db, sqlite.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	trials, err := st.Trials(t.Context(), 1)
	if err != nil || len(trials) != 1 {
		t.Fatalf("%d trials, %v; want 1", len(trials), err)
	}
	tr := trials[0]
	if tr.State != store.TrialFailed || !strings.Contains(tr.Error, "rejected before training") || !strings.Contains(tr.Error, "GiB of memory") {
		t.Fatalf("trial %s: %q; want failed as too big for memory", tr.State, tr.Error)
	}
	if tr.Memory < 64<<30 {
		t.Errorf("estimated memory %d bytes; want hundreds of GiB", tr.Memory)
	}
	if s, err := st.Study(t.Context(), 1); err != nil || s.Status != store.StudyComplete {
		t.Errorf("study status %v, %v; want complete", s.Status, err)
	}
}

// TestHalvingEndToEnd runs search, grid and export with successive
// halving on tiny proxies and checks the JSON contract: every trial in
// show --json has its rung, seed and test accuracy; the export's B0 and
// coefficients say over how many seeds and points they were decided. A
// resume of the finished studies has nothing to do and exits 0.
func TestHalvingEndToEnd(t *testing.T) {
	db := filepath.Join(t.TempDir(), "sh.db")
	small := []string{"--train-size", "192", "--val-size", "96", "--test-size", "64", "--proxy-width", "0.25", "--proxy-res", "16",
		"--batch", "32", "--epochs", "2", "--rungs", "2", "--eta", "2", "--top-seeds", "2", "--workers", "2"}
	if out, err := runCmd(t, append([]string{"search", "--db", db, "--trials", "4"}, small...)...); err != nil {
		t.Fatalf("search: %v\n%s", err, out)
	}
	if out, err := runCmd(t, append([]string{"grid", "--db", db, "--step", "0.2", "--tolerance", "0.05"}, small...)...); err != nil {
		t.Fatalf("grid: %v\n%s", err, out)
	}
	out, err := runCmd(t, "show", "--db", db, "--study", "1", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var show struct {
		Trials []map[string]any `json:"trials"`
	}
	if err := json.Unmarshal([]byte(out), &show); err != nil {
		t.Fatal(err)
	}
	rungs, seeds := map[float64]int{}, map[float64]int{}
	for _, tr := range show.Trials {
		for _, k := range []string{"rung", "seed", "test_accuracy", "crashes"} {
			if _, ok := tr[k]; !ok {
				t.Fatalf("show --json trial lacks %q: %v", k, tr)
			}
		}
		if tr["state"] == "complete" {
			if v, ok := tr["test_accuracy"].(float64); !ok || v <= 0 || v > 1 {
				t.Errorf("trial %v: test_accuracy %v", tr["number"], tr["test_accuracy"])
			}
		}
		rungs[tr["rung"].(float64)]++
		seeds[tr["seed"].(float64)]++
	}
	if rungs[0] != 4 || rungs[1] < 2 || seeds[1] < 2 {
		t.Errorf("trials per rung %v, per seed %v; want 4 at rung 0, 2 or more at rung 1, finalists under seed 1", rungs, seeds)
	}
	out, err = runCmd(t, "export", "--db", db, "--format", "json")
	if err != nil {
		t.Fatal(err)
	}
	var ex struct {
		B0           map[string]any `json:"b0"`
		Coefficients map[string]any `json:"coefficients"`
	}
	if err := json.Unmarshal([]byte(out), &ex); err != nil {
		t.Fatal(err)
	}
	if ex.B0["seeds"] != float64(2) || ex.B0["accuracy_mean"] == nil || ex.B0["accuracy_std"] == nil || ex.B0["test_accuracy"] == nil {
		t.Errorf("export b0 %v; want seeds 2, accuracy_mean, accuracy_std, test_accuracy", ex.B0)
	}
	if ex.Coefficients["source"] != "grid" || ex.Coefficients["seeds"] != float64(2) || ex.Coefficients["grid_points"].(float64) < 2 {
		t.Errorf("export coefficients %v; want the grid's, decided over 2 seeds and its points", ex.Coefficients)
	}
	for _, args := range [][]string{{"resume", "--db", db}, {"resume", "--db", db, "--study", "1"}} {
		out, err := runCmd(t, args...)
		if err != nil || !strings.Contains(out, "nothing to resume") {
			t.Errorf("%v on complete studies: %v, %q; want 'nothing to resume' and exit 0", args, err, out)
		}
	}
}

// TestBenchProxy runs effnas bench proxy on tiny proxies and checks its
// JSON contract and its plot; bad settings are refused before anything is
// written.
func TestBenchProxy(t *testing.T) {
	dir := t.TempDir()
	testBenchProxy(t, dir, filepath.Join(dir, "p.db"))
}

// TestBenchProxyPostgres: the same on PostgreSQL, where the stored config
// is JSONB (its bytes change) and the reference runs are still reused.
func TestBenchProxyPostgres(t *testing.T) {
	testBenchProxy(t, t.TempDir(), testenv.PostgresSchema(t, testenv.PostgresURL(t)))
}

func testBenchProxy(t *testing.T, dir, db string) {
	png := filepath.Join(dir, "proxy.png")
	args := []string{"bench", "proxy", "--db", db, "--panel", "2", "--seeds", "2", "--ref-seeds", "2", "--ref-train-size", "384", "--ref-epochs", "2",
		"--train-size", "128", "--epochs", "1", "--val-size", "96", "--test-size", "64", "--proxy-width", "0.25", "--proxy-res", "16",
		"--batch", "32", "--workers", "2", "--png", png, "--json"}
	out, err := runCmd(t, args...)
	if err != nil {
		t.Fatalf("bench proxy: %v\n%s", err, out)
	}
	var rep map[string]any
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, k := range []string{"seed_std", "reference_std", "tau_seeds", "tau_reference_seeds", "tau_reference", "spearman_reference"} {
		v, ok := rep[k].(float64)
		if !ok || v < -1 || v > 1 {
			t.Errorf("%s = %v; want a number in [-1, 1]", k, rep[k])
		}
	}
	if v, _ := rep["verdict"].(string); !strings.Contains(v, "noise") {
		t.Errorf("verdict %q", v)
	}
	archs, _ := rep["archs"].([]any)
	if len(archs) != 3 {
		t.Fatalf("%d archs; want the panel of 2 plus B0", len(archs))
	}
	for _, a := range archs {
		m := a.(map[string]any)
		for _, k := range []string{"proxy_mean", "proxy_std", "reference", "reference_std"} {
			if v, ok := m[k].(float64); !ok || v < 0 || v > 1 {
				t.Errorf("arch %v: %s = %v; want a fraction", m["key"], k, m[k])
			}
		}
		if k, _ := m["key"].(string); k == "" || m["flops"].(float64) <= 0 {
			t.Errorf("arch %v: want its key and multiply-adds", m)
		}
	}
	if fi, err := os.Stat(png); err != nil || fi.Size() < 1000 {
		t.Errorf("plot %s: %v", png, err)
	}
	// A second proxy against the same reference reuses its runs.
	args2 := append([]string(nil), args...)
	for i, a := range args2 {
		if a == "--train-size" {
			args2[i+1] = "192"
		}
		if a == png {
			args2[i] = "-"
		}
	}
	out, err = runCmd(t, args2...)
	if err != nil {
		t.Fatalf("second bench proxy: %v\n%s", err, out)
	}
	var rep2 struct {
		ReferenceFrom int64 `json:"reference_from"`
		Archs         []struct {
			Reference float64 `json:"reference"`
		} `json:"archs"`
	}
	if err := json.Unmarshal([]byte(out), &rep2); err != nil {
		t.Fatal(err)
	}
	if rep2.ReferenceFrom != 1 || len(rep2.Archs) != 3 || rep2.Archs[0].Reference != archs[0].(map[string]any)["reference"].(float64) {
		t.Errorf("second benchmark: reference_from %d, archs %+v; want study 1's reference runs reused", rep2.ReferenceFrom, rep2.Archs)
	}
	// It is a study like any other: shown, listed, and nothing to resume.
	if out, err := runCmd(t, "list", "--db", db); err != nil || !strings.Contains(out, "proxy") {
		t.Errorf("list: %v\n%s", err, out)
	}
	if out, err := runCmd(t, "resume", "--db", db); err != nil || !strings.Contains(out, "nothing to resume") {
		t.Errorf("resume: %v\n%s", err, out)
	}
	// show prints its report again, without training anything.
	out, err = runCmd(t, "show", "--db", db, "--study", "1", "--json")
	var shown struct {
		Panel *struct {
			TauReference float64 `json:"tau_reference"`
			SeedStd      float64 `json:"seed_std"`
			Archs        []any   `json:"archs"`
		} `json:"panel"`
	}
	if err != nil || json.Unmarshal([]byte(out), &shown) != nil || shown.Panel == nil {
		t.Fatalf("show --json of a proxy study: %v, want its panel report\n%s", err, out)
	}
	if shown.Panel.TauReference != rep["tau_reference"].(float64) || shown.Panel.SeedStd != rep["seed_std"].(float64) || len(shown.Panel.Archs) != 3 {
		t.Errorf("show --json panel %+v; want the report bench proxy printed (%v, %v)", shown.Panel, rep["tau_reference"], rep["seed_std"])
	}
	if out, err := runCmd(t, "show", "--db", db, "--study", "1"); err != nil || !strings.Contains(out, "verdict: ") || !strings.Contains(out, "Kendall tau") {
		t.Errorf("show of a proxy study: %v; want the benchmark's table and verdict\n%s", err, out)
	}

	bad := filepath.Join(dir, "bad.db")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--panel", "0"}, "--panel 0"},
		{[]string{"--seeds", "0"}, "--seeds 0"},
		{[]string{"--seeds", "1"}, "--seeds 1: must be 2 to 100"},
		{[]string{"--ref-seeds", "0"}, "--ref-seeds 0"},
		{[]string{"--ref-seeds", "1"}, "--ref-seeds 1: must be 2 to 100"},
		{[]string{"--rungs", "0"}, "--rungs 0: must be 1"},
		{[]string{"--rungs", "9"}, "--rungs 9: must be 1"},
		{[]string{"--eta", "1.5"}, "--eta 1.5: must be 2 to 100"},
		{[]string{"--rungs", "3", "--eta", "3", "--train-size", "256", "--epochs", "1", "--batch", "64"}, "fewer than one batch"},
		{[]string{"--ref-train-size", "1000", "--train-size", "4000"}, "no larger than the proxy"},
		{[]string{"--ref-train-size", "4000", "--ref-epochs", "1", "--train-size", "4000", "--epochs", "1"}, "no larger than the proxy"},
	} {
		_, err := runCmd(t, append([]string{"bench", "proxy", "--db", bad}, tc.args...)...)
		var u *usageError
		if err == nil || !errors.As(err, &u) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("bench proxy %v: %v; want a usage error naming %q", tc.args, err, tc.want)
		}
		if _, err := os.Stat(bad); err == nil {
			t.Fatalf("bench proxy %v created %s", tc.args, bad)
		}
	}
}
