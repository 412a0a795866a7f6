package search

import (
	"cmp"
	"fmt"
	"math"

	"github.com/effnas/effnas/space"
	"github.com/effnas/effnas/trainer"
	"github.com/effnas/effnas/trainer/dataset"
)

// Defaults of Proxy.
const (
	DefaultDataset    = "mnist"
	DefaultProxyWidth = 0.5
	DefaultProxyRes   = 32
	DefaultTrainSize  = 4000
	DefaultValSize    = 1000
	DefaultTestSize   = 1000
	DefaultEpochs     = 2
)

// Proxy says how a candidate is trained briefly: which data, at what scale,
// with which training settings. Search and grid studies store it in their
// config. Zero fields take the defaults in each comment (WithDefaults).
type Proxy struct {
	Dataset   string         `json:"dataset"`    // "mnist" (built in) or a path; default "mnist"
	TrainSize int            `json:"train_size"` // training images; default 4000
	ValSize   int            `json:"val_size"`   // validation images carved from the training files; default 1000
	TestSize  int            `json:"test_size"`  // test images, for reporting only; default 1000
	Width     float64        `json:"width"`      // width multiplier applied to the full-size candidate; default 0.5
	Res       int            `json:"res"`        // input resolution of the proxy; default 32
	Train     trainer.Config `json:"train"`      // optimizer, epochs (default 2), batch...
}

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
	return nil
}

// data returns the dataset options for one resolution.
func (p Proxy) data(res int) dataset.Options {
	return dataset.Options{TrainSize: p.TrainSize, ValSize: p.ValSize, TestSize: p.TestSize, Resolution: res, Seed: p.Train.Seed}
}

// Arch returns the proxy of a full-size architecture: width scaled by
// p.Width (depth unchanged) at the proxy resolution.
func (p Proxy) Arch(full space.Arch) space.Arch {
	return full.Scale(p.Width, 1, p.Res)
}
