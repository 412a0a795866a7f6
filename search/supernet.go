package search

import (
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"

	"github.com/effnas/effnas/space"
	"github.com/effnas/effnas/trainer"
	"github.com/effnas/effnas/trainer/dataset"
)

// SupernetBound returns the largest network of sp at proxy p's width and
// resolution, for data's channels and classes: the supernet's size.
func SupernetBound(sp *space.Space, p Proxy, data *dataset.Data) space.Arch {
	return supernetArch(p, sp.Bound(), data.Channels, data.Classes)
}

// supernetArch returns full-size network full as a supernet holds it: its
// proxy for channels and classes, without drop-connect.
func supernetArch(p Proxy, full space.Arch, channels, classes int) space.Arch {
	a := p.Arch(full)
	a.InChannels, a.Classes, a.DropConnect = channels, classes, 0
	return a
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
	return supernetArch(p, full, data.Channels, data.Classes), nil
}

// SupernetSample returns the member of sp trained at step i of a supernet
// seeded seed: drawn uniformly, from a source that depends only on seed
// and i.
func SupernetSample(sp *space.Space, seed uint64, i int) space.Candidate {
	h := fnv.New64a()
	fmt.Fprintf(h, "supernet/%d/%d", seed, i)
	return sp.Sample(rand.New(rand.NewPCG(seed, h.Sum64())))
}

// DefaultWarmup is the fraction of a supernet's steps over which TuNAS's
// warm-ups fade out.
const DefaultWarmup = 0.25

// WarmupPaths returns the members trained at step i of total under seed:
// one uniformly sampled member (SupernetSample), changed by TuNAS's
// warm-ups while i is within the first warmup fraction of total steps.
// With probability p, falling linearly from 1 at step 0 to 0 at
// warmup x total, each stage independently takes its most filters
// (filter warm-up), its most layers, and all of its block kinds at once
// (op warm-up: the members returned differ in that stage's block, and the
// supernet trains the mean of their paths). The draws depend only on seed
// and i. warmup <= 0 turns the warm-ups off.
func WarmupPaths(sp *space.Space, seed uint64, i, total int, warmup float64) []space.Candidate {
	c := SupernetSample(sp, seed, i)
	p := 0.0
	if warmup > 0 {
		p = max(0, 1-float64(i)/(warmup*float64(total)))
	}
	if p == 0 {
		return []space.Candidate{c}
	}
	h := fnv.New64a()
	fmt.Fprintf(h, "warmup/%d/%d", seed, i)
	r := rand.New(rand.NewPCG(seed, h.Sum64()))
	dims := sp.Dims()
	var mixed []int // stages whose kinds are averaged
	for st := 0; st*space.DimsPerStage < len(c); st++ {
		base := st * space.DimsPerStage
		if r.Float64() < p {
			c[base+space.DimFilters] = len(dims[base+space.DimFilters].Options) - 1 // filters ascend
		}
		if r.Float64() < p {
			c[base+space.DimLayers] = len(dims[base+space.DimLayers].Options) - 1 // layers ascend
		}
		if r.Float64() < p {
			mixed = append(mixed, st)
		}
	}
	if len(mixed) == 0 {
		return []space.Candidate{c}
	}
	// One member per kind of block: member k takes each mixed stage's
	// k-th kind (the sample's own first), cycling through a stage with
	// fewer kinds.
	out := []space.Candidate{c}
	for _, st := range mixed {
		ops := kindOps(sp, c, st)
		for len(out) < len(ops) {
			out = append(out, slices.Clone(c))
		}
		for k, m := range out {
			m[st*space.DimsPerStage+space.DimOp] = ops[k%len(ops)]
		}
	}
	return out
}

// kindOps returns one op option of stage st per kind of weights the
// stage's ops use: c's own op for its kind, first, and for each other kind
// its op of the largest expansion.
func kindOps(sp *space.Space, c space.Candidate, st int) []int {
	at := st*space.DimsPerStage + space.DimOp
	own := c[at]
	var kinds []string
	var ops, expand []int
	m := slices.Clone(c)
	for o := range sp.Dims()[at].Options {
		m[at] = o
		a, err := sp.Decode(m)
		if err != nil {
			continue
		}
		b := a.Blocks[st]
		k := trainer.BlockKind(b)
		i := slices.Index(kinds, k)
		switch {
		case i < 0:
			kinds, ops, expand = append(kinds, k), append(ops, o), append(expand, b.Expand)
		case ops[i] != own && (o == own || b.Expand > expand[i]):
			ops[i], expand[i] = o, b.Expand
		}
	}
	if i := slices.Index(ops, own); i > 0 {
		ops = append([]int{own}, slices.Delete(ops, i, i+1)...)
	}
	return ops
}

// TrainSupernet trains sn up to its configured steps, on the members
// WarmupPaths gives for each step (the sample of step i depends only on
// seed and i, so a resumed training samples what an uninterrupted one
// would). after, when not nil, is called after every step with the number
// of steps done; an error from it stops the training.
func TrainSupernet(ctx context.Context, sn *trainer.Supernet, sp *space.Space, p Proxy, seed uint64, warmup float64, after func(steps int) error) error {
	b := sn.Bound()
	total := sn.Config().Steps
	for i := sn.Steps(); i < total; i++ {
		var archs []space.Arch
		for _, c := range WarmupPaths(sp, seed, i, total, warmup) {
			full, err := sp.Decode(c)
			if err != nil {
				return err
			}
			archs = append(archs, supernetArch(p, full, b.InChannels, b.Classes))
		}
		if _, err := sn.StepMean(ctx, archs...); err != nil {
			return fmt.Errorf("supernet step %d of %d: %w", i+1, total, err)
		}
		if after != nil {
			if err := after(i + 1); err != nil {
				return err
			}
		}
	}
	return nil
}
