package controller

import (
	"cmp"
	"errors"
	"fmt"
)

// Defaults of Config. The evolution and REINFORCE values were tuned for the
// best mean validation accuracy on NAS-Bench-201 CIFAR-100 (100 proposals,
// seeds 1000-1299, then 1000-1999 for the finalists) and checked on CIFAR-10
// and ImageNet16-120 with seeds 0-99 and 5000-5999; see controller/nb201.
const (
	DefaultMaxRetries     = 100
	DefaultEnumerateLimit = 1 << 20

	DefaultPopulation = 25
	DefaultSample     = 15

	DefaultLearningRate  = 0.5
	DefaultBaselineDecay = 0.5
	DefaultEntropy       = 0.1
)

// Config holds every controller's settings; a controller reads only its own
// part. Zero fields take the defaults.
type Config struct {
	// MaxRetries is how many candidates a controller draws before it gives
	// up on its own strategy and picks a uniformly random unseen candidate.
	// Default 100.
	MaxRetries int `json:"max_retries"`
	// EnumerateLimit is the largest space that is enumerated to find the
	// unseen candidates once random draws keep hitting seen ones. Default 2^20.
	EnumerateLimit int `json:"enumerate_limit"`

	Evolution EvolutionConfig `json:"evolution"`
	Reinforce ReinforceConfig `json:"reinforce"`
}

// EvolutionConfig configures regularized (aging) evolution.
type EvolutionConfig struct {
	// Population is the number of most recent completed trials that form
	// the population; the first Population proposals are random. Default 25.
	Population int `json:"population"`
	// Sample is the tournament size: members drawn without replacement
	// from the population, the best of which is mutated. Default 15.
	Sample int `json:"sample"`
}

// ReinforceConfig configures REINFORCE with an independent softmax per
// dimension and a moving-average baseline.
type ReinforceConfig struct {
	// LearningRate is the step size on the logits per observation; the
	// advantage is normalised by a moving standard deviation of the rewards,
	// so it does not depend on the reward's scale. Default 0.5.
	LearningRate float64 `json:"learning_rate"`
	// BaselineDecay is the decay of the moving averages of the reward and
	// its variance, in (0, 1). Default 0.5.
	BaselineDecay float64 `json:"baseline_decay"`
	// Entropy is the weight of the entropy bonus, relative to the learning
	// rate; at least 0 (zero takes the default). Default 0.1.
	Entropy float64 `json:"entropy"`
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	c.MaxRetries = cmp.Or(c.MaxRetries, DefaultMaxRetries)
	c.EnumerateLimit = cmp.Or(c.EnumerateLimit, DefaultEnumerateLimit)
	c.Evolution.Population = cmp.Or(c.Evolution.Population, DefaultPopulation)
	c.Evolution.Sample = cmp.Or(c.Evolution.Sample, DefaultSample)
	c.Reinforce.LearningRate = cmp.Or(c.Reinforce.LearningRate, DefaultLearningRate)
	c.Reinforce.BaselineDecay = cmp.Or(c.Reinforce.BaselineDecay, DefaultBaselineDecay)
	c.Reinforce.Entropy = cmp.Or(c.Reinforce.Entropy, DefaultEntropy)
	return c
}

// Validate reports every setting that is out of range.
func (c Config) Validate() error {
	var errs []error
	if c.MaxRetries < 1 {
		errs = append(errs, fmt.Errorf("max retries is %d; it must be at least 1", c.MaxRetries))
	}
	if c.EnumerateLimit < 1 {
		errs = append(errs, fmt.Errorf("enumerate limit is %d; it must be at least 1", c.EnumerateLimit))
	}
	if c.Evolution.Population < 1 {
		errs = append(errs, fmt.Errorf("evolution population is %d; it must be at least 1", c.Evolution.Population))
	}
	if c.Evolution.Sample < 1 || c.Evolution.Sample > c.Evolution.Population {
		errs = append(errs, fmt.Errorf("evolution sample is %d; it must be between 1 and the population (%d)", c.Evolution.Sample, c.Evolution.Population))
	}
	if !(c.Reinforce.LearningRate > 0) {
		errs = append(errs, fmt.Errorf("reinforce learning rate is %g; it must be positive", c.Reinforce.LearningRate))
	}
	if !(c.Reinforce.BaselineDecay > 0 && c.Reinforce.BaselineDecay < 1) {
		errs = append(errs, fmt.Errorf("reinforce baseline decay is %g; it must be in (0, 1)", c.Reinforce.BaselineDecay))
	}
	if !(c.Reinforce.Entropy >= 0) {
		errs = append(errs, fmt.Errorf("reinforce entropy weight is %g; it must be at least 0", c.Reinforce.Entropy))
	}
	return errors.Join(errs...)
}
