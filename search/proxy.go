package search

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"math"
	"strings"

	"github.com/effnas/effnas/space"
	"github.com/effnas/effnas/trainer"
	"github.com/effnas/effnas/trainer/dataset"
)

// Defaults of Proxy.
const (
	DefaultDataset    = "mnist"
	DefaultProxyWidth = 0.5
	DefaultProxyRes   = 32
	DefaultTrainSize  = 6000
	DefaultValSize    = 1000
	DefaultTestSize   = 1000
	DefaultEpochs     = 2
)

// Proxy says how a candidate is trained briefly: which data, at what scale,
// with which training settings, and at which fidelities (successive
// halving). Search and grid studies store it in their config. Zero fields
// take the defaults in each comment (WithDefaults).
type Proxy struct {
	Dataset   string  `json:"dataset"`    // "mnist" (built in) or a path; default "mnist"
	TrainSize int     `json:"train_size"` // training images at the top rung; default 6000
	ValSize   int     `json:"val_size"`   // validation images carved from the training files; default 1000
	TestSize  int     `json:"test_size"`  // test images, for reporting only; default 1000
	Width     float64 `json:"width"`      // width multiplier applied to the full-size candidate; default 0.5
	Res       int     `json:"res"`        // input resolution of the proxy; default 32
	// Train is the recipe: optimizer, epochs at the top rung (default 2),
	// batch...
	Train trainer.Config `json:"train"`
	// Halving is how many fidelities candidates climb and how many climb.
	Halving Halving `json:"halving"`
	// MaxMemory is the most memory one training may need, in bytes: a
	// candidate estimated to need more is recorded as failed without
	// training. 0 means no bound.
	MaxMemory int64 `json:"max_memory"`
	// DataSeed, when set, draws the data split (which images are the
	// validation and test sets) instead of the study's seed, so that a
	// study can repeat another's measurement with other training seeds on
	// the same images; default none: the study's seed draws both.
	DataSeed *uint64 `json:"data_seed,omitempty"`
	// SeedScheme is how a trial's training seed is derived (TrainSeed);
	// default SeedsIndependent. A study stored without it used
	// SeedsSharedAcrossRungs, and keeps it when resumed.
	SeedScheme int `json:"seed_scheme"`
}

// Seed schemes: how TrainSeed derives a trial's training seed.
const (
	// SeedsSharedAcrossRungs (effnas before seed schemes were stored):
	// the seed depends on the study, the candidate and the seed index,
	// so seed s of a candidate starts from the same weights at every
	// rung, and a proxy benchmark's proxy and reference runs of seed s
	// share them.
	SeedsSharedAcrossRungs = 1
	// SeedsIndependent: the rung is hashed in too, so every (candidate,
	// rung, seed) starts from weights of its own, and no comparison
	// between rungs, or between a proxy and its reference, is flattered
	// by a shared start.
	SeedsIndependent = 2
)

// WithDefaults returns p with zero fields set to their defaults.
func (p Proxy) WithDefaults() Proxy {
	p.Dataset = cmp.Or(p.Dataset, DefaultDataset)
	p.TrainSize = cmp.Or(p.TrainSize, DefaultTrainSize)
	p.ValSize = cmp.Or(p.ValSize, DefaultValSize)
	p.TestSize = cmp.Or(p.TestSize, DefaultTestSize)
	p.Width = cmp.Or(p.Width, DefaultProxyWidth)
	p.Res = cmp.Or(p.Res, DefaultProxyRes)
	p.Train.Epochs = cmp.Or(p.Train.Epochs, DefaultEpochs)
	p.Train = p.Train.WithDefaults()
	p.Halving = p.Halving.WithDefaults()
	p.SeedScheme = cmp.Or(p.SeedScheme, SeedsIndependent)
	if p.DataSeed != nil {
		p.Train.Seed = *p.DataSeed // the split's seed; training seeds come from the study's (TrainSeed)
	}
	return p
}

// Validate reports the first setting that cannot train, in words a user
// understands. Call it after WithDefaults.
func (p Proxy) Validate() error {
	if math.IsNaN(p.Width) || p.Width <= 0 || p.Width > 4 {
		return fmt.Errorf("proxy width %v: must be in (0, 4], e.g. 0.5", p.Width)
	}
	if p.Res < 8 || p.Res > 1024 {
		return fmt.Errorf("proxy resolution %d: must be 8 to 1024 pixels, e.g. 32", p.Res)
	}
	if p.ValSize == 0 || p.ValSize < -1 {
		return fmt.Errorf("validation size %d: must be at least 1 (validation accuracy is the search signal)", p.ValSize)
	}
	if err := p.data(p.Res).Validate(); err != nil {
		return err
	}
	if err := p.Train.Validate(); err != nil {
		return fmt.Errorf("training settings: %w", err)
	}
	if err := p.Halving.Validate(); err != nil {
		return err
	}
	if p.SeedScheme != SeedsSharedAcrossRungs && p.SeedScheme != SeedsIndependent {
		return fmt.Errorf("seed scheme %d: must be %d or %d", p.SeedScheme, SeedsSharedAcrossRungs, SeedsIndependent)
	}
	if p.MaxMemory < 0 {
		return fmt.Errorf("memory bound %d: must be 0 (none) or a number of bytes", p.MaxMemory)
	}
	if p.TrainSize < 0 && p.Halving.Rungs > 1 {
		return fmt.Errorf("training size %d (the whole training set) gives every one of %d rungs the same images; give a number of images, or use one rung", p.TrainSize, p.Halving.Rungs)
	}
	if p.TrainSize > 0 {
		prev := Fidelity{}
		for k := range p.Halving.Rungs {
			f := p.Fidelity(k)
			if f.TrainSize < p.Train.Batch {
				return fmt.Errorf("rung %d of %d trains on %d images, fewer than one batch of %d; raise --train-size or --epochs, or use fewer --rungs or a smaller --eta",
					k, p.Halving.Rungs, f.TrainSize, p.Train.Batch)
			}
			if k > 0 && f.Images() <= prev.Images() {
				return fmt.Errorf("rungs %d and %d both train on %d images x %d epochs: the rungs do not increase; raise --train-size or --epochs, or use fewer --rungs",
					k-1, k, f.TrainSize, f.Epochs)
			}
			prev = f
		}
	}
	return nil
}

// data returns the dataset options for one resolution, at the largest
// training set any trial uses.
func (p Proxy) data(res int) dataset.Options {
	return dataset.Options{TrainSize: p.TrainSize, ValSize: p.ValSize, TestSize: p.TestSize, Resolution: res, Seed: p.Train.Seed}
}

// Arch returns the proxy of a full-size architecture: width scaled by
// p.Width (depth unchanged) at the proxy resolution.
func (p Proxy) Arch(full space.Arch) space.Arch {
	return full.Scale(p.Width, 1, p.Res)
}

// Schedule says in words how candidates climb: "rungs of 1333x1, 4000x1,
// 6000x2 images x epochs (eta 3), finalists (the best third of the top
// rung) under 3 seeds" (search's default); "one rung of 6000x2 images x
// epochs, finalists (the best third (at most 9) of the top rung) under 3
// seeds" (the grid's).
func (p Proxy) Schedule() string {
	h := p.Halving
	parts := make([]string, h.Rungs)
	for k := range h.Rungs {
		f := p.Fidelity(k)
		parts[k] = fmt.Sprintf("%dx%d", f.TrainSize, f.Epochs)
	}
	s := "one rung of " + parts[0] + " images x epochs"
	if h.Rungs > 1 {
		s = fmt.Sprintf("rungs of %s images x epochs (eta %g)", strings.Join(parts, ", "), h.Eta)
	}
	if h.TopSeeds > 1 {
		which := fmt.Sprintf("the best 1/%g", h.Eta)
		if h.Eta == 3 {
			which = "the best third"
		}
		if h.MaxFinalists > 0 {
			which += fmt.Sprintf(" (at most %d)", h.MaxFinalists)
		}
		s += fmt.Sprintf(", finalists (%s of the top rung) under %d seeds", which, h.TopSeeds)
	}
	return s
}

// Fidelity is how much one trial trains.
type Fidelity struct {
	TrainSize int `json:"train_size"` // the first TrainSize images of the study's training set
	Epochs    int `json:"epochs"`
}

// Images is the number of images the trial trains on, counting repeats.
func (f Fidelity) Images() int { return f.TrainSize * f.Epochs }

// Fidelity returns rung k's fidelity (0 the lowest). The top rung trains on
// TrainSize images for Train.Epochs epochs; each rung below trains on
// 1/Eta of the images of the rung above, cutting epochs first (down to
// one) and then images. A trial at any rung uses the first images of the
// study's one training set, so the validation set never changes.
func (p Proxy) Fidelity(rung int) Fidelity {
	top := p.Halving.Rungs - 1
	if rung >= top || p.TrainSize < 0 {
		return Fidelity{TrainSize: p.TrainSize, Epochs: p.Train.Epochs}
	}
	budget := float64(p.TrainSize*p.Train.Epochs) / math.Pow(p.Halving.Eta, float64(top-rung))
	epochs := max(1, int(budget/float64(p.TrainSize)))
	epochs = min(epochs, p.Train.Epochs)
	n := min(p.TrainSize, int(math.Round(budget/float64(epochs))))
	return Fidelity{TrainSize: n, Epochs: epochs}
}

// TrainSeed is the seed of a trial's training (initialisation, batch
// order, dropout): a function of the study's seed, the candidate, its rung
// and the seed index, so that a resumed study trains exactly what an
// uninterrupted one would. Under SeedsIndependent every (candidate, rung,
// seed) has a seed of its own; under SeedsSharedAcrossRungs, the scheme of
// studies stored before it, the rung is left out.
func (p Proxy) TrainSeed(study uint64, key string, rung, seed int) uint64 {
	h := fnv.New64a()
	if p.SeedScheme == SeedsSharedAcrossRungs {
		fmt.Fprintf(h, "%d/%s/%d", study, key, seed)
	} else {
		fmt.Fprintf(h, "%d/%s/r%d/%d", study, key, rung, seed)
	}
	return h.Sum64()
}
