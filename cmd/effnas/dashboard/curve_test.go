package dashboard

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/effnas/effnas/search"
	"github.com/effnas/effnas/store"
)

// curveOracle is the best-reward curve computed the slow way: after each
// complete top-rung run, the study's best (search.Best, a grid's Best) of
// the top rung as it stood then (the runs planned by then; the later
// results not in yet).
func curveOracle(v *study) []CurvePoint {
	top := v.halving.Top()
	var done []store.Trial
	for _, t := range v.trials {
		if t.State == store.TrialComplete {
			done = append(done, t)
		}
	}
	slices.SortStableFunc(done, func(a, b store.Trial) int { return a.Updated.Compare(b.Updated) })
	at := map[int]int{} // trial number: its place in done
	for i, t := range done {
		at[t.Number] = i
	}
	var out []CurvePoint
	var last CurvePoint
	for i, t := range done {
		if t.Rung != top {
			continue
		}
		var snap []store.Trial
		for _, u := range v.trials {
			if u.Rung != top || u.Created.After(t.Updated) {
				continue
			}
			if j, ok := at[u.Number]; ok && j > i || u.State == store.TrialFailed && u.Updated.After(t.Updated) {
				u.State = store.TrialRunning
			}
			snap = append(snap, u)
		}
		var b *search.Standing
		if g := v.grid(); g != nil {
			b = g.Best(snap)
		} else {
			b = search.Best(snap, v.halving)
		}
		if b != nil && (len(out) == 0 || b.Trial.Number != last.Trial || b.Reward != last.Reward) {
			last = CurvePoint{Seconds: t.Updated.Sub(v.Created).Seconds(), Reward: b.Reward, Trial: b.Trial.Number}
			out = append(out, last)
		}
	}
	return out
}

// checkCurve: the curve is the oracle's, point by point, and ends on the
// study's best, the candidate and value show and the page report.
func checkCurve(t *testing.T, f *fixture, id int64) []CurvePoint {
	t.Helper()
	v, err := loadStudy(f.ctx, f.st, id)
	if err != nil {
		t.Fatal(err)
	}
	got := v.bestCurve().Best
	if want := curveOracle(v); !slices.Equal(got, want) {
		t.Errorf("study %d: curve\n%v\nwant\n%v", id, got, want)
	}
	best := v.best()
	if best == nil || len(got) == 0 {
		t.Fatalf("study %d: best %+v, curve %v; want both", id, best, got)
	}
	if end := got[len(got)-1]; end.Trial != best.Trial || end.Reward != best.Reward {
		t.Errorf("study %d: the curve ends on trial %d at %.4f; the best is trial %d at %.4f", id, end.Trial, end.Reward, best.Trial, best.Reward)
	}
	return got
}

// TestBestCurveEndsOnBest: a finalist whose other seeds diverged, twice,
// leads the curve while its one run is its only result, then falls
// behind the finalist measured over all its seeds, as search.Best ranks
// them; and on whole studies (a search with failures, grids on it) the
// curve is the slow computation's at every point.
func TestBestCurveEndsOnBest(t *testing.T) {
	f := newFixture(t)
	study, err := search.Create(f.ctx, f.st, "missing seeds", search.Config{Controller: "random", Trials: 3,
		Proxy: smallProxy(search.Halving{Rungs: 1, Eta: 3, TopSeeds: 3, Finalists: 2})})
	f.must(err)
	plan := func(key string, seed int) {
		_, err := f.st.PlanTrials(f.ctx, study.ID, []store.Plan{{Key: key, Seed: seed, Blocks: []string{"r1_k3_s11_e1_i32_o16_se0.25"}, FLOPs: 4e8}}, nil)
		f.must(err)
	}
	result := func(acc float64) {
		claimed, err := f.st.ClaimTrials(f.ctx, study.ID, store.Claim{Worker: "w", Limit: 1, Lease: time.Hour})
		f.must(err)
		if acc < 0 {
			f.must(f.st.FailTrial(f.ctx, claimed[0].Lease(), "diverged: loss is NaN", 1))
		} else {
			f.must(f.st.FinishTrial(f.ctx, claimed[0].Lease(), store.Result{Accuracy: acc, Reward: acc, Seconds: 1}))
		}
		time.Sleep(2 * time.Millisecond) // results in order, each at a time of its own
	}
	for _, key := range []string{"A", "B", "C"} { // trials 0, 1, 2
		plan(key, 0)
	}
	for _, acc := range []float64{0.95, 0.94, 0.50} { // claimed in number order
		result(acc)
	}
	for _, p := range []struct {
		key  string
		seed int
		acc  float64
	}{{"A", 1, -1}, {"A", 2, -1}, {"B", 1, 0.93}, {"B", 2, 0.93}, {"A", 1 + search.RetrySeed, -1}, {"A", 2 + search.RetrySeed, -1}} {
		plan(p.key, p.seed)
		result(p.acc)
	}
	curve := checkCurve(t, f, study.ID)
	if curve[0].Trial != 0 || curve[len(curve)-1].Trial != 1 {
		t.Errorf("curve %v; want A (trial 0) first, B (trial 1) at the end", curve)
	}

	// X leads on its first run; every seed of X and Y is planned at once;
	// X's second seed falls, and Y, short of no more seeds than X, leads.
	// W's seeds are planned together and finish out of order: its
	// standing's run is its first, by number, once that one is in.
	study, err = search.Create(f.ctx, f.st, "falls behind", search.Config{Controller: "random", Trials: 3,
		Proxy: smallProxy(search.Halving{Rungs: 1, Eta: 3, TopSeeds: 3, Finalists: 3})})
	f.must(err)
	for _, key := range []string{"X", "Y", "Z"} { // trials 0, 1, 2
		plan(key, 0)
	}
	result(0.95) // X
	result(0.94) // Y
	result(0.70) // Z
	plan("Y", 1) // trial 3
	plan("X", 1) // 4
	plan("W", 0) // 5
	plan("W", 1) // 6
	result(0.93) // Y: 0.935 over 2 seeds; X 0.95 over 1
	result(0.80) // X: 0.875; Y leads
	claimed, err := f.st.ClaimTrials(f.ctx, study.ID, store.Claim{Worker: "w", Limit: 2, Lease: time.Hour})
	f.must(err)
	f.must(f.st.FinishTrial(f.ctx, claimed[1].Lease(), store.Result{Accuracy: 0.99, Reward: 0.99, Seconds: 1}))
	time.Sleep(2 * time.Millisecond)
	f.must(f.st.FinishTrial(f.ctx, claimed[0].Lease(), store.Result{Accuracy: 0.99, Reward: 0.99, Seconds: 1}))
	curve = checkCurve(t, f, study.ID)
	if len(curve) < 4 || curve[1].Trial != 1 || curve[2].Trial != 6 || curve[3].Trial != 5 {
		t.Errorf("curve %v; want Y (trial 1) to lead once X's second seed is in, then W by trial 6, then by trial 5", curve)
	}

	s, src := f.searchStudy("search", 60, halving)
	f.run(s, src, 7)
	checkCurve(t, f, s.ID)
	g, gs := f.gridStudy("grid", s, src, "", search.Halving{Rungs: 2, Eta: 3, TopSeeds: 3, Finalists: 3})
	f.run(g, gs, 5)
	checkCurve(t, f, g.ID)
	d, ds := f.gridStudy("depth", s, src, "depth", search.Halving{Rungs: 1, Eta: 3, TopSeeds: 2, Finalists: 2})
	f.run(d, ds, 0)
	if curve := checkCurve(t, f, d.ID); len(curve) == 0 {
		t.Error("the depth series has no curve")
	}
}

// TestAgreementShown: a study's page and JSON show how its rungs agreed,
// as search.Agreement computes it, and a study of one rung shows none.
func TestAgreementShown(t *testing.T) {
	f := newFixture(t)
	s, src := f.searchStudy("search", 40, halving)
	f.run(s, src, 0)
	one, osrc := f.searchStudy("one rung", 5, search.Halving{Rungs: 1, Eta: 3, TopSeeds: 1})
	f.run(one, osrc, 0)
	trials, err := f.st.Trials(f.ctx, s.ID)
	f.must(err)
	want := search.Agreement(trials, src.Config().Proxy, nil)
	srv := serve(t, f.path)
	_, _, body := get(t, srv.URL+"/api/studies/1")
	var got struct {
		RungAgreement []search.RungAgreement `json:"rung_agreement"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.RungAgreement) != 2 || len(want) != 2 {
		t.Fatalf("rung_agreement %+v; want rungs 0 and 1: %+v", got.RungAgreement, want)
	}
	for i, a := range got.RungAgreement {
		w := want[i]
		if a.Rung != w.Rung || a.Candidates != w.Candidates || a.Tau != w.Tau || a.TrainSize != src.Config().Proxy.Fidelity(i).TrainSize {
			t.Errorf("rung %d: %+v; want %+v at %d images", i, a, w, src.Config().Proxy.Fidelity(i).TrainSize)
		}
	}
	if a := got.RungAgreement[0]; a.FinalistsInTopThird == nil || *a.FinalistsInTopThird != *want[0].FinalistsInTopThird || a.Finalists != want[0].Finalists {
		t.Errorf("rung 0's finalists: %+v; want %v of %d", a, *want[0].FinalistsInTopThird, want[0].Finalists)
	}
	_, _, page := get(t, srv.URL+"/studies/1")
	if !strings.Contains(page, "How the rungs agreed") || !strings.Contains(page, fmt.Sprintf("<td class=\"num\">%.2f</td>", want[0].Tau)) {
		t.Errorf("the search page does not show the rungs' agreement (tau %.2f)", want[0].Tau)
	}
	_, _, body = get(t, srv.URL+"/api/studies/2")
	if !strings.Contains(body, `"rung_agreement": []`) && !strings.Contains(body, `"rung_agreement":[]`) {
		t.Errorf("one-rung study: want \"rung_agreement\": []\n%.400s", body)
	}
	if _, _, page := get(t, srv.URL+"/studies/2"); strings.Contains(page, "How the rungs agreed") {
		t.Error("a one-rung study's page shows a rung agreement")
	}
}

// TestProxyPageSchedule: a proxy benchmark's page names its proxy's rungs
// (its own images, not the reference's, which its trials load).
func TestProxyPageSchedule(t *testing.T) {
	f := newFixture(t)
	px := smallProxy(search.Halving{Rungs: 2, Eta: 3})
	p, err := search.CreatePanel(f.ctx, f.st, "rungs", search.PanelConfig{Proxy: px, Panel: 2, Seeds: 2, RefSeeds: 2, Reference: search.Fidelity{TrainSize: 5000, Epochs: 3}})
	f.must(err)
	srv := serve(t, f.path)
	_, _, page := get(t, fmt.Sprintf("%s/studies/%d", srv.URL, p.ID))
	if want := "rungs of 1200x1, 1800x2 images x epochs"; !strings.Contains(page, want) || strings.Contains(page, "5000x") {
		t.Errorf("the benchmark's page does not say %q (or names the reference's images as the proxy's)", want)
	}
}
