package grid

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/effnas/effnas/search"
	"github.com/effnas/effnas/space"
	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/store/sqlite"
	"github.com/effnas/effnas/trainer"
)

func tinyStudy() StudyConfig {
	base := space.B0()
	return StudyConfig{
		Grid: Config{Step: 0.2, Max: 1.4, Tolerance: 0.1},
		Base: base,
		Seed: 3,
		Proxy: search.Proxy{
			TrainSize: 192, ValSize: 96, TestSize: 32, Width: 0.25, Res: 16,
			Train:   trainer.Config{Epochs: 1, Batch: 32},
			Halving: search.Halving{Rungs: 1, TopSeeds: 1},
		},
	}
}

func TestGridStudyRunsAndResumes(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "g.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	study, err := Create(ctx, st, "grid", tinyStudy())
	if err != nil {
		t.Fatal(err)
	}
	trials, err := st.Trials(ctx, study.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Base plus (1,1.2,1.2), (1,1,1.4), (1,1.4,1), (1.4,1,1.2), (1.4,1.2,1).
	if len(trials) != 6 {
		t.Fatalf("%d points planned, want 6", len(trials))
	}
	if trials[0].Key != "a1.00_b1.00_g1.00" {
		t.Errorf("first point %s, want the base", trials[0].Key)
	}
	for _, tr := range trials {
		s := Scaling(tr)
		full := space.Compound(space.B0(), s, 1)
		if tr.FLOPs != full.FLOPs() || tr.Params != full.Params() {
			t.Errorf("%s: stored %d flops, %d params; compound scaling gives %d, %d", tr.Key, tr.FLOPs, tr.Params, full.FLOPs(), full.Params())
		}
	}

	// Run, stop after the first point finishes, resume to the end.
	g, err := Open(study)
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	stopper := &stopAfter{n: 1, cancel: cancel}
	_, err = search.Run(cctx, st, study, g, search.Options{Workers: 1, Events: stopper})
	if !errors.Is(err, search.ErrInterrupted) {
		t.Fatalf("run: %v, want interrupted", err)
	}
	if _, err := st.RecoverTrials(ctx, study.ID); err != nil {
		t.Fatal(err)
	}
	sum, err := search.Run(ctx, st, study, g, search.Options{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if !sum.Complete || sum.Counts.Complete != 6 {
		t.Fatalf("after resume: %+v", sum)
	}
	trials, _ = st.Trials(ctx, study.ID)
	best := g.Best(trials)
	if best == nil || best.Key == "a1.00_b1.00_g1.00" {
		t.Fatalf("best point %+v", best)
	}
	for _, tr := range trials {
		if tr.State == store.TrialComplete && tr.Key != "a1.00_b1.00_g1.00" && tr.Accuracy > best.Accuracy {
			t.Errorf("point %s (%.3f) beats the best %s (%.3f)", tr.Key, tr.Accuracy, best.Key, best.Accuracy)
		}
	}
}

func TestProxyArchScalesOnce(t *testing.T) {
	g := &Grid{cfg: tinyStudy().WithDefaults()}
	a := g.ProxyArch(space.Scaling{Alpha: 1.2, Beta: 1.1, Gamma: 1.15})
	if a.Resolution != 18 { // round(16 * 1.15) = 18.4 -> 18
		t.Errorf("resolution %d, want 18", a.Resolution)
	}
	if want := space.RoundFilters(32, 0.25*1.1); a.Stem != want {
		t.Errorf("stem %d, want round_filters(32, 0.275) = %d", a.Stem, want)
	}
	if want := space.RoundRepeats(4, 1.2); a.Blocks[5].Repeats != want {
		t.Errorf("stage 6 repeats %d, want %d", a.Blocks[5].Repeats, want)
	}
}

func TestCreateRejectsEmptyGrid(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "g.db")
	st, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := tinyStudy()
	cfg.Grid = Config{Max: 1.05, Tolerance: 0.01}
	if _, err := Create(ctx, st, "", cfg); !errors.Is(err, ErrEmpty) {
		t.Fatalf("empty grid: %v", err)
	}
	if all, _ := st.Studies(ctx); len(all) != 0 {
		t.Errorf("an empty grid wrote %d studies", len(all))
	}
}

type stopAfter struct {
	n      int
	seen   int
	cancel context.CancelFunc
}

func (s *stopAfter) Started(int, int)         {}
func (s *stopAfter) TrialStarted(store.Trial) {}
func (s *stopAfter) TrialFinished(store.Trial, *search.Standing) {
	if s.seen++; s.seen >= s.n {
		s.cancel()
	}
}

func TestKeyDistinguishesEveryPoint(t *testing.T) {
	for _, tc := range []struct {
		s    space.Scaling
		want string
	}{
		{space.Scaling{Alpha: 1.2, Beta: 1.1, Gamma: 1.15}, "a1.20_b1.10_g1.15"},
		{Base, "a1.00_b1.00_g1.00"},
		{space.Scaling{Alpha: 1.001, Beta: 1.0015, Gamma: 2}, "a1.001_b1.0015_g2.00"},
	} {
		if got := Key(tc.s); got != tc.want {
			t.Errorf("Key(%+v) = %q, want %q", tc.s, got, tc.want)
		}
	}
	// The finest step the flags allow: every value of a coefficient is
	// written apart, so every point has its own key.
	cfg := Config{Step: 0.001, Max: 1.4, Tolerance: 0.1}.WithDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]float64{}
	for _, v := range cfg.Values() {
		k := coef(v)
		if w, dup := seen[k]; dup {
			t.Fatalf("values %v and %v are both written %s", v, w, k)
		}
		seen[k] = v
	}
	if len(seen) != 401 {
		t.Fatalf("%d values at step 0.001 up to 1.4, want 401", len(seen))
	}
}

// TestCreateWritesAllOrNothing: a tolerance wide enough to admit the base
// point does not plan it twice; a grid whose only point would be the base
// is refused before anything is written.
func TestCreateWritesAllOrNothing(t *testing.T) {
	ctx := t.Context()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "g.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := tinyStudy()
	cfg.Grid.Tolerance = 1 // |1 - 2| <= 1: the base is on the grid
	study, err := Create(ctx, st, "wide", cfg)
	if err != nil {
		t.Fatalf("Create with tolerance 1: %v", err)
	}
	trials, err := st.Trials(ctx, study.ID)
	if err != nil {
		t.Fatal(err)
	}
	bases := 0
	for _, tr := range trials {
		if Scaling(tr) == Base {
			bases++
		}
	}
	if bases != 1 || len(trials) < 2 {
		t.Fatalf("%d trials with the base %d times; want it once, first", len(trials), bases)
	}
	cfg = tinyStudy()
	cfg.Grid = Config{Step: 0.2, Max: 1.2, Tolerance: 1}
	cfg.Dimension = "depth"
	cfg.Grid.Target = 1 // depth 1.2 costs 1.2 > 1 + 0.1... only the base is left
	cfg.Grid.Tolerance = 0.1
	if _, err := Create(ctx, st, "only-base", cfg); !errors.Is(err, ErrEmpty) {
		t.Fatalf("Create of a grid with only the base: %v, want ErrEmpty", err)
	}
	all, err := st.Studies(ctx)
	if err != nil || len(all) != 1 {
		t.Fatalf("%d studies after a refused Create, %v; want only the first", len(all), err)
	}
}

// TestBestNeedsEverySeed: a grid point whose extra seeds failed twice
// ranks after every finalist measured over all its seeds, however good
// its one run; the diverged seeds are retried once each first.
func TestBestNeedsEverySeed(t *testing.T) {
	cfg := tinyStudy().WithDefaults()
	cfg.Proxy.Halving = search.Halving{Rungs: 1, Eta: 3, TopSeeds: 3, Finalists: 3}
	g := &Grid{cfg: cfg}
	a, b := space.Scaling{Alpha: 1.2, Beta: 1, Gamma: 1.2}, space.Scaling{Alpha: 1, Beta: 1.2, Gamma: 1.2}
	run := func(n int, s space.Scaling, seed int, acc float64) store.Trial {
		t := store.Trial{Number: n, Key: Key(s), Seed: seed, Grid: &store.GridPoint{Alpha: s.Alpha, Beta: s.Beta, Gamma: s.Gamma},
			State: store.TrialComplete, Accuracy: acc, Reward: acc}
		if acc < 0 {
			t.State, t.Accuracy, t.Reward, t.Error = store.TrialFailed, 0, 0, "diverged: loss is NaN"
		}
		return t
	}
	trials := []store.Trial{
		run(0, Base, 0, 0.80), run(1, a, 0, 0.95), run(2, b, 0, 0.94),
		run(3, Base, 1, 0.80), run(4, Base, 2, 0.80),
		run(5, a, 1, -1), run(6, a, 2, -1), run(7, b, 1, 0.93), run(8, b, 2, 0.93),
	}
	plans, _, err := g.Plan(t.Context(), trials, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(plans) != 2 || plans[0].Key != Key(a) || plans[0].Seed != 1+search.RetrySeed || plans[1].Seed != 2+search.RetrySeed {
		t.Fatalf("planned %+v; want one retry of each of a's diverged seeds", plans)
	}
	trials = append(trials, run(9, a, 1+search.RetrySeed, -1), run(10, a, 2+search.RetrySeed, -1))
	best := g.Best(trials)
	if best == nil || best.Key != Key(b) {
		t.Fatalf("best = %+v; want %s, measured over its 3 seeds, not %s's one run of 0.95", best, Key(b), Key(a))
	}
}

// TestExpectedCountsTheBase: a flat grid trains its points once, then its
// finalists' seeds and the base point's (a finalist besides them):
// Expected says so exactly.
func TestExpectedCountsTheBase(t *testing.T) {
	cfg := tinyStudy().WithDefaults()
	cfg.Grid = Config{Step: 0.05, Max: 1.4, Tolerance: 0.1}.WithDefaults()
	cfg.Proxy.Halving = DefaultHalving
	scalings, err := cfg.Scalings()
	if err != nil {
		t.Fatal(err)
	}
	g := &Grid{cfg: cfg, points: len(scalings)}
	var trials []store.Trial
	for i, s := range scalings {
		acc := 0.9 - 0.001*float64(i)
		if s == Base {
			acc = 0.5 // the worst: a finalist only as the base
		}
		trials = append(trials, store.Trial{Number: i, Key: Key(s), Grid: &store.GridPoint{Alpha: s.Alpha, Beta: s.Beta, Gamma: s.Gamma},
			State: store.TrialComplete, Accuracy: acc, Reward: acc})
	}
	plans, _, err := g.Plan(t.Context(), trials, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(trials)+len(plans), g.Expected(); got != want || len(plans) != 2*(9+1) {
		t.Errorf("%d points and %d finalist seeds: %d trials; Expected says %d (want 9 finalists and the base, 2 more seeds each)", len(trials), len(plans), got, want)
	}
}
