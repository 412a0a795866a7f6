package grid

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/effnas/effnas/search"
	"github.com/effnas/effnas/space"
	"github.com/effnas/effnas/store"
)

var (
	pointW  = space.Scaling{Alpha: 1.2, Beta: 1.1, Gamma: 1.15}
	pointT  = space.Scaling{Alpha: 1, Beta: 1.2, Gamma: 1.2}
	pointT2 = space.Scaling{Alpha: 1.2, Beta: 1, Gamma: 1.2}
	pointN  = space.Scaling{Alpha: 1.4, Beta: 1, Gamma: 1.2}
	pointX  = space.Scaling{Alpha: 1.2, Beta: 1.2, Gamma: 1}
)

// tiedGrid is a grid at one rung whose finalists train 3 seeds each.
func tiedGrid(finalists int) *Grid {
	cfg := tinyStudy().WithDefaults()
	cfg.Proxy.Halving = search.Halving{Rungs: 1, Eta: 3, TopSeeds: 3, Finalists: finalists}
	return &Grid{cfg: cfg}
}

// seedRuns returns, for each point in turn, its complete runs at seeds
// 0, 1, ... with the given accuracies (reward = accuracy), seed 0 of every
// point first, as a study trains them.
func seedRuns(points []space.Scaling, accs [][]float64) []store.Trial {
	var trials []store.Trial
	for seed := 0; ; seed++ {
		more := false
		for i, s := range points {
			if seed >= len(accs[i]) {
				continue
			}
			more = true
			trials = append(trials, store.Trial{Number: len(trials), Key: Key(s), Seed: seed,
				Grid:  &store.GridPoint{Alpha: s.Alpha, Beta: s.Beta, Gamma: s.Gamma},
				State: store.TrialComplete, Accuracy: accs[i][seed], Reward: accs[i][seed]})
		}
		if !more {
			return trials
		}
	}
}

func describeStanding(s *search.Standing) string {
	if s == nil {
		return "none"
	}
	return fmt.Sprintf("%s (%d seeds, mean %.5f ± %.5f)", s.Key, s.Seeds, s.Accuracy, s.AccuracyStd)
}

func standingKeys(st []search.Standing) []string {
	var out []string
	for _, s := range st {
		out = append(out, s.Key)
	}
	return out
}

// finalistsPlanned returns the points Plan gives extra seeds, in order of
// first appearance.
func finalistsPlanned(t *testing.T, g *Grid, trials []store.Trial) []string {
	t.Helper()
	plans, _, err := g.Plan(t.Context(), trials, 100)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, p := range plans {
		if p.Seed == 0 || p.Seed >= search.RetrySeed {
			t.Fatalf("planned %+v; want only finalists' seeds", p)
		}
		if !slices.Contains(keys, p.Key) {
			keys = append(keys, p.Key)
		}
	}
	return keys
}

// TestTiedByStandardErrors: five finalists with 3 seeds each (sample sd
// of three values m-d, m, m+d is d; standard error d/sqrt(3)):
//
//	base  .935 .915 .925  mean .925  sd .010  2se .011547  [.913453, .936547]
//	W     .900 .910 .920  mean .910  sd .010  2se .011547  [.898453, .921547]
//	T     .906 .870 .888  mean .888  sd .018  2se .020785  [.867215, .908785]
//	T2    .879 .889 .899  mean .889  sd .010  2se .011547  [.877453, .900547]
//	N     .897 .887 .892  mean .892  sd .005  2se .005774  [.886226, .897774]
//
// W wins: the base has the best mean but is the reference, never the
// winner; T won its first run (.906 against W's .900). Tied with W: the
// base (its interval reaches down to .913453 <= .921547), T, and T2 (up
// to .900547 >= .898453, inside by .0021). N, whose mean is above T's and
// T2's, is not (up to .897774, short by .00068): its runs agree, so its
// interval is narrow. With one standard error instead of two, T and T2
// fall out (W from .904227; T up to .898392, T2 to .894774) and so does
// the base (from .919227 > .915774); with the sd instead of the standard
// error N comes in (W from .890, N up to .897).
func TestTiedByStandardErrors(t *testing.T) {
	g := tiedGrid(5)
	points := []space.Scaling{Base, pointW, pointT, pointT2, pointN}
	accs := [][]float64{
		{0.935, 0.915, 0.925},
		{0.900, 0.910, 0.920},
		{0.906, 0.870, 0.888},
		{0.879, 0.889, 0.899},
		{0.897, 0.887, 0.892},
	}
	first := seedRuns(points, [][]float64{{accs[0][0]}, {accs[1][0]}, {accs[2][0]}, {accs[3][0]}, {accs[4][0]}})
	// Every point is a finalist: max(5, ceil(5/3)) of 5.
	want := []string{Key(Base), Key(pointW), Key(pointT), Key(pointT2), Key(pointN)}
	if got := finalistsPlanned(t, g, first); !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
		t.Fatalf("finalists %v; want %v", got, want)
	}
	// Before the finalists' seeds are planned, no point is tied.
	if tied := g.Tied(first); len(tied) != 0 {
		t.Errorf("tied before the finalists: %v; want none", standingKeys(tied))
	}

	trials := seedRuns(points, accs)
	best := g.Best(trials)
	if best == nil || best.Key != Key(pointW) || best.Seeds != 3 {
		t.Fatalf("best = %s; want %s (mean .910), not the base (.925, the reference) nor %s (first run .906)", describeStanding(best), Key(pointW), Key(pointT))
	}
	if se := best.StdErr(); math.Abs(se-0.01/math.Sqrt(3)) > 1e-9 {
		t.Errorf("W's standard error %.9f, want .01/sqrt(3) = .005774", se)
	}
	got := standingKeys(g.Tied(trials))
	if want := []string{Key(Base), Key(pointW), Key(pointT2), Key(pointT)}; !slices.Equal(got, want) {
		t.Errorf("tied %v; want %v (by mean: base, W, T2, T), without %s", got, want, Key(pointN))
	}
}

// TestTiedOnlyFinalists: a point that is not a finalist is never tied,
// even when its one run lies inside the winner's interval. At seed 0 W
// has .920, X .905 and the base .895: the finalists are the best
// max(1, ceil(3/3)) = 1, W, and the base, pinned (the base ranks last, so
// this holds whether or not it takes a finalist's place). W's runs .920,
// .900, .910 give [.898453, .921547], which holds X's .905; the base's
// .895, .915, .935 (mean .915, sd .02, 2se .023094) overlap it.
func TestTiedOnlyFinalists(t *testing.T) {
	g := tiedGrid(1)
	points := []space.Scaling{Base, pointW, pointX}
	first := seedRuns(points, [][]float64{{0.895}, {0.920}, {0.905}})
	if got, want := finalistsPlanned(t, g, first), []string{Key(Base), Key(pointW)}; !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
		t.Fatalf("finalists %v; want %v", got, want)
	}
	trials := seedRuns(points, [][]float64{{0.895, 0.915, 0.935}, {0.920, 0.900, 0.910}, {0.905}})
	if best := g.Best(trials); best == nil || best.Key != Key(pointW) {
		t.Fatalf("best = %s; want %s", describeStanding(best), Key(pointW))
	}
	got := standingKeys(g.Tied(trials))
	if want := []string{Key(Base), Key(pointW)}; !slices.Equal(got, want) {
		t.Errorf("tied %v; want %v: %s is no finalist", got, want, Key(pointX))
	}
}
