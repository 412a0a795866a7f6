package trainer

import (
	"context"
	"testing"

	"github.com/effnas/effnas/space"
)

// proxyArch is the canonical proxy: B0 at width 0.5, 32x32, 1 channel, 10 classes.
func proxyArch(t testing.TB) space.Arch {
	a := space.B0().Scale(0.5, 1, 32)
	a.InChannels, a.Classes = 1, 10
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	return a
}

func BenchmarkTrainStep(b *testing.B) {
	arch := proxyArch(b)
	for _, threads := range []int{1, 2} {
		b.Run(map[int]string{1: "threads1", 2: "threads2"}[threads], func(b *testing.B) {
			r, err := BenchTrain(context.Background(), arch, 64, b.N, threads, 1)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(r.ImagesPerSecond, "img/s")
			b.ReportMetric(r.GFLOPs, "GFLOP/s")
		})
	}
}
