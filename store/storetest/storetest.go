package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/effnas/effnas/store"
)

// Run exercises a Store implementation. open returns a new, empty store
// for each subtest (and may register its cleanup with t.Cleanup).
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Studies", testStudies},
		{"PlanNumbering", testPlanNumbering},
		{"PlanDuplicateKey", testPlanDuplicateKey},
		{"PlanRoundTrip", testPlanRoundTrip},
		{"ClaimOrder", testClaimOrder},
		{"FinishCompareAndSet", testFinishCAS},
		{"RejectNaNInf", testRejectNaNInf},
		{"LeaseExpiry", testLeaseExpiry},
		{"Heartbeat", testHeartbeat},
		{"ExpiryRetryLimit", testExpiryRetryLimit},
		{"ClaimExpiredAmongPending", testClaimExpiredAmongPending},
		{"Recover", testRecover},
		{"InterruptNotCounted", testInterruptNotCounted},
		{"Release", testRelease},
		{"ControllerState", testControllerState},
		{"StudiesIsolated", testStudiesIsolated},
		{"ConcurrentClaims", testConcurrentClaims},
		{"CrashesApartFromStops", testCrashesApartFromStops},
		{"StoppedStudyNotClaimed", testStoppedStudyNotClaimed},
		{"CreateWithPlans", testCreateWithPlans},
		{"MemoryBound", testMemoryBound},
		{"SupernetLease", testSupernetLease},
		{"SupernetHeartbeat", testSupernetHeartbeat},
		{"SupernetSave", testSupernetSave},
		{"SupernetBigWeights", testSupernetBigWeights},
		{"SupernetRelease", testSupernetRelease},
		{"SupernetConcurrentClaims", testSupernetConcurrentClaims},
		{"Screened", testScreened},
		{"ScreenedMany", testScreenedMany},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
}

func newStudy(t *testing.T, s store.Store, maxAttempts int) store.Study {
	t.Helper()
	st, err := s.CreateStudy(t.Context(), store.Study{Kind: store.KindSearch, Seed: 7, MaxAttempts: maxAttempts}, nil)
	if err != nil {
		t.Fatalf("CreateStudy: %v", err)
	}
	return st
}

func plans(prefix string, n int) []store.Plan {
	ps := make([]store.Plan, n)
	for i := range ps {
		ps[i] = store.Plan{
			Key:     fmt.Sprintf("%s%03d", prefix, i),
			Choices: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i)),
			Blocks:  []string{"r1_k3_s11_e1_i32_o16_se0.25", fmt.Sprintf("r%d_k5_s22_e6_i16_o24_se0.25", i%4+1)},
			Params:  int64(1000 + i),
			FLOPs:   int64(50000 + i),
		}
	}
	return ps
}

func plan(t *testing.T, s store.Store, study int64, ps []store.Plan) []store.Trial {
	t.Helper()
	tr, err := s.PlanTrials(t.Context(), study, ps, nil)
	if err != nil {
		t.Fatalf("PlanTrials: %v", err)
	}
	return tr
}

func claim(t *testing.T, s store.Store, study int64, worker string, n int, lease time.Duration) []store.Trial {
	t.Helper()
	tr, err := s.ClaimTrials(t.Context(), study, store.Claim{Worker: worker, Limit: n, Lease: lease})
	if err != nil {
		t.Fatalf("ClaimTrials(%s, %d): %v", worker, n, err)
	}
	return tr
}

func get(t *testing.T, s store.Store, study int64, number int) store.Trial {
	t.Helper()
	tr, err := s.Trial(t.Context(), study, number)
	if err != nil {
		t.Fatalf("Trial(%d): %v", number, err)
	}
	return tr
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error %v, want %v", what, err, target)
	}
}

func testStudies(t *testing.T, s store.Store) {
	ctx := t.Context()
	if _, err := s.LatestStudy(ctx, ""); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("LatestStudy on an empty store: %v, want ErrNotFound", err)
	}
	before := time.Now().Add(-time.Minute)
	cfg := json.RawMessage(`{"workers":2,"space":{"layers":7}}`)
	a, err := s.CreateStudy(ctx, store.Study{Name: "a", Kind: store.KindSearch, Config: cfg, Seed: math.MaxUint64, SpaceHash: "abc"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID == 0 || a.Status != store.StudyRunning || a.MaxAttempts != store.DefaultMaxAttempts || a.Created.Before(before) || a.Updated.Before(before) {
		t.Fatalf("created study %+v: want an id, status running, default max attempts, timestamps now", a)
	}
	b, err := s.CreateStudy(ctx, store.Study{Name: "b", Kind: store.KindGrid, MaxAttempts: 5}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Study(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	var g, w map[string]any
	json.Unmarshal(got.Config, &g)
	json.Unmarshal(cfg, &w)
	if got.Seed != math.MaxUint64 || got.Name != "a" || got.Kind != store.KindSearch || got.SpaceHash != "abc" || fmt.Sprint(g) != fmt.Sprint(w) {
		t.Fatalf("Study(%d) = %+v, want what was created (seed %d, config %s)", a.ID, got, uint64(math.MaxUint64), cfg)
	}
	if got, _ := s.Study(ctx, b.ID); string(got.Config) != "{}" || got.MaxAttempts != 5 {
		t.Fatalf("study b: config %s max attempts %d, want {} and 5", got.Config, got.MaxAttempts)
	}
	_, err = s.Study(ctx, b.ID+100)
	wantErr(t, "Study(missing)", err, store.ErrNotFound)

	for _, tc := range []struct {
		kind store.Kind
		want int64
	}{{"", b.ID}, {store.KindSearch, a.ID}, {store.KindGrid, b.ID}} {
		got, err := s.LatestStudy(ctx, tc.kind)
		if err != nil || got.ID != tc.want {
			t.Fatalf("LatestStudy(%q) = %d, %v; want %d", tc.kind, got.ID, err, tc.want)
		}
	}
	all, err := s.Studies(ctx)
	if err != nil || len(all) != 2 || all[0].ID != a.ID || all[1].ID != b.ID {
		t.Fatalf("Studies = %+v, %v; want a then b", all, err)
	}
	if err := s.SetStudyStatus(ctx, a.ID, store.StudyComplete); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Study(ctx, a.ID); got.Status != store.StudyComplete {
		t.Fatalf("status after SetStudyStatus = %q, want complete", got.Status)
	}
	wantErr(t, "SetStudyStatus(bogus)", s.SetStudyStatus(ctx, a.ID, "bogus"), store.ErrInvalid)
	wantErr(t, "SetStudyStatus(missing)", s.SetStudyStatus(ctx, b.ID+100, store.StudyStopped), store.ErrNotFound)
	for _, bad := range []store.Study{
		{Kind: "evolve"},
		{Kind: store.KindSearch, Config: json.RawMessage(`{"a":`)},
		{Kind: store.KindGrid, MaxAttempts: -1},
	} {
		_, err := s.CreateStudy(ctx, bad, nil)
		wantErr(t, fmt.Sprintf("CreateStudy(%+v)", bad), err, store.ErrInvalid)
	}
}

func testPlanNumbering(t *testing.T, s store.Store) {
	st := newStudy(t, s, 0)
	first := plan(t, s, st.ID, plans("a", 3))
	second := plan(t, s, st.ID, plans("b", 2))
	all := append(first, second...)
	for i, tr := range all {
		if tr.Number != i || tr.State != store.TrialPending || tr.Attempt != 0 || tr.Study != st.ID {
			t.Fatalf("planned trial %d = %+v, want number %d, pending, attempt 0", i, tr, i)
		}
	}
	c, err := s.CountTrials(t.Context(), st.ID)
	if err != nil || c != (store.Counts{Pending: 5}) || c.Total() != 5 {
		t.Fatalf("CountTrials = %+v, %v; want 5 pending", c, err)
	}
	if got, err := s.PlanTrials(t.Context(), st.ID, nil, nil); err != nil || len(got) != 0 {
		t.Fatalf("PlanTrials(nil) = %v, %v; want nothing", got, err)
	}
	_, err = s.PlanTrials(t.Context(), st.ID+100, plans("c", 1), nil)
	wantErr(t, "PlanTrials(missing study)", err, store.ErrNotFound)
	_, err = s.PlanTrials(t.Context(), st.ID, []store.Plan{{Key: ""}}, nil)
	wantErr(t, "PlanTrials(empty key)", err, store.ErrInvalid)
}

func testPlanDuplicateKey(t *testing.T, s store.Store) {
	ctx := t.Context()
	st := newStudy(t, s, 0)
	plan(t, s, st.ID, plans("a", 3))
	// A batch with one old key is refused whole, controller state included.
	batch := append(plans("z", 2), plans("a", 2)[1])
	_, err := s.PlanTrials(ctx, st.ID, batch, []byte("state-after-batch"))
	wantErr(t, "PlanTrials(old key)", err, store.ErrDuplicateKey)
	_, err = s.PlanTrials(ctx, st.ID, []store.Plan{{Key: "x"}, {Key: "x"}}, nil)
	wantErr(t, "PlanTrials(key twice)", err, store.ErrDuplicateKey)
	_, err = s.PlanTrials(ctx, st.ID, []store.Plan{{Key: "y", Rung: 1, Seed: 2}, {Key: "y", Rung: 1, Seed: 2}}, nil)
	wantErr(t, "PlanTrials(key, rung and seed twice)", err, store.ErrDuplicateKey)
	_, err = s.PlanTrials(ctx, st.ID, []store.Plan{{Key: "y", Rung: -1}}, nil)
	wantErr(t, "PlanTrials(negative rung)", err, store.ErrInvalid)
	trials, err := s.Trials(ctx, st.ID)
	if err != nil || len(trials) != 3 {
		t.Fatalf("after refused batches: %d trials, %v; want the 3 planned", len(trials), err)
	}
	// An old key at another rung or seed is a new trial.
	a0 := plans("a", 1)[0]
	a0.Rung = 1
	a1 := a0
	a1.Rung, a1.Seed = 0, 1
	plan(t, s, st.ID, []store.Plan{a0, a1})
	_, err = s.LoadControllerState(ctx, st.ID)
	wantErr(t, "controller state of a refused batch", err, store.ErrNotFound)
	// The same key in another study is fine.
	other := newStudy(t, s, 0)
	plan(t, s, other.ID, plans("a", 1))
}

func testPlanRoundTrip(t *testing.T, s store.Store) {
	ctx := t.Context()
	st, err := s.CreateStudy(ctx, store.Study{Kind: store.KindGrid}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ps := plans("s", 2)
	ps[1].Grid = &store.GridPoint{Alpha: 1.2, Beta: 1.1, Gamma: 1.15}
	ps[1].Blocks = nil
	ps[1].Choices = nil
	ps[1].Memory = 3 << 30
	// The same candidate at a higher rung and under another seed.
	promoted := ps[1]
	promoted.Rung, promoted.Seed = 2, 1
	ps = append(ps, promoted)
	got := plan(t, s, st.ID, ps)
	for i, p := range ps {
		tr, err := s.TrialByKey(ctx, st.ID, p.Key, p.Rung, p.Seed)
		if err != nil {
			t.Fatal(err)
		}
		if tr.Number != got[i].Number || tr.Key != p.Key || tr.Rung != p.Rung || tr.Seed != p.Seed || tr.Memory != p.Memory || tr.Params != p.Params || tr.FLOPs != p.FLOPs ||
			fmt.Sprint(tr.Blocks) != fmt.Sprint(p.Blocks) || len(tr.Blocks) != len(p.Blocks) {
			t.Fatalf("TrialByKey(%q) = %+v, want plan %+v", p.Key, tr, p)
		}
		if (tr.Grid == nil) != (p.Grid == nil) || (p.Grid != nil && *tr.Grid != *p.Grid) {
			t.Fatalf("trial %d grid %v, want %v", i, tr.Grid, p.Grid)
		}
		if p.Choices != nil {
			var a, b any
			json.Unmarshal(tr.Choices, &a)
			json.Unmarshal(p.Choices, &b)
			if fmt.Sprint(a) != fmt.Sprint(b) {
				t.Fatalf("trial %d choices %s, want %s", i, tr.Choices, p.Choices)
			}
		}
	}
	_, err = s.TrialByKey(ctx, st.ID, "nope", 0, 0)
	wantErr(t, "TrialByKey(missing)", err, store.ErrNotFound)
	_, err = s.TrialByKey(ctx, st.ID, ps[1].Key, 1, 0)
	wantErr(t, "TrialByKey(missing)", err, store.ErrNotFound)
	_, err = s.Trial(ctx, st.ID, 99)
	wantErr(t, "Trial(missing)", err, store.ErrNotFound)
	_, err = s.PlanTrials(ctx, st.ID, []store.Plan{{Key: "g", Grid: &store.GridPoint{Alpha: math.NaN(), Beta: 1, Gamma: 1}}}, nil)
	wantErr(t, "PlanTrials(NaN grid)", err, store.ErrInvalid)
}

func testClaimOrder(t *testing.T, s store.Store) {
	ctx := t.Context()
	st := newStudy(t, s, 0)
	plan(t, s, st.ID, plans("a", 5))
	got := claim(t, s, st.ID, "w1", 2, time.Minute)
	if len(got) != 2 || got[0].Number != 0 || got[1].Number != 1 {
		t.Fatalf("first claim = %+v, want trials 0 and 1", got)
	}
	for _, tr := range got {
		if tr.State != store.TrialRunning || tr.Worker != "w1" || tr.Attempt != 1 {
			t.Fatalf("claimed %+v: want running, worker w1, attempt 1", tr)
		}
		if d := time.Until(tr.LeaseExpires); d < 30*time.Second || d > 90*time.Second {
			t.Fatalf("lease expires in %v, want about a minute (clock skew between test and database?)", d)
		}
	}
	got = claim(t, s, st.ID, "w2", 10, time.Minute)
	if len(got) != 3 || got[0].Number != 2 || got[2].Number != 4 {
		t.Fatalf("second claim = %+v, want trials 2, 3, 4", got)
	}
	if got := claim(t, s, st.ID, "w3", 1, time.Minute); len(got) != 0 {
		t.Fatalf("claim with nothing pending = %+v, want none", got)
	}
	c, _ := s.CountTrials(ctx, st.ID)
	if c != (store.Counts{Running: 5}) {
		t.Fatalf("counts %+v, want 5 running", c)
	}
	for _, bad := range []struct {
		worker string
		n      int
		lease  time.Duration
	}{{"", 1, time.Minute}, {"w", 0, time.Minute}, {"w", 1, 0}} {
		_, err := s.ClaimTrials(ctx, st.ID, store.Claim{Worker: bad.worker, Limit: bad.n, Lease: bad.lease})
		wantErr(t, fmt.Sprintf("ClaimTrials%+v", bad), err, store.ErrInvalid)
	}
	_, err := s.ClaimTrials(ctx, st.ID+100, store.Claim{Worker: "w", Limit: 1, Lease: time.Minute})
	wantErr(t, "ClaimTrials(missing study)", err, store.ErrNotFound)
}

func testFinishCAS(t *testing.T, s store.Store) {
	ctx := t.Context()
	st := newStudy(t, s, 0)
	plan(t, s, st.ID, plans("a", 2))
	tr := claim(t, s, st.ID, "w1", 1, time.Minute)[0]
	l := tr.Lease()
	res := store.Result{Accuracy: 0.75, Reward: 0.7, TestAccuracy: 0.72, Seconds: 12.5}
	wrongWorker, wrongAttempt := l, l
	wrongWorker.Worker = "w2"
	wrongAttempt.Attempt = 2
	wantErr(t, "finish by another worker", s.FinishTrial(ctx, wrongWorker, res), store.ErrLeaseLost)
	wantErr(t, "finish by another attempt", s.FinishTrial(ctx, wrongAttempt, res), store.ErrLeaseLost)
	unclaimed := store.Lease{Study: st.ID, Number: 1, Worker: "w1", Attempt: 1}
	wantErr(t, "finish of a pending trial", s.FinishTrial(ctx, unclaimed, res), store.ErrLeaseLost)
	wantErr(t, "finish without a lease", s.FinishTrial(ctx, store.Lease{Study: st.ID, Number: 0}, res), store.ErrInvalid)
	if err := s.FinishTrial(ctx, l, res); err != nil {
		t.Fatalf("FinishTrial by the holder: %v", err)
	}
	got := get(t, s, st.ID, 0)
	if got.State != store.TrialComplete || got.Accuracy != 0.75 || got.Reward != 0.7 || got.TestAccuracy != 0.72 || got.Seconds != 12.5 || got.Attempt != 1 {
		t.Fatalf("finished trial %+v, want complete with the result", got)
	}
	wantErr(t, "second finish", s.FinishTrial(ctx, l, store.Result{Accuracy: 0.1}), store.ErrLeaseLost)
	wantErr(t, "fail after finish", s.FailTrial(ctx, l, "boom", 1), store.ErrLeaseLost)
	wantErr(t, "interrupt after finish", s.InterruptTrial(ctx, l, "stop"), store.ErrLeaseLost)
	if got := get(t, s, st.ID, 0); got.Accuracy != 0.75 || got.State != store.TrialComplete {
		t.Fatalf("a refused late call changed the trial: %+v", got)
	}
	// FailTrial is final: recovery and claims leave it alone.
	tr = claim(t, s, st.ID, "w1", 1, time.Minute)[0]
	if err := s.FailTrial(ctx, tr.Lease(), "out of memory", 3); err != nil {
		t.Fatal(err)
	}
	if got := get(t, s, st.ID, 1); got.State != store.TrialFailed || got.Error != "out of memory" || got.Seconds != 3 {
		t.Fatalf("failed trial %+v, want failed with the reason", got)
	}
	if _, err := s.RecoverTrials(ctx, st.ID); err != nil {
		t.Fatal(err)
	}
	if got := claim(t, s, st.ID, "w9", 5, time.Minute); len(got) != 0 {
		t.Fatalf("claimed %+v after everything finished, want none", got)
	}
}

// testRelease: a released trial is pending at once for another worker,
// the releaser's late result is refused, and the hand-back is not a crash.
func testRelease(t *testing.T, s store.Store) {
	ctx := t.Context()
	st := newStudy(t, s, 1)
	plan(t, s, st.ID, plans("r", 1))
	tr := claim(t, s, st.ID, "w1", 1, time.Hour)[0]
	if err := s.ReleaseTrial(ctx, tr.Lease(), "worker stopped"); err != nil {
		t.Fatalf("ReleaseTrial by the holder: %v", err)
	}
	if got := get(t, s, st.ID, 0); got.State != store.TrialPending || got.Key != tr.Key {
		t.Fatalf("released trial %+v, want pending with the same candidate", got)
	}
	wantErr(t, "release twice", s.ReleaseTrial(ctx, tr.Lease(), "again"), store.ErrLeaseLost)
	again := claim(t, s, st.ID, "w2", 1, time.Hour)
	if len(again) != 1 || again[0].Number != 0 {
		t.Fatalf("after release, w2 claimed %+v; want trial 0 at once (max attempts 1 notwithstanding)", again)
	}
	wantErr(t, "finish by the releaser", s.FinishTrial(ctx, tr.Lease(), store.Result{Accuracy: 0.5}), store.ErrLeaseLost)
	if err := s.FinishTrial(ctx, again[0].Lease(), store.Result{Accuracy: 0.9, Reward: 0.9, Seconds: 1}); err != nil {
		t.Fatalf("finish by the new claimant: %v", err)
	}
	if got := get(t, s, st.ID, 0); got.State != store.TrialComplete || got.Worker != "w2" {
		t.Fatalf("trial %+v, want complete by w2", got)
	}
}

func testRejectNaNInf(t *testing.T, s store.Store) {
	ctx := t.Context()
	st := newStudy(t, s, 0)
	plan(t, s, st.ID, plans("a", 1))
	l := claim(t, s, st.ID, "w", 1, time.Minute)[0].Lease()
	for _, r := range []store.Result{
		{Accuracy: math.NaN(), Reward: 0.5},
		{Accuracy: 0.5, Reward: 0.5, TestAccuracy: math.NaN()},
		{Accuracy: 0.5, Reward: math.Inf(1)},
		{Accuracy: 0.5, Reward: math.Inf(-1)},
		{Accuracy: 0.5, Reward: 0.5, Seconds: math.NaN()},
	} {
		wantErr(t, fmt.Sprintf("FinishTrial(%+v)", r), s.FinishTrial(ctx, l, r), store.ErrInvalidMetric)
		if got := get(t, s, st.ID, 0); got.State != store.TrialRunning {
			t.Fatalf("after a rejected %+v the trial is %s, want still running", r, got.State)
		}
	}
	wantErr(t, "FailTrial(NaN seconds)", s.FailTrial(ctx, l, "x", math.NaN()), store.ErrInvalidMetric)
	if err := s.FailTrial(ctx, l, "accuracy diverged to NaN", 1); err != nil {
		t.Fatal(err)
	}
	if got := get(t, s, st.ID, 0); got.State != store.TrialFailed || !strings.Contains(got.Error, "NaN") {
		t.Fatalf("diverged trial %+v, want failed with the reason", got)
	}
}

func testLeaseExpiry(t *testing.T, s store.Store) {
	ctx := t.Context()
	st := newStudy(t, s, 0)
	plan(t, s, st.ID, plans("a", 1))
	old := claim(t, s, st.ID, "dead", 1, 400*time.Millisecond)[0]
	if got := claim(t, s, st.ID, "w2", 1, time.Minute); len(got) != 0 {
		t.Fatalf("claimed a trial whose lease is live: %+v", got)
	}
	time.Sleep(600 * time.Millisecond)
	// The lease expired: even before anyone reclaims it, the old holder
	// can no longer finish or extend it.
	wantErr(t, "heartbeat after expiry", s.Heartbeat(ctx, old.Lease(), time.Minute), store.ErrLeaseLost)
	wantErr(t, "finish after expiry", s.FinishTrial(ctx, old.Lease(), store.Result{Accuracy: 0.1}), store.ErrLeaseLost)
	got := claim(t, s, st.ID, "w2", 1, time.Minute)
	if len(got) != 1 || got[0].Number != 0 || got[0].Attempt != 2 || got[0].Worker != "w2" || got[0].Key != old.Key {
		t.Fatalf("reclaim after expiry = %+v, want trial 0, attempt 2, worker w2, same key", got)
	}
	wantErr(t, "late finish by the dead worker", s.FinishTrial(ctx, old.Lease(), store.Result{Accuracy: 0.1}), store.ErrLeaseLost)
	if err := s.FinishTrial(ctx, got[0].Lease(), store.Result{Accuracy: 0.9, Reward: 0.8}); err != nil {
		t.Fatal(err)
	}
	if tr := get(t, s, st.ID, 0); tr.Accuracy != 0.9 || tr.Worker != "w2" {
		t.Fatalf("trial %+v, want the new holder's result", tr)
	}
}

func testHeartbeat(t *testing.T, s store.Store) {
	ctx := t.Context()
	st := newStudy(t, s, 0)
	plan(t, s, st.ID, plans("a", 1))
	// Leases and sleeps leave 750ms of slack for a loaded CI machine.
	tr := claim(t, s, st.ID, "w1", 1, time.Second)[0]
	for range 6 {
		time.Sleep(250 * time.Millisecond)
		if err := s.Heartbeat(ctx, tr.Lease(), time.Second); err != nil {
			t.Fatalf("Heartbeat: %v", err)
		}
		if got := claim(t, s, st.ID, "w2", 1, time.Minute); len(got) != 0 {
			t.Fatalf("claimed a trial kept alive by heartbeats: %+v", got)
		}
	}
	if err := s.FinishTrial(ctx, tr.Lease(), store.Result{Accuracy: 0.5}); err != nil {
		t.Fatalf("finish after heartbeats outlived the first lease: %v", err)
	}
	wantErr(t, "heartbeat of a finished trial", s.Heartbeat(ctx, tr.Lease(), time.Minute), store.ErrLeaseLost)
	wantErr(t, "heartbeat with zero lease", s.Heartbeat(ctx, tr.Lease(), 0), store.ErrInvalid)
}

func testExpiryRetryLimit(t *testing.T, s store.Store) {
	st := newStudy(t, s, 2)
	plan(t, s, st.ID, plans("a", 1))
	for attempt := 1; attempt <= 2; attempt++ {
		got := claim(t, s, st.ID, "w", 1, 20*time.Millisecond)
		if len(got) != 1 || got[0].Attempt != attempt {
			t.Fatalf("claim %d = %+v, want attempt %d", attempt, got, attempt)
		}
		time.Sleep(60 * time.Millisecond)
	}
	if got := claim(t, s, st.ID, "w", 1, time.Minute); len(got) != 0 {
		t.Fatalf("claimed %+v past the retry limit of 2", got)
	}
	tr := get(t, s, st.ID, 0)
	if tr.State != store.TrialFailed || tr.Attempt != 2 || !strings.Contains(tr.Error, "expired") {
		t.Fatalf("trial past its retry limit = %+v, want failed after 2 attempts saying the lease expired", tr)
	}
}

// testClaimExpiredAmongPending: pending and expired trials are claimed
// lowest number first, together; an expired trial at the crash limit is
// never claimed, even while pending trials fill every claim, and is failed
// once a claim comes back short.
func testClaimExpiredAmongPending(t *testing.T, s store.Store) {
	st := newStudy(t, s, 2)
	plan(t, s, st.ID, plans("m", 5))
	claim(t, s, st.ID, "dies", 1, 20*time.Millisecond) // trial 0
	time.Sleep(60 * time.Millisecond)
	got := claim(t, s, st.ID, "w", 2, time.Minute)
	if len(got) != 2 || got[0].Number != 0 || got[0].Attempt != 2 || got[0].Crashes != 1 || got[1].Number != 1 || got[1].Attempt != 1 {
		t.Fatalf("claim of 2 after trial 0's lease lapsed = %+v; want trial 0 again (attempt 2, 1 crash) and trial 1", got)
	}
	// Trial 2 crashes twice: the limit.
	for attempt := 1; attempt <= 2; attempt++ {
		got := claim(t, s, st.ID, "dies", 1, 20*time.Millisecond)
		if len(got) != 1 || got[0].Number != 2 || got[0].Attempt != attempt {
			t.Fatalf("claim = %+v; want trial 2, attempt %d", got, attempt)
		}
		time.Sleep(60 * time.Millisecond)
	}
	got = claim(t, s, st.ID, "w", 1, time.Minute)
	if len(got) != 1 || got[0].Number != 3 {
		t.Fatalf("claim after trial 2's second crash = %+v; want trial 3, not trial 2", got)
	}
	got = claim(t, s, st.ID, "w", 3, time.Minute)
	if len(got) != 1 || got[0].Number != 4 {
		t.Fatalf("claim of 3 with one trial pending = %+v; want trial 4", got)
	}
	if tr := get(t, s, st.ID, 2); tr.State != store.TrialFailed || tr.Crashes != 2 || !strings.Contains(tr.Error, "crash 2 of 2") {
		t.Fatalf("trial 2 after a claim came back short = %+v; want failed after 2 crashes", tr)
	}
}

func testRecover(t *testing.T, s store.Store) {
	ctx := t.Context()
	st := newStudy(t, s, 2)
	plan(t, s, st.ID, plans("a", 6))
	tr := claim(t, s, st.ID, "w", 6, time.Hour)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.FinishTrial(ctx, tr[0].Lease(), store.Result{Accuracy: 0.6, Reward: 0.5, Seconds: 2}))
	must(s.FailTrial(ctx, tr[1].Lease(), "bad", 1))
	// tr[2] stays running, as if its process died.
	must(s.InterruptTrial(ctx, tr[3].Lease(), "SIGINT"))
	must(s.InterruptTrial(ctx, tr[4].Lease(), "SIGINT"))
	// tr[5]: crashed once, recovered, crashed again: out of attempts.
	rec, err := s.RecoverTrials(ctx, st.ID)
	if err != nil || rec != (store.Recovered{Requeued: 4}) {
		t.Fatalf("first RecoverTrials = %+v, %v; want 4 requeued (2 running, 2 interrupted)", rec, err)
	}
	again := claim(t, s, st.ID, "w2", 10, time.Hour)
	if len(again) != 4 || again[0].Number != 2 || again[3].Number != 5 {
		t.Fatalf("claim after recovery = %+v, want trials 2..5", again)
	}
	for _, a := range again {
		if a.Attempt != 2 || a.Key != tr[a.Number].Key {
			t.Fatalf("requeued trial %+v: want attempt 2 and the same key %q", a, tr[a.Number].Key)
		}
	}
	must(s.FinishTrial(ctx, again[0].Lease(), store.Result{Accuracy: 0.7, Reward: 0.6}))
	must(s.InterruptTrial(ctx, again[1].Lease(), "SIGTERM"))
	must(s.FinishTrial(ctx, again[2].Lease(), store.Result{Accuracy: 0.8, Reward: 0.7}))
	// again[3] (trial 5) is running on its second and last attempt.
	rec, err = s.RecoverTrials(ctx, st.ID)
	if err != nil || rec != (store.Recovered{Requeued: 1, Failed: 1}) {
		t.Fatalf("second RecoverTrials = %+v, %v; want trial 3 requeued, trial 5 failed", rec, err)
	}
	want := []struct {
		state   store.TrialState
		attempt int
		acc     float64
	}{
		{store.TrialComplete, 1, 0.6},
		{store.TrialFailed, 1, 0},
		{store.TrialComplete, 2, 0.7},
		{store.TrialPending, 2, 0},
		{store.TrialComplete, 2, 0.8},
		{store.TrialFailed, 2, 0},
	}
	all, err := s.Trials(ctx, st.ID)
	if err != nil || len(all) != len(want) {
		t.Fatalf("Trials = %d, %v; want %d", len(all), err, len(want))
	}
	for i, w := range want {
		if g := all[i]; g.Number != i || g.State != w.state || g.Attempt != w.attempt || g.Accuracy != w.acc {
			t.Fatalf("trial %d = %s attempt %d accuracy %v; want %s attempt %d accuracy %v", i, g.State, g.Attempt, g.Accuracy, w.state, w.attempt, w.acc)
		}
	}
	if !strings.Contains(all[5].Error, "crash 2 of 2") {
		t.Fatalf("trial 5 error %q, want it to say crash 2 of 2", all[5].Error)
	}
	c, _ := s.CountTrials(ctx, st.ID)
	if c != (store.Counts{Pending: 1, Complete: 3, Failed: 2}) {
		t.Fatalf("counts %+v, want 1 pending, 3 complete, 2 failed", c)
	}
}

func testInterruptNotCounted(t *testing.T, s store.Store) {
	ctx := t.Context()
	st := newStudy(t, s, 1)
	plan(t, s, st.ID, plans("a", 1))
	for attempt := 1; attempt <= 3; attempt++ {
		tr := claim(t, s, st.ID, "w", 1, time.Hour)
		if len(tr) != 1 || tr[0].Attempt != attempt {
			t.Fatalf("claim %d = %+v, want attempt %d", attempt, tr, attempt)
		}
		if attempt == 3 {
			break
		}
		if err := s.InterruptTrial(ctx, tr[0].Lease(), "user pressed Ctrl-C"); err != nil {
			t.Fatal(err)
		}
		if got := get(t, s, st.ID, 0); got.State != store.TrialInterrupted {
			t.Fatalf("state after InterruptTrial = %s", got.State)
		}
		if rec, err := s.RecoverTrials(ctx, st.ID); err != nil || rec.Requeued != 1 {
			t.Fatalf("RecoverTrials = %+v, %v; want the interrupted trial requeued despite max attempts 1", rec, err)
		}
	}
}

func testControllerState(t *testing.T, s store.Store) {
	ctx := t.Context()
	st := newStudy(t, s, 0)
	_, err := s.LoadControllerState(ctx, st.ID)
	wantErr(t, "LoadControllerState(none saved)", err, store.ErrNotFound)
	blob := []byte{0, 1, 2, 255, 'x'}
	if err := s.SaveControllerState(ctx, st.ID, blob); err != nil {
		t.Fatal(err)
	}
	if got, err := s.LoadControllerState(ctx, st.ID); err != nil || string(got) != string(blob) {
		t.Fatalf("LoadControllerState = %v, %v; want %v", got, err, blob)
	}
	if _, err := s.PlanTrials(ctx, st.ID, plans("a", 2), []byte("after two")); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.LoadControllerState(ctx, st.ID); string(got) != "after two" {
		t.Fatalf("state saved with PlanTrials = %q, want %q", got, "after two")
	}
	if err := s.SaveControllerState(ctx, st.ID, []byte{}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.LoadControllerState(ctx, st.ID); err != nil || len(got) != 0 {
		t.Fatalf("empty state = %v, %v; want empty, no error", got, err)
	}
	wantErr(t, "SaveControllerState(missing study)", s.SaveControllerState(ctx, st.ID+100, blob), store.ErrNotFound)
	other := newStudy(t, s, 0)
	_, err = s.LoadControllerState(ctx, other.ID)
	wantErr(t, "state of another study", err, store.ErrNotFound)
}

func testStudiesIsolated(t *testing.T, s store.Store) {
	ctx := t.Context()
	a, b := newStudy(t, s, 0), newStudy(t, s, 0)
	plan(t, s, a.ID, plans("k", 2))
	plan(t, s, b.ID, plans("k", 3))
	if got := claim(t, s, a.ID, "w", 10, time.Minute); len(got) != 2 || got[0].Study != a.ID {
		t.Fatalf("claim from study a = %+v, want its 2 trials", got)
	}
	cb, _ := s.CountTrials(ctx, b.ID)
	if cb != (store.Counts{Pending: 3}) {
		t.Fatalf("study b counts %+v after claiming from a, want 3 pending", cb)
	}
	if rec, _ := s.RecoverTrials(ctx, b.ID); rec.Requeued != 0 {
		t.Fatalf("recovering b requeued %d of a's trials", rec.Requeued)
	}
}

// testConcurrentClaims: many goroutines claim and finish; every trial is
// claimed exactly once and no write fails.
func testConcurrentClaims(t *testing.T, s store.Store) {
	ctx := t.Context()
	st := newStudy(t, s, 0)
	const n, workers = 300, 12
	plan(t, s, st.ID, plans("c", n))
	var (
		mu      sync.Mutex
		claimed = map[int]string{}
		wg      sync.WaitGroup
		errs    = make(chan error, workers)
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("w%02d", w)
			for {
				got, err := s.ClaimTrials(ctx, st.ID, store.Claim{Worker: name, Limit: 1 + w%3, Lease: time.Minute})
				if err != nil {
					errs <- err
					return
				}
				if len(got) == 0 {
					return
				}
				for _, tr := range got {
					mu.Lock()
					if prev, dup := claimed[tr.Number]; dup {
						mu.Unlock()
						errs <- fmt.Errorf("trial %d claimed by %s and %s", tr.Number, prev, name)
						return
					}
					claimed[tr.Number] = name
					mu.Unlock()
					if err := s.FinishTrial(ctx, tr.Lease(), store.Result{Accuracy: float64(tr.Number) / n, Reward: 1}); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	all, err := s.Trials(ctx, st.ID)
	if err != nil || len(all) != n || len(claimed) != n {
		t.Fatalf("%d trials, %d claimed, %v; want %d", len(all), len(claimed), err, n)
	}
	for _, tr := range all {
		if tr.State != store.TrialComplete || tr.Attempt != 1 || tr.Worker != claimed[tr.Number] || tr.Accuracy != float64(tr.Number)/n {
			t.Fatalf("trial %+v: want complete once by %s", tr, claimed[tr.Number])
		}
	}
}

// testCrashesApartFromStops: hand-backs and interrupts are not crashes. A
// trial released, interrupted and released again, then crashed once, still
// runs under a crash limit of 2; the second crash fails it.
func testCrashesApartFromStops(t *testing.T, s store.Store) {
	ctx := t.Context()
	st := newStudy(t, s, 2)
	plan(t, s, st.ID, plans("c", 1))
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	tr := claim(t, s, st.ID, "w", 1, time.Hour)[0]
	must(s.ReleaseTrial(ctx, tr.Lease(), "worker stopped"))
	tr = claim(t, s, st.ID, "w", 1, time.Hour)[0]
	must(s.InterruptTrial(ctx, tr.Lease(), "Ctrl-C"))
	if _, err := s.RecoverTrials(ctx, st.ID); err != nil {
		t.Fatal(err)
	}
	tr = claim(t, s, st.ID, "w", 1, time.Hour)[0]
	must(s.ReleaseTrial(ctx, tr.Lease(), "worker stopped"))
	tr = claim(t, s, st.ID, "dies", 1, 20*time.Millisecond)[0]
	if tr.Attempt != 4 || tr.Crashes != 0 {
		t.Fatalf("fourth claim: attempt %d, crashes %d; want 4 and 0", tr.Attempt, tr.Crashes)
	}
	time.Sleep(60 * time.Millisecond) // the lease lapses: a crash
	again := claim(t, s, st.ID, "w", 1, time.Hour)
	if len(again) != 1 || again[0].Attempt != 5 || again[0].Crashes != 1 {
		t.Fatalf("claim after one crash = %+v; want the trial running again, attempt 5, 1 crash", again)
	}
	// A second crash, found by a resume, reaches the limit of 2.
	rec, err := s.RecoverTrials(ctx, st.ID)
	if err != nil || rec != (store.Recovered{Failed: 1}) {
		t.Fatalf("RecoverTrials = %+v, %v; want the trial failed on its second crash", rec, err)
	}
	if got := get(t, s, st.ID, 0); got.State != store.TrialFailed || got.Crashes != 2 || !strings.Contains(got.Error, "crash 2 of 2") {
		t.Fatalf("trial after two crashes = %+v; want failed, 2 crashes, saying crash 2 of 2", got)
	}
}

// testStoppedStudyNotClaimed: only a running study gives out work.
func testStoppedStudyNotClaimed(t *testing.T, s store.Store) {
	ctx := t.Context()
	st := newStudy(t, s, 0)
	plan(t, s, st.ID, plans("s", 2))
	for _, status := range []store.StudyStatus{store.StudyStopped, store.StudyFailed, store.StudyComplete} {
		if err := s.SetStudyStatus(ctx, st.ID, status); err != nil {
			t.Fatal(err)
		}
		if got := claim(t, s, st.ID, "w", 2, time.Minute); len(got) != 0 {
			t.Fatalf("claimed %d trials of a %s study, want none", len(got), status)
		}
	}
	if err := s.SetStudyStatus(ctx, st.ID, store.StudyRunning); err != nil {
		t.Fatal(err)
	}
	if got := claim(t, s, st.ID, "w", 2, time.Minute); len(got) != 2 {
		t.Fatalf("claimed %d trials of the study running again, want 2", len(got))
	}
}

// testCreateWithPlans: a study and its first trials are written together,
// or not at all.
func testCreateWithPlans(t *testing.T, s store.Store) {
	ctx := t.Context()
	st, err := s.CreateStudy(ctx, store.Study{Kind: store.KindGrid}, plans("g", 3))
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := s.CountTrials(ctx, st.ID); c != (store.Counts{Pending: 3}) {
		t.Fatalf("study created with 3 plans has counts %+v", c)
	}
	before, err := s.Studies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dup := append(plans("g", 2), plans("g", 1)...)
	_, err = s.CreateStudy(ctx, store.Study{Kind: store.KindGrid}, dup)
	wantErr(t, "CreateStudy with a duplicate key", err, store.ErrDuplicateKey)
	bad := plans("b", 2)
	bad[1].Memory = -1
	_, err = s.CreateStudy(ctx, store.Study{Kind: store.KindGrid}, bad)
	wantErr(t, "CreateStudy with a negative memory", err, store.ErrInvalid)
	after, err := s.Studies(ctx)
	if err != nil || len(after) != len(before) {
		t.Fatalf("refused creations left %d studies (was %d), %v", len(after), len(before), err)
	}
}

// testMemoryBound: a worker claims only the trials that fit its memory.
func testMemoryBound(t *testing.T, s store.Store) {
	st := newStudy(t, s, 0)
	ps := plans("m", 3)
	ps[0].Memory, ps[1].Memory, ps[2].Memory = 8<<30, 1<<30, 0
	plan(t, s, st.ID, ps)
	small, err := s.ClaimTrials(t.Context(), st.ID, store.Claim{Worker: "small", Limit: 3, Lease: time.Minute, MaxMemory: 2 << 30})
	if err != nil {
		t.Fatal(err)
	}
	if len(small) != 2 || small[0].Number != 1 || small[1].Number != 2 || small[0].Memory != 1<<30 {
		t.Fatalf("a 2 GiB worker claimed %+v; want trials 1 and 2 (1 GiB and unknown)", small)
	}
	big := claim(t, s, st.ID, "big", 3, time.Minute)
	if len(big) != 1 || big[0].Number != 0 || big[0].Memory != 8<<30 {
		t.Fatalf("an unbounded worker claimed %+v; want trial 0", big)
	}
	// Skip leaves the listed trials alone.
	more := plan(t, s, st.ID, plans("s", 3))
	got0, err := s.ClaimTrials(t.Context(), st.ID, store.Claim{Worker: "picky", Limit: 3, Lease: time.Minute, Skip: []int{more[0].Number, more[2].Number}})
	if err != nil || len(got0) != 1 || got0[0].Number != more[1].Number {
		t.Fatalf("claim skipping trials %d and %d = %+v, %v; want only trial %d", more[0].Number, more[2].Number, got0, err, more[1].Number)
	}
	// A plan rejected before training is recorded failed, never claimed.
	huge := plans("h", 1)[0]
	huge.Memory, huge.Rejected = 1<<40, "rejected before training: it needs about 1 TiB"
	got := plan(t, s, st.ID, []store.Plan{huge})
	if got[0].State != store.TrialFailed || got[0].Error != huge.Rejected {
		t.Fatalf("rejected plan written as %+v; want failed with its reason", got[0])
	}
	// A copied run is written complete with its result, never claimed.
	cp := plans("cp", 1)[0]
	cp.Copied, cp.Source = &store.Result{Accuracy: 0.8, Reward: 0.7, TestAccuracy: 0.75, Seconds: 12}, "copied from study 1 trial 4"
	if got := plan(t, s, st.ID, []store.Plan{cp}); got[0].State != store.TrialComplete || got[0].Accuracy != 0.8 || got[0].TestAccuracy != 0.75 ||
		got[0].Reward != 0.7 || got[0].Seconds != 12 || got[0].Worker != cp.Source {
		t.Fatalf("copied plan written as %+v; want complete with its result", got[0])
	}
	bad := cp
	bad.Key, bad.Copied = "nan", &store.Result{Accuracy: math.NaN()}
	_, err = s.PlanTrials(t.Context(), st.ID, []store.Plan{bad}, nil)
	wantErr(t, "copied NaN result", err, store.ErrInvalidMetric)
	if c := claim(t, s, st.ID, "big", 5, time.Minute); len(c) != 2 || c[0].Number != more[0].Number || c[1].Number != more[2].Number {
		t.Fatalf("claimed %+v: want the two skipped trials, never the rejected one", c)
	}
}
