package trainer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/effnas/effnas/space"
	"github.com/effnas/effnas/trainer/dataset"
)

// synthetic returns a small 2-channel dataset at resolution res whose class
// (of 3) is which third of the image is brightest, plus noise.
func synthetic(res, train, val, test int, seed uint64) *dataset.Data {
	r := rand.New(rand.NewPCG(seed, 99))
	mk := func(n int) dataset.Set {
		s := dataset.Set{X: make([]float32, n*2*res*res), Y: make([]int, n), N: n, C: 2, H: res, W: res}
		for i := 0; i < n; i++ {
			y := r.IntN(3)
			s.Y[i] = y
			for c := 0; c < 2; c++ {
				for h := 0; h < res; h++ {
					for w := 0; w < res; w++ {
						v := r.NormFloat64() * 0.5
						if w*3/res == y {
							v += 1
						}
						s.X[((i*2+c)*res+h)*res+w] = float32(v)
					}
				}
			}
		}
		return s
	}
	return &dataset.Data{Name: "synthetic", Format: "test", Classes: 3, Channels: 2, Train: mk(train), Val: mk(val), Test: mk(test)}
}

func tinyConfig() Config { return Config{Epochs: 3, Batch: 16, Seed: 3, Threads: 1} }

func TestTrainLearnsSynthetic(t *testing.T) {
	arch := tinyArch(t)
	arch.Resolution = 12
	data := synthetic(12, 480, 96, 96, 1)
	res, err := Train(t.Context(), arch, data, tinyConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.ValAccuracy < 0.9 || res.TestAccuracy < 0.9 {
		t.Errorf("accuracy val %.3f test %.3f, want >= 0.9 on an easy 3-class problem: %+v", res.ValAccuracy, res.TestAccuracy, res)
	}
	if res.Steps != 3*480/16 || res.Epochs != 3 {
		t.Errorf("steps %d epochs %d, want %d and 3", res.Steps, res.Epochs, 3*480/16)
	}
}

func TestTrainReproducible(t *testing.T) {
	arch := tinyArch(t)
	arch.Resolution = 12
	arch.Dropout, arch.DropConnect = 0.2, 0.2 // the masks must be seeded too
	data := synthetic(12, 160, 48, 48, 2)
	var results []Result
	for _, seed := range []uint64{5, 5, 6} {
		cfg := tinyConfig()
		cfg.Seed = seed
		cfg.Epochs = 2
		res, err := Train(t.Context(), arch, data, cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, res)
	}
	same := func(a, b Result) bool {
		return a.TrainLoss == b.TrainLoss && a.ValLoss == b.ValLoss && a.ValAccuracy == b.ValAccuracy && a.TestLoss == b.TestLoss
	}
	if !same(results[0], results[1]) {
		t.Errorf("same seed, different results:\n%+v\n%+v", results[0], results[1])
	}
	if same(results[0], results[2]) {
		t.Errorf("different seeds, identical results: %+v", results[0])
	}
}

// TestTrainDivergenceIsAnError: a NaN loss, and a finite loss that rises
// above explodeFactor times the first step's, end the training with
// ErrDiverged at the step where they happen; a loss that rises less is
// trained through.
func TestTrainDivergenceIsAnError(t *testing.T) {
	arch := tinyArch(t)
	arch.Resolution = 12
	cases := []struct {
		name      string
		optimizer string
		lr        float64
		nan       bool   // a NaN in the training images
		want      string // in the error; "" for none
	}{
		{"NaN input", "", 0, true, "loss is NaN"},
		// The first losses are 1.09, 1.27, 23.4; without the explosion
		// rule they stay finite, peak above 6,000 and come back below 2
		// by step 20, so only the rule makes this a divergence.
		{"huge sgd learning rate", "sgd", 10, false, "times the first step's"},
		// 1.09, then 199.
		{"huge adam learning rate", "adam", 10, false, "times the first step's"},
		// The loss rises to about 6 times the first step's (6.06 at step
		// 5), then falls: not a divergence.
		{"rise below the factor", "adam", 1, false, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := synthetic(12, 64, 16, 16, 3)
			if c.nan {
				data.Train.X[5] = float32(math.NaN())
			}
			cfg := tinyConfig()
			cfg.Optimizer, cfg.LR, cfg.Epochs = c.optimizer, c.lr, 5
			var losses []float64
			_, err := Train(t.Context(), arch, data, cfg, func(step, total int, loss float64) { losses = append(losses, loss) })
			if c.want == "" {
				if err != nil {
					t.Fatalf("err = %v, want none (losses %.3g)", err, losses)
				}
				if top := slices.Max(losses); top < 3*losses[0] {
					t.Errorf("the loss peaks at %.3g, %.2g times the first step's; the case should rise above 3 times", top, top/losses[0])
				}
				return
			}
			if !errors.Is(err, ErrDiverged) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want ErrDiverged saying %q", err, c.want)
			}
			// It stops at the first step that diverges: the steps before
			// it were reported and stayed within the factor.
			step := fmt.Sprintf("at step %d of ", len(losses)+1)
			if !strings.Contains(err.Error(), step) {
				t.Errorf("err = %v after %d reported steps, want one saying %q", err, len(losses), step)
			}
			for i, l := range losses {
				if !(l <= explodeFactor*losses[0]) {
					t.Errorf("step %d reported loss %.3g, over %g times the first step's %.3g, without an error", i+1, l, explodeFactor, losses[0])
				}
			}
			if c.nan {
				return
			}
			if len(losses) == 0 || strings.Contains(err.Error(), "NaN") || strings.Contains(err.Error(), "Inf") {
				t.Errorf("err = %v, want a finite loss after at least one step", err)
			}
		})
	}
}

func TestTrainCancel(t *testing.T) {
	arch := tinyArch(t)
	arch.Resolution = 12
	data := synthetic(12, 320, 16, 16, 4)
	ctx, cancel := context.WithCancel(t.Context())
	steps := 0
	_, err := Train(ctx, arch, data, tinyConfig(), func(step, total int, loss float64) {
		steps = step
		if step == 3 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if steps != 3 {
		t.Errorf("ran %d steps after cancelling at step 3, want none", steps-3)
	}
}

func TestTrainConcurrent(t *testing.T) {
	arch := tinyArch(t)
	arch.Resolution = 12
	data := synthetic(12, 96, 32, 32, 5)
	cfg := tinyConfig()
	cfg.Epochs = 1
	want, err := Train(t.Context(), arch, data, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	got := make([]Result, 3)
	errs := make([]error, 3)
	for i := range got {
		wg.Go(func() { got[i], errs[i] = Train(t.Context(), arch, data, cfg, nil) })
	}
	wg.Wait()
	for i := range got {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if got[i].TrainLoss != want.TrainLoss || got[i].ValAccuracy != want.ValAccuracy {
			t.Errorf("concurrent training %d: %+v, want the sequential %+v", i, got[i], want)
		}
	}
}

func TestTrainRejectsMismatches(t *testing.T) {
	arch := tinyArch(t)
	arch.Resolution = 12
	data := synthetic(12, 32, 8, 8, 6)
	cases := []struct {
		name string
		edit func(a *space.Arch, d *dataset.Data, c *Config)
		want string
	}{
		{"channels", func(a *space.Arch, d *dataset.Data, c *Config) { a.InChannels = 3 }, "input channels"},
		{"classes", func(a *space.Arch, d *dataset.Data, c *Config) { a.Classes = 10 }, "classes"},
		{"resolution", func(a *space.Arch, d *dataset.Data, c *Config) { a.Resolution = 16 }, "resolution 16"},
		{"label", func(a *space.Arch, d *dataset.Data, c *Config) { d.Train.Y[3] = 7 }, "label 7"},
		{"batch", func(a *space.Arch, d *dataset.Data, c *Config) { c.Batch = 64 }, "fewer than one batch"},
		{"optimizer", func(a *space.Arch, d *dataset.Data, c *Config) { c.Optimizer = "lbfgs" }, "optimizer \"lbfgs\" is unknown"},
		{"lr", func(a *space.Arch, d *dataset.Data, c *Config) { c.LR = math.Inf(1) }, "learning rate"},
		{"invalid arch", func(a *space.Arch, d *dataset.Data, c *Config) { a.Blocks = nil }, "architecture"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, cfg := arch, tinyConfig()
			a.Blocks = append([]space.Block(nil), arch.Blocks...)
			d := *data
			d.Train.Y = append([]int(nil), data.Train.Y...)
			c.edit(&a, &d, &cfg)
			_, err := Train(t.Context(), a, &d, cfg, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one containing %q", err, c.want)
			}
		})
	}
}

func TestConfigDefaultsAndValidate(t *testing.T) {
	c := Config{}.WithDefaults()
	if c.Epochs != DefaultEpochs || c.Batch != DefaultBatch || c.Optimizer != DefaultOptimizer || c.LR != DefaultAdamLR || c.Threads != 1 {
		t.Errorf("defaults = %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
	if c := (Config{Optimizer: "ADAM"}).WithDefaults(); c.Optimizer != "adam" || c.LR != DefaultAdamLR {
		t.Errorf("adam defaults = %+v", c)
	}
	if c := (Config{WeightDecay: -1, WarmupEpochs: -1}).WithDefaults(); c.WeightDecay != 0 || c.WarmupEpochs != 0 {
		t.Errorf("negative means zero: %+v", c)
	}
	bad := Config{Epochs: -1, Batch: 5000, LR: -1, Optimizer: "x", Momentum: 1, LabelSmoothing: 1, Threads: 1000}
	err := bad.Validate()
	for _, want := range []string{"epochs -1", "batch 5000", "learning rate -1", "optimizer \"x\"", "momentum 1", "label smoothing 1", "threads 1000"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate(%+v) = %v, want a sentence about %q", bad, err, want)
		}
	}
}

func TestSchedule(t *testing.T) {
	for _, c := range []struct {
		step, warmup, total int
		want                float64
	}{
		{0, 10, 110, 0.1}, {9, 10, 110, 1}, {10, 10, 110, 1}, {60, 10, 110, 0.5}, {110, 10, 110, 0}, {0, 0, 100, 1},
	} {
		if got := schedule(1, c.step, c.warmup, c.total); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("schedule(step %d, warmup %d, total %d) = %g, want %g", c.step, c.warmup, c.total, got, c.want)
		}
	}
}
