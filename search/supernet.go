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
	for st := 0; st*dimsPerStage < len(c); st++ {
		base := st * dimsPerStage
		if r.Float64() < p {
			c[base+dimFilters] = len(dims[base+dimFilters].Options) - 1 // filters ascend
		}
		if r.Float64() < p {
			c[base+dimLayers] = len(dims[base+dimLayers].Options) - 1 // layers ascend
		}
		if r.Float64() < p {
			mixed = append(mixed, st)
		}
	}
	if len(mixed) == 0 {
		return []space.Candidate{c}
	}
	// One member per kind of block: for each mixed stage, its ops by
	// kind (an MBConv keeps the sampled expansion when the sample is one,
	// else the largest).
	kinds := map[int][][]int{} // stage -> kind -> op indices
	out := []space.Candidate{c}
	most := 1
	for _, st := range mixed {
		byKind := opsByKind(sp, c, st)
		kinds[st] = byKind
		most = max(most, len(byKind))
	}
	for k := 1; k < most; k++ {
		m := slices.Clone(c)
		out = append(out, m)
	}
	for _, st := range mixed {
		base := st * dimsPerStage
		own := c[base+dimOp]
		// The sample's own kind first, in member 0.
		var order []int
		for _, ops := range kinds[st] {
			op := ops[len(ops)-1] // the largest expansion
			if slices.Contains(ops, own) {
				op = own
				order = append([]int{op}, order...)
				continue
			}
			order = append(order, op)
		}
		for k := range out {
			out[k][base+dimOp] = order[k%len(order)]
		}
	}
	return out
}

// Dimension offsets within a stage of a candidate (space.Dims's order).
const (
	dimOp        = 0
	dimFilters   = 4
	dimLayers    = 5
	dimsPerStage = 6
)

// opsByKind groups stage st's op options by the kind of weights they
// use (space's ops ascend in expansion within a kind).
func opsByKind(sp *space.Space, c space.Candidate, st int) [][]int {
	base := st * dimsPerStage
	var kinds []string
	var ops [][]int
	m := slices.Clone(c)
	for o := range sp.Dims()[base+dimOp].Options {
		m[base+dimOp] = o
		a, err := sp.Decode(m)
		if err != nil {
			continue
		}
		k := trainer.BlockKind(a.Blocks[st])
		i := slices.Index(kinds, k)
		if i < 0 {
			kinds = append(kinds, k)
			ops = append(ops, nil)
			i = len(kinds) - 1
		}
		ops[i] = append(ops[i], o)
	}
	for _, o := range ops {
		slices.SortFunc(o, func(a, b int) int {
			m[base+dimOp] = a
			x, _ := sp.Decode(m)
			m[base+dimOp] = b
			y, _ := sp.Decode(m)
			return x.Blocks[st].Expand - y.Blocks[st].Expand
		})
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
			a := p.Arch(full)
			a.InChannels, a.Classes, a.DropConnect = b.InChannels, b.Classes, 0
			archs = append(archs, a)
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
