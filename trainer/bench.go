package trainer

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/effnas/effnas/space"
)

// BenchResult is the timing of training steps on random data.
type BenchResult struct {
	Batch           int     `json:"batch"`
	Steps           int     `json:"steps"`
	Threads         int     `json:"threads"`
	StepSeconds     float64 `json:"step_seconds"`            // mean wall time of one step
	ImagesPerSecond float64 `json:"train_images_per_second"` // batch / StepSeconds
	Params          int64   `json:"params"`
	FLOPs           int64   `json:"flops"`  // multiply-adds per image (forward)
	GFLOPs          float64 `json:"gflops"` // multiply-adds x 2 x 3 per image x images per second / 1e9
	BuildSeconds    float64 `json:"build_seconds"`
}

// BenchTrain times steps training steps of arch (after two warm-up steps)
// on random data with batches of batch images and threads goroutines.
func BenchTrain(ctx context.Context, arch space.Arch, batch, steps, threads int, seed uint64) (BenchResult, error) {
	if err := arch.Validate(); err != nil {
		return BenchResult{}, fmt.Errorf("architecture: %w", err)
	}
	if batch < 1 || steps < 1 || threads < 1 {
		return BenchResult{}, fmt.Errorf("batch (%d), steps (%d) and threads (%d) must all be at least 1", batch, steps, threads)
	}
	t0 := time.Now()
	s, err := newSession(arch, batch, threads, seed, 0)
	if err != nil {
		return BenchResult{}, err
	}
	defer s.close()
	build := time.Since(t0)
	r := rand.New(rand.NewPCG(seed, 4))
	hw := arch.Resolution * arch.Resolution * arch.InChannels
	n := batch * 2
	ds := &dataSet{x: make([]float32, n*hw), y: make([]int, n), n: n}
	for i := range ds.x {
		ds.x[i] = float32(r.NormFloat64())
	}
	for i := range ds.y {
		ds.y[i] = r.IntN(arch.Classes)
	}
	idx := make([]int, batch)
	opt := &optimizer{kind: "sgd", momentum: 0.9}
	var elapsed time.Duration
	for i := 0; i < steps+2; i++ {
		if err := ctx.Err(); err != nil {
			return BenchResult{}, fmt.Errorf("benchmark stopped: %w", err)
		}
		for j := range idx {
			idx[j] = (i*batch + j) % n
		}
		t := time.Now()
		s.net.setBatch(ds, idx)
		if err := s.run(); err != nil {
			return BenchResult{}, err
		}
		opt.step(s.net.params, 0.01)
		if i >= 2 {
			elapsed += time.Since(t)
		}
	}
	res := BenchResult{Batch: batch, Steps: steps, Threads: threads, Params: arch.Params(), FLOPs: arch.FLOPs(), BuildSeconds: build.Seconds()}
	res.StepSeconds = elapsed.Seconds() / float64(steps)
	res.ImagesPerSecond = float64(batch) / res.StepSeconds
	res.GFLOPs = float64(res.FLOPs) * 6 * res.ImagesPerSecond / 1e9
	return res, nil
}
