package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/effnas/effnas/grid"
	"github.com/effnas/effnas/search"
	"github.com/effnas/effnas/space"
	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/store/sqlite"
)

// exportDB writes a database with a search study whose best trial is
// EfficientNet-B0 and, when withGrid, a complete compound grid on it whose
// most accurate point is (1.2, 1.1, 1.15). Trials are finished through the
// real store with chosen accuracies instead of being trained.
func exportDB(t *testing.T, withGrid bool) (path string, searchID, gridID int64) {
	t.Helper()
	ctx := t.Context()
	path = filepath.Join(t.TempDir(), "effnas.db")
	st, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	finishAll := func(study int64, reward func(store.Trial, float64) float64, acc func(store.Trial) float64) {
		t.Helper()
		trials, err := st.ClaimTrials(ctx, study, store.Claim{Worker: "test", Limit: 100, Lease: time.Hour})
		must(err)
		for _, tr := range trials {
			a := acc(tr)
			must(st.FinishTrial(ctx, tr.Lease(), store.Result{Accuracy: a, Reward: reward(tr, a), Seconds: 1}))
		}
		must(st.SetStudyStatus(ctx, study, store.StudyComplete))
	}

	study, err := search.Create(ctx, st, "b0", search.Config{Controller: "random", Trials: 4, Seed: 5, Proxy: search.Proxy{Halving: oneRung}})
	must(err)
	src, err := search.Open(ctx, st, study)
	must(err)
	b0 := space.B0()
	c, err := src.Space().Encode(b0)
	must(err)
	choices, err := json.Marshal(c)
	must(err)
	plans := []store.Plan{{Key: src.Space().Key(c), Choices: choices, Blocks: space.FormatBlocks(b0.Blocks), Params: b0.Params(), FLOPs: b0.FLOPs()}}
	more, state, err := src.Plan(ctx, nil, 3)
	must(err)
	for _, p := range more {
		if p.Key != plans[0].Key {
			plans = append(plans, p)
		}
	}
	_, err = st.PlanTrials(ctx, study.ID, plans, state)
	must(err)
	finishAll(study.ID, src.Reward, func(tr store.Trial) float64 {
		if tr.Number == 0 {
			return 0.96
		}
		return 0.6
	})
	if !withGrid {
		return path, study.ID, 0
	}
	g, err := grid.Create(ctx, st, "grid", grid.StudyConfig{
		Grid: grid.Config{Step: 0.05, Max: 1.2, Tolerance: 0.08}, Base: b0, From: study.ID, FromTrial: 0, Proxy: search.Proxy{Halving: oneRung},
	})
	must(err)
	gs, err := grid.Open(g)
	must(err)
	finishAll(g.ID, gs.Reward, func(tr store.Trial) float64 {
		if grid.Scaling(tr) == space.PaperScaling {
			return 0.98
		}
		return 0.9
	})
	return path, study.ID, g.ID
}

func runExportCmd(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	err = Run(t.Context(), &Env{Stdout: &out, Stderr: &errb}, append([]string{"export"}, args...))
	return out.String(), errb.String(), err
}

// exportJSON is the contract of --format json.
type exportJSON struct {
	B0 struct {
		Blocks     []string `json:"blocks"`
		Timm       []string `json:"timm"`
		Params     int64    `json:"params"`
		FLOPs      int64    `json:"flops"`
		Stem       int      `json:"stem"`
		Head       int      `json:"head"`
		Resolution int      `json:"resolution"`
		Accuracy   float64  `json:"accuracy"`
		Study      int64    `json:"study"`
		Trial      int      `json:"trial"`
	} `json:"b0"`
	Coefficients struct {
		Alpha, Beta, Gamma, Phi, Constraint float64
		Source                              string `json:"source"`
		Study                               int64  `json:"study"`
	} `json:"coefficients"`
	Family []struct {
		Name       string  `json:"name"`
		Phi        float64 `json:"phi"`
		Width      float64 `json:"width"`
		Depth      float64 `json:"depth"`
		Resolution int     `json:"resolution"`
		Params     int64   `json:"params"`
		FLOPs      int64   `json:"flops"`
	} `json:"family"`
	PaperFamily []struct {
		Name  string  `json:"name"`
		Width float64 `json:"width"`
	} `json:"paper_family"`
	Pareto    []json.RawMessage `json:"pareto"`
	TopTrials []struct {
		Number   int     `json:"number"`
		Accuracy float64 `json:"accuracy"`
	} `json:"top_trials"`
}

func TestExportJSON(t *testing.T) {
	for _, tc := range []struct {
		name     string
		withGrid bool
		source   string
	}{{"paper coefficients", false, "paper"}, {"grid coefficients", true, "grid"}} {
		t.Run(tc.name, func(t *testing.T) {
			path, searchID, gridID := exportDB(t, tc.withGrid)
			before := fileSum(t, path)
			out, stderr, err := runExportCmd(t, "--db", path, "--format", "json")
			if err != nil {
				t.Fatal(err)
			}
			if fileSum(t, path) != before {
				t.Error("export changed the database")
			}
			if !strings.Contains(stderr, "note: ") {
				t.Errorf("stderr %q: want a note saying which studies were exported", stderr)
			}
			var got exportJSON
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("%v in:\n%s", err, out)
			}
			b0 := space.B0()
			if !slices.Equal(got.B0.Blocks, space.FormatBlocks(b0.Blocks)) || !slices.Equal(got.B0.Timm, space.FormatTimmBlocks(b0.Blocks)) {
				t.Errorf("b0 blocks %q timm %q; want B0's", got.B0.Blocks, got.B0.Timm)
			}
			if got.B0.Params != 5_288_548 || got.B0.FLOPs != 385_814_752 || got.B0.Stem != 32 || got.B0.Head != 1280 || got.B0.Resolution != 224 {
				t.Errorf("b0 %+v", got.B0)
			}
			if got.B0.Accuracy != 0.96 || got.B0.Study != searchID || got.B0.Trial != 0 {
				t.Errorf("b0 accuracy %v study %d trial %d; want 0.96, %d, 0", got.B0.Accuracy, got.B0.Study, got.B0.Trial, searchID)
			}
			c := got.Coefficients
			// Both ways the coefficients are the paper's: the grid's best point is (1.2, 1.1, 1.15).
			if c.Alpha != 1.2 || c.Beta != 1.1 || c.Gamma != 1.15 || c.Phi != 1 || c.Constraint != 1.92027 || c.Source != tc.source || c.Study != gridID {
				t.Errorf("coefficients %+v; want 1.2, 1.1, 1.15, phi 1, constraint 1.92027, source %s, study %d", c, tc.source, gridID)
			}
			if len(got.Family) != 7 || len(got.PaperFamily) != 7 {
				t.Fatalf("%d family, %d paper family; want b1..b7 each", len(got.Family), len(got.PaperFamily))
			}
			b1 := got.Family[0]
			if b1.Name != "b1" || b1.Phi != 1 || b1.Width != 1.1 || b1.Depth != 1.2 || b1.Resolution != 258 {
				t.Errorf("b1 %+v; want width 1.1, depth 1.2, resolution 258", b1)
			}
			if want := space.Compound(b0, space.PaperScaling, 7); got.Family[6].Params != want.Params() || got.Family[6].FLOPs != want.FLOPs() {
				t.Errorf("b7 %+v; the raw rule gives %d params, %d multiply-adds", got.Family[6], want.Params(), want.FLOPs())
			}
			if got.PaperFamily[1].Name != "b2" || got.PaperFamily[1].Width != 1.1 {
				t.Errorf("paper b2 %+v, want width 1.1", got.PaperFamily[1])
			}
			if len(got.TopTrials) < 2 || got.TopTrials[0].Number != 0 || len(got.Pareto) == 0 {
				t.Errorf("top trials %+v, pareto %d; want B0's trial 0 first and a front", got.TopTrials, len(got.Pareto))
			}
		})
	}
}

func TestExportPythonAndMarkdown(t *testing.T) {
	path, searchID, _ := exportDB(t, true)
	b0 := space.B0()
	tf, _, err := runExportCmd(t, "--db", path, "--format", "tf")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range space.FormatBlocks(b0.Blocks) {
		if !strings.Contains(tf, "'"+b+"'") {
			t.Errorf("tf output lacks %q", b)
		}
	}
	if !strings.Contains(tf, "params_dict = {") || !strings.Contains(tf, "'efficientnet-b1': (1.1, 1.2, 258, 0.2),") {
		t.Errorf("tf output lacks params_dict with b1 = (1.1, 1.2, 258, 0.2):\n%s", tf)
	}

	// --study names the search study; --out writes the file.
	dir := t.TempDir()
	py := filepath.Join(dir, "family.py")
	if _, _, err := runExportCmd(t, "--db", path, "--study", strconv.FormatInt(searchID, 10), "--format", "timm", "--out", py); err != nil {
		t.Fatal(err)
	}
	timm, err := os.ReadFile(py)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range space.FormatTimmBlocks(b0.Blocks) {
		if !strings.Contains(string(timm), "['"+b+"']") {
			t.Errorf("timm output lacks %q", b)
		}
	}
	if !strings.Contains(string(timm), "def effnas_b7(") {
		t.Errorf("timm output lacks effnas_b7")
	}

	md := filepath.Join(dir, "report.md")
	_, stderr, err := runExportCmd(t, "--db", path, "--format", "md", "--out", md)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{md, filepath.Join(dir, "report-search.png"), filepath.Join(dir, "report-grid.png")} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(stderr, "wrote "+f) {
			t.Errorf("stderr %q does not say it wrote %s", stderr, f)
		}
		if strings.HasSuffix(f, ".png") && !bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")) {
			t.Errorf("%s is not a PNG", f)
		}
		if strings.HasSuffix(f, ".md") && !strings.Contains(string(data), "## Pareto front") {
			t.Errorf("%s lacks the Pareto front", f)
		}
	}
}

func TestExportErrors(t *testing.T) {
	path, _, _ := exportDB(t, false)
	dir := t.TempDir()
	emptyDB := filepath.Join(dir, "empty.db")
	st, err := sqlite.Open(t.Context(), emptyDB, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	missing := filepath.Join(dir, "missing.db")
	out := filepath.Join(dir, "out.json")
	for _, tc := range []struct {
		name  string
		args  []string
		usage bool
		want  string
	}{
		{"unknown format", []string{"--db", path, "--format", "onnx", "--out", out}, true, `--format "onnx": unknown; want one of json, tf, timm, md`},
		{"md without out", []string{"--db", path, "--format", "md"}, true, "--format md needs --out"},
		{"missing db", []string{"--db", missing, "--out", out}, false, "no database"},
		{"no db flag", []string{"--out", out}, false, "no database at effnas.db"}, // the default, absent in the test directory
		{"no such study", []string{"--db", path, "--study", "42", "--out", out}, true, "--study 42: no such study"},
		{"bad study", []string{"--db", path, "--study", "two", "--out", out}, true, `--study "two"`},
		{"no search study", []string{"--db", emptyDB, "--out", out}, false, "no search or grid study"},
		{"out under a file", []string{"--db", path, "--out", filepath.Join(path, "x.json")}, true, "is a file, not a directory"},
		{"out is a directory", []string{"--db", path, "--out", dir}, true, "is a directory"},
		{"bad top", []string{"--db", path, "--top", "0", "--out", out}, true, "--top 0"},
		{"out is the database", []string{"--db", path, "--out", path}, true, "is the database"},
		{"python without a format", []string{"--db", path, "--out", filepath.Join(dir, "family.py")}, true, "give --format tf or --format timm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, _, err := runExportCmd(t, tc.args...)
			if err == nil {
				t.Fatalf("no error; stdout:\n%s", stdout)
			}
			var u *usageError
			if errors.As(err, &u) != tc.usage {
				t.Errorf("error %q: usage error %v, want %v", err, !tc.usage, tc.usage)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to mention %q", err, tc.want)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s exists after a failed export", out)
			}
			if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the missing database %s was created", missing)
			}
		})
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "empty.db") { // and SQLite's -wal, -shm
			names = append(names, e.Name())
		}
	}
	if len(names) != 0 {
		t.Errorf("%s holds %q besides the database", dir, names)
	}
}

// TestExportMakesDirectory: export --out DIR/report.md creates DIR, as the
// README's walkthrough does on a fresh checkout; md (the format of a .md
// file when --format is not given) writes its plots there.
func TestExportMakesDirectory(t *testing.T) {
	path, _, _ := exportDB(t, true)
	for _, args := range [][]string{{"--format", "md"}, nil} {
		out := filepath.Join(t.TempDir(), "report", "report.md")
		if _, _, err := runExportCmd(t, append([]string{"--db", path, "--out", out}, args...)...); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{out, strings.TrimSuffix(out, ".md") + "-search.png"} {
			if _, err := os.Stat(f); err != nil {
				t.Errorf("%v: %s: %v", args, f, err)
			}
		}
		if b, _ := os.ReadFile(out); !bytes.HasPrefix(b, []byte("# ")) {
			t.Errorf("%v: %s is not a Markdown report: %.40q", args, out, b)
		}
	}
}
