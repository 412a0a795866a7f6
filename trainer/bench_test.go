package trainer

import (
	"context"
	"fmt"
	"testing"

	"github.com/effnas/effnas/space"
)

// proxyArch is the canonical proxy: B0 at width 0.5, 32x32, 1 channel, 10 classes.
func proxyArch(t testing.TB) space.Arch {
	return b0Proxy(t, 0.5, 32, 1)
}

// b0Proxy is B0 at the given width and resolution with ch input channels
// and 10 classes.
func b0Proxy(t testing.TB, width float64, res, ch int) space.Arch {
	a := space.B0().Scale(width, 1, res)
	a.InChannels, a.Classes = ch, 10
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	return a
}

func BenchmarkTrainStep(b *testing.B) {
	for _, p := range []struct {
		name    string
		width   float64
		res, ch int
	}{
		{"w0.5_32x32x1", 0.5, 32, 1},
		{"w1.0_32x32x3", 1, 32, 3},
		{"w1.0_64x64x1", 1, 64, 1},
	} {
		arch := b0Proxy(b, p.width, p.res, p.ch)
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/threads%d", p.name, threads), func(b *testing.B) {
				r, err := BenchTrain(context.Background(), arch, 64, b.N, threads, 1)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(r.ImagesPerSecond, "img/s")
				b.ReportMetric(r.GFLOPs, "GFLOP/s")
			})
		}
	}
}
