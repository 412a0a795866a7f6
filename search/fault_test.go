package search

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/effnas/effnas/space"
	"github.com/effnas/effnas/store"
)

// errBlip is what the faulty store returns: a busy database, a dropped
// connection.
var errBlip = errors.New("injected fault: connection reset by peer")

// faulty wraps a real store and fails chosen calls: the first n calls of
// a method fail (fail[method] = n), every call does until a deadline
// (until[method]), or every call does for a while from the method's first
// call (outage[method]). It is not a mock of the database: every call that
// goes through reaches the real SQLite store.
type faulty struct {
	store.Store
	mu     sync.Mutex
	fail   map[string]int
	until  map[string]time.Time
	outage map[string]time.Duration
	seen   map[string]int // faults injected per method
}

func newFaulty(st store.Store) *faulty {
	return &faulty{Store: st, fail: map[string]int{}, until: map[string]time.Time{}, outage: map[string]time.Duration{}, seen: map[string]int{}}
}

func (f *faulty) inject(method string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail[method] > 0 {
		f.fail[method]--
		f.seen[method]++
		return errBlip
	}
	if d, ok := f.outage[method]; ok {
		f.until[method] = time.Now().Add(d)
		delete(f.outage, method)
	}
	if time.Now().Before(f.until[method]) {
		f.seen[method]++
		return errBlip
	}
	return nil
}

func (f *faulty) injected(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seen[method]
}

func (f *faulty) Heartbeat(ctx context.Context, l store.Lease, d time.Duration) error {
	if err := f.inject("Heartbeat"); err != nil {
		return err
	}
	return f.Store.Heartbeat(ctx, l, d)
}

func (f *faulty) FinishTrial(ctx context.Context, l store.Lease, r store.Result) error {
	if err := f.inject("FinishTrial"); err != nil {
		return err
	}
	return f.Store.FinishTrial(ctx, l, r)
}

// FinishTrialLostReply writes the result, then reports a fault: the reply
// was lost on the way back.
func (f *faulty) finishLostReply(ctx context.Context, l store.Lease, r store.Result) error {
	if err := f.Store.FinishTrial(ctx, l, r); err != nil {
		return err
	}
	return errBlip
}

func (f *faulty) ClaimTrials(ctx context.Context, study int64, c store.Claim) ([]store.Trial, error) {
	if err := f.inject("ClaimTrials"); err != nil {
		return nil, err
	}
	return f.Store.ClaimTrials(ctx, study, c)
}

func (f *faulty) CountTrials(ctx context.Context, study int64) (store.Counts, error) {
	if err := f.inject("CountTrials"); err != nil {
		return store.Counts{}, err
	}
	return f.Store.CountTrials(ctx, study)
}

func (f *faulty) Trials(ctx context.Context, study int64) ([]store.Trial, error) {
	if err := f.inject("Trials"); err != nil {
		return nil, err
	}
	return f.Store.Trials(ctx, study)
}

func (f *faulty) PlanTrials(ctx context.Context, study int64, plans []store.Plan, state []byte) ([]store.Trial, error) {
	if err := f.inject("PlanTrials"); err != nil {
		return nil, err
	}
	return f.Store.PlanTrials(ctx, study, plans, state)
}

func (f *faulty) SetStudyStatus(ctx context.Context, id int64, s store.StudyStatus) error {
	if err := f.inject("SetStudyStatus"); err != nil {
		return err
	}
	return f.Store.SetStudyStatus(ctx, id, s)
}

// slowSource makes every training last at least d, however fast the
// machine trains: the heartbeat tests need trainings that outlast a few
// heartbeats, and a tiny proxy trains in a few milliseconds on a fast
// machine. Arch is also called when a trial is planned, before any claim
// (attempt 0): that call does not wait.
type slowSource struct {
	Source
	d time.Duration
}

func (s slowSource) Arch(t store.Trial) (space.Arch, error) {
	if t.Attempt > 0 {
		time.Sleep(s.d)
	}
	return s.Source.Arch(t)
}

func runSlowStudy(ctx context.Context, t *testing.T, st store.Store, study store.Study, d time.Duration, opts Options) (Summary, error) {
	t.Helper()
	src, err := Open(ctx, st, study)
	if err != nil {
		t.Fatal(err)
	}
	return Run(ctx, st, study, slowSource{src, d}, opts)
}

// TestStoreBlipsFailNoTrial: every kind of store call fails a few times
// (heartbeats, claims, counts, plans, finishes); the run retries them, no
// trial fails or is trained twice, and the study completes.
func TestStoreBlipsFailNoTrial(t *testing.T) {
	ctx := context.Background()
	real, _ := openStore(t)
	cfg := tinyConfig(3, "random")
	study, err := Create(ctx, real, "blips", cfg)
	if err != nil {
		t.Fatal(err)
	}
	f := newFaulty(real)
	for _, m := range []string{"Heartbeat", "FinishTrial", "ClaimTrials", "CountTrials", "Trials", "PlanTrials", "SetStudyStatus"} {
		f.fail[m] = 2
	}
	// Each training lasts over a second: several heartbeats at a 1.2s lease.
	sum, err := runSlowStudy(ctx, t, f, study, 1200*time.Millisecond, Options{Workers: 1, Lease: 1200 * time.Millisecond, Retry: 5 * time.Second})
	if err != nil {
		t.Fatalf("run with store blips: %v", err)
	}
	if !sum.Complete {
		t.Fatalf("summary %+v: want complete", sum)
	}
	for _, tr := range checkFinished(t, real, study.ID, 3) {
		if tr.State != store.TrialComplete || tr.Attempt != 1 {
			t.Errorf("trial %d: %s after %d attempts (%s); want complete on its first", tr.Number, tr.State, tr.Attempt, tr.Error)
		}
	}
	for _, m := range []string{"Heartbeat", "FinishTrial", "ClaimTrials", "CountTrials", "Trials", "PlanTrials", "SetStudyStatus"} {
		if f.injected(m) != 2 {
			t.Errorf("%s: %d faults injected, want 2 (did the run call it?)", m, f.injected(m))
		}
	}
}

// TestHeartbeatOutageLeavesTrialForRecovery: when no heartbeat gets
// through for a whole lease, the training stops and the trial is left as
// it is (not failed): once the store answers again, the trial is claimed
// again as a crash and completes.
func TestHeartbeatOutageLeavesTrialForRecovery(t *testing.T) {
	ctx := context.Background()
	real, _ := openStore(t)
	cfg := tinyConfig(1, "random")
	study, err := Create(ctx, real, "outage", cfg)
	if err != nil {
		t.Fatal(err)
	}
	f := newFaulty(real)
	lease := 300 * time.Millisecond
	// The outage starts at the first heartbeat, however long the run
	// takes to get there on a busy machine.
	f.outage["Heartbeat"] = 3 * lease
	// The training outlasts the outage's first lease.
	sum, err := runSlowStudy(ctx, t, f, study, 4*lease, Options{Workers: 1, Lease: lease, Retry: 10 * time.Second, Poll: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	trials := checkFinished(t, real, study.ID, 1)
	if tr := trials[0]; tr.State != store.TrialComplete || tr.Attempt < 2 || tr.Crashes < 1 {
		t.Errorf("trial after the outage: %s, attempt %d, %d crashes (%s); want complete on a later attempt, its lapsed lease counted as a crash",
			tr.State, tr.Attempt, tr.Crashes, tr.Error)
	}
	if !sum.Complete {
		t.Errorf("summary %+v: want complete", sum)
	}
}

// TestPersistentFaultStopsRun: a store that keeps failing for longer than
// the retry window stops the run with the fault, saying how long.
func TestPersistentFaultStopsRun(t *testing.T) {
	ctx := context.Background()
	real, _ := openStore(t)
	study, err := Create(ctx, real, "down", tinyConfig(2, "random"))
	if err != nil {
		t.Fatal(err)
	}
	f := newFaulty(real)
	f.until["CountTrials"] = time.Now().Add(time.Hour)
	start := time.Now()
	_, err = runStudy(ctx, t, f, study, Options{Workers: 1, Retry: 400 * time.Millisecond})
	if !errors.Is(err, errBlip) {
		t.Fatalf("run on a store that is down: %v; want the fault", err)
	}
	if el := time.Since(start); el < 300*time.Millisecond || el > 10*time.Second {
		t.Errorf("gave up after %v; want about the 400ms retry window", el)
	}
}

// TestFinishReplyLost: the result is written but the reply is lost; the
// retry is refused (the lease is gone with the finish) and the runner
// recognises its own result instead of reporting a fault.
func TestFinishReplyLost(t *testing.T) {
	ctx := context.Background()
	real, _ := openStore(t)
	study, err := Create(ctx, real, "lost", tinyConfig(1, "random"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := Open(ctx, real, study)
	if err != nil {
		t.Fatal(err)
	}
	trials, err := real.Trials(ctx, study.ID)
	if err != nil {
		t.Fatal(err)
	}
	plans, _, err := src.Plan(ctx, trials, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := real.PlanTrials(ctx, study.ID, plans, nil); err != nil {
		t.Fatal(err)
	}
	got, err := real.ClaimTrials(ctx, study.ID, store.Claim{Worker: "w", Limit: 1, Lease: time.Minute})
	if err != nil || len(got) != 1 {
		t.Fatal(got, err)
	}
	f := newFaulty(real)
	r := &runner{st: f, study: study, src: src, opts: Options{Retry: 2 * time.Second}}
	first := true
	err = r.record(ctx, got[0], "finish", store.TrialComplete, func(ctx context.Context) error {
		res := store.Result{Accuracy: 0.5, Reward: 0.5, Seconds: 1}
		if first {
			first = false
			return f.finishLostReply(ctx, got[0].Lease(), res)
		}
		return f.FinishTrial(ctx, got[0].Lease(), res)
	})
	if err != nil {
		t.Fatalf("a finish whose reply was lost: %v; want it recognised", err)
	}
	if tr, _ := real.Trial(ctx, study.ID, got[0].Number); tr.State != store.TrialComplete || tr.Accuracy != 0.5 {
		t.Fatalf("trial %+v; want complete with the result", tr)
	}
}
