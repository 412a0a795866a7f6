package export

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/effnas/effnas/grid"
	"github.com/effnas/effnas/search"
	"github.com/effnas/effnas/space"
	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/store/sqlite"
)

// The fixtures below write real studies through the real store. Trials are
// claimed and finished with chosen accuracies instead of being trained, so
// that the tests are fast and know which trial must win.

func openDB(t *testing.T) (store.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "effnas.db")
	st, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, path
}

// finish claims every pending trial of the study and records acc(trial)
// as its accuracy, with the source's real reward.
func finish(ctx context.Context, t *testing.T, st store.Store, study int64, reward func(store.Trial, float64) float64, acc func(store.Trial) float64) {
	t.Helper()
	trials, err := st.ClaimTrials(ctx, study, store.Claim{Worker: "test", Limit: 1000, Lease: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range trials {
		a := acc(tr)
		if err := st.FinishTrial(ctx, tr.Lease(), store.Result{Accuracy: a, Reward: reward(tr, a), Seconds: 1}); err != nil {
			t.Fatal(err)
		}
	}
}

type searchFixture struct {
	study store.Study
	b0    store.Trial // the trial whose network is EfficientNet-B0; it has the best reward
	base  space.Arch  // its full-size network
	n     int         // trials
}

// newSearch writes a search study in the default space with B0 and four
// proposed candidates, all complete; B0 is the most accurate.
func newSearch(ctx context.Context, t *testing.T, st store.Store) searchFixture {
	t.Helper()
	study, err := search.Create(ctx, st, "b0", search.Config{Controller: "random", Trials: 5, Seed: 7, Proxy: oneRung})
	if err != nil {
		t.Fatal(err)
	}
	src, err := search.Open(ctx, st, study)
	if err != nil {
		t.Fatal(err)
	}
	sp := src.Space()
	c, err := sp.Encode(space.B0())
	if err != nil {
		t.Fatal(err)
	}
	choices, _ := json.Marshal(c)
	b0 := space.B0()
	plans := []store.Plan{{Key: sp.Key(c), Choices: choices, Blocks: space.FormatBlocks(b0.Blocks), Params: b0.Params(), FLOPs: b0.FLOPs()}}
	more, state, err := src.Plan(ctx, nil, 4)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range more {
		if p.Key != plans[0].Key {
			plans = append(plans, p)
		}
	}
	trials, err := st.PlanTrials(ctx, study.ID, plans, state)
	if err != nil {
		t.Fatal(err)
	}
	finish(ctx, t, st, study.ID, src.Reward, func(tr store.Trial) float64 {
		if tr.Number == trials[0].Number {
			return 0.97
		}
		return 0.5 + 0.05*float64(tr.Number)
	})
	if err := st.SetStudyStatus(ctx, study.ID, store.StudyComplete); err != nil {
		t.Fatal(err)
	}
	base, err := src.FullArch(trials[0])
	if err != nil {
		t.Fatal(err)
	}
	if !base.Equal(space.B0()) {
		t.Fatalf("the B0 candidate decodes to %v", base)
	}
	return searchFixture{study: study, b0: trials[0], base: base, n: len(plans)}
}

// oneRung trains every candidate once: the fixtures finish every trial
// they plan and rank them by that one run.
var oneRung = search.Proxy{Halving: search.Halving{Rungs: 1, TopSeeds: 1}}

// chosenPoint is the compound point the grid fixture makes the most accurate.
var chosenPoint = space.Scaling{Alpha: 1.4, Beta: 1, Gamma: 1.2}

// newGrid writes a grid study on the search fixture's B0: the compound grid
// when dim is "", else a single-dimension series. Every point is finished;
// in the compound grid, chosenPoint is the most accurate.
func newGrid(ctx context.Context, t *testing.T, st store.Store, sf searchFixture, dim string, complete bool) store.Study {
	t.Helper()
	study, err := grid.Create(ctx, st, "grid "+dim, grid.StudyConfig{
		Grid:      grid.Config{Step: 0.2, Max: 1.4, Tolerance: 0.1},
		Dimension: dim,
		Base:      sf.base, From: sf.study.ID, FromTrial: sf.b0.Number, Seed: 3, Proxy: oneRung,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !complete {
		return study
	}
	g, err := grid.Open(study)
	if err != nil {
		t.Fatal(err)
	}
	finish(ctx, t, st, study.ID, g.Reward, func(tr store.Trial) float64 {
		if grid.Scaling(tr) == chosenPoint {
			return 0.99
		}
		return 0.9 + 0.001*float64(tr.Number)
	})
	if err := st.SetStudyStatus(ctx, study.ID, store.StudyComplete); err != nil {
		t.Fatal(err)
	}
	return study
}

func TestBuildPaperCoefficientsWithoutGrid(t *testing.T) {
	ctx := t.Context()
	st, _ := openDB(t)
	sf := newSearch(ctx, t, st)
	r, err := Build(ctx, st, Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := r.Coefficients
	if c.Source != SourcePaper || c.Alpha != 1.2 || c.Beta != 1.1 || c.Gamma != 1.15 || c.Phi != 1 || c.Study != 0 {
		t.Errorf("coefficients %+v; want the paper's 1.2, 1.1, 1.15 at phi 1", c)
	}
	if math.Abs(c.Constraint-1.92027) > 1e-9 {
		t.Errorf("constraint %v, want 1.2*1.1^2*1.15^2 = 1.92027", c.Constraint)
	}
	if len(r.Notes) == 0 || !strings.Contains(r.Notes[0], "paper") {
		t.Errorf("notes %q: want one saying the coefficients are the paper's", r.Notes)
	}
	// B0 is the most rewarded trial: EfficientNet-B0.
	b0 := space.B0()
	if !slices.Equal(r.B0.Blocks, space.FormatBlocks(b0.Blocks)) || !slices.Equal(r.B0.Timm, space.FormatTimmBlocks(b0.Blocks)) {
		t.Errorf("b0 blocks %q / timm %q; want B0's", r.B0.Blocks, r.B0.Timm)
	}
	if r.B0.Params != 5_288_548 || r.B0.FLOPs != 385_814_752 || r.B0.Stem != 32 || r.B0.Head != 1280 || r.B0.Resolution != 224 {
		t.Errorf("b0 %+v; want 5,288,548 params, 385,814,752 multiply-adds, stem 32, head 1280 at 224", r.B0)
	}
	if r.B0.Accuracy == nil || *r.B0.Accuracy != 0.97 || *r.B0.Study != sf.study.ID || *r.B0.Trial != sf.b0.Number {
		t.Errorf("b0 accuracy/study/trial %v/%v/%v; want 0.97, study %d trial %d", r.B0.Accuracy, r.B0.Study, r.B0.Trial, sf.study.ID, sf.b0.Number)
	}
	// The raw rule with the paper's coefficients: b1 is width 1.1, depth
	// 1.2, resolution round(224 * 1.15) = 258.
	if len(r.Family) != 7 || len(r.PaperFamily) != 7 {
		t.Fatalf("%d family members, %d paper members; want 7 each", len(r.Family), len(r.PaperFamily))
	}
	b1 := r.Family[0]
	if b1.Name != "b1" || b1.Width != 1.1 || b1.Depth != 1.2 || b1.Resolution != 258 {
		t.Errorf("b1 %+v; want width 1.1, depth 1.2, resolution 258", b1)
	}
	want := space.Compound(b0, space.PaperScaling, 1)
	if b1.Params != want.Params() || b1.FLOPs != want.FLOPs() {
		t.Errorf("b1 counts %d, %d; the raw rule gives %d, %d", b1.Params, b1.FLOPs, want.Params(), want.FLOPs())
	}
	b3, err := space.Preset("efficientnet-b3")
	if err != nil {
		t.Fatal(err)
	}
	if p := r.PaperFamily[2]; p.Name != "b3" || p.Width != 1.2 || p.Depth != 1.4 || p.Resolution != 300 || p.Params != b3.Params() || p.FLOPs != b3.FLOPs() {
		t.Errorf("paper b3 %+v; want the released B3 (%d params, %d multiply-adds)", p, b3.Params(), b3.FLOPs())
	}
	if len(r.TopTrials) != sf.n || r.TopTrials[0].Number != sf.b0.Number {
		t.Errorf("%d top trials led by %d; want %d led by B0's trial %d", len(r.TopTrials), r.TopTrials[0].Number, sf.n, sf.b0.Number)
	}
	for i := 1; i < len(r.TopTrials); i++ {
		if r.TopTrials[i].Reward > r.TopTrials[i-1].Reward {
			t.Errorf("top trials not by reward: %v after %v", r.TopTrials[i].Reward, r.TopTrials[i-1].Reward)
		}
	}
	if len(r.Pareto) == 0 || !slices.ContainsFunc(r.Pareto, func(p Trial) bool { return p.Number == sf.b0.Number }) {
		t.Errorf("pareto %v: want a front containing B0 (the most accurate trial)", r.Pareto)
	}
	if len(r.GridPoints) != 0 || len(r.Series) != 0 {
		t.Errorf("grid points %v, series %v without a grid study", r.GridPoints, r.Series)
	}
	// Top limits the list.
	r2, err := Build(ctx, st, Options{Study: sf.study.ID, Top: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(r2.TopTrials) != 2 {
		t.Errorf("top 2 gave %d trials", len(r2.TopTrials))
	}
}

func TestBuildFromGrid(t *testing.T) {
	ctx := t.Context()
	st, _ := openDB(t)
	sf := newSearch(ctx, t, st)
	g := newGrid(ctx, t, st, sf, "", true)
	width := newGrid(ctx, t, st, sf, "width", true)
	depth := newGrid(ctx, t, st, sf, "depth", true)

	for _, tc := range []struct {
		name  string
		study int64
	}{{"default", 0}, {"search study", sf.study.ID}, {"grid study", g.ID}} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Build(ctx, st, Options{Study: tc.study})
			if err != nil {
				t.Fatal(err)
			}
			c := r.Coefficients
			if c.Source != SourceGrid || c.Study != g.ID || c.Alpha != chosenPoint.Alpha || c.Beta != chosenPoint.Beta || c.Gamma != chosenPoint.Gamma || c.Phi != 1 {
				t.Errorf("coefficients %+v; want grid study %d's chosen point %+v", c, g.ID, chosenPoint)
			}
			if c.Accuracy == nil || *c.Accuracy != 0.99 {
				t.Errorf("coefficients' accuracy %v, want 0.99", c.Accuracy)
			}
			if math.Abs(c.Constraint-chosenPoint.Constraint()) > 1e-9 {
				t.Errorf("constraint %v, want %v", c.Constraint, chosenPoint.Constraint())
			}
			fam := grid.Family(sf.base, chosenPoint)
			if !slices.Equal(r.Family, fam) {
				t.Errorf("family %+v\nwant %+v", r.Family, fam)
			}
			if r.B0.Accuracy == nil || *r.B0.Accuracy != 0.97 || *r.B0.Trial != sf.b0.Number {
				t.Errorf("b0 accuracy %v trial %v; want the search trial's 0.97, trial %d", r.B0.Accuracy, r.B0.Trial, sf.b0.Number)
			}
			if len(r.GridPoints) != 6 {
				t.Errorf("%d grid points, want 6 (base + 5)", len(r.GridPoints))
			}
			var dims []string
			for _, s := range r.Series {
				dims = append(dims, s.Dimension)
				if s.Study != width.ID && s.Study != depth.ID {
					t.Errorf("series of study %d", s.Study)
				}
				for i := 1; i < len(s.Points); i++ {
					if s.Points[i].FLOPs < s.Points[i-1].FLOPs {
						t.Errorf("%s series not ordered by multiply-adds", s.Dimension)
					}
				}
			}
			if !slices.Equal(dims, []string{"width", "depth"}) {
				t.Errorf("series %q, want width and depth", dims)
			}
			if len(r.TopTrials) != sf.n {
				t.Errorf("%d top trials, want %d", len(r.TopTrials), sf.n)
			}
		})
	}
}

func TestBuildChoosesStudies(t *testing.T) {
	ctx := t.Context()
	st, _ := openDB(t)
	if _, err := Build(ctx, st, Options{}); !errors.Is(err, ErrNothing) {
		t.Errorf("empty database: %v, want ErrNothing", err)
	}
	if _, err := Build(ctx, st, Options{Study: 9}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing study: %v, want ErrNotFound", err)
	}

	// A search study with no complete trial has no B0.
	empty, err := search.Create(ctx, st, "empty", search.Config{Trials: 3})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Build(ctx, st, Options{}); !errors.Is(err, ErrNothing) || !strings.Contains(err.Error(), "no candidate at the top rung") {
		t.Errorf("search without complete trials: %v, want ErrNothing saying so", err)
	}

	sf := newSearch(ctx, t, st)
	done := newGrid(ctx, t, st, sf, "", true)
	running := newGrid(ctx, t, st, sf, "", false)
	series := newGrid(ctx, t, st, sf, "resolution", true)

	// The search study: the newest complete compound grid on it, skipping
	// the unfinished one.
	r, err := Build(ctx, st, Options{Study: sf.study.ID})
	if err != nil {
		t.Fatal(err)
	}
	if r.Coefficients.Source != SourceGrid || r.Coefficients.Study != done.ID {
		t.Errorf("search study: coefficients %+v, want grid study %d", r.Coefficients, done.ID)
	}
	// Default: the newest compound grid, unfinished and without a complete
	// point, so the paper's coefficients, with a note.
	r, err = Build(ctx, st, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Coefficients.Source != SourcePaper || !strings.Contains(strings.Join(r.Notes, "\n"), "no complete point") {
		t.Errorf("newest grid %d is empty: coefficients %+v, notes %q; want the paper's and a note", running.ID, r.Coefficients, r.Notes)
	}
	if *r.B0.Study != sf.study.ID {
		t.Errorf("B0 from study %d, want %d", *r.B0.Study, sf.study.ID)
	}
	// A series study exports the search study it scales, with that
	// study's complete compound grid, and the series is plotted.
	r, err = Build(ctx, st, Options{Study: series.ID})
	if err != nil {
		t.Fatal(err)
	}
	if r.Coefficients.Study != done.ID || !strings.Contains(strings.Join(r.Notes, "\n"), "resolution-only") {
		t.Errorf("series study: coefficients %+v, notes %q; want grid study %d and a note on the series", r.Coefficients, r.Notes, done.ID)
	}
	if len(r.Series) != 1 || r.Series[0].Study != series.ID || r.Series[0].Dimension != "resolution" {
		t.Errorf("series %+v, want study %d's resolution series", r.Series, series.ID)
	}
	// The empty search study has no B0.
	if _, err := Build(ctx, st, Options{Study: empty.ID}); !errors.Is(err, ErrNothing) {
		t.Errorf("empty search study: %v, want ErrNothing", err)
	}
}

func TestBuildGridFromBlocks(t *testing.T) {
	// A grid given its base as block strings has no search study: B0's
	// accuracy is its base point's, and there are no trials to list.
	ctx := t.Context()
	st, _ := openDB(t)
	g, err := grid.Create(ctx, st, "blocks", grid.StudyConfig{Grid: grid.Config{Step: 0.2}, Base: space.B0(), Proxy: oneRung})
	if err != nil {
		t.Fatal(err)
	}
	gs, err := grid.Open(g)
	if err != nil {
		t.Fatal(err)
	}
	finish(ctx, t, st, g.ID, gs.Reward, func(tr store.Trial) float64 { return 0.8 + 0.01*float64(tr.Number) })
	r, err := Build(ctx, st, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.B0.Study != nil || r.B0.Trial != nil || r.B0.Accuracy == nil || *r.B0.Accuracy != 0.8 {
		t.Errorf("b0 study %v trial %v accuracy %v; want null, null, the base point's 0.8", r.B0.Study, r.B0.Trial, r.B0.Accuracy)
	}
	if r.Coefficients.Source != SourceGrid || len(r.TopTrials) != 0 || len(r.Pareto) != 0 {
		t.Errorf("coefficients %+v, %d top trials, %d on the front", r.Coefficients, len(r.TopTrials), len(r.Pareto))
	}
	// A series of a base given as block strings has no search study to
	// export.
	ws, err := grid.Create(ctx, st, "width", grid.StudyConfig{Dimension: "width", Base: space.B0()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Build(ctx, st, Options{Study: ws.ID}); err == nil || !strings.Contains(err.Error(), "not a compound grid") {
		t.Errorf("series of block strings: %v, want an error saying it is not a compound grid", err)
	}
	js, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	if b0 := back["b0"].(map[string]any); b0["study"] != nil || b0["trial"] != nil {
		t.Errorf("b0 JSON %v: want study and trial null", b0)
	}
}
