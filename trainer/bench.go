package trainer

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/effnas/effnas/space"
	"github.com/effnas/effnas/trainer/dataset"
	"github.com/effnas/effnas/trainer/internal/kern"
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
	// PeakGFLOPs is this machine's multiply-add throughput on Threads
	// cores as a microbenchmark measures it just before the steps
	// (kern.PeakGFLOPs, PeakISA instructions); PeakFraction is
	// GFLOPs / PeakGFLOPs.
	PeakGFLOPs   float64 `json:"peak_gflops"`
	PeakISA      string  `json:"peak_isa"`
	PeakFraction float64 `json:"peak_fraction"`
	// Profile is where the step time goes, by kind of work (with
	// BenchConfig.Profile only).
	Profile []ProfileEntry `json:"profile,omitempty"`
}

// BenchConfig says how to time training steps.
type BenchConfig struct {
	Batch   int    // images per step
	Steps   int    // timed steps, after two warm-up steps
	Threads int    // goroutines the kernels may use
	Seed    uint64 // of the weights and the random data
	Profile bool   // time every kind of work in the step too (BenchResult.Profile)
	// Supernet, when set, is the bound of a supernet: the steps train arch
	// as a path of it (Supernet.Step: its weights gathered from the shared
	// tensors and scattered back) instead of as a plain network. Not with
	// Profile.
	Supernet *space.Arch
}

// BenchTrain times steps training steps of arch (after two warm-up steps)
// on random data with batches of batch images and threads goroutines.
func BenchTrain(ctx context.Context, arch space.Arch, batch, steps, threads int, seed uint64) (BenchResult, error) {
	return Bench(ctx, arch, BenchConfig{Batch: batch, Steps: steps, Threads: threads, Seed: seed})
}

// Bench times training steps of arch on random data as cfg says.
func Bench(ctx context.Context, arch space.Arch, cfg BenchConfig) (BenchResult, error) {
	if err := arch.Validate(); err != nil {
		return BenchResult{}, fmt.Errorf("architecture: %w", err)
	}
	batch, steps, threads, seed := cfg.Batch, cfg.Steps, cfg.Threads, cfg.Seed
	if batch < 1 || steps < 1 || threads < 1 {
		return BenchResult{}, fmt.Errorf("batch (%d), steps (%d) and threads (%d) must all be at least 1", batch, steps, threads)
	}
	if cfg.Supernet != nil {
		return benchSupernet(ctx, arch, cfg)
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
	res := BenchResult{Batch: batch, Steps: steps, Threads: threads, Params: arch.Params(), FLOPs: arch.FLOPs(), BuildSeconds: build.Seconds()}
	res.PeakGFLOPs, res.PeakISA = kern.PeakGFLOPs(threads), kern.PeakISA()
	prof := &profiler{}
	var elapsed time.Duration
	for i := 0; i < steps+2; i++ {
		if err := ctx.Err(); err != nil {
			return BenchResult{}, fmt.Errorf("benchmark stopped: %w", err)
		}
		for j := range idx {
			idx[j] = (i*batch + j) % n
		}
		timed := i >= 2
		if timed && cfg.Profile {
			s.net.rt.prof = prof
		}
		t := time.Now()
		s.net.setBatch(ds, idx)
		if err := s.run(); err != nil {
			return BenchResult{}, err
		}
		to := time.Now()
		opt.step(s.net.params, 0.01)
		if timed {
			elapsed += time.Since(t)
			var p int64
			for _, q := range s.net.params {
				p += int64(len(q.data))
			}
			// Nesterov SGD reads weight, gradient and momentum and writes
			// weight and momentum: 5 floats and 5 multiply-adds a parameter.
			prof.add(kindOptimizer, &to, 10*float64(p), 20*float64(p))
		}
	}
	s.net.rt.prof = nil
	res.StepSeconds = elapsed.Seconds() / float64(steps)
	res.ImagesPerSecond = float64(batch) / res.StepSeconds
	res.GFLOPs = float64(res.FLOPs) * 6 * res.ImagesPerSecond / 1e9
	if res.PeakGFLOPs > 0 {
		res.PeakFraction = res.GFLOPs / res.PeakGFLOPs
	}
	if cfg.Profile {
		res.Profile = prof.entries(steps, elapsed)
	}
	return res, nil
}

// benchSupernet is Bench of arch as a path of the supernet cfg.Supernet,
// with the plain benchmark's optimizer (Nesterov SGD).
func benchSupernet(ctx context.Context, arch space.Arch, cfg BenchConfig) (BenchResult, error) {
	if cfg.Profile {
		return BenchResult{}, fmt.Errorf("a supernet's steps are not profiled; leave out the profile")
	}
	batch, steps := cfg.Batch, cfg.Steps
	r := rand.New(rand.NewPCG(cfg.Seed, 4))
	b := *cfg.Supernet
	n := batch * 2
	mk := func(n int) dataset.Set {
		set := dataset.Set{X: make([]float32, n*b.InChannels*b.Resolution*b.Resolution), Y: make([]int, n), N: n, C: b.InChannels, H: b.Resolution, W: b.Resolution}
		for i := range set.X {
			set.X[i] = float32(r.NormFloat64())
		}
		for i := range set.Y {
			set.Y[i] = r.IntN(b.Classes)
		}
		return set
	}
	data := &dataset.Data{Name: "random", Classes: b.Classes, Channels: b.InChannels, Train: mk(n), Val: mk(batch)}
	t0 := time.Now()
	sn, err := NewSupernet(b, data, SupernetConfig{Train: Config{Batch: batch, Threads: cfg.Threads, Seed: cfg.Seed, Optimizer: "sgd", LR: 0.01, WarmupEpochs: -1}, Steps: steps + 2, Calib: 1})
	if err != nil {
		return BenchResult{}, err
	}
	if err := sn.Fits(arch); err != nil {
		return BenchResult{}, err
	}
	res := BenchResult{Batch: batch, Steps: steps, Threads: cfg.Threads, Params: arch.Params(), FLOPs: arch.FLOPs()}
	res.PeakGFLOPs, res.PeakISA = kern.PeakGFLOPs(cfg.Threads), kern.PeakISA()
	var elapsed time.Duration
	for i := 0; i < steps+2; i++ {
		if i == 1 {
			res.BuildSeconds = time.Since(t0).Seconds() // the supernet and the path's first step
		}
		t := time.Now()
		if _, err := sn.Step(ctx, arch); err != nil {
			return BenchResult{}, err
		}
		if i >= 2 {
			elapsed += time.Since(t)
		}
	}
	res.StepSeconds = elapsed.Seconds() / float64(steps)
	res.ImagesPerSecond = float64(batch) / res.StepSeconds
	res.GFLOPs = float64(res.FLOPs) * 6 * res.ImagesPerSecond / 1e9
	if res.PeakGFLOPs > 0 {
		res.PeakFraction = res.GFLOPs / res.PeakGFLOPs
	}
	return res, nil
}
