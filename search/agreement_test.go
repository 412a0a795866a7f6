package search

import (
	"math"
	"strings"
	"testing"

	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/trainer"
)

// TestAgreement checks the rungs' agreement with the top rung against a
// hand calculation. Ten candidates at rung 0; a, c, d climb to the top
// (b to rung 1 only); c and d are the finalists, with two seeds each.
//
//	     rung 0  rung 1  top seeds    top mean
//	a    0.90    0.91    0.92         0.92
//	c    0.70    0.95    0.96, 0.96   0.96
//	d    0.60    0.70    0.97, 0.93   0.95
//
// Rung 0 vs the top means: (a,c) and (a,d) discordant, (c,d) concordant:
// tau = (1 - 2) / 3 = -1/3. (Against the top's seed-0 runs, d's 0.97,
// (c,d) would be discordant too: tau -1.) Rung 1: (a,c) concordant,
// (a,d) discordant, (c,d) concordant: tau = 1/3. Rung 0 ranks c third and
// d fourth of ten: floor(10/3) = 3, so c is in its top third and d is
// not: half the finalists.
func TestAgreement(t *testing.T) {
	h := Halving{Rungs: 3, Eta: 3, TopSeeds: 2, Finalists: 2}
	px := Proxy{TrainSize: 900, Train: trainer.Config{Epochs: 1}, Halving: h}
	var trials []store.Trial
	run := func(key string, rung, seed int, acc float64) {
		trials = append(trials, store.Trial{Number: len(trials), Key: key, Rung: rung, Seed: seed, State: store.TrialComplete, Accuracy: acc, Reward: acc})
	}
	for i, key := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"} {
		run(key, 0, 0, 0.9-0.1*float64(i)+0.001)
	}
	trials[2].Accuracy, trials[2].Reward = 0.70, 0.70 // c
	trials[3].Accuracy, trials[3].Reward = 0.60, 0.60 // d
	// a's first rung-0 run diverged; its retry (a derived seed) stands in.
	trials[0].State, trials[0].Accuracy, trials[0].Reward, trials[0].Error = store.TrialFailed, 0, 0, "diverged: loss is NaN"
	run("a", 0, RetrySeed, 0.901)
	run("a", 1, 0, 0.91)
	run("b", 1, 0, 0.85)
	run("c", 1, 0, 0.95)
	run("d", 1, 0, 0.70)
	run("a", 2, 0, 0.92)
	run("c", 2, 0, 0.96)
	run("d", 2, 0, 0.97)
	run("c", 2, 1, 0.96)
	run("d", 2, 1, 0.93)
	got := Agreement(trials, px, nil)
	if len(got) != 2 {
		t.Fatalf("%d rungs; want rungs 0 and 1: %+v", len(got), got)
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-12 }
	if g := got[0]; g.TrainSize != 100 || g.Epochs != 1 || got[1].TrainSize != 300 {
		t.Errorf("fidelities %+v; want 100 x 1 and 300 x 1 below the top's 900 x 1", got)
	}
	if g := got[0]; g.Rung != 0 || g.Candidates != 3 || !near(g.Tau, -1.0/3) || g.FinalistsInTopThird == nil || *g.FinalistsInTopThird != 0.5 || g.Finalists != 2 {
		t.Errorf("rung 0: %+v (share %v); want 3 candidates, tau -1/3, half of 2 finalists in its top third", g, g.FinalistsInTopThird)
	}
	if g := got[1]; g.Rung != 1 || g.Candidates != 3 || !near(g.Tau, 1.0/3) || g.FinalistsInTopThird != nil {
		t.Errorf("rung 1: %+v; want 3 candidates, tau 1/3, no finalist share", g)
	}
	// The grid's base point is a finalist whatever its rank: not counted.
	got = Agreement(trials, px, func(k string) bool { return k == "d" })
	if g := got[0]; *g.FinalistsInTopThird != 1 || g.Finalists != 1 {
		t.Errorf("with d pinned: share %v of %d finalists; want 1 of 1 (c)", *g.FinalistsInTopThird, g.Finalists)
	}
	// One rung: nothing below the top, an empty list (not null).
	if got := Agreement(trials, Proxy{Halving: Halving{Rungs: 1, Eta: 3, TopSeeds: 1}}, nil); got == nil || len(got) != 0 {
		t.Errorf("one rung: %#v; want an empty list", got)
	}
	// Nobody at the top yet: every rung's tau is 0 over 0 candidates.
	if got := Agreement(trials[:11], px, nil); got[0].Candidates != 0 || got[0].Tau != 0 || *got[0].FinalistsInTopThird != 0 {
		t.Errorf("no top rung yet: %+v; want 0 candidates, tau 0, share 0", got[0])
	}
}

// TestPanelRungs: a proxy benchmark of 3 rungs plans every architecture
// under every seed at each rung of search's schedule (--train-size and
// --epochs the top's), and the reference above them, and trains each at
// its rung's fidelity.
func TestPanelRungs(t *testing.T) {
	st, _ := openStore(t)
	px := tinyConfig(1, "random").Proxy
	px.TrainSize, px.Train.Epochs, px.Train.Batch = 900, 2, 32
	px.Halving = Halving{Rungs: 3, Eta: 3}
	p, trials := newPanel(t, st, PanelConfig{Proxy: px, Panel: 2, Seeds: 2, RefSeeds: 3, Reference: Fidelity{TrainSize: 2000, Epochs: 2}})
	if p.Config().RefRung() != 3 || p.Expected() != 3*(2*3+3) || len(trials) != p.Expected() {
		t.Fatalf("reference rung %d, expected %d, planned %d; want rung 3, 27 and 27", p.Config().RefRung(), p.Expected(), len(trials))
	}
	want := []Fidelity{{200, 1}, {600, 1}, {900, 2}, {2000, 2}} // 1800/9 and 1800/3 images, epochs cut first
	seeds := map[int]map[int]int{}
	for _, tr := range trials {
		if got := p.Fidelity(tr); got != want[tr.Rung] {
			t.Errorf("trial %d at rung %d trains %+v; want %+v", tr.Number, tr.Rung, got, want[tr.Rung])
		}
		if seeds[tr.Rung] == nil {
			seeds[tr.Rung] = map[int]int{}
		}
		seeds[tr.Rung][tr.Seed]++
	}
	for rung, n := range map[int]int{0: 2, 1: 2, 2: 2, 3: 3} {
		if len(seeds[rung]) != n || seeds[rung][0] != 3 {
			t.Errorf("rung %d: seeds %v; want %d seeds of the 3 architectures", rung, seeds[rung], n)
		}
	}
	// Fewer than 2 seeds on either side is refused.
	if _, err := CreatePanel(t.Context(), st, "", PanelConfig{Proxy: px, Panel: 2, Seeds: 1, RefSeeds: 2, Reference: Fidelity{TrainSize: 2000, Epochs: 2}}); err == nil {
		t.Error("a benchmark of 1 seed was created")
	}
}

// TestOneRungPanelOfFewImages: a one-rung benchmark whose proxy trains on
// fewer images than a batch (accepted before benchmarks had rungs) is
// created and opened as it was; with rungs, each rung must hold a batch.
func TestOneRungPanelOfFewImages(t *testing.T) {
	st, _ := openStore(t)
	px := tinyConfig(1, "random").Proxy
	px.TrainSize, px.Train.Batch = 24, 32
	cfg := PanelConfig{Proxy: px, Panel: 1, Seeds: 2, RefSeeds: 2, Reference: Fidelity{TrainSize: 256, Epochs: 1}}
	study, err := CreatePanel(t.Context(), st, "", cfg)
	if err != nil {
		t.Fatalf("one-rung benchmark of 24 images, batch 32: %v", err)
	}
	if _, err := OpenPanel(study); err != nil {
		t.Fatalf("open it: %v", err)
	}
	cfg.Proxy.Halving = Halving{Rungs: 2, Eta: 2}
	cfg.Proxy.TrainSize = 48
	if _, err := CreatePanel(t.Context(), st, "", cfg); err == nil || !strings.Contains(err.Error(), "fewer than one batch") {
		t.Errorf("two rungs, rung 0 of 24 images at batch 32: %v; want refused, naming the batch", err)
	}
}

// bestSource is a Source with a Best of its own, as a grid has.
type bestSource struct {
	Source
	best *Standing
}

func (b bestSource) Best([]store.Trial) *Standing { return b.best }

// TestRunReportsTheSourcesBest: the runner's best (the progress line, the
// summary) is the source's own choice when it has one (a grid's, which
// leaves its base point out), not search.Best.
func TestRunReportsTheSourcesBest(t *testing.T) {
	st, _ := openStore(t)
	study, err := Create(t.Context(), st, "", tinyConfig(2, "random"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := Open(t.Context(), st, study)
	if err != nil {
		t.Fatal(err)
	}
	want := &Standing{Key: "the source's"}
	sum, err := Run(t.Context(), st, study, bestSource{src, want}, Options{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Best != want {
		t.Errorf("summary's best %+v; want the source's", sum.Best)
	}
}

// newPanel creates a proxy benchmark by cfg and returns it opened, with
// its planned trials.
func newPanel(t *testing.T, st store.Store, cfg PanelConfig) (*Panel, []store.Trial) {
	t.Helper()
	study, err := CreatePanel(t.Context(), st, "", cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, err := OpenPanel(study)
	if err != nil {
		t.Fatal(err)
	}
	trials, err := st.Trials(t.Context(), study.ID)
	if err != nil {
		t.Fatal(err)
	}
	return p, trials
}
