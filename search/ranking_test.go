package search

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/effnas/effnas/store"
)

// seedsDisagree is a search of 9 candidates at two rungs (eta 3, 3 seeds
// for each of at least 2 finalists) in which every wrong rule picks
// another winner:
//
//	rung 0 (seed 0):  C 0.85, A 0.80, B 0.78, six others 0.50 to 0.60
//	rung 1, seed 0:   A 0.95, B 0.93, C 0.91
//	rung 1, seeds 1-2: A 0.90, 0.90; B 0.93, 0.94
//
// Rung 0 ranks C first, the top rung's first runs A, and the means over
// the top rung's three seeds B: A (0.95+0.90+0.90)/3 = 0.91667, B
// (0.93+0.93+0.94)/3 = 0.93333. The finalists are A and B, the best two
// at the top rung's seed 0, not C, the best at rung 0.
//
// Sample sds by hand: A's deviations (1/30, -1/60, -1/60) square to
// 6/3600, over n-1 = 2 is 1/1200, sd 0.028868; B's (-1/300, -1/300,
// 2/300) square to 6/90000, sd sqrt(1/30000) = 0.0057735.
var seedsDisagree = Halving{Rungs: 2, Eta: 3, TopSeeds: 3, Finalists: 2}

func disagreeRung0() []store.Trial {
	var trials []store.Trial
	for i, c := range []struct {
		key string
		acc float64
	}{{"A", 0.80}, {"B", 0.78}, {"C", 0.85}, {"D", 0.60}, {"E", 0.58}, {"F", 0.56}, {"G", 0.54}, {"H", 0.52}, {"I", 0.50}} {
		trials = append(trials, rankRun(i, c.key, 0, 0, c.acc))
	}
	return trials
}

// rankRun is a complete run whose reward is its accuracy; FLOPs are set
// for Pareto: A 400, B 300, C 200.
func rankRun(n int, key string, rung, seed int, acc float64) store.Trial {
	flops := map[string]int64{"A": 400, "B": 300, "C": 200}[key]
	return store.Trial{Number: n, Key: key, Rung: rung, Seed: seed, State: store.TrialComplete, Accuracy: acc, Reward: acc, FLOPs: flops}
}

// describeStanding says what a test needs of a standing: key, seeds, mean.
func describeStanding(s *Standing) string {
	if s == nil {
		return "none"
	}
	return fmt.Sprintf("%s (%d seeds, mean %.5f, finalist %v, missing %d)", s.Key, s.Seeds, s.Accuracy, s.Finalist, s.MissingSeeds)
}

func planKeys(plans []store.Plan) []string {
	var out []string
	for _, p := range plans {
		out = append(out, fmt.Sprintf("%s/%d/%d", p.Key, p.Rung, p.Seed))
	}
	return out
}

// TestRankingByMeansOfTheTopRung follows the study above from rung 0 to
// the finalists' seeds.
func TestRankingByMeansOfTheTopRung(t *testing.T) {
	h := seedsDisagree
	trials := disagreeRung0()

	// Rung 0 closed: its best 9/3 = 3 climb, best first.
	got := planKeys(h.Next(trials, false, noPins, false))
	if want := []string{"C/1/0", "A/1/0", "B/1/0"}; !slices.Equal(got, want) {
		t.Fatalf("promotions %v; want %v", got, want)
	}
	trials = append(trials, rankRun(9, "C", 1, 0, 0.91), rankRun(10, "A", 1, 0, 0.95), rankRun(11, "B", 1, 0, 0.93))

	// Before the finalists are chosen the best is the best at the top
	// rung (A), not at rung 0 (C).
	if best := Best(trials, h); best == nil || best.Key != "A" || best.Seeds != 1 {
		t.Fatalf("best before the finalists = %s; want A, the best at the top rung, not C, the best at rung 0", describeStanding(best))
	}

	// The finalists are the best max(2, ceil(3/3)) = 2 at the top rung,
	// A and B; C, best at rung 0, is not one.
	got = planKeys(h.Next(trials, false, noPins, false))
	if want := []string{"A/1/1", "A/1/2", "B/1/1", "B/1/2"}; !slices.Equal(got, want) {
		t.Fatalf("finalist seeds %v; want %v (A and B, the best two of the top rung)", got, want)
	}
	trials = append(trials, rankRun(12, "A", 1, 1, 0.90), rankRun(13, "A", 1, 2, 0.90),
		rankRun(14, "B", 1, 1, 0.93), rankRun(15, "B", 1, 2, 0.94))
	if plans := h.Next(trials, false, noPins, false); len(plans) != 0 {
		t.Fatalf("planned %v after the finalists' seeds; want nothing", planKeys(plans))
	}

	// B wins on its mean, though A won its first run and C rung 0.
	best := Best(trials, h)
	if best == nil || best.Key != "B" {
		t.Fatalf("best = %s; want B (mean 0.93333 over 3 seeds), not A (first run 0.95, mean 0.91667) nor C (best at rung 0)", describeStanding(best))
	}
	st := Standings(trials, h)
	type row struct {
		key      string
		finalist bool
		seeds    int
		acc, std float64
		runs     []int
	}
	want := []row{
		{key: "B", finalist: true, seeds: 3, acc: 0.28 / 0.3, std: math.Sqrt(1.0 / 30000), runs: []int{11, 14, 15}},
		{key: "A", finalist: true, seeds: 3, acc: 2.75 / 3, std: math.Sqrt(1.0 / 1200), runs: []int{10, 12, 13}},
		{key: "C", finalist: false, seeds: 1, acc: 0.91, std: 0, runs: []int{9}},
	}
	if len(st) != len(want) {
		t.Fatalf("%d standings, want %d", len(st), len(want))
	}
	for i, w := range want {
		s := st[i]
		if s.Key != w.key || s.Finalist != w.finalist || s.Seeds != w.seeds || !slices.Equal(s.Runs, w.runs) ||
			math.Abs(s.Accuracy-w.acc) > 1e-12 || math.Abs(s.AccuracyStd-w.std) > 1e-12 || math.Abs(s.Reward-w.acc) > 1e-12 {
			t.Errorf("standing %d = %s finalist %v, %d seeds, runs %v, %.6f ± %.6f; want %s finalist %v, %d seeds, runs %v, %.6f ± %.6f",
				i, s.Key, s.Finalist, s.Seeds, s.Runs, s.Accuracy, s.AccuracyStd, w.key, w.finalist, w.seeds, w.runs, w.acc, w.std)
		}
	}
	// Standard error of B's mean: 0.0057735/sqrt(3) = 0.0033333.
	if se := st[0].StdErr(); math.Abs(se-1.0/300) > 1e-12 {
		t.Errorf("B's standard error %.17g, want 1/300", se)
	}

	// Pareto of mean accuracy against multiply-adds: C (200, 0.91), B
	// (300, 0.93333); A (400, 0.91667) is dominated by B. By first runs
	// A (400, 0.95) would be on the front too.
	var front []string
	for _, s := range Pareto(trials, h) {
		front = append(front, s.Key)
	}
	if want := []string{"C", "B"}; !slices.Equal(front, want) {
		t.Errorf("Pareto front %v; want %v (A's mean is below B's, at more multiply-adds)", front, want)
	}
}

// TestBestWhileFinalistsTrain: while B's extra seeds are planned but not
// trained, B is a finalist missing seeds and A, with all three, ranks
// first, whatever B's one run. Once B's seeds are in, B's mean decides.
func TestBestWhileFinalistsTrain(t *testing.T) {
	h := seedsDisagree
	trials := append(disagreeRung0(), rankRun(9, "C", 1, 0, 0.91), rankRun(10, "A", 1, 0, 0.95), rankRun(11, "B", 1, 0, 0.93),
		rankRun(12, "A", 1, 1, 0.90), rankRun(13, "A", 1, 2, 0.90),
		store.Trial{Number: 14, Key: "B", Rung: 1, Seed: 1, State: store.TrialRunning},
		store.Trial{Number: 15, Key: "B", Rung: 1, Seed: 2, State: store.TrialPending})
	best := Best(trials, h)
	if best == nil || best.Key != "A" || best.Seeds != 3 {
		t.Fatalf("best = %s; want A, the one finalist with all its seeds", describeStanding(best))
	}
	trials[14] = rankRun(14, "B", 1, 1, 0.93)
	trials[15] = rankRun(15, "B", 1, 2, 0.94)
	if best := Best(trials, h); best == nil || best.Key != "B" {
		t.Fatalf("best = %s; want B once its seeds are in", describeStanding(best))
	}
}
