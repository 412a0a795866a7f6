package main

import (
	"flag"
	"fmt"
	"math"
	"runtime"
	"strconv"
	"strings"

	"github.com/effnas/effnas/search"
	"github.com/effnas/effnas/trainer"
)

// proxyFlags are the flags every command that trains proxies shares
// (search, grid).
type proxyFlags struct {
	dataset   string
	trainSize int
	valSize   int
	testSize  int
	epochs    int
	batch     int
	lr        float64
	optimizer string
	width     float64
	res       int
	workers   int
	threads   int
	seed      uint64
	dataSeed  optSeed // unset: --seed
	ema       float64
	smoothing float64
	clip      float64
	rungs     int
	eta       float64
	topSeeds  int
	finalists int // the most finalists; 0 none
	maxMemory string
}

// register adds the flags to fs; a non-nil halving adds successive
// halving's, with its values as their defaults (search's and the grid's
// differ).
func (p *proxyFlags) register(fs *flag.FlagSet, halving *search.Halving) {
	p.rungs, p.eta, p.topSeeds = 1, search.DefaultEta, 1
	fs.StringVar(&p.dataset, "dataset", search.DefaultDataset, "training data: mnist (built in) or a path (IDX, CIFAR binary, image folder)")
	fs.IntVar(&p.trainSize, "train-size", search.DefaultTrainSize, "training images per proxy at the top rung (the rungs below train on fewer)")
	fs.IntVar(&p.valSize, "val-size", search.DefaultValSize, "validation images (carved from the training files; the search signal)")
	fs.IntVar(&p.testSize, "test-size", search.DefaultTestSize, "test images (reported, never searched on)")
	fs.IntVar(&p.epochs, "epochs", search.DefaultEpochs, "training epochs per proxy at the top rung (the rungs below cut epochs first)")
	fs.IntVar(&p.batch, "batch", 64, "images per training step")
	fs.Float64Var(&p.lr, "lr", 0, "peak learning rate (0: the optimizer's default)")
	fs.StringVar(&p.optimizer, "optimizer", trainer.DefaultOptimizer, "adam (AdamW), sgd (Nesterov momentum) or rmsprop")
	fs.Float64Var(&p.ema, "ema", 0, "evaluate a moving average of the weights with this decay, e.g. 0.99 (0: the last weights)")
	fs.Float64Var(&p.smoothing, "label-smoothing", 0, "label smoothing of the training loss (0: none)")
	fs.Float64Var(&p.clip, "grad-clip", 0, "bound on the gradient's global L2 norm (0: none)")
	fs.Float64Var(&p.width, "proxy-width", search.DefaultProxyWidth, "width multiplier of the proxy network")
	fs.IntVar(&p.res, "proxy-res", search.DefaultProxyRes, "input resolution of the proxy network")
	fs.IntVar(&p.workers, "workers", runtime.NumCPU(), "proxies trained at once (one per core is fastest)")
	fs.IntVar(&p.threads, "threads", 0, "kernel goroutines per proxy (0: cores / workers)")
	p.seed = 1
	fs.Var((*seedValue)(&p.seed), "seed", "seed of every random choice; stored with the study")
	fs.Var(&p.dataSeed, "data-seed", "seed of the data split alone (which images validate and test), to repeat a study with other training seeds on the same images (default: --seed)")
	fs.StringVar(&p.maxMemory, "max-memory", "", "most memory one training may take (4G, 512M); larger candidates fail without training (default: a share of this machine's memory, cgroup and ulimit, divided by --workers)")
	if halving == nil {
		return
	}
	fs.IntVar(&p.rungs, "rungs", halving.Rungs, "successive halving's fidelities: candidates start at the lowest and the best climb (1: train every candidate once at --train-size x --epochs)")
	fs.Float64Var(&p.eta, "eta", halving.Eta, "the best 1/eta of each rung climb to the next, which trains on eta times the images; the best 1/eta of the top rung are the finalists")
	fs.IntVar(&p.topSeeds, "top-seeds", halving.TopSeeds, "seeds each finalist is trained under at the top rung; the result is ranked by their mean")
	fs.IntVar(&p.finalists, "max-finalists", halving.MaxFinalists, "the most finalists (the best 1/eta of the top rung, at least 3), 0 for no bound")
}

// check validates the flags that need more than their type.
func (p *proxyFlags) check() error {
	if p.workers < 1 || p.workers > 256 {
		return usagef("--workers %d: must be 1 to 256", p.workers)
	}
	if p.threads < 0 || p.threads > 256 {
		return usagef("--threads %d: must be 0 (cores / workers) to 256", p.threads)
	}
	if p.trainSize < 1 && p.trainSize != -1 {
		return usagef("--train-size %d: must be a positive number of images, or -1 for all", p.trainSize)
	}
	if p.valSize < 1 && p.valSize != -1 {
		return usagef("--val-size %d: must be a positive number of images, or -1 for all that remain", p.valSize)
	}
	if p.testSize < 1 && p.testSize != -1 {
		return usagef("--test-size %d: must be a positive number of images, or -1 for all", p.testSize)
	}
	if p.epochs < 1 {
		return usagef("--epochs %d: must be at least 1", p.epochs)
	}
	if p.batch < 1 || p.batch > 4096 {
		return usagef("--batch %d: must be 1 to 4096", p.batch)
	}
	if math.IsNaN(p.width) || p.width <= 0 || p.width > 4 {
		return usagef("--proxy-width %v: must be a number in (0, 4], e.g. 0.5", p.width)
	}
	if p.res < 8 || p.res > 1024 {
		return usagef("--proxy-res %d: must be 8 to 1024 pixels, e.g. 32", p.res)
	}
	if math.IsNaN(p.lr) || p.lr < 0 || p.lr > 10 {
		return usagef("--lr %v: must be 0 (default) or a positive rate up to 10", p.lr)
	}
	if p.dataset == "" {
		return usagef("--dataset is empty: want mnist or the path of a dataset")
	}
	if math.IsNaN(p.ema) || p.ema < 0 || p.ema >= 1 {
		return usagef("--ema %v: must be 0 (none) or a decay in (0, 1), e.g. 0.99", p.ema)
	}
	if math.IsNaN(p.smoothing) || p.smoothing < 0 || p.smoothing >= 1 {
		return usagef("--label-smoothing %v: must be in [0, 1), e.g. 0.1", p.smoothing)
	}
	if math.IsNaN(p.clip) || math.IsInf(p.clip, 0) || p.clip < 0 {
		return usagef("--grad-clip %v: must be 0 (none) or a positive norm, e.g. 1", p.clip)
	}
	if p.rungs < 1 || p.rungs > 8 {
		return usagef("--rungs %d: must be 1 (one fidelity) to 8", p.rungs)
	}
	if math.IsNaN(p.eta) || p.eta < 2 || p.eta > 100 {
		return usagef("--eta %v: must be 2 to 100; the best 1/eta of each rung climb, e.g. 3", p.eta)
	}
	if p.topSeeds < 1 || p.topSeeds > 100 {
		return usagef("--top-seeds %d: must be 1 to 100 seeds per finalist", p.topSeeds)
	}
	if p.finalists != 0 && (p.finalists < search.DefaultFinalists || p.finalists > 1000) {
		return usagef("--max-finalists %d: must be 0 (no bound) or %d to 1000", p.finalists, search.DefaultFinalists)
	}
	if p.rungs > 1 && p.trainSize < 0 {
		return usagef("--train-size -1 (all images) works only with --rungs 1: the lower rungs train on a fraction of a known number of images")
	}
	if _, err := p.memory(); err != nil {
		return err
	}
	return nil
}

// memory returns --max-memory in bytes, or the machine's default share.
func (p *proxyFlags) memory() (int64, error) {
	if p.maxMemory == "" {
		return search.MemoryBudget(p.workers), nil
	}
	n, err := search.ParseBytes(p.maxMemory)
	if err != nil || n < 1<<20 {
		return 0, usagef("--max-memory %q: want an amount of memory per training of at least 1M, such as 4G or 512M", p.maxMemory)
	}
	return n, nil
}

func (p *proxyFlags) proxy() search.Proxy {
	px := search.Proxy{
		Dataset: p.dataset, TrainSize: p.trainSize, ValSize: p.valSize, TestSize: p.testSize,
		Width: p.width, Res: p.res,
	}
	px.Train.Epochs = p.epochs
	px.Train.Batch = p.batch
	px.Train.LR = p.lr
	px.Train.Optimizer = p.optimizer
	px.Train.Seed = p.seed
	if p.dataSeed.set {
		s := p.dataSeed.v
		px.DataSeed = &s
	}
	px.Train.EMA = p.ema
	px.Train.LabelSmoothing = p.smoothing
	px.Train.GradClip = p.clip
	px.Halving = search.Halving{Rungs: p.rungs, Eta: p.eta, TopSeeds: p.topSeeds, MaxFinalists: p.finalists}
	px.MaxMemory, _ = p.memory()
	return px
}

// parseCount reads a count of multiply-adds: 400000000, 4e8, 400M, 0.4G, 400k.
func parseCount(s string) (float64, error) {
	t := strings.TrimSpace(s)
	mult := 1.0
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'k', 'K':
			mult, t = 1e3, t[:n-1]
		case 'm', 'M':
			mult, t = 1e6, t[:n-1]
		case 'g', 'G', 'b', 'B':
			mult, t = 1e9, t[:n-1]
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return 0, fmt.Errorf("%q is not a count of multiply-adds; want a number such as 400M, 0.4G or 4e8", s)
	}
	return v * mult, nil
}

// options returns the runner options the flags ask for.
func (p *proxyFlags) options() search.Options {
	mem, _ := p.memory()
	return search.Options{Workers: p.workers, Threads: p.threads, MaxMemory: mem}
}

// optSeed is a seed flag that knows whether it was given.
type optSeed struct {
	v   uint64
	set bool
}

func (o *optSeed) String() string {
	if o == nil || !o.set {
		return ""
	}
	return strconv.FormatUint(o.v, 10)
}

func (o *optSeed) Set(s string) error {
	v, err := parseSeed(s)
	if err != nil {
		return err
	}
	o.v, o.set = v, true
	return nil
}

// seedValue is a seed flag with a default.
type seedValue uint64

func (v *seedValue) String() string {
	if v == nil {
		return "0"
	}
	return strconv.FormatUint(uint64(*v), 10)
}

func (v *seedValue) Set(s string) error {
	u, err := parseSeed(s)
	*v = seedValue(u)
	return err
}

// parseSeed reads a seed, saying what one is when s is not.
func parseSeed(s string) (uint64, error) {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("want a seed, a whole number from 0 to %d, e.g. 1", uint64(math.MaxUint64))
	}
	return v, nil
}
