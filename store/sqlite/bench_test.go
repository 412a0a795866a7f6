package sqlite_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/store/sqlite"
	"github.com/effnas/effnas/store/storetest"
)

// BenchmarkClaimFinish is the store's overhead per trial: one claim and
// one compare-and-set finish, each an fsynced transaction.
func BenchmarkClaimFinish(b *testing.B) {
	s, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "bench.db"), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	storetest.BenchClaimFinish(b, s)
}

// BenchmarkOpenResume10k opens a database holding a study of 10,000
// trials left by a crashed sweep (6,000 complete, 100 running, 50
// interrupted, the rest pending) and does what a resume does: find the
// study, recover its trials, load them all and the controller state.
func BenchmarkOpenResume10k(b *testing.B) {
	ctx := b.Context()
	dir := b.TempDir()
	golden := filepath.Join(dir, "golden.db")
	s, err := sqlite.Open(ctx, golden, sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	st, err := s.CreateStudy(ctx, store.Study{Kind: store.KindSearch}, nil)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.PlanTrials(ctx, st.ID, storetest.BenchPlans(10_000), make([]byte, 64<<10)); err != nil {
		b.Fatal(err)
	}
	claimed, err := s.ClaimTrials(ctx, st.ID, store.Claim{Worker: "w", Limit: 6150, Lease: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	for i, tr := range claimed {
		switch {
		case i < 6000:
			err = s.FinishTrial(ctx, tr.Lease(), store.Result{Accuracy: 0.5, Reward: 0.4, Seconds: 60})
		case i < 6050:
			err = s.InterruptTrial(ctx, tr.Lease(), "SIGINT")
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	s.Close()
	data, err := os.ReadFile(golden)
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, "resume.db")
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		if err := os.WriteFile(path, data, 0o644); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		s, err := sqlite.Open(ctx, path, sqlite.Options{})
		if err != nil {
			b.Fatal(err)
		}
		st, err := s.LatestStudy(ctx, store.KindSearch)
		if err != nil {
			b.Fatal(err)
		}
		rec, err := s.RecoverTrials(ctx, st.ID)
		if err != nil || rec.Requeued != 150 {
			b.Fatal(rec, err)
		}
		trials, err := s.Trials(ctx, st.ID)
		if err != nil || len(trials) != 10_000 {
			b.Fatal(len(trials), err)
		}
		if _, err := s.LoadControllerState(ctx, st.ID); err != nil {
			b.Fatal(err)
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
