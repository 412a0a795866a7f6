package storetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/effnas/effnas/store"
)

// The one-shot screening cases: a study's supernet checkpoint, claimed by
// one worker at a time under a lease, and candidates screened on it,
// stored apart from the trials.

func claimSupernet(t *testing.T, s store.Store, study int64, worker string, lease time.Duration) (store.SupernetCheckpoint, bool) {
	t.Helper()
	ck, ok, err := s.ClaimSupernet(t.Context(), study, worker, lease)
	if err != nil {
		t.Fatalf("ClaimSupernet(%s): %v", worker, err)
	}
	return ck, ok
}

func supernet(t *testing.T, s store.Store, study int64) store.SupernetCheckpoint {
	t.Helper()
	ck, err := s.Supernet(t.Context(), study)
	if err != nil {
		t.Fatalf("Supernet: %v", err)
	}
	return ck
}

// weights is n seeded random bytes: a stand-in for a trainer's checkpoint.
func weights(n int, seed uint64) []byte {
	var key [32]byte
	key[0] = byte(seed)
	b := make([]byte, n)
	rand.NewChaCha8(key).Read(b)
	return b
}

// sameCheckpoint compares what SaveSupernet stores as given.
func sameCheckpoint(got, want store.SupernetCheckpoint) bool {
	return got.Study == want.Study && got.Step == want.Step && got.Checkpoints == want.Checkpoints && got.Seconds == want.Seconds &&
		got.Done == want.Done && bytes.Equal(got.Meta, want.Meta) && bytes.Equal(got.Weights, want.Weights)
}

// testSupernetLease: a second worker is refused while the holder's lease
// lives and takes the claim once it expires; the old holder can then
// neither save nor heartbeat, and its late save writes nothing.
func testSupernetLease(t *testing.T, s store.Store) {
	ctx := t.Context()
	st := newStudy(t, s, 0)
	_, err := s.Supernet(ctx, st.ID)
	wantErr(t, "Supernet(never claimed)", err, store.ErrNotFound)
	_, err = s.SupernetInfo(ctx, st.ID)
	wantErr(t, "SupernetInfo(never claimed)", err, store.ErrNotFound)

	ck, ok := claimSupernet(t, s, st.ID, "w1", time.Minute)
	if !ok || ck.Study != st.ID || ck.Step != 0 || ck.Checkpoints != 0 || ck.Done || ck.Weights != nil || ck.Holder != "w1" {
		t.Fatalf("first claim = %+v, %v; want claimed by w1 at step 0 without weights", ck, ok)
	}
	if ck, ok := claimSupernet(t, s, st.ID, "w2", time.Minute); ok || ck.Holder != "w1" {
		t.Fatalf("claim by w2 while w1's lease lives = holder %q, %v; want refused, held by w1", ck.Holder, ok)
	}
	first := store.SupernetCheckpoint{Study: st.ID, Step: 10, Checkpoints: 1, Seconds: 2.5, Meta: []byte(`{"space":"h"}`), Weights: weights(1000, 1)}
	if err := s.SaveSupernet(ctx, "w1", first, time.Minute); err != nil {
		t.Fatal(err)
	}
	if ck, ok := claimSupernet(t, s, st.ID, "w1", time.Minute); !ok || !sameCheckpoint(ck, first) {
		t.Fatalf("claim again by the holder = %+v, %v; want claimed with its checkpoint", ck, ok)
	}
	if ck, ok := claimSupernet(t, s, st.ID, "w2", time.Minute); ok || ck.Step != 10 || ck.Weights != nil {
		t.Fatalf("claim by w2 after w1's save = step %d, %d bytes, %v; want refused, step 10 shown without weights", ck.Step, len(ck.Weights), ok)
	}

	// w1's last heartbeat leaves it a short lease. It expires on the
	// database's clock: w2 gets the claim within a bounded wait, and w1 is
	// refused from then on.
	const lease = 200 * time.Millisecond
	if err := s.HeartbeatSupernet(ctx, st.ID, "w1", lease); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		ck, ok = claimSupernet(t, s, st.ID, "w2", time.Minute)
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("w2 still refused 5s after w1's lease of %v: held by %q", lease, ck.Holder)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if ck.Holder != "w2" || !sameCheckpoint(ck, first) {
		t.Fatalf("claim after expiry = %+v; want w2 holding w1's checkpoint", ck)
	}
	late := first
	late.Step, late.Checkpoints, late.Weights = 20, 2, weights(1000, 2)
	wantErr(t, "save by the expired holder", s.SaveSupernet(ctx, "w1", late, time.Minute), store.ErrLeaseLost)
	if got := supernet(t, s, st.ID); !sameCheckpoint(got, first) || got.Holder != "w2" {
		t.Fatalf("after a refused save: %+v; want w1's first checkpoint, held by w2", got)
	}
	wantErr(t, "heartbeat by the expired holder", s.HeartbeatSupernet(ctx, st.ID, "w1", time.Minute), store.ErrLeaseLost)
	if err := s.HeartbeatSupernet(ctx, st.ID, "w2", time.Minute); err != nil {
		t.Fatalf("heartbeat by the holder: %v", err)
	}
	if err := s.SaveSupernet(ctx, "w2", late, time.Minute); err != nil {
		t.Fatalf("save by the new holder: %v", err)
	}
	if got := supernet(t, s, st.ID); !sameCheckpoint(got, late) {
		t.Fatalf("after the new holder's save: %+v, want %+v", got, late)
	}
}

// testSupernetHeartbeat: heartbeats keep a short lease alive past its
// first term; a claim expires only when they stop.
func testSupernetHeartbeat(t *testing.T, s store.Store) {
	ctx := t.Context()
	st := newStudy(t, s, 0)
	// Leases and sleeps leave 750ms of slack for a loaded CI machine.
	claimSupernet(t, s, st.ID, "w1", time.Second)
	for range 5 {
		time.Sleep(250 * time.Millisecond)
		if err := s.HeartbeatSupernet(ctx, st.ID, "w1", time.Second); err != nil {
			t.Fatalf("HeartbeatSupernet: %v", err)
		}
		if _, ok := claimSupernet(t, s, st.ID, "w2", time.Minute); ok {
			t.Fatal("w2 claimed a supernet kept alive by heartbeats")
		}
	}
	wantErr(t, "heartbeat by a non-holder", s.HeartbeatSupernet(ctx, st.ID, "w2", time.Minute), store.ErrLeaseLost)
	// Once the heartbeats stop the lease lapses, even before anyone else
	// claims: the old holder can neither save nor extend it.
	if err := s.HeartbeatSupernet(ctx, st.ID, "w1", 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	ck := store.SupernetCheckpoint{Study: st.ID, Step: 1, Weights: []byte("late")}
	wantErr(t, "save after the lease lapsed", s.SaveSupernet(ctx, "w1", ck, time.Minute), store.ErrLeaseLost)
	wantErr(t, "heartbeat after the lease lapsed", s.HeartbeatSupernet(ctx, st.ID, "w1", time.Minute), store.ErrLeaseLost)
	wantErr(t, "release after the lease lapsed", s.ReleaseSupernet(ctx, st.ID, "w1"), store.ErrLeaseLost)
	if got := supernet(t, s, st.ID); got.Step != 0 || got.Weights != nil {
		t.Fatalf("after a save on a lapsed lease: step %d, %d bytes; want nothing written", got.Step, len(got.Weights))
	}
	wantErr(t, "heartbeat with zero lease", s.HeartbeatSupernet(ctx, st.ID, "w1", 0), store.ErrInvalid)
	other := newStudy(t, s, 0)
	wantErr(t, "heartbeat of a supernet never claimed", s.HeartbeatSupernet(ctx, other.ID, "w1", time.Minute), store.ErrLeaseLost)
	wantErr(t, "heartbeat of a missing study", s.HeartbeatSupernet(ctx, other.ID+100, "w1", time.Minute), store.ErrNotFound)
}

// testSupernetSave: a checkpoint round-trips as given; a non-holder's
// save, a step that goes back and bad values are refused with nothing
// written; a Done training is "claimed" by anyone, unchanged.
func testSupernetSave(t *testing.T, s store.Store) {
	ctx := t.Context()
	st := newStudy(t, s, 0)
	ck := store.SupernetCheckpoint{Study: st.ID, Step: 5, Checkpoints: 1, Seconds: 1.25, Meta: []byte(`{"proxy":"p"}`), Weights: []byte{0, 1, 2, 255}}
	wantErr(t, "save before any claim", s.SaveSupernet(ctx, "w1", ck, time.Minute), store.ErrLeaseLost)
	_, err := s.Supernet(ctx, st.ID)
	wantErr(t, "Supernet after a refused first save", err, store.ErrNotFound)
	_, _, err = s.ClaimSupernet(ctx, st.ID+100, "w1", time.Minute)
	wantErr(t, "claim for a missing study", err, store.ErrNotFound)
	missing := ck
	missing.Study = st.ID + 100
	wantErr(t, "save for a missing study", s.SaveSupernet(ctx, "w1", missing, time.Minute), store.ErrNotFound)

	before := time.Now().Add(-time.Minute)
	claimSupernet(t, s, st.ID, "w1", time.Minute)
	if err := s.SaveSupernet(ctx, "w1", ck, time.Minute); err != nil {
		t.Fatal(err)
	}
	got := supernet(t, s, st.ID)
	if !sameCheckpoint(got, ck) || got.Holder != "w1" || got.Updated.Before(before) {
		t.Fatalf("Supernet = %+v, want %+v held by w1, updated now", got, ck)
	}
	info, err := s.SupernetInfo(ctx, st.ID)
	want := ck
	want.Weights = nil
	if err != nil || !sameCheckpoint(info, want) || info.Holder != "w1" || !info.Updated.Equal(got.Updated) {
		t.Fatalf("SupernetInfo = %+v, %v; want %+v without weights", info, err, want)
	}

	stale := ck
	stale.Step, stale.Checkpoints, stale.Weights = 4, 2, []byte("older")
	wantErr(t, "save of an older step", s.SaveSupernet(ctx, "w1", stale, time.Minute), store.ErrInvalid)
	intruder := ck
	intruder.Step, intruder.Weights = 6, []byte("intruder")
	wantErr(t, "save by a worker that never claimed", s.SaveSupernet(ctx, "w2", intruder, time.Minute), store.ErrLeaseLost)
	for _, bad := range []struct {
		what   string
		worker string
		ck     store.SupernetCheckpoint
		lease  time.Duration
		want   error
	}{
		{"NaN seconds", "w1", store.SupernetCheckpoint{Study: st.ID, Step: 6, Seconds: math.NaN()}, time.Minute, store.ErrInvalidMetric},
		{"infinite seconds", "w1", store.SupernetCheckpoint{Study: st.ID, Step: 6, Seconds: math.Inf(1)}, time.Minute, store.ErrInvalidMetric},
		{"negative step", "w1", store.SupernetCheckpoint{Study: st.ID, Step: -1}, time.Minute, store.ErrInvalid},
		{"negative checkpoints", "w1", store.SupernetCheckpoint{Study: st.ID, Step: 6, Checkpoints: -1}, time.Minute, store.ErrInvalid},
		{"no study", "w1", store.SupernetCheckpoint{Step: 6}, time.Minute, store.ErrInvalid},
		{"no worker", "", store.SupernetCheckpoint{Study: st.ID, Step: 6}, time.Minute, store.ErrInvalid},
		{"zero lease", "w1", store.SupernetCheckpoint{Study: st.ID, Step: 6}, 0, store.ErrInvalid},
	} {
		wantErr(t, "save with "+bad.what, s.SaveSupernet(ctx, bad.worker, bad.ck, bad.lease), bad.want)
	}
	_, _, err = s.ClaimSupernet(ctx, st.ID, "", time.Minute)
	wantErr(t, "claim without a worker", err, store.ErrInvalid)
	if got := supernet(t, s, st.ID); !sameCheckpoint(got, ck) {
		t.Fatalf("after refused saves: %+v, want %+v", got, ck)
	}

	// The same step again is a save (a checkpoint retried); counters are
	// the caller's, stored as given.
	again := ck
	again.Checkpoints, again.Seconds, again.Meta, again.Weights = 7, 0, nil, nil
	if err := s.SaveSupernet(ctx, "w1", again, time.Minute); err != nil {
		t.Fatalf("save at the same step: %v", err)
	}
	if got := supernet(t, s, st.ID); !sameCheckpoint(got, again) {
		t.Fatalf("after a save at the same step: %+v, want %+v", got, again)
	}

	done := ck
	done.Step, done.Checkpoints, done.Seconds, done.Done = 100, 8, 30, true
	if err := s.SaveSupernet(ctx, "w1", done, time.Minute); err != nil {
		t.Fatal(err)
	}
	got, ok := claimSupernet(t, s, st.ID, "w2", time.Minute)
	if !ok || !sameCheckpoint(got, done) || got.Holder != "w1" {
		t.Fatalf("claim of a done training by w2 = %+v, %v; want claimed, done, with its weights, holder still w1", got, ok)
	}
	wantErr(t, "save by w2 after its claim of a done training", s.SaveSupernet(ctx, "w2", intruder, time.Minute), store.ErrLeaseLost)
	// Once w1 lets it go, a claim of the done training makes w2 its
	// holder, which may then save (a resumed process's scoring figures).
	if err := s.ReleaseSupernet(ctx, st.ID, "w1"); err != nil {
		t.Fatal(err)
	}
	got, ok = claimSupernet(t, s, st.ID, "w2", time.Minute)
	if !ok || !got.Done || got.Holder != "w2" {
		t.Fatalf("claim of a released done training by w2 = %+v, %v; want claimed, done, held by w2", got, ok)
	}
	later := done
	later.Meta = []byte(`{"scored":1}`)
	if err := s.SaveSupernet(ctx, "w2", later, time.Minute); err != nil {
		t.Fatalf("save by the new holder of a done training: %v", err)
	}

	other := newStudy(t, s, 0)
	_, err = s.Supernet(ctx, other.ID)
	wantErr(t, "supernet of another study", err, store.ErrNotFound)
}

// testSupernetBigWeights: a checkpoint of several megabytes round-trips
// byte for byte, and a later one replaces it.
func testSupernetBigWeights(t *testing.T, s store.Store) {
	ctx := t.Context()
	st := newStudy(t, s, 0)
	claimSupernet(t, s, st.ID, "w1", time.Minute)
	for i, size := range []int{8 << 20, 5<<20 + 3} {
		ck := store.SupernetCheckpoint{Study: st.ID, Step: 100 * (i + 1), Checkpoints: i + 1, Seconds: float64(i), Weights: weights(size, uint64(i))}
		if err := s.SaveSupernet(ctx, "w1", ck, time.Minute); err != nil {
			t.Fatalf("save %d bytes: %v", size, err)
		}
		if got := supernet(t, s, st.ID); !sameCheckpoint(got, ck) {
			t.Fatalf("Supernet after saving %d bytes: %d bytes back, equal %v", size, len(got.Weights), bytes.Equal(got.Weights, ck.Weights))
		}
		if got, ok := claimSupernet(t, s, st.ID, "w1", time.Minute); !ok || !bytes.Equal(got.Weights, ck.Weights) {
			t.Fatalf("the holder's claim after saving %d bytes: %d bytes back, %v", size, len(got.Weights), ok)
		}
		if info, err := s.SupernetInfo(ctx, st.ID); err != nil || info.Weights != nil || info.Step != ck.Step {
			t.Fatalf("SupernetInfo = step %d, %d bytes, %v; want step %d, no weights", info.Step, len(info.Weights), err, ck.Step)
		}
	}
}

// testSupernetRelease: a released claim, or one dropped by RecoverTrials
// on resume, is free at once; the checkpoint stays.
func testSupernetRelease(t *testing.T, s store.Store) {
	ctx := t.Context()
	st := newStudy(t, s, 0)
	claimSupernet(t, s, st.ID, "w1", time.Minute)
	ck := store.SupernetCheckpoint{Study: st.ID, Step: 3, Checkpoints: 1, Weights: []byte("w")}
	if err := s.SaveSupernet(ctx, "w1", ck, time.Minute); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "release by a non-holder", s.ReleaseSupernet(ctx, st.ID, "w2"), store.ErrLeaseLost)
	if err := s.ReleaseSupernet(ctx, st.ID, "w1"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "release twice", s.ReleaseSupernet(ctx, st.ID, "w1"), store.ErrLeaseLost)
	wantErr(t, "save after release", s.SaveSupernet(ctx, "w1", ck, time.Minute), store.ErrLeaseLost)
	if got, ok := claimSupernet(t, s, st.ID, "w2", time.Minute); !ok || got.Holder != "w2" || !sameCheckpoint(got, ck) {
		t.Fatalf("claim after release = %+v, %v; want w2 at once, with the checkpoint", got, ok)
	}
	// Resume: the only process recovers the study, whatever the lease.
	if _, err := s.RecoverTrials(ctx, st.ID); err != nil {
		t.Fatal(err)
	}
	if got, ok := claimSupernet(t, s, st.ID, "w3", time.Minute); !ok || got.Holder != "w3" || !sameCheckpoint(got, ck) {
		t.Fatalf("claim after RecoverTrials = %+v, %v; want w3 at once, with the checkpoint", got, ok)
	}
	wantErr(t, "save by the holder before RecoverTrials", s.SaveSupernet(ctx, "w2", ck, time.Minute), store.ErrLeaseLost)
}

// testSupernetConcurrentClaims: workers racing for a free supernet; one
// wins.
func testSupernetConcurrentClaims(t *testing.T, s store.Store) {
	st := newStudy(t, s, 0)
	const workers = 8
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []string
		errs    []error
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			worker := fmt.Sprintf("w%d", w)
			ck, ok, err := s.ClaimSupernet(t.Context(), st.ID, worker, time.Minute)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			}
			if ok {
				winners = append(winners, worker)
				if ck.Holder != worker {
					errs = append(errs, fmt.Errorf("%s claimed, holder %q", worker, ck.Holder))
				}
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 || len(winners) != 1 {
		t.Fatalf("%d workers claiming at once: winners %v, errors %v; want one winner, no error", workers, winners, errs)
	}
	if got := supernet(t, s, st.ID); got.Holder != winners[0] {
		t.Fatalf("holder %q, want the winner %q", got.Holder, winners[0])
	}
}

// screened returns n candidates numbered from first.
func screened(first, n int) []store.Screened {
	out := make([]store.Screened, n)
	for i := range out {
		k := first + i
		out[i] = store.Screened{
			Number:  k,
			Key:     fmt.Sprintf("c%05d", k),
			Choices: json.RawMessage(fmt.Sprintf(`{"k": %d}`, k)),
			Blocks:  []string{"r1_k3_s11_e1_i32_o16_se0.25", fmt.Sprintf("r%d_k5_s22_e6_i16_o24_se0.25", k%4+1)},
			Params:  int64(1000 + k),
			FLOPs:   int64(1 << 40 * (k + 1)),
			Score:   float64(k%97) / 97,
			Reward:  float64(k%89) / 89,
			Step:    k / 10,
		}
	}
	return out
}

func sameScreened(got, want store.Screened) bool {
	var a, b any
	json.Unmarshal(got.Choices, &a)
	json.Unmarshal(want.Choices, &b)
	if want.Choices == nil {
		b = nil
	}
	return got.Number == want.Number && got.Key == want.Key && fmt.Sprint(a) == fmt.Sprint(b) &&
		fmt.Sprint(got.Blocks) == fmt.Sprint(want.Blocks) && len(got.Blocks) == len(want.Blocks) && got.Blocks != nil &&
		got.Params == want.Params && got.FLOPs == want.FLOPs && got.Score == want.Score && got.Reward == want.Reward &&
		got.Step == want.Step && got.Promoted == want.Promoted
}

// checkScreened reads the study's screened candidates and compares them
// with want.
func checkScreened(t *testing.T, s store.Store, study int64, want []store.Screened) {
	t.Helper()
	got, err := s.Screened(t.Context(), study)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("Screened: %d candidates, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Study != study || !sameScreened(got[i], want[i]) {
			t.Fatalf("screened %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if n, err := s.CountScreened(t.Context(), study); err != nil || n != len(want) {
		t.Fatalf("CountScreened = %d, %v; want %d", n, err, len(want))
	}
}

// testScreened: screened candidates round-trip apart from the trials;
// repeated numbers and bad scores are refused with nothing written;
// PromoteScreened flags exactly the numbers given, all or nothing.
func testScreened(t *testing.T, s store.Store) {
	ctx := t.Context()
	st := newStudy(t, s, 0)
	checkScreened(t, s, st.ID, nil)
	want := screened(0, 3)
	want[1].Choices, want[1].Blocks = nil, nil
	want[2].Promoted = true
	want[2].Study = st.ID
	if err := s.AddScreened(ctx, st.ID, want); err != nil {
		t.Fatal(err)
	}
	want[1].Blocks = []string{}
	checkScreened(t, s, st.ID, want)
	if trials, err := s.Trials(ctx, st.ID); err != nil || len(trials) != 0 {
		t.Fatalf("Trials after AddScreened: %d, %v; want none", len(trials), err)
	}
	if c, err := s.CountTrials(ctx, st.ID); err != nil || c.Total() != 0 {
		t.Fatalf("CountTrials after AddScreened: %+v, %v; want none", c, err)
	}
	// A screened candidate planned at rung 0 is a trial numbered 0 of its
	// own.
	tr := plan(t, s, st.ID, []store.Plan{{Key: want[0].Key, Choices: want[0].Choices, Blocks: want[0].Blocks}})
	if tr[0].Number != 0 || tr[0].Rung != 0 {
		t.Fatalf("the promoted candidate's trial = %+v, want number 0 at rung 0", tr[0])
	}

	for _, bad := range []struct {
		what  string
		batch []store.Screened
		want  error
	}{
		{"a number already recorded", append(screened(3, 2), screened(1, 1)...), store.ErrDuplicateScreened},
		{"a number twice", append(screened(3, 2), screened(4, 1)...), store.ErrDuplicateScreened},
		{"a NaN score", append(screened(3, 1), store.Screened{Number: 4, Key: "k", Score: math.NaN()}), store.ErrInvalidMetric},
		{"an infinite reward", []store.Screened{{Number: 3, Key: "k", Reward: math.Inf(-1)}}, store.ErrInvalidMetric},
		{"an empty key", []store.Screened{{Number: 3}}, store.ErrInvalid},
		{"a negative number", []store.Screened{{Number: -1, Key: "k"}}, store.ErrInvalid},
		{"a negative step", []store.Screened{{Number: 3, Key: "k", Step: -1}}, store.ErrInvalid},
		{"bad choices", []store.Screened{{Number: 3, Key: "k", Choices: json.RawMessage(`{"a":`)}}, store.ErrInvalid},
		{"another study's candidate", []store.Screened{{Study: st.ID + 1, Number: 3, Key: "k"}}, store.ErrInvalid},
	} {
		wantErr(t, "AddScreened with "+bad.what, s.AddScreened(ctx, st.ID, bad.batch), bad.want)
	}
	checkScreened(t, s, st.ID, want)
	wantErr(t, "AddScreened to a missing study", s.AddScreened(ctx, st.ID+100, screened(0, 1)), store.ErrNotFound)

	if err := s.PromoteScreened(ctx, st.ID, []int{0, 0}); err != nil {
		t.Fatal(err)
	}
	want[0].Promoted = true
	checkScreened(t, s, st.ID, want)
	wantErr(t, "PromoteScreened of a number not recorded", s.PromoteScreened(ctx, st.ID, []int{1, 99}), store.ErrNotFound)
	checkScreened(t, s, st.ID, want)
	wantErr(t, "PromoteScreened in a missing study", s.PromoteScreened(ctx, st.ID+100, []int{0}), store.ErrNotFound)

	// Another study's numbers are its own.
	other := newStudy(t, s, 0)
	if err := s.AddScreened(ctx, other.ID, screened(0, 2)); err != nil {
		t.Fatal(err)
	}
	if err := s.PromoteScreened(ctx, other.ID, []int{1}); err != nil {
		t.Fatal(err)
	}
	checkScreened(t, s, st.ID, want)
	ow := screened(0, 2)
	ow[1].Promoted = true
	checkScreened(t, s, other.ID, ow)
}

// testScreenedMany: batches larger than one statement's share are
// written, refused and promoted whole.
func testScreenedMany(t *testing.T, s store.Store) {
	ctx := t.Context()
	st := newStudy(t, s, 0)
	want := screened(0, 1200)
	if err := s.AddScreened(ctx, st.ID, want); err != nil {
		t.Fatal(err)
	}
	// A repeated number late in a batch refuses the batch's earlier rows.
	batch := append(screened(1200, 1100), screened(1100, 1)...)
	wantErr(t, "a batch whose last number is recorded", s.AddScreened(ctx, st.ID, batch), store.ErrDuplicateScreened)
	checkScreened(t, s, st.ID, want)
	// Promotion spans the chunks, and a missing number late refuses all.
	var top []int
	for k := 1; k < 1200; k += 2 {
		top = append(top, k)
	}
	wantErr(t, "PromoteScreened with a missing number last", s.PromoteScreened(ctx, st.ID, append(top, 5000)), store.ErrNotFound)
	checkScreened(t, s, st.ID, want)
	if err := s.PromoteScreened(ctx, st.ID, top); err != nil {
		t.Fatal(err)
	}
	for _, k := range top {
		want[k].Promoted = true
	}
	checkScreened(t, s, st.ID, want)
}
