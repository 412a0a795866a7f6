package main

import (
	"encoding/json"
	"flag"
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
	"github.com/effnas/effnas/trainer"
)

// runs is a result to record for a planned trial.
type runs map[[3]any]store.Result // key, rung, seed

// recordRuns plans the trials of study and records the given results,
// as a study would have.
func recordRuns(t *testing.T, s store.Store, study store.Study, plans []store.Plan, results runs) {
	t.Helper()
	ctx := t.Context()
	if _, err := s.PlanTrials(ctx, study.ID, plans, nil); err != nil {
		t.Fatal(err)
	}
	claimed, err := s.ClaimTrials(ctx, study.ID, store.Claim{Worker: "w", Limit: len(plans), Lease: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range claimed {
		r, ok := results[[3]any{tr.Key, tr.Rung, tr.Seed}]
		if !ok {
			t.Fatalf("no result for %s rung %d seed %d", tr.Key, tr.Rung, tr.Seed)
		}
		if err := s.FinishTrial(ctx, tr.Lease(), r); err != nil {
			t.Fatal(err)
		}
	}
}

// TestShowBestIsAMean: show --json's best is the candidate with the best
// mean over its top-rung seeds, and its accuracy, reward and test
// accuracy are those means (with their seeds, sds and runs); the run's own
// entry in trials keeps its single-run values. A scored 0.95 on its first
// top-rung seed and 0.90, 0.90 on the others (mean 0.9167); B 0.93, 0.93,
// 0.94 (mean 0.9333, sd 0.0057735): B is best, though A's first run and
// A's rung-0 run are better. list names the same candidate and mean.
func TestShowBestIsAMean(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "best.db")
	s, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cfg := search.Config{Controller: "random", Trials: 2, Proxy: search.Proxy{TrainSize: 900, Train: trainer.Config{Epochs: 1},
		Halving: search.Halving{Rungs: 2, Eta: 3, TopSeeds: 3, Finalists: 2}}}
	study, err := search.Create(ctx, s, "means", cfg)
	if err != nil {
		t.Fatal(err)
	}
	var plans []store.Plan
	res := runs{}
	add := func(key string, rung, seed int, acc, test float64) {
		plans = append(plans, store.Plan{Key: key, Rung: rung, Seed: seed, Blocks: []string{"r1_k3_s11_e1_i32_o16_se0.25"}, Params: 1000, FLOPs: 400_000_000})
		res[[3]any{key, rung, seed}] = store.Result{Accuracy: acc, Reward: acc, TestAccuracy: test, Seconds: 1}
	}
	add("A", 0, 0, 0.90, 0.5)
	add("B", 0, 0, 0.85, 0.5)
	add("A", 1, 0, 0.95, 0.94)
	add("B", 1, 0, 0.93, 0.92)
	add("A", 1, 1, 0.90, 0.90)
	add("A", 1, 2, 0.90, 0.90)
	add("B", 1, 1, 0.93, 0.92)
	add("B", 1, 2, 0.94, 0.95)
	recordRuns(t, s, study, plans, res)

	out, err := runCmd(t, "show", "--db", path, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Trials []trialJSON `json:"trials"`
		Best   *struct {
			Number       int      `json:"number"`
			Key          string   `json:"key"`
			Rung         int      `json:"rung"`
			Blocks       []string `json:"blocks"`
			FLOPs        int64    `json:"flops"`
			Params       int64    `json:"params"`
			Accuracy     float64  `json:"accuracy"`
			Reward       float64  `json:"reward"`
			TestAccuracy float64  `json:"test_accuracy"`
			Seeds        int      `json:"seeds"`
			AccuracyStd  float64  `json:"accuracy_std"`
			RewardStd    float64  `json:"reward_std"`
			Runs         []int    `json:"runs"`
			MissingSeeds *int     `json:"missing_seeds"`
		} `json:"best"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	b := got.Best
	if b == nil || b.Key != "B" {
		t.Fatalf("best = %+v; want B, the best mean over its seeds", b)
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	if b.Number != 3 || b.Rung != 1 || len(b.Blocks) != 1 || b.FLOPs != 400_000_000 || b.Params != 1000 {
		t.Errorf("best = %+v; want B's first top-rung run (trial 3) with its blocks, multiply-adds and parameters", b)
	}
	// mean(0.93, 0.93, 0.94) = 0.933333; sd = sqrt(((-1/300)^2*2 + (2/300)^2)/2) = 0.0057735.
	if !near(b.Accuracy, 0.28/0.3) || !near(b.Reward, 0.28/0.3) || !near(b.TestAccuracy, 0.93) || b.Seeds != 3 ||
		math.Abs(b.AccuracyStd-0.0057735) > 1e-6 || math.Abs(b.RewardStd-0.0057735) > 1e-6 || b.MissingSeeds == nil || *b.MissingSeeds != 0 {
		t.Errorf("best = %+v; want accuracy and reward 0.9333 ± 0.0057735 over 3 seeds, test accuracy 0.93, no seed missing", b)
	}
	if !slices.Equal(b.Runs, []int{3, 6, 7}) {
		t.Errorf("best runs %v; want B's top-rung trials 3, 6, 7", b.Runs)
	}
	if own := got.Trials[3]; own.Number != 3 || own.Accuracy == nil || *own.Accuracy != 0.93 || *own.TestAccuracy != 0.92 {
		t.Errorf("trial 3 in trials = %+v; want its own run's accuracy 0.93 and test accuracy 0.92", own)
	}

	out, err = runCmd(t, "list", "--db", path, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var l listJSON
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatal(err)
	}
	if st := l.Studies[0]; st.BestReward == nil || !near(*st.BestReward, 0.28/0.3) || st.BestTrial == nil || *st.BestTrial != 3 || st.BestKey != "B" {
		t.Errorf("list = %+v; want B (trial 3) at its mean reward 0.9333", st)
	}
}

// TestListNamesTheGridWinner: when two grid points tie on their mean, the
// grid's winner is the one nearer the constraint's target (grid.Best);
// list and show name that one, not the first in the standings.
func TestListNamesTheGridWinner(t *testing.T) {
	path := filepath.Join(t.TempDir(), "grid.db")
	s, study := newGridStudy(t, path, search.Halving{Rungs: 1, TopSeeds: 1})
	// (1.2, 1.1, 1.15) is 1.9203, 0.0797 from 2; (1, 1.2, 1.2) is 2.0736,
	// 0.0736 from 2: the second wins the tie, though planned later.
	far, near := space.Scaling{Alpha: 1.2, Beta: 1.1, Gamma: 1.15}, space.Scaling{Alpha: 1, Beta: 1.2, Gamma: 1.2}
	var plans []store.Plan
	res := runs{}
	for _, p := range []struct {
		s   space.Scaling
		acc float64
	}{{grid.Base, 0.80}, {far, 0.90}, {near, 0.90}} {
		key := grid.Key(p.s)
		plans = append(plans, store.Plan{Key: key, Grid: &store.GridPoint{Alpha: p.s.Alpha, Beta: p.s.Beta, Gamma: p.s.Gamma}})
		res[[3]any{key, 0, 0}] = store.Result{Accuracy: p.acc, Reward: p.acc, Seconds: 1}
	}
	recordRuns(t, s, study, plans, res)
	out, err := runCmd(t, "list", "--db", path, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var l listJSON
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatal(err)
	}
	if st := l.Studies[0]; st.BestKey != grid.Key(near) || st.BestTrial == nil || *st.BestTrial != 2 {
		t.Errorf("list names %q; want the grid's winner %s, trial 2", st.BestKey, grid.Key(near))
	}
	out, err = runCmd(t, "list", "--db", path)
	if err != nil || !strings.Contains(out, grid.Key(near)) {
		t.Errorf("list's text (%v) does not name the winner %s:\n%s", err, grid.Key(near), out)
	}
}

// TestGridIsFlatByDefault: effnas grid with no halving flags trains every
// point once at the top fidelity and the best third, at most 9, under 3
// seeds (search keeps its three rungs); the flags still choose a schedule.
func TestGridIsFlatByDefault(t *testing.T) {
	db := filepath.Join(t.TempDir(), "g.db")
	small := []string{"--train-size", "128", "--val-size", "64", "--test-size", "32", "--proxy-width", "0.25", "--proxy-res", "16", "--batch", "32",
		"--blocks", "r1_k3_s11_e1_i32_o16_se0.25 r1_k3_s22_e6_i16_o24_se0.25", "--step", "0.4", "--json"}
	halving := func() search.Halving {
		t.Helper()
		out, err := runCmd(t, "show", "--db", db, "--json")
		if err != nil {
			t.Fatal(err)
		}
		var sh struct {
			Study struct {
				Config struct {
					Proxy search.Proxy `json:"proxy"`
				} `json:"config"`
			} `json:"study"`
			RungAgreement []search.RungAgreement `json:"rung_agreement"`
		}
		if err := json.Unmarshal([]byte(out), &sh); err != nil {
			t.Fatal(err)
		}
		if sh.RungAgreement == nil || len(sh.RungAgreement) != sh.Study.Config.Proxy.Halving.Rungs-1 {
			t.Errorf("rung_agreement %v; want one entry per rung below the top", sh.RungAgreement)
		}
		return sh.Study.Config.Proxy.Halving
	}
	if out, err := runCmd(t, append([]string{"grid", "--db", db}, small...)...); err != nil {
		t.Fatalf("grid: %v\n%s", err, out)
	}
	if h := halving(); h != grid.DefaultHalving || h.Rungs != 1 || h.MaxFinalists != 9 || h.TopSeeds != 3 {
		t.Errorf("the default grid's halving %+v; want one rung, finalists under 3 seeds, at most 9", h)
	}
	if out, err := runCmd(t, append([]string{"grid", "--db", db, "--rungs", "2", "--max-finalists", "0", "--seed", "2", "--data-seed", "1"}, small...)...); err != nil {
		t.Fatalf("grid --rungs 2: %v\n%s", err, out)
	}
	if h := halving(); h.Rungs != 2 || h.MaxFinalists != 0 {
		t.Errorf("grid --rungs 2 --max-finalists 0: halving %+v", h)
	}
	out, err := runCmd(t, "show", "--db", db, "--json")
	var sh struct {
		Study struct {
			Seed   uint64 `json:"seed"`
			Config struct {
				Proxy search.Proxy `json:"proxy"`
			} `json:"config"`
		} `json:"study"`
	}
	if err != nil || json.Unmarshal([]byte(out), &sh) != nil {
		t.Fatal(err)
	}
	if p := sh.Study.Config.Proxy; sh.Study.Seed != 2 || p.DataSeed == nil || *p.DataSeed != 1 || p.Train.Seed != 1 {
		t.Errorf("grid --seed 2 --data-seed 1: study seed %d, proxy %+v; want seed 2, the split's seed 1", sh.Study.Seed, p)
	}
	if _, err := runCmd(t, append([]string{"grid", "--db", db, "--data-seed", "-2"}, small...)...); err == nil || !strings.Contains(err.Error(), `"-2" for flag -data-seed`) || !strings.Contains(err.Error(), "0 to 18446744073709551615") {
		t.Errorf("grid --data-seed -2: %v; want refused, naming the flag", err)
	}
}

// TestDataSeedFlag: --data-seed, given, is the split's seed, 0 included;
// not given, the proxy has none and splits by --seed.
func TestDataSeedFlag(t *testing.T) {
	for _, c := range []struct {
		args []string
		want *uint64
	}{
		{[]string{"--seed", "2", "--data-seed", "0"}, new(uint64)},
		{[]string{"--seed", "2", "--data-seed", "18446744073709551615"}, ptr(uint64(math.MaxUint64))},
		{[]string{"--seed", "2"}, nil},
	} {
		var pf proxyFlags
		fs := flag.NewFlagSet("grid", flag.ContinueOnError)
		pf.register(fs, &grid.DefaultHalving)
		if err := fs.Parse(c.args); err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		p := pf.proxy()
		switch {
		case c.want == nil && p.DataSeed != nil:
			t.Errorf("%v: data seed %d; want none (the study's seed splits)", c.args, *p.DataSeed)
		case c.want != nil && (p.DataSeed == nil || *p.DataSeed != *c.want):
			t.Errorf("%v: data seed %v; want %d", c.args, p.DataSeed, *c.want)
		}
		if p.Train.Seed != 2 {
			t.Errorf("%v: the proxy's seed %d; want --seed's 2", c.args, p.Train.Seed)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// TestGridReportBestIsAMean: effnas grid --json's best carries the
// winner's mean over its top-rung runs as its accuracy (its rung-0 run's
// as rung0_accuracy), and a point whose rung-0 run diverged shows the
// retry that stands in for it.
func TestGridReportBestIsAMean(t *testing.T) {
	ctx := t.Context()
	s, study := newGridStudy(t, filepath.Join(t.TempDir(), "g.db"), search.Halving{Rungs: 1, Eta: 3, TopSeeds: 3, Finalists: 3})
	win, other := space.Scaling{Alpha: 1.2, Beta: 1.1, Gamma: 1.15}, space.Scaling{Alpha: 1, Beta: 1.2, Gamma: 1.2}
	var plans []store.Plan
	res := runs{}
	add := func(p space.Scaling, seed int, acc float64) {
		key := grid.Key(p)
		plans = append(plans, store.Plan{Key: key, Seed: seed, Grid: &store.GridPoint{Alpha: p.Alpha, Beta: p.Beta, Gamma: p.Gamma}})
		res[[3]any{key, 0, seed}] = store.Result{Accuracy: acc, Reward: acc, Seconds: 1}
	}
	for seed, acc := range []float64{0.95, 0.90, 0.91} { // mean 0.92
		add(win, seed, acc)
	}
	for seed, acc := range []float64{0.80, 0.80, 0.80} {
		add(grid.Base, seed, acc)
	}
	add(other, 0, -1) // diverged: failed below
	add(other, search.RetrySeed, 0.85)
	for seed, acc := range []float64{0.86, 0.86} {
		add(other, seed+1, acc)
	}
	if _, err := s.PlanTrials(ctx, study.ID, plans, nil); err != nil {
		t.Fatal(err)
	}
	claimed, err := s.ClaimTrials(ctx, study.ID, store.Claim{Worker: "w", Limit: len(plans), Lease: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range claimed {
		r := res[[3]any{tr.Key, tr.Rung, tr.Seed}]
		if r.Accuracy < 0 {
			if err := s.FailTrial(ctx, tr.Lease(), "diverged: loss is NaN", 1); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := s.FinishTrial(ctx, tr.Lease(), r); err != nil {
			t.Fatal(err)
		}
	}
	trials, err := s.Trials(ctx, study.ID)
	if err != nil {
		t.Fatal(err)
	}
	g, err := grid.Open(study)
	if err != nil {
		t.Fatal(err)
	}
	rep := newGridReport(g, study, search.Summary{Complete: true}, trials)
	b := rep.Best
	if b == nil || b.Key != grid.Key(win) || math.Abs(b.Accuracy-0.92) > 1e-9 || b.Rung0Accuracy != 0.95 || b.Seeds != 3 || math.Abs(b.TopAccuracy-0.92) > 1e-9 {
		t.Fatalf("best %+v; want %s at its mean 0.92 over 3 seeds, its rung-0 run 0.95 beside it", b, grid.Key(win))
	}
	var found bool
	for _, p := range rep.Points {
		if p.Key == grid.Key(other) {
			found = true
			if p.State != string(store.TrialComplete) || p.Accuracy != 0.85 {
				t.Errorf("point %s: %s at %v; want its retry, complete at 0.85", p.Key, p.State, p.Accuracy)
			}
		}
	}
	if !found || len(rep.Points) != 3 {
		t.Errorf("points %+v; want the 3 points once each", rep.Points)
	}
}

// TestGridTableSpread: the grid's table gives a point measured once its
// one run, with no spread (an sd of one run is undefined, and ±0.0000
// would claim it is exact), and a point measured under several seeds its
// mean ± sd.
func TestGridTableSpread(t *testing.T) {
	rep := &gridReport{Study: 2, Status: "complete", Points: []gridPointJSON{
		{Trial: 0, Key: "a1.00_b1.00_g1.00", Alpha: 1, Beta: 1, Gamma: 1, Constraint: 1, State: "complete", Accuracy: 0.956, Seeds: 3, TopAccuracy: 0.958, TopStd: 0.0035, Finalist: true},
		{Trial: 1, Key: "a1.00_b1.00_g1.40", Alpha: 1, Beta: 1, Gamma: 1.4, Constraint: 1.96, State: "complete", Accuracy: 0.962, Seeds: 1, TopAccuracy: 0.962},
		// A finalist whose extra seeds failed: tied, with one run.
		{Trial: 2, Key: "a1.00_b1.05_g1.35", Alpha: 1, Beta: 1.05, Gamma: 1.35, Constraint: 2.009, State: "complete", Accuracy: 0.957, Seeds: 1, TopAccuracy: 0.957, Finalist: true, Tied: true},
		// A point whose only run failed: no top-rung mean.
		{Trial: 3, Key: "a1.05_b1.00_g1.40", Alpha: 1.05, Beta: 1, Gamma: 1.4, Constraint: 2.058, State: "failed"},
	}}
	rep.Best = &gridBestJSON{gridPointJSON: rep.Points[0]}
	var b strings.Builder
	rep.print(&b, &dbName{raw: "effnas.db"})
	out := b.String()
	found := false
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= 7 && f[3] == "2.058" {
			found = true
			if f[4] != "-" || f[6] != "-" {
				t.Errorf("a point whose run failed shows %q and %q; want - for its rung-0 accuracy and its top-rung mean:\n%s", f[4], f[6], out)
			}
		}
	}
	if !found {
		t.Errorf("the table has no row for the point whose run failed:\n%s", out)
	}
	for _, want := range []string{"0.9580±0.0035 (3)", "0.9620 (1)", "(1.00, 1.05, 1.35) 0.9570 (1)"} {
		if !strings.Contains(out, want) {
			t.Errorf("grid table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "±0.0000") {
		t.Errorf("grid table gives a single run a spread of 0:\n%s", out)
	}
}

// newGridStudy creates, in a SQLite file at path, a grid study of
// EfficientNet-B0 whose proxy (900 images) climbs by h, with no trials.
func newGridStudy(t *testing.T, path string, h search.Halving) (*sqlite.Store, store.Study) {
	t.Helper()
	s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	cfg := grid.StudyConfig{Base: space.B0(), Proxy: search.Proxy{TrainSize: 900, Halving: h}}.WithDefaults()
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	study, err := s.CreateStudy(t.Context(), store.Study{Kind: store.KindGrid, Config: raw}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, study
}
