package search

import (
	"context"
	"slices"
	"testing"

	"github.com/effnas/effnas/store"
)

// TestPanelReportRungs: the SciPy fixture's benchmark with two proxy
// rungs. The top rung has the fixture's proxy runs, so the top-level
// figures and the top rung's entry must be SciPy's; rung 0 has, under
// every seed, each architecture's reference mean (architecture 3, whose
// top-rung run diverged, complete there), so by hand: seed sd 0, seeds
// and reference agreeing perfectly (tau and rho 1, ties kept tied), over
// all 6 architectures where the top rung has 5.
func TestPanelReportRungs(t *testing.T) {
	f := loadStatsFixtures(t).Panel
	ctx := context.Background()
	st, _ := openStore(t)
	px := tinyConfig(1, "random").Proxy
	px.ValSize, px.TestSize = f.ValSize, f.TestSize
	px.Halving = Halving{Rungs: 2, Eta: 2}
	cfg := PanelConfig{Proxy: px, Panel: len(f.Proxy) - 1, Seeds: 3, RefSeeds: 2, Reference: Fidelity{TrainSize: 512, Epochs: 1}}
	study, err := CreatePanel(ctx, st, "rungs", cfg)
	if err != nil {
		t.Fatal(err)
	}
	trials, err := st.Trials(ctx, study.ID)
	if err != nil {
		t.Fatal(err)
	}
	p, err := OpenPanel(study)
	if err != nil {
		t.Fatal(err)
	}
	var members []string
	for _, tr := range trials {
		if tr.Rung == 0 && tr.Seed == 0 {
			members = append(members, tr.Key)
		}
	}
	refMean := func(m int) float64 {
		var s float64
		for _, c := range f.Ref[m] {
			s += float64(*c) / float64(f.TestSize)
		}
		return s / float64(len(f.Ref[m]))
	}
	for i := range trials {
		tr := &trials[i]
		m := slices.Index(members, tr.Key)
		tr.State = store.TrialComplete
		switch tr.Rung {
		case 0:
			tr.Accuracy = refMean(m)
		case 1:
			c := f.Proxy[m][tr.Seed]
			if c == nil {
				tr.State, tr.Error = store.TrialFailed, "diverged: loss is NaN"
				continue
			}
			tr.Accuracy = float64(*c) / float64(f.ValSize)
		case 2:
			tr.TestAccuracy = float64(*f.Ref[m][tr.Seed]) / float64(f.TestSize)
		default:
			t.Fatalf("trial %d at rung %d: want rungs 0 and 1 and the reference at 2", tr.Number, tr.Rung)
		}
		tr.Reward = tr.Accuracy
	}
	r := p.Report(study, trials, 10)
	w := f.Want
	if len(r.Rungs) != 2 {
		t.Fatalf("%d rungs; want 2", len(r.Rungs))
	}
	r0, top := r.Rungs[0], r.Rungs[1]
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"seed_std", r.SeedStd, w.SeedStd}, {"top seed_std", top.SeedStd, w.SeedStd},
		{"tau_seeds", r.TauSeeds, w.TauSeeds}, {"top tau_seeds", top.TauSeeds, w.TauSeeds},
		{"tau_reference", r.TauReference, w.TauReference}, {"top tau_reference", top.TauReference, w.TauReference},
		{"spearman_reference", r.SpearmanReference, w.SpearmanReference},
		{"reference_std", r.ReferenceStd, w.ReferenceStd},
		{"tau_reference_seeds", r.TauReferenceSeeds, w.TauReferenceSeeds},
		{"rung 0 seed_std", r0.SeedStd, 0}, {"rung 0 tau_seeds", r0.TauSeeds, 1}, {"rung 0 spearman_seeds", r0.SpearmanSeeds, 1},
		{"rung 0 tau_reference", r0.TauReference, 1}, {"rung 0 spearman_reference", r0.SpearmanReference, 1},
	} {
		if !nearStat(c.got, c.want) {
			t.Errorf("%s = %.17g, want %.17g", c.name, c.got, c.want)
		}
	}
	if r0.Archs != 6 || top.Archs != 5 || r0.TrainSize != 128 || r0.Epochs != 1 || top.TrainSize != 256 || top.Epochs != 1 {
		t.Errorf("rungs %+v; want rung 0 over 6 architectures at 128 x 1, the top over 5 at 256 x 1", r.Rungs)
	}
}

// TestPanelSeedsIndependent: in a benchmark of three proxy rungs, every
// run (architecture, rung, seed), the reference's included, trains from
// a seed of its own, and the reference's seeds are those of a one-rung
// benchmark of the same reference, whose runs it may then reuse.
func TestPanelSeedsIndependent(t *testing.T) {
	st, _ := openStore(t)
	px := tinyConfig(1, "random").Proxy
	px.TrainSize, px.Train.Batch = 900, 32
	panelOf := func(rungs int) (*Panel, []store.Trial) {
		t.Helper()
		px := px
		px.Halving = Halving{Rungs: rungs, Eta: 3}
		return newPanel(t, st, PanelConfig{Proxy: px, Panel: 2, Seeds: 2, RefSeeds: 2, Reference: Fidelity{TrainSize: 2000, Epochs: 2}})
	}
	seedOf := func(p *Panel, tr store.Trial) uint64 {
		return p.Config().Proxy.TrainSeed(7, tr.Key, seedRung(p, tr), tr.Seed)
	}
	three, trials := panelOf(3)
	seen := map[uint64]store.Trial{}
	ref := map[[2]any]uint64{}
	for _, tr := range trials {
		s := seedOf(three, tr)
		if u, ok := seen[s]; ok {
			t.Errorf("%s rung %d seed %d and rung %d seed %d train from one seed", tr.Key, tr.Rung, tr.Seed, u.Rung, u.Seed)
		}
		seen[s] = tr
		if tr.Rung == 3 {
			ref[[2]any{tr.Key, tr.Seed}] = s
		}
	}
	one, trials := panelOf(1)
	for _, tr := range trials {
		if tr.Rung == 1 && seedOf(one, tr) != ref[[2]any{tr.Key, tr.Seed}] {
			t.Errorf("%s reference seed %d: %#x in a one-rung benchmark, %#x with three rungs; want alike", tr.Key, tr.Seed, seedOf(one, tr), ref[[2]any{tr.Key, tr.Seed}])
		}
	}
}
