package trainer

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/effnas/effnas/space"
	"github.com/effnas/effnas/trainer/dataset"
	"gorgonia.org/tensor"
)

// Defaults of SupernetConfig.
const (
	DefaultSupernetSteps = 3000
	DefaultScoreCalib    = 4   // K: batches whose batch-norm statistics a candidate is scored with
	DefaultScoreImages   = 500 // V: validation images a candidate is scored on
)

// SupernetConfig says how a supernet trains and scores.
type SupernetConfig struct {
	// Train is the recipe: optimizer, learning rate, batch, warm-up (in
	// epochs of the training set), weight decay, label smoothing, seed and
	// threads. Its Epochs, BNCalibration and EMA are not used: Steps is
	// the budget and Calib the calibration.
	Train Config `json:"train"`
	// Steps is the number of training steps, one sampled path each;
	// default 3000.
	Steps int `json:"steps"`
	// Calib is K, the training batches whose batch statistics a
	// candidate's batch norms are recalibrated over before it is scored;
	// default 4.
	Calib int `json:"calib"`
	// ScoreImages is V, the first validation images every candidate is
	// scored on; default 500 (all of them when there are fewer).
	ScoreImages int `json:"score_images"`
}

// WithDefaults returns c with its zero fields set to their defaults.
func (c SupernetConfig) WithDefaults() SupernetConfig {
	c.Train = c.Train.WithDefaults()
	c.Steps = cmp.Or(c.Steps, DefaultSupernetSteps)
	c.Calib = cmp.Or(c.Calib, DefaultScoreCalib)
	c.ScoreImages = cmp.Or(c.ScoreImages, DefaultScoreImages)
	return c
}

// Validate reports every problem with c (after WithDefaults).
func (c SupernetConfig) Validate() error {
	var errs []error
	if err := c.Train.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Steps < 1 || c.Steps > 10_000_000 {
		errs = append(errs, fmt.Errorf("supernet steps %d is out of range; use 1 to 10000000", c.Steps))
	}
	if c.Calib < 1 || c.Calib > 10_000 {
		errs = append(errs, fmt.Errorf("score calibration of %d batches is out of range; use 1 to 10000", c.Calib))
	}
	if c.ScoreImages < 1 {
		errs = append(errs, fmt.Errorf("score images %d: use at least 1 validation image", c.ScoreImages))
	}
	return errors.Join(errs...)
}

// Supernet is one network holding every member of a search space at the
// proxy's width and resolution, with shared weights (Bender et al. 2020,
// "Can weight sharing outperform random architecture search?"; Guo et al.
// 2020, single-path one-shot):
//   - the kernel of a smaller depthwise or regular convolution is the
//     centre of the largest;
//   - expansion ratios and filter counts are channel prefixes, input
//     channels too;
//   - a stage with fewer layers uses its first layers;
//   - squeeze-excite and the skip are switches (the squeeze-excite weights
//     are the prefix of the largest ratio's);
//   - each block kind (MBConv with expansion, depthwise-separable,
//     regular convolution) keeps its own weights at each layer.
//
// Each Step trains one path: the member it is given, built from the same
// layers as a plain network (trainer.Train's), with its weights gathered
// from the shared tensors and scattered back after the optimizer's
// update, so that a member's weights, optimizer moments and gradients are
// exactly those of a plain network holding the same values (only the
// weights on the path move). The layers of each member are built once and
// kept; the layers of one position share one arena, since a step runs one
// of them. Batch norm uses batch statistics in training; Score
// recalibrates a member's over Calib fixed training batches before it
// evaluates. Drop-connect is off in a supernet; dropout is the members'.
//
// A Supernet is not safe for concurrent use.
type Supernet struct {
	cfg   SupernetConfig
	bound space.Arch
	act   int
	batch int
	rt    *runtime
	fp    uint64 // fingerprint of the bound and config, in checkpoints

	tensors map[string]*sharedTensor
	pending map[string]*sharedTensor // restored from a checkpoint, not yet met

	res     [][]int       // input resolution of each position [stage][layer]
	headRes int           // the head's resolution
	pos     [][]*position // [stage][layer]
	maxSpec map[string][]paramSpec
	stem    *link
	heads   map[int]*link // by input channels
	drop    *link
	dense   *link
	loss    *link
	x       []float32
	xent    *xentLayer
	one     []float32 // the loss's gradient

	opt      *optimizer
	steps    int
	train    *dataSet
	val      *dataSet
	perEpoch int
	warmup   int
	order    []int
	epoch    int // the epoch order holds; -1 for none
	calib    []int
	data     *dataset.Data
}

// sharedTensor is one shared parameter at its largest shape, with the
// optimizer's two moments.
type sharedTensor struct {
	name    string
	spec    paramSpec // its initialisation
	w, m, v []float32
}

// copyRun copies n floats between a shared tensor (at src) and a path's
// parameter (at dst).
type copyRun struct{ src, dst, n int }

// pathParam is one parameter of a path: a contiguous buffer the layer
// reads, and where it lies in its shared tensor.
type pathParam struct {
	p    *param
	t    *sharedTensor
	runs []copyRun
}

// link is one layer of a path with its buffers.
type link struct {
	l      layer
	params []pathParam
	out    []float32 // the layer's output (one float for the loss)
	dy     []float32 // the gradient of the output
	ins    [][]float32
	din    [][]float32
	bns    []*bnLayer
}

// position is one layer slot of a stage: the layers of every member that
// has a layer there, and the memory they share: one arena per slot, the
// layers of a mean path (StepMean) taking one slot each.
type position struct {
	arenas []*arena
	size   int // of an arena, in floats
	links  map[linkKey]*link
	mean   []float32   // a mean path's output here
	dx     [][]float32 // per slot past the first: a mean path's input gradient
}

// linkKey is a built layer of a position: its block and slot.
type linkKey struct {
	blockKey
	slot int
}

// arena returns the position's arena of slot, allocating it when first
// needed.
func (p *position) arena(slot int) *arena {
	for len(p.arenas) <= slot {
		p.arenas = append(p.arenas, &arena{buf: make([]float32, p.size)})
	}
	return p.arenas[slot]
}

// group is one step of a path: a layer, or at a position where a mean
// path runs several, their mean.
type group struct {
	links   []*link
	pos     *position // nil for a single layer
	out, dy []float32
}

// blockKey is what a block layer is built from.
type blockKey struct {
	blk space.Block
	in  int
}

// maxLinksPerPosition bounds how many built layers a position keeps; past
// it they are dropped and built again when met (their memory is the
// arena's; what each keeps on its own is small).
const maxLinksPerPosition = 64

// NewSupernet builds the supernet whose every stage may hold up to
// bound's repeats, output filters, kernel, expansion and squeeze-excite
// ratio (bound is the proxy-scaled maximum of the space, one block per
// stage, as space.Space.Bound scaled by the proxy; its stem, head,
// resolution, channels, classes, activation and dropout are every
// member's). data is what it trains on (its training set) and scores on
// (its validation set).
func NewSupernet(bound space.Arch, data *dataset.Data, cfg SupernetConfig) (*Supernet, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("supernet config: %w", err)
	}
	if data == nil {
		return nil, errors.New("supernet: no dataset")
	}
	if err := checkArch(bound, data); err != nil {
		return nil, fmt.Errorf("supernet bound: %w", err)
	}
	if data.Train.N < cfg.Train.Batch*max(cfg.Calib, 1) {
		return nil, fmt.Errorf("supernet: training set has %d images, fewer than %d calibration batches of %d; load more images or lower --score-calib",
			data.Train.N, cfg.Calib, cfg.Train.Batch)
	}
	if data.Val.N < 1 {
		return nil, errors.New("supernet: the dataset has no validation images to score candidates on")
	}
	s := &Supernet{cfg: cfg, bound: bound.Clone(), batch: cfg.Train.Batch, data: data,
		tensors: map[string]*sharedTensor{}, pending: map[string]*sharedTensor{}, maxSpec: map[string][]paramSpec{},
		heads: map[int]*link{}, epoch: -1}
	switch bound.Activation {
	case "", "swish":
		s.act = actSwish
	case "relu":
		s.act = actReLU
	default:
		return nil, fmt.Errorf("activation %q is not supported; use swish or relu", bound.Activation)
	}
	s.rt = &runtime{threads: cfg.Train.Threads, training: true}
	s.fp = s.fingerprint()
	n, res := s.batch, bound.Resolution
	s.x = make([]float32, n*res*res*bound.InChannels)
	s.xent = &xentLayer{n: n, k: bound.Classes, smoothing: cfg.Train.LabelSmoothing, labels: make([]int, n)}
	s.one = []float32{1}
	s.train = &dataSet{x: data.Train.X, y: data.Train.Y, n: data.Train.N}
	s.val = &dataSet{x: data.Val.X, y: data.Val.Y, n: min(data.Val.N, cfg.ScoreImages)}
	s.perEpoch = s.train.n / n
	s.warmup = int(math.Round(cfg.Train.WarmupEpochs * float64(s.perEpoch)))
	s.opt = &optimizer{kind: cfg.Train.Optimizer, momentum: cfg.Train.Momentum, decay: cfg.Train.WeightDecay, clip: cfg.Train.GradClip}
	s.order = make([]int, s.train.n)
	calib := rand.New(rand.NewPCG(cfg.Train.Seed, 7)).Perm(s.train.n)
	s.calib = calib[:cfg.Calib*n]

	// The stem.
	stem := newStem(s.rt, n, res, bound.InChannels, bound.Stem, s.act)
	specs := []paramSpec{
		{name: "stem.w", shape: tensor.Shape{9 * bound.InChannels, bound.Stem}, decay: true, bound: 1 / math.Sqrt(float64(9*bound.InChannels))},
		{name: "stem.bn.gamma", shape: tensor.Shape{bound.Stem}, value: 1},
		{name: "stem.bn.beta", shape: tensor.Shape{bound.Stem}},
	}
	var err error
	if s.stem, err = s.newLink(nil, stem, specs, specs, 0, 0, []*bnLayer{stem.bn}); err != nil {
		return nil, err
	}
	stem.alloc(nil)
	h := stem.cv.ho

	// Every position: its resolution and an arena for its largest member.
	in := bound.Stem
	for i, b := range bound.Blocks {
		var res []int
		var ps []*position
		for j := 0; j < b.Repeats; j++ {
			stride, cin := b.Stride, in
			if j > 0 {
				stride, cin = 1, b.Out
			}
			res = append(res, h)
			p := &position{links: map[linkKey]*link{}}
			need := 0
			for _, kind := range s.kinds(b) {
				c := &arena{count: true}
				l := s.maxBlock(i, j, kind, h, cin, stride)
				l.alloc(c)
				ho := l.ho
				c.take(n * ho * ho * l.cout) // out
				c.take(n * ho * ho * l.cout) // dy
				for _, sp := range l.specs {
					for range 4 {
						c.take(sp.shape.TotalSize())
					}
				}
				need = max(need, c.off)
			}
			p.size = need
			p.arena(0)
			ps = append(ps, p)
			h, _ = samePad(h, b.Kernel, stride)
		}
		s.res = append(s.res, res)
		s.pos = append(s.pos, ps)
		in = b.Out
	}

	// The classifier and the loss; heads are built per input width.
	s.headRes = h
	if bound.Dropout > 0 {
		d := &dropoutLayer{shape: tensor.Shape{n, bound.Head}, rate: bound.Dropout}
		if s.drop, err = s.newLink(nil, d, nil, nil, 0, 0, nil); err != nil {
			return nil, err
		}
	}
	dense := &denseLayer{n: n, cin: bound.Head, cout: bound.Classes}
	specs = []paramSpec{
		{name: "classifier.w", shape: tensor.Shape{bound.Head, bound.Classes}, decay: true, bound: 1 / math.Sqrt(float64(bound.Head))},
		{name: "classifier.b", shape: tensor.Shape{bound.Classes}},
	}
	if s.dense, err = s.newLink(nil, dense, specs, specs, 0, 0, nil); err != nil {
		return nil, err
	}
	if s.loss, err = s.newLink(nil, s.xent, nil, nil, 0, 0, nil); err != nil {
		return nil, err
	}
	s.rt.grow()
	return s, nil
}

// kinds lists the block kinds a stage bounded by b can hold.
func (s *Supernet) kinds(b space.Block) []string {
	ks := []string{"conv", "sepconv"}
	if b.Expand > 1 {
		ks = append(ks, "mbconv")
	}
	return ks
}

// BlockKind is the kind of weights a block uses in a supernet: "conv",
// "sepconv" or "mbconv" (every expansion of an MBConv shares one kind's
// weights).
func BlockKind(b space.Block) string {
	switch {
	case b.Op == space.OpConv:
		return "conv"
	case b.Expand == 1:
		return "sepconv"
	}
	return "mbconv"
}

// maxBlock builds (on a runtime of its own, so that its scratch needs do
// not count) the largest layer of kind at position (i, j): its
// parameters' shapes are the shared tensors'.
func (s *Supernet) maxBlock(i, j int, kind string, h, in, stride int) *blockLayer {
	b := s.bound.Blocks[i]
	blk := space.Block{Op: space.OpMBConv, Expand: b.Expand, Kernel: b.Kernel, SE: b.SE, Out: b.Out, Skip: true, Stride: stride, Repeats: 1}
	switch kind {
	case "conv":
		blk.Op, blk.Expand = space.OpConv, 1
	case "sepconv":
		blk.Op, blk.Expand = space.OpSepConv, 1
	}
	rt := &runtime{threads: s.rt.threads}
	return newBlock(rt, s.batch, h, blk, in, stride, 1, s.act, 1, fmt.Sprintf("blocks.%d.%d.%s", i, j, kind))
}

// shared returns the shared tensor of spec (the largest shape), creating
// it with the initialisation its spec gives, from a source seeded by the
// supernet's seed and the tensor's name, so that tensors met in any order
// start alike (and a resumed supernet creates what an uninterrupted one
// did).
func (s *Supernet) shared(spec paramSpec) *sharedTensor {
	if t := s.tensors[spec.name]; t != nil {
		return t
	}
	size := spec.shape.TotalSize()
	if t := s.pending[spec.name]; t != nil && len(t.w) == size {
		delete(s.pending, spec.name)
		t.spec = spec
		s.tensors[spec.name] = t
		return t
	}
	t := &sharedTensor{name: spec.name, spec: spec, w: make([]float32, size), m: make([]float32, size), v: make([]float32, size)}
	s.init(t)
	s.tensors[spec.name] = t
	return t
}

// init sets t to its initial values, drawn from a source seeded by the
// supernet's seed and the tensor's name, with zero moments.
func (s *Supernet) init(t *sharedTensor) {
	h := fnv.New64a()
	io.WriteString(h, t.name)
	rng := rand.New(rand.NewPCG(s.cfg.Train.Seed, h.Sum64()))
	for i := range t.w {
		if t.spec.bound > 0 {
			t.w[i] = float32((2*rng.Float64() - 1) * t.spec.bound)
		} else {
			t.w[i] = t.spec.value
		}
	}
	clear(t.m)
	clear(t.v)
}

// newLink wraps layer l whose parameters are specs (their largest shapes
// maxSpecs, kernel k of largest kmax for the convolutions' taps), taking
// its buffers from a (the heap when nil).
func (s *Supernet) newLink(a *arena, l layer, specs, maxSpecs []paramSpec, k, kmax int, bns []*bnLayer) (*link, error) {
	lk := &link{l: l, bns: bns, ins: make([][]float32, 1+len(specs)), din: make([][]float32, 1+len(specs))}
	if sh := l.outShape(); sh.IsScalar() {
		lk.out = make([]float32, 1)
	} else {
		lk.out = a.take(sh.TotalSize())
		lk.dy = a.take(sh.TotalSize())
	}
	for i, sp := range specs {
		j := slices.IndexFunc(maxSpecs, func(m paramSpec) bool { return m.name == sp.name })
		if j < 0 {
			return nil, fmt.Errorf("supernet: parameter %s has no shared tensor", sp.name)
		}
		ms := maxSpecs[j]
		runs, err := gatherRuns(sp, ms, k, kmax)
		if err != nil {
			return nil, err
		}
		size := sp.shape.TotalSize()
		p := &param{name: sp.name, data: a.take(size), grad: a.take(size), decay: sp.decay}
		p.state[0], p.state[1] = a.take(size), a.take(size)
		lk.params = append(lk.params, pathParam{p: p, t: s.shared(ms), runs: runs})
		lk.ins[1+i] = p.data
		lk.din[1+i] = p.grad
	}
	return lk, nil
}

// gatherRuns returns where the values of a member's parameter sp lie in
// its shared tensor of shape ms: a depthwise kernel's taps (k x k rows of
// channels) are the centre of the largest's (kmax x kmax), a regular
// convolution's rows (tap, input channel) likewise with an input-channel
// prefix in each tap; every other matrix is the top-left corner, a
// vector its prefix.
func gatherRuns(sp, ms paramSpec, k, kmax int) ([]copyRun, error) {
	ps, mx := sp.shape, ms.shape
	bad := func() error {
		return fmt.Errorf("supernet: parameter %s of shape %v does not fit in the shared %v", sp.name, ps, mx)
	}
	if len(ps) != len(mx) {
		return nil, bad()
	}
	if len(ps) == 1 {
		if ps[0] > mx[0] {
			return nil, bad()
		}
		return []copyRun{{0, 0, ps[0]}}, nil
	}
	rows, cols, mrows, mcols := ps[0], ps[1], mx[0], mx[1]
	if cols > mcols || rows > mrows {
		return nil, bad()
	}
	var runs []copyRun
	switch {
	case strings.HasSuffix(sp.name, ".dw.w") || strings.HasSuffix(sp.name, ".conv.w"):
		if k < 1 || kmax < k || (kmax-k)%2 != 0 || rows%(k*k) != 0 || mrows%(kmax*kmax) != 0 {
			return nil, bad()
		}
		in, min := rows/(k*k), mrows/(kmax*kmax)
		if in > min {
			return nil, bad()
		}
		off := (kmax - k) / 2
		for ky := 0; ky < k; ky++ {
			for kx := 0; kx < k; kx++ {
				for c := 0; c < in; c++ {
					src := (((ky+off)*kmax+kx+off)*min + c) * mcols
					dst := ((ky*k+kx)*in + c) * cols
					runs = append(runs, copyRun{src, dst, cols})
				}
			}
		}
	case cols == mcols:
		runs = []copyRun{{0, 0, rows * cols}}
	default:
		for r := 0; r < rows; r++ {
			runs = append(runs, copyRun{r * mcols, r * cols, cols})
		}
	}
	return runs, nil
}

// Fits reports why arch is not a member of the supernet, or nil.
func (s *Supernet) Fits(arch space.Arch) error {
	b := s.bound
	switch {
	case arch.InChannels != b.InChannels || arch.Resolution != b.Resolution || arch.Classes != b.Classes:
		return fmt.Errorf("architecture takes %dx%dx%d images into %d classes; the supernet %dx%dx%d into %d",
			arch.InChannels, arch.Resolution, arch.Resolution, arch.Classes, b.InChannels, b.Resolution, b.Resolution, b.Classes)
	case arch.Stem != b.Stem || arch.Head != b.Head:
		return fmt.Errorf("architecture has stem %d and head %d; the supernet's are %d and %d", arch.Stem, arch.Head, b.Stem, b.Head)
	case cmp.Or(arch.Activation, "swish") != cmp.Or(b.Activation, "swish"):
		return fmt.Errorf("architecture's activation %q is not the supernet's %q", arch.Activation, b.Activation)
	case len(arch.Blocks) != len(b.Blocks):
		return fmt.Errorf("architecture has %d stages; the supernet has %d", len(arch.Blocks), len(b.Blocks))
	}
	if err := arch.Validate(); err != nil {
		return err
	}
	in := arch.Stem
	for i, blk := range arch.Blocks {
		m := b.Blocks[i]
		what := func(format string, args ...any) error {
			return fmt.Errorf("block %d (%s) is outside the supernet (stage %d allows %s): %s", i, blk, i, m, fmt.Sprintf(format, args...))
		}
		switch {
		case blk.In != in:
			return what("input filters %d, but the stage before has %d", blk.In, in)
		case blk.Stride != m.Stride:
			return what("stride %d, want %d", blk.Stride, m.Stride)
		case blk.Repeats > m.Repeats:
			return what("%d layers, at most %d", blk.Repeats, m.Repeats)
		case blk.Out > m.Out:
			return what("%d filters, at most %d", blk.Out, m.Out)
		case blk.Kernel > m.Kernel || (m.Kernel-blk.Kernel)%2 != 0:
			return what("kernel %d is not centred in %d", blk.Kernel, m.Kernel)
		case blk.Op == space.OpMBConv && blk.Expand > max(m.Expand, 1):
			return what("expansion %d, at most %d", blk.Expand, m.Expand)
		case blk.SE > m.SE:
			return what("squeeze-excite ratio %g, at most %g", blk.SE, m.SE)
		}
		in = blk.Out
	}
	return nil
}

// path returns the groups of the network of archs (one member, or
// members alike in their layers and filters whose distinct blocks at each
// position are averaged), building the layers it has not met.
func (s *Supernet) path(archs ...space.Arch) ([]group, error) {
	if len(archs) == 0 {
		return nil, errors.New("supernet: no member to run")
	}
	for k, arch := range archs {
		if err := s.Fits(arch); err != nil {
			return nil, err
		}
		for i, b := range arch.Blocks {
			if a0 := archs[0].Blocks[i]; b.Repeats != a0.Repeats || b.Out != a0.Out {
				return nil, fmt.Errorf("supernet: members %d and 0 of a mean path differ in stage %d's layers or filters (%s, %s); they must differ only in their blocks' kind", k, i, b, a0)
			}
		}
	}
	tensors := map[*sharedTensor]bool{}
	single := func(lk *link) group { return group{links: []*link{lk}, out: lk.out, dy: lk.dy} }
	groups := []group{single(s.stem)}
	arch := archs[0]
	for i, blk := range arch.Blocks {
		for j := 0; j < blk.Repeats; j++ {
			in, stride := blk.In, blk.Stride
			if j > 0 {
				in, stride = blk.Out, 1
			}
			p := s.pos[i][j]
			var keys []blockKey
			for _, a := range archs {
				b := a.Blocks[i]
				b.In, b.Stride, b.Repeats = in, stride, 1
				if b.Op != space.OpMBConv {
					b.Expand = 1
				}
				if key := (blockKey{blk: b, in: in}); !slices.Contains(keys, key) {
					keys = append(keys, key)
				}
			}
			g := group{}
			for slot, key := range keys {
				lk := p.links[linkKey{key, slot}]
				if lk == nil {
					var err error
					if lk, err = s.blockLink(i, j, key.blk, in, stride, slot); err != nil {
						return nil, err
					}
					if len(p.links) >= maxLinksPerPosition {
						clear(p.links)
					}
					p.links[linkKey{key, slot}] = lk
				}
				for _, pp := range lk.params {
					if tensors[pp.t] {
						return nil, fmt.Errorf("supernet: two blocks of a mean path at stage %d layer %d share the weights %s; average blocks of distinct kinds only", i, j, pp.t.name)
					}
					tensors[pp.t] = true
				}
				g.links = append(g.links, lk)
			}
			if len(g.links) == 1 {
				g = single(g.links[0])
			} else {
				n := len(g.links[0].out)
				if len(p.mean) < n {
					p.mean = make([]float32, n)
				}
				g.pos, g.out, g.dy = p, p.mean[:n], g.links[0].dy
			}
			groups = append(groups, g)
		}
	}
	last := arch.Blocks[len(arch.Blocks)-1].Out
	head := s.heads[last]
	if head == nil {
		var err error
		if head, err = s.headLink(last); err != nil {
			return nil, err
		}
		s.heads[last] = head
	}
	groups = append(groups, single(head))
	if s.drop != nil {
		groups = append(groups, single(s.drop))
	}
	return append(groups, single(s.dense), single(s.loss)), nil
}

// links returns every layer of groups.
func links(groups []group) []*link {
	var out []*link
	for _, g := range groups {
		out = append(out, g.links...)
	}
	return out
}

// blockLink builds the layer of block b at position (i, j).
func (s *Supernet) blockLink(i, j int, b space.Block, in, stride, slot int) (*link, error) {
	kind := BlockKind(b)
	name := fmt.Sprintf("blocks.%d.%d.%s", i, j, kind)
	h := s.res[i][j]
	ms, ok := s.maxSpec[name]
	cinMax := s.bound.Stem
	if i > 0 {
		cinMax = s.bound.Blocks[i-1].Out
	}
	if j > 0 {
		cinMax = s.bound.Blocks[i].Out
	}
	if !ok {
		ms = s.maxBlock(i, j, kind, h, cinMax, stride).specs
		s.maxSpec[name] = ms
	}
	l := newBlock(s.rt, s.batch, h, b, in, stride, 1, s.act, 1, name)
	a := s.pos[i][j].arena(slot)
	a.reset()
	l.alloc(a)
	lk, err := s.newLink(a, l, l.specs, ms, l.k, s.bound.Blocks[i].Kernel, nil)
	if err != nil {
		return nil, err
	}
	for _, bn := range []*bnLayer{l.bn1, l.bn2, l.bn3} {
		if bn != nil {
			lk.bns = append(lk.bns, bn)
		}
	}
	s.rt.grow()
	return lk, nil
}

// headLink builds the head for cin input channels.
func (s *Supernet) headLink(cin int) (*link, error) {
	b := s.bound
	cinMax := b.Blocks[len(b.Blocks)-1].Out
	l := newHead(s.rt, s.batch, s.headRes*s.headRes, cin, b.Head, s.act)
	l.alloc(nil)
	spec := func(c int) []paramSpec {
		return []paramSpec{
			{name: "head.w", shape: tensor.Shape{c, b.Head}, decay: true, bound: 1 / math.Sqrt(float64(c))},
			{name: "head.bn.gamma", shape: tensor.Shape{b.Head}, value: 1},
			{name: "head.bn.beta", shape: tensor.Shape{b.Head}},
		}
	}
	lk, err := s.newLink(nil, l, spec(cin), spec(cinMax), 0, 0, []*bnLayer{l.bn})
	if err != nil {
		return nil, err
	}
	s.rt.grow()
	return lk, nil
}

// gather copies the path's weights (and, to train, its optimizer
// moments) out of the shared tensors.
func gather(links []*link, moments bool) {
	for _, lk := range links {
		for _, pp := range lk.params {
			for _, r := range pp.runs {
				copy(pp.p.data[r.dst:r.dst+r.n], pp.t.w[r.src:r.src+r.n])
				if moments {
					copy(pp.p.state[0][r.dst:r.dst+r.n], pp.t.m[r.src:r.src+r.n])
					copy(pp.p.state[1][r.dst:r.dst+r.n], pp.t.v[r.src:r.src+r.n])
				}
			}
		}
	}
}

// scatter copies the path's updated weights and moments back.
func scatter(links []*link) {
	for _, lk := range links {
		for _, pp := range lk.params {
			for _, r := range pp.runs {
				copy(pp.t.w[r.src:r.src+r.n], pp.p.data[r.dst:r.dst+r.n])
				copy(pp.t.m[r.src:r.src+r.n], pp.p.state[0][r.dst:r.dst+r.n])
				copy(pp.t.v[r.src:r.src+r.n], pp.p.state[1][r.dst:r.dst+r.n])
			}
		}
	}
}

// forward runs the path's layers in order; the loss is the last output.
// A group of several layers outputs their mean.
func (s *Supernet) forward(groups []group) float64 {
	s.rt.gen++
	x := s.x
	for _, g := range groups {
		for _, lk := range g.links {
			lk.ins[0] = x
			lk.l.forward(s.rt, lk.ins, lk.out)
		}
		if len(g.links) > 1 {
			w := 1 / float32(len(g.links))
			for i := range g.out {
				var sum float32
				for _, lk := range g.links {
					sum += lk.out[i]
				}
				g.out[i] = sum * w
			}
		}
		x = g.out
	}
	return float64(s.loss.out[0])
}

// backward runs the layers' gradients in reverse order: each writes its
// input's gradient into the group before's dy, and its parameters'. The
// layers of a group share the gradient of their mean, and their input
// gradients add up.
func (s *Supernet) backward(groups []group) {
	for i := len(groups) - 1; i >= 0; i-- {
		g := groups[i]
		var prev []float32
		if i > 0 {
			prev = groups[i-1].dy
		}
		dy := g.dy
		if dy == nil { // the loss
			dy = s.one
		}
		if len(g.links) > 1 {
			// g.dy is the first layer's dy: scale it last.
			w := 1 / float32(len(g.links))
			for _, lk := range g.links[1:] {
				for k, v := range dy {
					lk.dy[k] = v * w
				}
			}
			for k := range dy {
				dy[k] *= w
			}
		}
		for k, lk := range g.links {
			lk.din[0] = nil
			if prev != nil && lk.l.diff()[0] {
				lk.din[0] = prev
				if k > 0 {
					for len(g.pos.dx) < k {
						g.pos.dx = append(g.pos.dx, nil)
					}
					if len(g.pos.dx[k-1]) < len(prev) {
						g.pos.dx[k-1] = make([]float32, len(prev))
					}
					lk.din[0] = g.pos.dx[k-1][:len(prev)]
				}
			}
			ldy := lk.dy
			if ldy == nil {
				ldy = s.one
			}
			lk.l.backward(s.rt, lk.ins, lk.out, ldy, lk.din)
		}
		if prev != nil && len(g.links) > 1 {
			for k := 1; k < len(g.links); k++ {
				for m, v := range g.pos.dx[k-1][:len(prev)] {
					prev[m] += v
				}
			}
		}
	}
}

// Step trains one step on arch's path (arch must fit: Fits) and returns
// the step's loss. The batch, the dropout masks and the learning rate
// depend only on the supernet's seed and the step's number, so that a
// supernet restored from a checkpoint goes on exactly as the one saved
// would have.
func (s *Supernet) Step(ctx context.Context, arch space.Arch) (float64, error) {
	return s.StepMean(ctx, arch)
}

// StepMean trains one step on the mean of archs' paths: archs alike in
// every stage's layers and filters, differing in their blocks' kinds (an
// MBConv, a separable or a regular convolution); at each position their
// distinct blocks run on the same input and their outputs are averaged.
// TuNAS's op warm-up trains such paths early on, so that every kind's
// weights learn to serve the layers after it. With one arch it is Step.
func (s *Supernet) StepMean(ctx context.Context, archs ...space.Arch) (float64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	groups, err := s.path(archs...)
	if err != nil {
		return 0, err
	}
	links := links(groups)
	gather(links, true)
	e, b := s.steps/s.perEpoch, s.steps%s.perEpoch
	if e != s.epoch {
		for i := range s.order {
			s.order[i] = i
		}
		rand.New(rand.NewPCG(s.cfg.Train.Seed, 1000+uint64(e))).Shuffle(len(s.order), func(i, j int) { s.order[i], s.order[j] = s.order[j], s.order[i] })
		s.epoch = e
	}
	res := s.bound.Resolution
	loadBatch(s.x, s.xent, s.bound.InChannels, res*res, s.batch, s.train, s.order[b*s.batch:(b+1)*s.batch])
	s.rt.training, s.rt.calib = true, false
	s.rt.rng = rand.New(rand.NewPCG(s.cfg.Train.Seed^0x5eed, uint64(s.steps)))
	loss := s.forward(groups)
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return loss, fmt.Errorf("supernet loss is %v at step %d; lower the learning rate (%g): %w", loss, s.steps+1, s.cfg.Train.LR, ErrDiverged)
	}
	s.backward(groups)
	var params []*param
	for _, lk := range links {
		for _, pp := range lk.params {
			params = append(params, pp.p)
		}
	}
	s.opt.t = s.steps
	s.opt.step(params, schedule(s.cfg.Train.LR, s.steps, s.warmup, s.cfg.Steps))
	scatter(links)
	s.steps++
	return loss, nil
}

// Steps returns the number of steps trained so far.
func (s *Supernet) Steps() int { return s.steps }

// Bound returns the largest network of the supernet.
func (s *Supernet) Bound() space.Arch { return s.bound.Clone() }

// Config returns the supernet's config, with its defaults.
func (s *Supernet) Config() SupernetConfig { return s.cfg }

// Score returns arch's accuracy on the first ScoreImages validation
// images, on the shared weights, after its batch norms' statistics are
// recalibrated over Calib training batches (the same batches for every
// candidate).
func (s *Supernet) Score(ctx context.Context, arch space.Arch) (float64, error) {
	groups, err := s.path(arch)
	if err != nil {
		return 0, err
	}
	links := links(groups)
	gather(links, false)
	res := s.bound.Resolution
	s.rt.training, s.rt.calib = false, true
	defer func() { s.rt.training, s.rt.calib = true, false }()
	for _, lk := range links {
		for _, bn := range lk.bns {
			bn.startCalibration()
		}
	}
	for i := 0; i < s.cfg.Calib; i++ {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		loadBatch(s.x, s.xent, s.bound.InChannels, res*res, s.batch, s.train, s.calib[i*s.batch:(i+1)*s.batch])
		s.forward(groups)
	}
	for _, lk := range links {
		for _, bn := range lk.bns {
			bn.endCalibration()
		}
	}
	s.rt.calib = false
	smoothing := s.xent.smoothing
	s.xent.smoothing = 0
	defer func() { s.xent.smoothing = smoothing }()
	idx := make([]int, 0, s.batch)
	correct := 0
	for lo := 0; lo < s.val.n; lo += s.batch {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		idx = idx[:0]
		for i := lo; i < min(lo+s.batch, s.val.n); i++ {
			idx = append(idx, i)
		}
		loadBatch(s.x, s.xent, s.bound.InChannels, res*res, s.batch, s.val, idx)
		s.forward(groups)
		correct += s.xent.correct
	}
	return float64(correct) / float64(s.val.n), nil
}

// fingerprint hashes what a checkpoint must match: the bound, the data's
// size and the config, but for the threads.
func (s *Supernet) fingerprint() uint64 {
	h := fnv.New64a()
	cfg := s.cfg
	cfg.Train.Threads = 0 // threads change the last bits, not the supernet
	b, _ := json.Marshal(struct {
		Bound space.Arch
		Cfg   SupernetConfig
		N     int
	}{s.bound, cfg, s.data.Train.N})
	h.Write(b)
	return h.Sum64()
}

// checkpointMagic starts every checkpoint.
const checkpointMagic = "effnas-supernet1"

// MarshalBinary returns a checkpoint: the steps trained and every shared
// tensor with its optimizer moments.
func (s *Supernet) MarshalBinary() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(checkpointMagic)
	binary.Write(&buf, binary.LittleEndian, s.fp)
	binary.Write(&buf, binary.LittleEndian, uint64(s.steps))
	all := make([]*sharedTensor, 0, len(s.tensors)+len(s.pending))
	for _, t := range s.tensors {
		all = append(all, t)
	}
	for _, t := range s.pending {
		all = append(all, t)
	}
	slices.SortFunc(all, func(a, b *sharedTensor) int { return strings.Compare(a.name, b.name) })
	binary.Write(&buf, binary.LittleEndian, uint32(len(all)))
	for _, t := range all {
		binary.Write(&buf, binary.LittleEndian, uint32(len(t.name)))
		buf.WriteString(t.name)
		binary.Write(&buf, binary.LittleEndian, uint32(len(t.w)))
		for _, f := range [][]float32{t.w, t.m, t.v} {
			binary.Write(&buf, binary.LittleEndian, f)
		}
	}
	return buf.Bytes(), nil
}

// UnmarshalBinary restores a checkpoint of a supernet with the same bound,
// data size and config; a checkpoint of another is refused.
func (s *Supernet) UnmarshalBinary(b []byte) error {
	r := bytes.NewReader(b)
	magic := make([]byte, len(checkpointMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != checkpointMagic {
		return errors.New("supernet checkpoint: not a supernet checkpoint (bad header)")
	}
	var fp, steps uint64
	var count uint32
	if err := binary.Read(r, binary.LittleEndian, &fp); err != nil {
		return fmt.Errorf("supernet checkpoint: %w", err)
	}
	if fp != s.fp {
		return errors.New("supernet checkpoint is of another supernet (another space, proxy, data size or supernet config); start a new study, or resume with the settings it was saved with")
	}
	if err := binary.Read(r, binary.LittleEndian, &steps); err != nil {
		return fmt.Errorf("supernet checkpoint: %w", err)
	}
	if err := binary.Read(r, binary.LittleEndian, &count); err != nil {
		return fmt.Errorf("supernet checkpoint: %w", err)
	}
	restored := map[string]*sharedTensor{}
	for range count {
		var nlen, n uint32
		if err := binary.Read(r, binary.LittleEndian, &nlen); err != nil || nlen > 1<<10 {
			return fmt.Errorf("supernet checkpoint: truncated or corrupt tensor name")
		}
		name := make([]byte, nlen)
		if _, err := io.ReadFull(r, name); err != nil {
			return fmt.Errorf("supernet checkpoint: %w", err)
		}
		if err := binary.Read(r, binary.LittleEndian, &n); err != nil || int64(n)*12 > int64(r.Len()) {
			return fmt.Errorf("supernet checkpoint: tensor %s is truncated", name)
		}
		t := &sharedTensor{name: string(name), w: make([]float32, n), m: make([]float32, n), v: make([]float32, n)}
		for _, f := range [][]float32{t.w, t.m, t.v} {
			if err := binary.Read(r, binary.LittleEndian, f); err != nil {
				return fmt.Errorf("supernet checkpoint: tensor %s: %w", name, err)
			}
		}
		restored[t.name] = t
	}
	if r.Len() != 0 {
		return fmt.Errorf("supernet checkpoint: %d bytes after its last tensor; it is corrupt", r.Len())
	}
	// Tensors met already take the restored values; the others wait.
	for name, t := range s.tensors {
		rt := restored[name]
		if rt == nil {
			s.init(t) // not in the checkpoint: as when it was first met
			continue
		}
		if len(rt.w) != len(t.w) {
			return fmt.Errorf("supernet checkpoint: tensor %s has %d values, want %d", name, len(rt.w), len(t.w))
		}
		copy(t.w, rt.w)
		copy(t.m, rt.m)
		copy(t.v, rt.v)
		delete(restored, name)
	}
	s.pending = restored
	s.steps = int(steps)
	return nil
}
