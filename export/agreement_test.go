package export

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/effnas/effnas/grid"
	"github.com/effnas/effnas/search"
	"github.com/effnas/effnas/store"
)

// TestReportSaysHowRungsAgreed: a grid of two rungs, run to the end with
// made-up accuracies (at rung 0 the shallow points start fast, at the top
// the deep ones win), is exported with its rungs' agreement as
// search.Agreement computes it (the base point pinned), in the JSON and
// in the Markdown report.
func TestReportSaysHowRungsAgreed(t *testing.T) {
	ctx := t.Context()
	st, _ := openDB(t)
	sf := newSearch(ctx, t, st)
	px := oneRung
	px.TrainSize = 900
	px.Halving = search.Halving{Rungs: 2, Eta: 3, TopSeeds: 2, Finalists: 2}
	study, err := grid.Create(ctx, st, "two rungs", grid.StudyConfig{Grid: grid.Config{Step: 0.1, Max: 1.4, Tolerance: 0.1},
		Base: sf.base, From: sf.study.ID, FromTrial: sf.b0.Number, Seed: 3, Proxy: px})
	if err != nil {
		t.Fatal(err)
	}
	g, err := grid.Open(study)
	if err != nil {
		t.Fatal(err)
	}
	acc := func(tr store.Trial) float64 {
		s := grid.Scaling(tr)
		if tr.Rung == 0 {
			return 0.9 - 0.2*(s.Alpha-1) + 0.0001*float64(tr.Number%7)
		}
		return 0.9 + 0.1*(s.Alpha-1) + 0.01*s.Gamma + 0.001*float64(tr.Seed)
	}
	for step := 0; ; step++ {
		trials, err := st.Trials(ctx, study.ID)
		if err != nil {
			t.Fatal(err)
		}
		plans, _, err := g.Plan(ctx, trials, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(plans) > 0 {
			if _, err := st.PlanTrials(ctx, study.ID, plans, nil); err != nil {
				t.Fatal(err)
			}
		}
		claimed, err := st.ClaimTrials(ctx, study.ID, store.Claim{Worker: "test", Limit: 1000, Lease: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if len(claimed) == 0 {
			break
		}
		for _, tr := range claimed {
			a := acc(tr)
			if err := st.FinishTrial(ctx, tr.Lease(), store.Result{Accuracy: a, Reward: a, Seconds: 1}); err != nil {
				t.Fatal(err)
			}
		}
		if step > 20 {
			t.Fatal("the grid did not end")
		}
	}
	if err := st.SetStudyStatus(ctx, study.ID, store.StudyComplete); err != nil {
		t.Fatal(err)
	}
	trials, err := st.Trials(ctx, study.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := search.Agreement(trials, g.Config().Proxy, grid.IsBase)
	r, err := Build(ctx, st, Options{Study: study.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 1 || want[0].Candidates < 3 || want[0].Finalists < 1 {
		t.Fatalf("the fixture's agreement %+v; want rung 0 over several candidates and finalists", want)
	}
	if len(r.GridAgreement) != 1 || r.GridAgreement[0].Tau != want[0].Tau || r.GridAgreement[0].Candidates != want[0].Candidates ||
		*r.GridAgreement[0].FinalistsInTopThird != *want[0].FinalistsInTopThird || r.GridAgreement[0].Finalists != want[0].Finalists {
		t.Errorf("grid_rung_agreement %+v; want %+v", r.GridAgreement, want)
	}
	if r.SearchAgreement == nil || len(r.SearchAgreement) != 0 {
		t.Errorf("search_rung_agreement %#v; want [] for a search of one rung", r.SearchAgreement)
	}
	md := string(r.Markdown("", ""))
	row := fmt.Sprintf("| grid | 0 | 600 images × 1 epochs | %d | %.2f |", want[0].Candidates, want[0].Tau)
	if !strings.Contains(md, "## How the rungs agreed") || !strings.Contains(md, row) || !strings.Contains(md, "promoted candidates only") {
		t.Errorf("the report has no rung agreement like %q:\n%s", row, md)
	}
}

// TestReportAgreementNeverNull: a report without a grid (the paper's
// coefficients) has grid_rung_agreement [], not null, and a search of one
// rung search_rung_agreement [].
func TestReportAgreementNeverNull(t *testing.T) {
	ctx := t.Context()
	st, _ := openDB(t)
	sf := newSearch(ctx, t, st)
	r, err := Build(ctx, st, Options{Study: sf.study.ID})
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"search_rung_agreement": []`, `"grid_rung_agreement": []`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("export JSON lacks %s", want)
		}
	}
}
