package search

import (
	"context"
	"slices"
	"testing"

	"github.com/effnas/effnas/store"
)

// TestPanelReportAgainstSciPy: a proxy benchmark of B0 and 5 random
// members, 3 proxy seeds and 2 reference seeds, planned by CreatePanel
// and given results by hand (testdata/stats.json, where SciPy computed
// every figure of the report apart from this code). Proxy means are tied
// (architectures 2 and 5), reference means too (1 and 2, 4 and 5), seed
// columns have ties, and architecture 3, the best at both, has a proxy
// run that diverged: it keeps its own means over the runs it has but is
// left out of every figure taken over the panel. Each run also carries
// the other kind of accuracy (a proxy run's test accuracy, a reference
// run's validation accuracy), set to rank the panel the other way, so
// reading the wrong one changes every correlation.
func TestPanelReportAgainstSciPy(t *testing.T) {
	f := loadStatsFixtures(t).Panel
	ctx := context.Background()
	st, _ := openStore(t)
	px := tinyConfig(1, "random").Proxy
	px.ValSize, px.TestSize = f.ValSize, f.TestSize
	cfg := PanelConfig{Proxy: px, Panel: len(f.Proxy) - 1, Seeds: 3, RefSeeds: 2, Reference: Fidelity{TrainSize: 512, Epochs: 1}}
	study, err := CreatePanel(ctx, st, "report", cfg)
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
	if len(trials) != p.Expected() || p.Expected() != len(f.Proxy)*(3+2) {
		t.Fatalf("%d trials planned, Expected() = %d; want %d", len(trials), p.Expected(), len(f.Proxy)*5)
	}

	// The panel in the order CreatePanel plans it (B0 first); the proxy
	// runs are rung 0, the reference runs the highest rung planned.
	var members []string
	ref := 0
	for _, tr := range trials {
		if tr.Rung == 0 && tr.Seed == 0 {
			members = append(members, tr.Key)
		}
		ref = max(ref, tr.Rung)
	}
	if len(members) != len(f.Proxy) || ref == 0 {
		t.Fatalf("%d members, reference at rung %d; want %d members and a reference above rung 0", len(members), ref, len(f.Proxy))
	}
	for i := range trials {
		tr := &trials[i]
		m := slices.Index(members, tr.Key)
		var correct *int
		switch tr.Rung {
		case 0:
			correct = f.Proxy[m][tr.Seed]
		case ref:
			correct = f.Ref[m][tr.Seed]
		default:
			t.Fatalf("trial %d at rung %d: this test knows one proxy rung (0) and the reference (%d)", tr.Number, tr.Rung, ref)
		}
		if correct == nil {
			tr.State, tr.Error = store.TrialFailed, "diverged: loss is NaN"
			continue
		}
		tr.State = store.TrialComplete
		if tr.Rung == 0 {
			tr.Accuracy = float64(*correct) / float64(f.ValSize)
			tr.TestAccuracy = 2 - tr.Accuracy // not the proxy's measure
		} else {
			tr.TestAccuracy = float64(*correct) / float64(f.TestSize)
			tr.Accuracy = 2 - tr.TestAccuracy // not the reference's measure
		}
		tr.Reward = tr.Accuracy
	}

	r := p.Report(study, trials, 10)
	w := f.Want
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"seed_std", r.SeedStd, w.SeedStd},
		{"reference_std", r.ReferenceStd, w.ReferenceStd},
		{"tau_seeds", r.TauSeeds, w.TauSeeds},
		{"spearman_seeds", r.SpearmanSeeds, w.SpearmanSeeds},
		{"tau_reference_seeds", r.TauReferenceSeeds, w.TauReferenceSeeds},
		{"spearman_reference_seeds", r.SpearmanReferenceSeeds, w.SpearmanReferenceSeeds},
		{"tau_reference", r.TauReference, w.TauReference},
		{"spearman_reference", r.SpearmanReference, w.SpearmanReference},
		{"noise", r.Noise, w.Noise},
		{"noise_mean", r.NoiseMean, w.NoiseMean},
	} {
		if !nearStat(c.got, c.want) {
			t.Errorf("%s = %.17g, want %.17g", c.name, c.got, c.want)
		}
	}
	if !r.Complete || r.Seeds != 3 || r.RefSeeds != 2 || r.Diverged != 1 || r.BelowChance != 0 {
		t.Errorf("complete %v, seeds %d, reference seeds %d, diverged %d, below twice chance %d; want true, 3, 2, 1, 0",
			r.Complete, r.Seeds, r.RefSeeds, r.Diverged, r.BelowChance)
	}
	if len(r.Archs) != len(members) {
		t.Fatalf("%d architectures reported, want %d", len(r.Archs), len(members))
	}
	for _, a := range r.Archs {
		m := slices.Index(members, a.Key)
		if m < 0 {
			t.Fatalf("reported architecture %s was not planned", a.Key)
		}
		wa := w.Archs[m]
		if !nearStat(a.ProxyMean, wa.ProxyMean) || !nearStat(a.ProxyStd, wa.ProxyStd) || !nearStat(a.Reference, wa.Reference) ||
			!nearStat(a.ReferenceStd, wa.ReferenceStd) || a.Failed != wa.Failed || a.B0 != (m == 0) {
			t.Errorf("architecture %d: proxy %.6f ± %.6f, reference %.6f ± %.6f, %d failed, B0 %v; want %.6f ± %.6f, %.6f ± %.6f, %d failed, B0 %v",
				m, a.ProxyMean, a.ProxyStd, a.Reference, a.ReferenceStd, a.Failed, a.B0,
				wa.ProxyMean, wa.ProxyStd, wa.Reference, wa.ReferenceStd, wa.Failed, m == 0)
		}
		if want := len(f.Proxy[m]) - wa.Failed; len(a.Proxy) != want || len(a.Ref) != len(f.Ref[m]) {
			t.Errorf("architecture %d: %d proxy and %d reference runs listed, want %d and %d", m, len(a.Proxy), len(a.Ref), want, len(f.Ref[m]))
		}
	}

	// A run still pending: the report says it is not complete.
	trials[len(trials)-1].State = store.TrialPending
	if p.Report(study, trials, 10).Complete {
		t.Error("a report with a pending run says it is complete")
	}
}
