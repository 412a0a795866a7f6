package dashboard

import (
	"context"
	"hash/fnv"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/effnas/effnas/grid"
	"github.com/effnas/effnas/search"
	"github.com/effnas/effnas/space"
	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/store/sqlite"
)

// fixture writes studies through the real SQLite store and finishes their
// trials with accuracies chosen from their keys instead of training them,
// as a search, a grid and workers would, only faster.
type fixture struct {
	t    testing.TB
	ctx  context.Context
	st   *sqlite.Store
	path string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := newFixtureAt(t, filepath.Join(memDir(t), "effnas.db"))
	t.Cleanup(func() { f.st.Close() })
	return f
}

// newFixtureAt writes a new database at path; the caller closes f.st.
func newFixtureAt(t testing.TB, path string) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, ctx: ctx, st: st, path: path}
}

// memDir is a temporary directory in memory (/dev/shm) where there is
// one: the store fsyncs every result, and a fixture writes thousands.
func memDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("/dev/shm", "effnas-dashboard-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func (f *fixture) must(err error) {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
}

// accuracyOf is a trial's made-up validation accuracy, shaped like real
// results: larger networks do better, noisily; a grid point does best
// near (1.2, 1.1, 1.15) and a single dimension saturates; higher rungs
// train longer and do better; seeds differ a little.
func accuracyOf(t store.Trial) float64 {
	h := fnv.New32a()
	h.Write([]byte(t.Key))
	noise := float64(h.Sum32()%1000)/1000 - 0.5
	more := 0.01*float64(t.Rung) + 0.002*float64(t.Seed%5)
	if g := t.Grid; g != nil {
		gain := 0.02 * math.Log2(g.Alpha*g.Beta*g.Beta*g.Gamma*g.Gamma)
		skew := math.Abs(math.Log(g.Alpha/1.2)) + math.Abs(math.Log(g.Beta/1.1)) + math.Abs(math.Log(g.Gamma/1.15))
		return 0.925 + gain - 0.06*skew + 0.006*noise + more
	}
	size := math.Log10(float64(max(t.FLOPs, 1)) / 1e8)
	return min(0.995, 0.87+0.06*size+0.07*noise+more)
}

// halving is a small successive halving for the fixtures: 3 rungs of
// 200, 600 and 1800 images, the best third climbs, finalists under 2 seeds.
var halving = search.Halving{Rungs: 3, Eta: 3, TopSeeds: 2, Finalists: 2}

// smallProxy trains little, so the rungs' fidelities are valid.
func smallProxy(h search.Halving) search.Proxy {
	return search.Proxy{TrainSize: 1800, Halving: h}
}

// searchStudy creates an evolution search study of n candidates.
func (f *fixture) searchStudy(name string, n int, h search.Halving) (store.Study, *search.Searcher) {
	f.t.Helper()
	return f.searchWith("evolution", name, n, h)
}

// searchWith creates a search study with the given controller.
func (f *fixture) searchWith(controller, name string, n int, h search.Halving) (store.Study, *search.Searcher) {
	f.t.Helper()
	study, err := search.Create(f.ctx, f.st, name, search.Config{Controller: controller, Trials: n, Seed: 7, Proxy: smallProxy(h)})
	f.must(err)
	src, err := search.Open(f.ctx, f.st, study)
	f.must(err)
	return study, src
}

// step plans what the source asks for (up to n trials) and finishes up to
// n pending trials, failing every failEvery-th (0: none). It returns how
// many it finished; 0 means the study is done.
func (f *fixture) step(study store.Study, src search.Source, n, failEvery int) int {
	f.t.Helper()
	trials, err := f.st.Trials(f.ctx, study.ID)
	f.must(err)
	plans, state, err := src.Plan(f.ctx, trials, n)
	f.must(err)
	if len(plans) > 0 {
		_, err := f.st.PlanTrials(f.ctx, study.ID, plans, state)
		f.must(err)
	}
	claimed, err := f.st.ClaimTrials(f.ctx, study.ID, store.Claim{Worker: "fixture", Limit: n, Lease: time.Hour})
	f.must(err)
	for _, t := range claimed {
		if failEvery > 0 && t.Number%failEvery == failEvery-1 {
			f.must(f.st.FailTrial(f.ctx, t.Lease(), "training diverged: loss 1e+09 <script>alert(1)</script>", 1.5))
			continue
		}
		f.finish(t, src)
	}
	return len(claimed)
}

// finish records a claimed trial's made-up result and returns the trial
// as recorded.
func (f *fixture) finish(t store.Trial, src search.Source) store.Trial {
	f.t.Helper()
	acc := accuracyOf(t)
	r := store.Result{Accuracy: acc, Reward: src.Reward(t, acc), TestAccuracy: acc - 0.01, Seconds: 2 + float64(t.Number%7)}
	f.must(f.st.FinishTrial(f.ctx, t.Lease(), r))
	t.State, t.Accuracy, t.Reward, t.TestAccuracy, t.Seconds = store.TrialComplete, r.Accuracy, r.Reward, r.TestAccuracy, r.Seconds
	return t
}

// claimOne plans a trial if the source asks for one and claims the
// lowest pending trial.
func (f *fixture) claimOne(study store.Study, src search.Source) store.Trial {
	f.t.Helper()
	trials, err := f.st.Trials(f.ctx, study.ID)
	f.must(err)
	plans, state, err := src.Plan(f.ctx, trials, 1)
	f.must(err)
	if len(plans) > 0 {
		_, err := f.st.PlanTrials(f.ctx, study.ID, plans, state)
		f.must(err)
	}
	claimed, err := f.st.ClaimTrials(f.ctx, study.ID, store.Claim{Worker: "fixture", Limit: 1, Lease: time.Hour})
	f.must(err)
	if len(claimed) == 0 {
		f.t.Fatalf("study %d has no trial left to claim", study.ID)
	}
	return claimed[0]
}

// run finishes the study and marks it complete.
func (f *fixture) run(study store.Study, src search.Source, failEvery int) {
	f.t.Helper()
	for f.step(study, src, 256, failEvery) > 0 {
	}
	f.must(f.st.SetStudyStatus(f.ctx, study.ID, store.StudyComplete))
}

// gridStudy creates a grid study on the best network of a finished search.
func (f *fixture) gridStudy(name string, from store.Study, src *search.Searcher, dimension string, h search.Halving) (store.Study, *grid.Grid) {
	f.t.Helper()
	trials, err := f.st.Trials(f.ctx, from.ID)
	f.must(err)
	best := search.Best(trials, src.Config().Proxy.Halving)
	if best == nil {
		f.t.Fatal("the search has no best candidate")
	}
	base, err := src.FullArch(best.Trial)
	f.must(err)
	study, err := grid.Create(f.ctx, f.st, name, grid.StudyConfig{
		Grid: grid.Config{Step: 0.1, Max: 1.4, Tolerance: 0.1}, Dimension: dimension, Base: base, From: from.ID, FromTrial: best.Trial.Number,
		Proxy: smallProxy(h),
	})
	f.must(err)
	g, err := grid.Open(study)
	f.must(err)
	return study, g
}

// gridOnB0 creates a grid study on EfficientNet-B0 itself.
func (f *fixture) gridOnB0(name, dimension string, h search.Halving) (store.Study, *grid.Grid) {
	f.t.Helper()
	study, err := grid.Create(f.ctx, f.st, name, grid.StudyConfig{
		Grid: grid.Config{Step: 0.1, Max: 1.4, Tolerance: 0.1}, Dimension: dimension, Base: space.B0(), Proxy: smallProxy(h),
	})
	f.must(err)
	g, err := grid.Open(study)
	f.must(err)
	return study, g
}
