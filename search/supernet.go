package search

import (
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"

	"github.com/effnas/effnas/space"
	"github.com/effnas/effnas/trainer"
	"github.com/effnas/effnas/trainer/dataset"
)

// SupernetBound returns the largest network of sp at proxy p's width and
// resolution, for data's channels and classes: the supernet's size.
func SupernetBound(sp *space.Space, p Proxy, data *dataset.Data) space.Arch {
	b := p.Arch(sp.Bound())
	b.InChannels, b.Classes = data.Channels, data.Classes
	b.DropConnect = 0
	return b
}

// NewSupernet builds the supernet of sp at proxy p's width and resolution,
// to train on data (loaded at p's resolution) under cfg with seed (cfg's
// recipe is p.Train's where cfg.Train is zero).
func NewSupernet(sp *space.Space, p Proxy, data *dataset.Data, cfg trainer.SupernetConfig, seed uint64) (*trainer.Supernet, error) {
	if cfg.Train == (trainer.Config{}) {
		cfg.Train = p.Train
	}
	cfg.Train.Seed = seed
	return trainer.NewSupernet(SupernetBound(sp, p, data), data, cfg)
}

// SupernetMember returns candidate c of sp as the supernet trains and
// scores it: its proxy, for data's channels and classes.
func SupernetMember(sp *space.Space, p Proxy, data *dataset.Data, c space.Candidate) (space.Arch, error) {
	full, err := sp.Decode(c)
	if err != nil {
		return space.Arch{}, err
	}
	a := p.Arch(full)
	a.InChannels, a.Classes = data.Channels, data.Classes
	a.DropConnect = 0
	return a, nil
}

// SupernetSample returns the member of sp trained at step i of a supernet
// seeded seed: drawn uniformly, from a source that depends only on seed
// and i.
func SupernetSample(sp *space.Space, seed uint64, i int) space.Candidate {
	h := fnv.New64a()
	fmt.Fprintf(h, "supernet/%d/%d", seed, i)
	return sp.Sample(rand.New(rand.NewPCG(seed, h.Sum64())))
}

// TrainSupernet trains sn up to its configured steps, one uniformly
// sampled member of sp per step (the sample of step i depends only on seed
// and i, so a resumed training samples what an uninterrupted one would).
// after, when not nil, is called after
// every step with the number of steps done; an error from it stops the
// training.
func TrainSupernet(ctx context.Context, sn *trainer.Supernet, sp *space.Space, p Proxy, seed uint64, after func(steps int) error) error {
	b := sn.Bound()
	for i := sn.Steps(); i < sn.Config().Steps; i++ {
		full, err := sp.Decode(SupernetSample(sp, seed, i))
		if err != nil {
			return err
		}
		a := p.Arch(full)
		a.InChannels, a.Classes, a.DropConnect = b.InChannels, b.Classes, 0
		if _, err := sn.Step(ctx, a); err != nil {
			return fmt.Errorf("supernet step %d of %d: %w", i+1, sn.Config().Steps, err)
		}
		if after != nil {
			if err := after(i + 1); err != nil {
				return err
			}
		}
	}
	return nil
}
