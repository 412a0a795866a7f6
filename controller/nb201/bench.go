package nb201

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"

	"golang.org/x/sync/errgroup"

	"github.com/effnas/effnas/controller"
)

// Config is one benchmark: Runs independent searches of Samples proposals.
type Config struct {
	Dataset    Dataset           `json:"dataset"`
	Controller string            `json:"controller"`
	Samples    int               `json:"samples"` // proposals per run; default 100
	Runs       int               `json:"runs"`    // independent runs; default 100
	Seed       uint64            `json:"seed"`    // run r is seeded with Seed+r; default 0
	Workers    int               `json:"workers"` // runs in parallel; default GOMAXPROCS
	Params     controller.Config `json:"params"`  // the controller's settings
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	c.Samples = cmp.Or(c.Samples, 100)
	c.Runs = cmp.Or(c.Runs, 100)
	c.Workers = cmp.Or(c.Workers, runtime.GOMAXPROCS(0))
	c.Params = c.Params.WithDefaults()
	return c
}

// Validate reports every setting that is out of range.
func (c Config) Validate() error {
	var errs []error
	if c.Dataset < 0 || int(c.Dataset) >= len(DatasetNames) {
		errs = append(errs, fmt.Errorf("dataset %d is unknown: valid datasets are 0..%d", c.Dataset, len(DatasetNames)-1))
	}
	if c.Samples < 1 || c.Samples > Cells {
		errs = append(errs, fmt.Errorf("samples is %d; it must be between 1 and %d (the cells in the space)", c.Samples, Cells))
	}
	if c.Runs < 1 {
		errs = append(errs, fmt.Errorf("runs is %d; it must be at least 1", c.Runs))
	}
	if c.Workers < 1 {
		errs = append(errs, fmt.Errorf("workers is %d; it must be at least 1", c.Workers))
	}
	if err := c.Params.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Run is the outcome of one search: the cell with the best validation
// accuracy among those proposed.
type Run struct {
	Seed  uint64  `json:"seed"`
	Ops   []int   `json:"ops"`
	Valid float64 `json:"valid"`
	Test  float64 `json:"test"`
}

// Result summarises a benchmark. Standard deviations are over runs
// (population formula, as numpy's default in the benchmark's papers).
type Result struct {
	Controller   string  `json:"controller"`
	Dataset      string  `json:"dataset"`
	Samples      int     `json:"samples"`
	Runs         int     `json:"runs"`
	Seed         uint64  `json:"seed"`
	MeanTest     float64 `json:"mean_test"`
	StdTest      float64 `json:"std_test"`
	MeanValid    float64 `json:"mean_valid"`
	StdValid     float64 `json:"std_valid"`
	BestPossible float64 `json:"best_possible"` // best test accuracy of any cell

	Params controller.Config `json:"params"` // the controller's settings, defaults filled
	PerRun []Run             `json:"-"`
}

// Search runs one search of samples proposals on d, one proposal at a time,
// and returns the cell with the best validation accuracy (the earliest on
// ties). The controller sees only validation accuracies, as fractions.
func Search(ctx context.Context, t *Table, d Dataset, ctl controller.Controller, samples int) (Run, error) {
	history := make([]controller.Observation, 0, samples)
	best := -1
	for i := range samples {
		if err := ctx.Err(); err != nil {
			return Run{}, err
		}
		props, err := ctl.Propose(history, nil, 1)
		if err != nil {
			return Run{}, fmt.Errorf("proposal %d: %w", i, err)
		}
		if len(props) == 0 {
			break // the space is exhausted
		}
		c, err := t.Lookup(props[0])
		if err != nil {
			return Run{}, fmt.Errorf("proposal %d: %w", i, err)
		}
		history = append(history, controller.Observation{ID: int64(i), Choices: props[0], Reward: c.Valid[d] / 100})
		if best < 0 || history[i].Reward > history[best].Reward {
			best = i
		}
	}
	if best < 0 {
		return Run{}, errors.New("the controller proposed nothing")
	}
	c, _ := t.Lookup(history[best].Choices)
	return Run{Ops: history[best].Choices, Valid: c.Valid[d], Test: c.Test[d]}, nil
}

// Bench runs cfg.Runs independent searches and summarises them.
func Bench(ctx context.Context, t *Table, cfg Config) (Result, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	if _, err := controller.New(cfg.Controller, Dims(), cfg.Params, cfg.Seed); err != nil {
		return Result{}, err
	}
	runs := make([]Run, cfg.Runs)
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(cfg.Workers)
	for r := range runs {
		g.Go(func() error {
			seed := cfg.Seed + uint64(r)
			ctl, err := controller.New(cfg.Controller, Dims(), cfg.Params, seed)
			if err != nil {
				return err
			}
			run, err := Search(ctx, t, cfg.Dataset, ctl, cfg.Samples)
			if err != nil {
				return fmt.Errorf("run %d (seed %d): %w", r, seed, err)
			}
			run.Seed = seed
			runs[r] = run
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return Result{}, err
	}
	res := Result{
		Controller:   cfg.Controller,
		Dataset:      cfg.Dataset.String(),
		Samples:      cfg.Samples,
		Runs:         cfg.Runs,
		Seed:         cfg.Seed,
		BestPossible: t.Best(cfg.Dataset),
		Params:       cfg.Params,
		PerRun:       runs,
	}
	tests := make([]float64, len(runs))
	valids := make([]float64, len(runs))
	for i, r := range runs {
		tests[i], valids[i] = r.Test, r.Valid
	}
	res.MeanTest, res.StdTest = meanStd(tests)
	res.MeanValid, res.StdValid = meanStd(valids)
	return res, nil
}

func meanStd(x []float64) (mean, std float64) {
	for _, v := range x {
		mean += v
	}
	mean /= float64(len(x))
	for _, v := range x {
		std += (v - mean) * (v - mean)
	}
	return mean, math.Sqrt(std / float64(len(x)))
}
