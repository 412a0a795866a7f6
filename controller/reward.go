package controller

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
)

// Defaults of RewardConfig, from MnasNet's soft latency constraint applied
// to multiply-adds as EfficientNet does.
const (
	DefaultTargetFLOPs = 400e6
	DefaultW           = -0.07
)

// ErrOverBudget is returned by Admit for a candidate above MaxFLOPs.
var ErrOverBudget = errors.New("over the FLOPs bound")

// RewardConfig is the multi-objective reward ACC * (FLOPS / Target) ^ W.
type RewardConfig struct {
	// Target is the multiply-adds T the reward aims at. Default 400e6.
	Target float64 `json:"target"`
	// W is the exponent; nil means -0.07, and 0 ranks by accuracy alone.
	W *float64 `json:"w"`
	// MaxFLOPs, when positive, is a hard bound: Admit rejects any candidate
	// with more multiply-adds before it is trained. Default 0 (no bound).
	MaxFLOPs int64 `json:"max_flops"`
}

// WithDefaults returns c with unset fields set to their defaults.
func (c RewardConfig) WithDefaults() RewardConfig {
	c.Target = cmp.Or(c.Target, DefaultTargetFLOPs)
	if c.W == nil {
		w := DefaultW
		c.W = &w
	}
	return c
}

// Validate reports every setting that is out of range.
func (c RewardConfig) Validate() error {
	var errs []error
	if !(c.Target > 0) || math.IsInf(c.Target, 0) {
		errs = append(errs, fmt.Errorf("target FLOPs is %g; it must be a positive number of multiply-adds such as 400e6", c.Target))
	}
	if c.W == nil {
		errs = append(errs, errors.New("reward exponent w is unset; use WithDefaults or give a value such as -0.07"))
	} else if math.IsNaN(*c.W) || math.IsInf(*c.W, 0) || *c.W > 0 {
		errs = append(errs, fmt.Errorf("reward exponent w is %g; it must be a finite number at most 0 such as -0.07 (a positive w would reward more FLOPs)", *c.W))
	}
	if c.MaxFLOPs < 0 {
		errs = append(errs, fmt.Errorf("FLOPs bound is %d; it must be 0 (no bound) or a positive number of multiply-adds", c.MaxFLOPs))
	}
	return errors.Join(errs...)
}

// Reward returns c's reward for a candidate; c must have its defaults.
func (c RewardConfig) Reward(acc float64, flops int64) float64 {
	if c.W == nil {
		panic("controller: RewardConfig.Reward without WithDefaults")
	}
	return Reward(acc, flops, c.Target, *c.W)
}

// Admit returns nil if a candidate with flops multiply-adds may be trained,
// and an error wrapping ErrOverBudget if it exceeds MaxFLOPs.
func (c RewardConfig) Admit(flops int64) error {
	if flops <= 0 {
		return fmt.Errorf("candidate has %d multiply-adds; a network has a positive count", flops)
	}
	if c.MaxFLOPs > 0 && flops > c.MaxFLOPs {
		return fmt.Errorf("candidate has %d multiply-adds, %w of %d", flops, ErrOverBudget, c.MaxFLOPs)
	}
	return nil
}

// Reward is MnasNet's soft-constrained reward acc * (flops/target)^w:
// with w < 0 a candidate above the target is penalised and one below it is
// rewarded, smoothly. flops and target must be positive.
func Reward(acc float64, flops int64, target float64, w float64) float64 {
	if flops <= 0 || !(target > 0) {
		panic(fmt.Sprintf("controller: Reward with flops %d and target %g; both must be positive", flops, target))
	}
	return acc * math.Pow(float64(flops)/target, w)
}

// Point is one candidate on the accuracy-FLOPs plane.
type Point struct {
	Key      string  `json:"key"`
	Accuracy float64 `json:"accuracy"`
	FLOPs    int64   `json:"flops"`
}

// ParetoFront returns the points no other point dominates (at least as
// accurate with at most as many FLOPs, and better in one of the two),
// ordered by FLOPs ascending; points equal in both keep their input order
// and all stay on the front. Points with a NaN accuracy are ignored.
func ParetoFront(points []Point) []Point {
	sorted := make([]Point, 0, len(points))
	for _, p := range points {
		if !math.IsNaN(p.Accuracy) {
			sorted = append(sorted, p)
		}
	}
	// FLOPs ascending, then accuracy descending; the sort is stable.
	slices.SortStableFunc(sorted, func(a, b Point) int {
		return cmp.Or(cmp.Compare(a.FLOPs, b.FLOPs), cmp.Compare(b.Accuracy, a.Accuracy))
	})
	var front []Point
	best := math.Inf(-1) // best accuracy among points with fewer FLOPs
	for i := 0; i < len(sorted); {
		top := sorted[i].Accuracy
		j := i
		for ; j < len(sorted) && sorted[j].FLOPs == sorted[i].FLOPs; j++ {
			if sorted[j].Accuracy == top && top > best {
				front = append(front, sorted[j])
			}
		}
		best = max(best, top)
		i = j
	}
	return front
}
