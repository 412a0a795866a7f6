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
			Train: trainer.Config{Epochs: 1, Batch: 32},
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
func (s *stopAfter) TrialFinished(store.Trial, float64) {
	if s.seen++; s.seen >= s.n {
		s.cancel()
	}
}
