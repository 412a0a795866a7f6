package search

import (
	"context"
	"errors"

	"github.com/effnas/effnas/space"
	"github.com/effnas/effnas/trainer"
	"github.com/effnas/effnas/trainer/dataset"
)

// NewSupernet builds the supernet of sp at proxy p's width and resolution,
// to train on data (loaded at p's resolution) under cfg (cfg.Train is
// taken from p.Train when zero) with seed.
func NewSupernet(sp *space.Space, p Proxy, data *dataset.Data, cfg trainer.SupernetConfig, seed uint64) (*trainer.Supernet, error) {
	return nil, errors.New("supernet: not built yet")
}

// TrainSupernet trains sn up to its configured steps, one uniformly
// sampled member of sp per step (the sample of step i depends only on seed
// and i, so a resumed training samples what an uninterrupted one would).
// after, when not nil, is called after every step with the number of steps
// done; an error from it stops the training.
func TrainSupernet(ctx context.Context, sn *trainer.Supernet, sp *space.Space, p Proxy, seed uint64, after func(steps int) error) error {
	return errors.New("supernet: not built yet")
}
