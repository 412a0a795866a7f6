package kern

import (
	"sync"
	"time"
)

// PeakGFLOPs measures this machine's float32 multiply-add throughput with
// threads goroutines running at once, in GFLOP/s (a multiply-add counts as
// two): a loop of independent fused multiply-adds on the widest vectors the
// CPU has (AVX-512, else AVX2, else scalar Go), the best of three runs of
// about 20 ms. It is the peak against which the trainer's speed is given.
func PeakGFLOPs(threads int) float64 {
	threads = max(threads, 1)
	// Calibrate the iteration count to about 20 ms on one goroutine.
	n := 1 << 16
	for {
		t := time.Now()
		fmaLoop(n)
		if d := time.Since(t); d > 5*time.Millisecond {
			n = int(float64(n) * float64(20*time.Millisecond) / float64(d))
			break
		}
		n *= 4
	}
	best := 0.0
	for range 3 {
		var wg sync.WaitGroup
		t := time.Now()
		for range threads {
			wg.Go(func() { fmaLoop(n) })
		}
		wg.Wait()
		d := time.Since(t).Seconds()
		best = max(best, float64(threads)*float64(n)*fmaLoopFLOPs/d/1e9)
	}
	return best
}

// PeakISA names the instructions PeakGFLOPs measures.
func PeakISA() string { return peakISA }
