package search

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/trainer"
)

// simulate runs successive halving on n candidates with one worker that
// finishes the oldest pending trial at each step, as a study would: plan,
// train, plan again. A candidate's reward at a rung is quality(key) plus a
// little per rung; fail says which runs fail (as diverged).
func simulate(t *testing.T, h Halving, n int, quality func(string) float64, pinned func(string) bool, retry bool,
	fail func(store.Trial) bool) []store.Trial {
	t.Helper()
	var trials []store.Trial
	add := func(p store.Plan) {
		trials = append(trials, store.Trial{Number: len(trials), Key: p.Key, Rung: p.Rung, Seed: p.Seed, State: store.TrialPending})
	}
	started := 0
	for step := 0; step < 10000; step++ {
		plans := h.Next(trials, started < n, pinned, retry)
		if len(plans) == 0 && started < n {
			plans = []store.Plan{{Key: fmt.Sprintf("c%02d", started)}}
			started++
		}
		for _, p := range plans {
			for _, tr := range trials {
				if tr.Key == p.Key && tr.Rung == p.Rung && tr.Seed == p.Seed {
					t.Fatalf("step %d: %s rung %d seed %d planned twice", step, p.Key, p.Rung, p.Seed)
				}
			}
			add(p)
		}
		i := slices.IndexFunc(trials, func(tr store.Trial) bool { return tr.State == store.TrialPending })
		if i < 0 {
			return trials
		}
		tr := &trials[i]
		if fail != nil && fail(*tr) {
			tr.State, tr.Error = store.TrialFailed, "diverged: loss is NaN"
			continue
		}
		tr.State = store.TrialComplete
		tr.Reward = quality(tr.Key) + 0.01*float64(tr.Rung) + 0.001*float64(tr.Seed%RetrySeed)
		tr.Accuracy = tr.Reward
	}
	t.Fatal("the simulation did not end")
	return nil
}

func count(trials []store.Trial, rung int, seeds bool) int {
	n := 0
	for _, t := range trials {
		if t.Rung == rung && (seeds || t.Seed == 0) {
			n++
		}
	}
	return n
}

func TestHalvingClimbsAndPicksFinalists(t *testing.T) {
	h := Halving{Rungs: 3, Eta: 3, TopSeeds: 3, Finalists: 3}
	r := rand.New(rand.NewPCG(1, 2))
	q := map[string]float64{}
	for i := range 27 {
		q[fmt.Sprintf("c%02d", i)] = r.Float64()
	}
	trials := simulate(t, h, 27, func(k string) float64 { return q[k] }, noPins, false, nil)
	// Asynchronous promotion climbs at least the best 1/eta of each rung
	// (a little more: one promoted early may fall out of the top later).
	if n := count(trials, 0, false); n != 27 {
		t.Fatalf("rung 0: %d candidates, want 27", n)
	}
	n1, n2 := count(trials, 1, false), count(trials, 2, false)
	if n1 < 9 || n1 > 12 || n2 < 3 || n2 > 5 {
		t.Fatalf("rungs 1 and 2 trained %d and %d candidates; want about 9 and 3", n1, n2)
	}
	// The best 9 of rung 0 all climbed, and the best 3 of rung 1.
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range q {
			if !yield(k) {
				return
			}
		}
	})
	slices.SortFunc(keys, func(a, b string) int { return -cmpFloat(q[a], q[b]) })
	for _, k := range keys[:9] {
		if !slices.ContainsFunc(trials, func(tr store.Trial) bool { return tr.Key == k && tr.Rung == 1 }) {
			t.Fatalf("%s, among the best 9 of rung 0, did not reach rung 1", k)
		}
	}
	// Finalists: the best max(3, n2/3) of the top rung, 3 seeds each.
	st := Standings(trials, h)
	finals := 0
	for _, s := range st {
		if s.Finalist {
			finals++
			if s.Seeds != 3 {
				t.Fatalf("finalist %s has %d seeds, want 3", s.Key, s.Seeds)
			}
		}
	}
	if finals != 3 || count(trials, 2, true) != n2+6 {
		t.Fatalf("%d finalists, %d top-rung runs; want 3 finalists with 2 more seeds each", finals, count(trials, 2, true))
	}
	best := Best(trials, h)
	if best == nil || !best.Finalist || best.Key != keys[0] {
		t.Fatalf("best = %+v; want the finalist %s, the best candidate", best, keys[0])
	}
	if got := h.Expected(27); got != 27+9+3+6 {
		t.Errorf("Expected(27) = %d, want 45", got)
	}
}

// TestHalvingFinalistsWait: no finalist seed is planned while a trial
// below the top rung is unfinished or rung 0 may still grow.
func TestHalvingFinalistsWait(t *testing.T) {
	h := Halving{Rungs: 2, Eta: 2, TopSeeds: 2, Finalists: 1}
	trials := []store.Trial{
		{Number: 0, Key: "a", State: store.TrialComplete, Reward: 0.9},
		{Number: 1, Key: "b", State: store.TrialComplete, Reward: 0.5},
		{Number: 2, Key: "a", Rung: 1, State: store.TrialComplete, Reward: 0.95},
		{Number: 3, Key: "c", State: store.TrialRunning},
	}
	if got := h.Next(trials, false, noPins, false); len(got) != 0 {
		t.Fatalf("planned %+v while trial 3 runs at rung 0", got)
	}
	if got := h.Next(trials[:3], true, noPins, false); len(got) != 0 {
		t.Fatalf("planned %+v while rung 0 may still grow", got)
	}
	got := h.Next(trials[:3], false, noPins, false)
	if len(got) != 1 || got[0].Key != "a" || got[0].Rung != 1 || got[0].Seed != 1 {
		t.Fatalf("finalist seeds = %+v; want a's seed 1 at rung 1", got)
	}
}

// TestHalvingPinnedAndRetry: a pinned candidate (the grid's base) climbs
// and is a finalist whatever its rank; a diverged run is retried once
// with a derived seed that stands in for it.
func TestHalvingPinnedAndRetry(t *testing.T) {
	h := Halving{Rungs: 2, Eta: 3, TopSeeds: 2, Finalists: 1}
	q := func(k string) float64 {
		if k == "c00" {
			return 0 // the base: the worst
		}
		return float64(len(k)) + float64(k[2]-'0')/10
	}
	failed := map[string]bool{}
	trials := simulate(t, h, 9, q, func(k string) bool { return k == "c00" }, true, func(tr store.Trial) bool {
		// c05's first run at rung 0 diverges; its retry does not.
		id := fmt.Sprintf("%s/%d/%d", tr.Key, tr.Rung, tr.Seed)
		if tr.Key == "c05" && tr.Rung == 0 && tr.Seed == 0 && !failed[id] {
			failed[id] = true
			return true
		}
		return false
	})
	retried := slices.ContainsFunc(trials, func(tr store.Trial) bool { return tr.Key == "c05" && tr.Seed == RetrySeed })
	if !retried {
		t.Fatal("the diverged run of c05 was not retried")
	}
	var base *Standing
	for _, s := range Standings(trials, h) {
		if s.Key == "c00" {
			base = &s
		}
	}
	if base == nil || !base.Finalist || base.Seeds != 2 {
		t.Fatalf("the pinned base = %+v; want a finalist with 2 seeds at the top rung", base)
	}
	// The retry counts as c05's rung-0 run: it can be promoted.
	eff := effective(trials)
	if !slices.ContainsFunc(eff, func(tr store.Trial) bool {
		return tr.Key == "c05" && tr.Rung == 0 && tr.Seed == 0 && tr.State == store.TrialComplete
	}) {
		t.Fatal("the retry does not stand in for c05's diverged run")
	}
}

// TestHalvingSmallStudiesEndWithAWinner: a study with fewer candidates
// than eta^(rungs-1), or a grid of a few points whose pinned base takes
// a place, still climbs its best to the top rung once each rung is closed,
// and ends with a finalist there.
func TestHalvingSmallStudiesEndWithAWinner(t *testing.T) {
	h := Halving{}.WithDefaults()
	q := func(k string) float64 { return float64(k[1]-'0')/10 + float64(k[2]-'0')/100 }
	for n := 1; n <= 10; n++ {
		trials := simulate(t, h, n, q, noPins, false, nil)
		best := Best(trials, h)
		if best == nil || !best.Finalist || best.Seeds != h.TopSeeds || best.Key != fmt.Sprintf("c%02d", n-1) {
			t.Errorf("%d candidates: best = %+v; want the best candidate c%02d, a finalist with %d seeds", n, best, n-1, h.TopSeeds)
		}
	}
	// A grid of 6 points whose base (c00, pinned) is the worst: a point
	// other than the base reaches the top rung and is a finalist.
	base := func(k string) bool { return k == "c00" }
	trials := simulate(t, h, 6, q, base, false, nil)
	var finalists []string
	for _, s := range Standings(trials, h) {
		if s.Finalist && s.Seeds == h.TopSeeds {
			finalists = append(finalists, s.Key)
		}
	}
	if !slices.Contains(finalists, "c00") || !slices.Contains(finalists, "c05") {
		t.Errorf("grid of 6 points: finalists %v; want the base c00 and the best point c05", finalists)
	}
}

// TestFailedFinalistSeeds: a finalist's seed that fails gets one more
// attempt with a derived seed, outside the budget, in a search (no
// retry of diverged runs below the top) as in a grid; a finalist still
// short of seeds then ranks after every finalist that has them all, and
// says how many it misses. A has 0.95 on seed 0 and its two other seeds
// diverged, twice; B has 0.94, 0.93 and 0.93: B wins, though A's one run
// and A's mean over its complete runs (0.95) beat B's mean (0.9333).
func TestFailedFinalistSeeds(t *testing.T) {
	h := Halving{Rungs: 2, Eta: 3, TopSeeds: 3, Finalists: 2}
	done := func(n int, key string, rung, seed int, acc float64) store.Trial {
		return store.Trial{Number: n, Key: key, Rung: rung, Seed: seed, State: store.TrialComplete, Accuracy: acc, Reward: acc}
	}
	diverged := func(n int, key string, seed int) store.Trial {
		return store.Trial{Number: n, Key: key, Rung: 1, Seed: seed, State: store.TrialFailed, Error: "diverged: loss is NaN"}
	}
	trials := []store.Trial{
		done(0, "A", 0, 0, 0.90), done(1, "B", 0, 0, 0.89), done(2, "C", 0, 0, 0.50),
		done(3, "A", 1, 0, 0.95), done(4, "B", 1, 0, 0.94),
		diverged(5, "A", 1), diverged(6, "A", 2), done(7, "B", 1, 1, 0.93), done(8, "B", 1, 2, 0.93),
		// C is not a finalist: its failed run below the top is not retried in a search.
		{Number: 9, Key: "C", Rung: 0, Seed: 1, State: store.TrialFailed, Error: "diverged"},
	}
	plans := h.Next(trials, false, noPins, false)
	var retried []string
	for _, p := range plans {
		retried = append(retried, fmt.Sprintf("%s/%d/%d", p.Key, p.Rung, p.Seed))
	}
	if want := []string{"A/1/1001", "A/1/1002"}; !slices.Equal(retried, want) {
		t.Fatalf("planned %v; want one retry of each of A's failed seeds, %v", retried, want)
	}
	// The retries diverge too: nothing more is tried.
	trials = append(trials, diverged(10, "A", 1001), diverged(11, "A", 1002))
	if plans := h.Next(trials, false, noPins, false); len(plans) != 0 {
		t.Fatalf("planned %+v after the retries failed; want nothing: one retry per seed", plans)
	}
	best := Best(trials, h)
	if best == nil || best.Key != "B" || best.Seeds != 3 || best.MissingSeeds != 0 {
		t.Fatalf("best = %+v; want B, with its 3 seeds", best)
	}
	st := Standings(trials, h)
	if len(st) != 2 || st[1].Key != "A" || !st[1].Finalist || st[1].Seeds != 1 || st[1].MissingSeeds != 2 || st[1].Accuracy != 0.95 {
		t.Fatalf("standings %+v; want A second, a finalist with 1 seed and 2 missing", st)
	}
	// A retry that completes stands in for the failed seed: A is whole
	// again and its mean, 0.94, beats B's.
	trials[len(trials)-2] = done(10, "A", 1, 1001, 0.93)
	trials[len(trials)-1] = done(11, "A", 1, 1002, 0.94)
	if best := Best(trials, h); best == nil || best.Key != "A" || best.Seeds != 3 || math.Abs(best.Accuracy-0.94) > 1e-12 {
		t.Fatalf("best = %+v; want A with 3 seeds, mean 0.94", best)
	}
	// A run rejected before training (over the memory budget) would be
	// rejected again: it is not retried.
	rejected := []store.Trial{done(0, "A", 0, 0, 0.9), done(1, "A", 1, 0, 0.9),
		{Number: 2, Key: "A", Rung: 1, Seed: 1, State: store.TrialFailed, Error: "rejected before training: it needs about 9 GiB"}}
	if plans := h.Next(rejected, false, noPins, true); len(plans) != 0 && plans[0].Seed >= RetrySeed {
		t.Fatalf("planned %+v; want no retry of a run rejected before training", plans)
	}
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestProxyFidelity(t *testing.T) {
	p := Proxy{TrainSize: 6000, Train: trainerConfig(3, 64), Halving: Halving{Rungs: 3, Eta: 3}}.WithDefaults()
	want := []Fidelity{{2000, 1}, {6000, 1}, {6000, 3}}
	for k, w := range want {
		if got := p.Fidelity(k); got != w {
			t.Errorf("rung %d: %+v, want %+v", k, got, w)
		}
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := p
	bad.TrainSize, bad.Train.Epochs = 300, 1
	if err := bad.Validate(); err == nil {
		t.Error("rungs of 33, 100 and 300 images with batch 64 were accepted")
	}
	flat := p
	flat.TrainSize, flat.Train.Epochs, flat.Train.Batch, flat.Halving.Eta = 100, 1, 1, 100
	flat.Halving.Rungs = 3
	if err := flat.Validate(); err == nil {
		t.Error("rungs that do not increase were accepted")
	}
	all := p
	all.TrainSize = -1
	if err := all.Validate(); err == nil || !strings.Contains(err.Error(), "same images") {
		t.Errorf("the whole training set at every one of 3 rungs: %v; want it refused", err)
	}
	all.Halving.Rungs = 1
	if err := all.Validate(); err != nil {
		t.Errorf("the whole training set at one rung: %v", err)
	}
}

func trainerConfig(epochs, batch int) trainer.Config {
	return trainer.Config{Epochs: epochs, Batch: batch}
}

// TestPinnedFinalistOutsideQuota: the grid's base point is a finalist
// outside the quota, as it climbs outside it: with 2 finalist places and
// the base best at the top rung, W and X still get their seeds.
func TestPinnedFinalistOutsideQuota(t *testing.T) {
	h := Halving{Rungs: 1, Eta: 3, TopSeeds: 2, Finalists: 2}
	var trials []store.Trial
	for i, p := range []struct {
		key string
		acc float64
	}{{"base", 0.935}, {"W", 0.92}, {"X", 0.905}, {"Y", 0.80}} {
		trials = append(trials, store.Trial{Number: i, Key: p.key, State: store.TrialComplete, Accuracy: p.acc, Reward: p.acc})
	}
	var got []string
	for _, p := range h.Next(trials, false, func(k string) bool { return k == "base" }, true) {
		got = append(got, fmt.Sprintf("%s/%d", p.Key, p.Seed))
	}
	if want := []string{"base/1", "W/1", "X/1"}; !slices.Equal(got, want) {
		t.Fatalf("finalist seeds %v; want %v: the base outside the 2 places", got, want)
	}
}

// TestMaxFinalists: with one rung every candidate is at the top, and the
// best third of many is a lot of seeds: MaxFinalists bounds them (the
// pinned base aside), and Expected counts the bound.
func TestMaxFinalists(t *testing.T) {
	h := Halving{Rungs: 1, Eta: 3, TopSeeds: 3, Finalists: 3, MaxFinalists: 9}
	q := func(k string) float64 { return float64(k[1]-'0')/10 + float64(k[2]-'0')/100 }
	trials := simulate(t, h, 40, q, func(k string) bool { return k == "c00" }, true, nil)
	var finalists []string
	for _, s := range Standings(trials, h) {
		if s.Finalist {
			finalists = append(finalists, s.Key)
		}
	}
	want := []string{"c39", "c38", "c37", "c36", "c35", "c34", "c33", "c32", "c31", "c00"}
	if !slices.Equal(finalists, want) {
		t.Errorf("finalists %v; want the best 9 and the pinned base: %v", finalists, want)
	}
	if got := h.Expected(40); got != 40+9*2 {
		t.Errorf("Expected(40) = %d; want 40 + 9 finalists x 2 more seeds", got)
	}
	h.MaxFinalists = 0
	if got := h.Expected(40); got != 40+14*2 {
		t.Errorf("no bound: Expected(40) = %d; want 40 + ceil(40/3) x 2", got)
	}
	if err := (Halving{Rungs: 1, Eta: 3, TopSeeds: 3, Finalists: 3, MaxFinalists: 2}).Validate(); err == nil {
		t.Error("a bound below the fewest finalists was accepted")
	}
}
