package sqlite_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/store/sqlite"
)

func benchPlans(n int) []store.Plan {
	ps := make([]store.Plan, n)
	for i := range ps {
		ps[i] = store.Plan{
			Key:     fmt.Sprintf("k3e6_k5e6_k3e3_%06d", i),
			Choices: []byte(`{"kernel":[3,5,3,5,3,5,3],"expand":[6,6,3,6,6,6,6],"se":[1,1,1,1,1,1,1],"layers":[1,2,2,3,3,4,1]}`),
			Blocks: []string{"r1_k3_s11_e1_i32_o16_se0.25", "r2_k3_s22_e6_i16_o24_se0.25", "r2_k5_s22_e6_i24_o40_se0.25",
				"r3_k3_s22_e6_i40_o80_se0.25", "r3_k5_s11_e6_i80_o112_se0.25", "r4_k5_s22_e6_i112_o192_se0.25", "r1_k3_s11_e6_i192_o320_se0.25"},
			Params: 5_288_548,
			FLOPs:  385_814_752,
		}
	}
	return ps
}

// BenchmarkClaimFinish is the store's overhead per trial: one claim and
// one compare-and-set finish, each an fsynced transaction.
func BenchmarkClaimFinish(b *testing.B) {
	ctx := b.Context()
	s, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "bench.db"), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	st, err := s.CreateStudy(ctx, store.Study{Kind: store.KindSearch})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.PlanTrials(ctx, st.ID, benchPlans(b.N), nil); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		got, err := s.ClaimTrials(ctx, st.ID, "w", 1, time.Minute)
		if err != nil || len(got) != 1 {
			b.Fatal(len(got), err)
		}
		if err := s.FinishTrial(ctx, got[0].Lease(), store.Result{Accuracy: 0.5, Reward: 0.4, Seconds: 1}); err != nil {
			b.Fatal(err)
		}
	}
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
	st, err := s.CreateStudy(ctx, store.Study{Kind: store.KindSearch})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.PlanTrials(ctx, st.ID, benchPlans(10_000), make([]byte, 64<<10)); err != nil {
		b.Fatal(err)
	}
	claimed, err := s.ClaimTrials(ctx, st.ID, "w", 6150, time.Hour)
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
