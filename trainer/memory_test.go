package trainer

import (
	"fmt"
	"math/rand/v2"
	goruntime "runtime"
	"testing"

	"github.com/effnas/effnas/space"
)

// TestEstimateMemory: the estimate is within 25% of what building and
// training a network really allocates, for B0 at three sizes and for
// random members of the search space (regular convolutions, no skips).
func TestEstimateMemory(t *testing.T) {
	archs := map[string]space.Arch{
		"b0 w0.25 16px batch 16": space.B0().Scale(0.25, 1, 16),
		"b0 w0.5 32px batch 16":  space.B0().Scale(0.5, 1, 32),
		"b0 w1 48px batch 16":    space.B0().Scale(1, 1, 48),
	}
	sp := space.DefaultSpace()
	r := rand.New(rand.NewPCG(3, 3))
	for i := range 2 {
		full, err := sp.Decode(sp.Sample(r))
		if err != nil {
			t.Fatal(err)
		}
		archs[fmt.Sprintf("member %d w0.5 24px batch 16", i)] = full.Scale(0.5, 1, 24)
	}
	for name, a := range archs {
		a.InChannels, a.Classes = 1, 10
		var before, after goruntime.MemStats
		goruntime.GC()
		goruntime.ReadMemStats(&before)
		if _, err := BenchTrain(t.Context(), a, 16, 1, 1, 1); err != nil {
			t.Fatal(err)
		}
		goruntime.ReadMemStats(&after)
		got := int64(after.TotalAlloc - before.TotalAlloc)
		est := EstimateMemory(a, 16)
		ratio := float64(est) / float64(got)
		t.Logf("%s: estimate %.1f MiB, allocated %.1f MiB (%.2f)", name, float64(est)/(1<<20), float64(got)/(1<<20), ratio)
		if ratio < 0.75 || ratio > 1.25 {
			t.Errorf("%s: estimate %d bytes is %.2f times the %d allocated; want within 25%%", name, est, ratio, got)
		}
	}
}
