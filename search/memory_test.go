package search

import (
	"strings"
	"testing"

	"github.com/effnas/effnas/store"
)

// TestTrainingChecksThePlannedEstimate: a trial is checked before it trains
// against the very estimate it was planned with (the data's channels and
// classes, the runner's threads), to the byte. A trial the coordinator
// planned at exactly the study's memory budget trains; a trial a byte over
// the budget, planned without an estimate (as by an older effnas) so that
// only the check at training time can refuse it, is refused there. MNIST
// has 1 channel and 10 classes where the space's architectures say 3 and
// 1000, and the estimate grows with the threads (their private gradients
// and scratch): an estimate of the architecture as the space gives it, or
// for another number of threads, fails one case or the other.
func TestTrainingChecksThePlannedEstimate(t *testing.T) {
	ctx := t.Context()
	st, _ := openStore(t)
	const threads = 2
	cfg := tinyConfig(1, "random")
	src, plans := probePlan(t, st, cfg)
	r := &runner{src: src, opts: Options{Threads: threads, Data: NewDataCache()}}
	r.annotate(ctx, plans) // as the coordinator plans it
	need, key := plans[0].Memory, plans[0].Key
	if need == 0 {
		t.Fatal("no estimate")
	}
	for _, c := range []struct {
		name      string
		budget    int64
		estimated bool // planned by the coordinator, with the estimate
		want      store.TrialState
	}{
		{"at the budget", need, true, store.TrialComplete},
		{"a byte over", need - 1, false, store.TrialFailed},
	} {
		cfg.Proxy.MaxMemory = c.budget
		study, err := Create(ctx, st, c.name, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if !c.estimated {
			plan(t, st, study, 1)
		}
		if _, err := runStudy(ctx, t, st, study, Options{Workers: 1, Threads: threads}); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		trials, err := st.Trials(ctx, study.ID)
		if err != nil || len(trials) != 1 {
			t.Fatalf("%s: %d trials, %v", c.name, len(trials), err)
		}
		tr := trials[0]
		if tr.Key != key {
			t.Fatalf("%s: trained %s; want the probe's first candidate %s", c.name, tr.Key, key)
		}
		if c.estimated && tr.Memory != need {
			t.Errorf("%s: planned with %d bytes; want %d", c.name, tr.Memory, need)
		}
		if tr.State != c.want || (c.want == store.TrialFailed) != strings.Contains(tr.Error, "rejected before training") {
			t.Errorf("%s (%d bytes, budget %d): %s %q; want %s", c.name, need, c.budget, tr.State, tr.Error, c.want)
		}
	}
}

// TestMoreThreadsThanPlanned: a trial the coordinator planned on one
// thread, at exactly the study's budget, is trained by a worker on two,
// whose estimate is larger (each thread keeps its own gradients and
// scratch): it trains, for the study admitted it, and the worker's own
// budget is large enough. Checked against this worker's estimate, it
// would fail for good as rejected before training, and never be retried.
func TestMoreThreadsThanPlanned(t *testing.T) {
	ctx := t.Context()
	st, _ := openStore(t)
	cfg := tinyConfig(1, "random")
	src, plans := probePlan(t, st, cfg)
	one := &runner{src: src, opts: Options{Threads: 1, Data: NewDataCache()}}
	one.annotate(ctx, plans)
	two := &runner{src: src, opts: Options{Threads: 2, Data: NewDataCache()}}
	more := append([]store.Plan(nil), plans...)
	two.annotate(ctx, more)
	if more[0].Memory <= plans[0].Memory {
		t.Fatalf("estimates %d on two threads, %d on one; want more on two", more[0].Memory, plans[0].Memory)
	}
	cfg.Proxy.MaxMemory = plans[0].Memory
	study, err := Create(ctx, st, "planned on one thread", cfg)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, st, study)
	if err != nil {
		t.Fatal(err)
	}
	ps, state, err := s.Plan(ctx, nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	(&runner{src: s, opts: Options{Threads: 1, Data: NewDataCache()}}).annotate(ctx, ps) // the coordinator, on one thread
	if _, err := st.PlanTrials(ctx, study.ID, ps, state); err != nil {
		t.Fatal(err)
	}
	if _, err := runStudy(ctx, t, st, study, Options{Workers: 1, Threads: 2, MaxMemory: 4 * more[0].Memory}); err != nil {
		t.Fatal(err)
	}
	trials, err := st.Trials(ctx, study.ID)
	if err != nil || len(trials) != 1 {
		t.Fatalf("%d trials, %v", len(trials), err)
	}
	if tr := trials[0]; tr.State != store.TrialComplete || tr.Memory != plans[0].Memory {
		t.Errorf("trial planned on one thread at the budget (%d bytes), trained on two: %s %q (planned %d); want complete", plans[0].Memory, tr.State, tr.Error, tr.Memory)
	}
}

// probePlan creates a study by cfg and returns it opened with the one
// trial it plans first (not stored), to see how a trial of cfg is planned.
func probePlan(t *testing.T, st store.Store, cfg Config) (Source, []store.Plan) {
	t.Helper()
	probe, err := Create(t.Context(), st, "probe", cfg)
	if err != nil {
		t.Fatal(err)
	}
	src, err := Open(t.Context(), st, probe)
	if err != nil {
		t.Fatal(err)
	}
	plans, _, err := src.Plan(t.Context(), nil, 1)
	if err != nil || len(plans) != 1 {
		t.Fatal(plans, err)
	}
	return src, plans
}
