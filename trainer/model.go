package trainer

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/effnas/effnas/space"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// param is one learnable tensor: its values (the backing of its graph
// node's value, updated in place by the optimizer) and the private buffer
// its gradient is computed into.
type param struct {
	name  string
	data  []float32
	grad  []float32
	decay bool // weight decay applies (convolution and dense weights)
	state [2][]float32
}

// network is one architecture as a gorgonia graph with a fixed batch size.
type network struct {
	g      *G.ExprGraph
	rt     *runtime
	batch  int
	res    int
	inCh   int
	x      []float32 // the input batch, NHWC, backing of the input node
	loss   *G.Node
	xent   *xentLayer
	params []*param
	bns    []*bnLayer
	grads  G.Nodes
}

type builder struct {
	net          *network
	rng          *rand.Rand
	act          int
	err          error
	n            int
	nodes        G.Nodes // parameter nodes, in the order of net.params
	byNode       map[*G.Node]*param
	zeroResidual bool
	kind         profKind // of the layers being added
}

func (b *builder) newParam(name string, shape tensor.Shape, decay bool, init func() float32) *G.Node {
	data := make([]float32, shape.TotalSize())
	for i := range data {
		data[i] = init()
	}
	v := tensor.New(tensor.WithShape(shape.Clone()...), tensor.WithBacking(data))
	node := G.NewTensor(b.net.g, tensor.Float32, shape.Dims(), G.WithShape(shape.Clone()...),
		G.WithName(fmt.Sprintf("p%d_%s", len(b.net.params), name)), G.WithValue(v))
	p := &param{name: name, data: data, decay: decay}
	b.net.params = append(b.net.params, p)
	b.nodes = append(b.nodes, node)
	b.byNode[node] = p
	return node
}

func (b *builder) normal(std float64) func() float32 {
	return func() float32 { return float32(b.rng.NormFloat64() * std) }
}

// uniform draws from [-bound, bound]. With bound 1/sqrt(fan in) it is
// PyTorch's default initialisation, whose small weights give the layers
// before a batch norm a large effective learning rate: short proxy runs
// learn markedly faster than with TensorFlow's fan-out normal.
func (b *builder) uniform(bound float64) func() float32 {
	return func() float32 { return float32((2*b.rng.Float64() - 1) * bound) }
}

func constant(v float32) func() float32 { return func() float32 { return v } }

// layer adds l with the given inputs; param inputs are marked so their
// gradients stay in private buffers linked to the params.
func (b *builder) layer(l layer, in ...*G.Node) *G.Node {
	if b.err != nil {
		return nil
	}
	n, op, err := apply(b.net.rt, l, in...)
	if err != nil {
		b.err = err
		return nil
	}
	op.kind = b.kind
	for i, c := range in {
		if p := b.byNode[c]; p != nil {
			op.param[i] = true
			op.bufs[i] = make([]float32, len(p.data))
			p.grad = op.bufs[i]
		}
	}
	return n
}

// params creates the parameters of specs, in order.
func (b *builder) params(specs []paramSpec) []*G.Node {
	nodes := make([]*G.Node, len(specs))
	for i, s := range specs {
		init := constant(s.value)
		if s.bound > 0 {
			init = b.uniform(s.bound)
		}
		nodes[i] = b.newParam(s.name, s.shape, s.decay, init)
	}
	return nodes
}

// residualGamma is the initial gamma of a block's last batch norm: zero
// when the block ends in an identity skip, so that every residual block
// starts as the identity and the deep network trains like a shallow one at
// first (Goyal et al. 2017). On B0 at width 0.5, MNIST, 2 epochs, it lowered
// the final training loss from 0.20 to 0.11 and lifted test accuracy from
// about 96.5% to 97.5% (measured with an earlier default recipe, Adam with a
// 0.99 weight average).
func (b *builder) residualGamma(blk space.Block, in, stride int) float32 {
	if b.zeroResidual && blk.Skip && stride == 1 && in == blk.Out {
		return 0
	}
	return 1
}

// block adds one repeat of a block: returns the output and its size.
func (b *builder) block(x *G.Node, h int, blk space.Block, in, stride int, survival float64, name string) (*G.Node, int) {
	l := newBlock(b.net.rt, b.n, h, blk, in, stride, survival, b.act, b.residualGamma(blk, in, stride), name)
	for _, bn := range []*bnLayer{l.bn1, l.bn2, l.bn3} {
		if bn != nil {
			b.net.bns = append(b.net.bns, bn)
		}
	}
	l.alloc(nil)
	return b.layer(l, append([]*G.Node{x}, b.params(l.specs)...)...), l.ho
}

// buildNetwork turns arch into a graph for batches of batch images.
// labelSmoothing applies to the training loss.
func buildNetwork(arch space.Arch, batch int, rt *runtime, seed uint64, labelSmoothing float64) (*network, error) {
	net := &network{g: G.NewGraph(), rt: rt, batch: batch, res: arch.Resolution, inCh: arch.InChannels}
	b := &builder{net: net, rng: rand.New(rand.NewPCG(seed, 1)), n: batch, act: actSwish, byNode: map[*G.Node]*param{}, zeroResidual: true}
	switch arch.Activation {
	case "", "swish":
	case "relu":
		b.act = actReLU
	default:
		return nil, fmt.Errorf("activation %q is not supported; use swish or relu", arch.Activation)
	}
	h := arch.Resolution
	net.x = make([]float32, batch*h*h*arch.InChannels)
	xs := tensor.Shape{batch * h * h, arch.InChannels}
	x := G.NewTensor(net.g, tensor.Float32, 2, G.WithShape(xs...), G.WithName("x"),
		G.WithValue(tensor.New(tensor.WithShape(xs...), tensor.WithBacking(net.x))))

	stem := newStem(rt, batch, h, arch.InChannels, arch.Stem, b.act)
	stem.alloc(nil)
	net.bns = append(net.bns, stem.bn)
	y := b.layer(stem, append([]*G.Node{x}, b.params([]paramSpec{
		{name: "stem.w", shape: tensor.Shape{9 * arch.InChannels, arch.Stem}, decay: true, bound: 1 / math.Sqrt(float64(9*arch.InChannels))},
		{name: "stem.bn.gamma", shape: tensor.Shape{arch.Stem}, value: 1},
		{name: "stem.bn.beta", shape: tensor.Shape{arch.Stem}},
	})...)...)
	h = stem.cv.ho
	total := 0
	for _, blk := range arch.Blocks {
		total += blk.Repeats
	}
	idx, ch := 0, arch.Stem
	for i, blk := range arch.Blocks {
		for j := 0; j < blk.Repeats; j++ {
			in, stride := blk.In, blk.Stride
			if j > 0 {
				in, stride = blk.Out, 1
			}
			survival := 1 - arch.DropConnect*float64(idx)/float64(total)
			y, h = b.block(y, h, blk, in, stride, survival, fmt.Sprintf("blocks.%d.%d", i, j))
			idx++
		}
		ch = blk.Out
	}
	head := newHead(rt, batch, h*h, ch, arch.Head, b.act)
	head.alloc(nil)
	net.bns = append(net.bns, head.bn)
	y = b.layer(head, append([]*G.Node{y}, b.params([]paramSpec{
		{name: "head.w", shape: tensor.Shape{ch, arch.Head}, decay: true, bound: 1 / math.Sqrt(float64(ch))},
		{name: "head.bn.gamma", shape: tensor.Shape{arch.Head}, value: 1},
		{name: "head.bn.beta", shape: tensor.Shape{arch.Head}},
	})...)...)
	b.kind = kindClassifier
	if arch.Dropout > 0 {
		y = b.layer(&dropoutLayer{shape: tensor.Shape{batch, arch.Head}, rate: arch.Dropout}, y)
	}
	y = b.layer(&denseLayer{n: batch, cin: arch.Head, cout: arch.Classes}, append([]*G.Node{y}, b.params([]paramSpec{
		{name: "classifier.w", shape: tensor.Shape{arch.Head, arch.Classes}, decay: true, bound: 1 / math.Sqrt(float64(arch.Head))},
		{name: "classifier.b", shape: tensor.Shape{arch.Classes}},
	})...)...)
	net.xent = &xentLayer{n: batch, k: arch.Classes, smoothing: labelSmoothing, labels: make([]int, batch)}
	net.loss = b.layer(net.xent, y)
	if b.err != nil {
		return nil, b.err
	}
	rt.allocate()
	grads, err := G.Grad(net.loss, b.nodes...)
	if err != nil {
		return nil, fmt.Errorf("differentiate the loss: %w", err)
	}
	net.grads = grads
	for _, p := range net.params {
		if p.grad == nil {
			return nil, fmt.Errorf("trainer: parameter %s has no gradient", p.name)
		}
	}
	return net, nil
}

// setBatch copies images idx of set into the input (NCHW to NHWC) and their
// labels into the loss; rows past len(idx) are zero padding.
func (net *network) setBatch(set *dataSet, idx []int) {
	loadBatch(net.x, net.xent, net.inCh, net.res*net.res, net.batch, set, idx)
}

// loadBatch copies images idx of set (c channels of hw pixels) into x
// (NCHW to NHWC) and their labels into xent; rows past len(idx), up to
// batch, are zero padding.
func loadBatch(x []float32, xent *xentLayer, c, hw, batch int, set *dataSet, idx []int) {
	for r, i := range idx {
		img := set.x[i*c*hw:][:c*hw]
		dst := x[r*hw*c:][:hw*c]
		if c == 1 {
			copy(dst, img)
		} else {
			for ch := 0; ch < c; ch++ {
				for p := 0; p < hw; p++ {
					dst[p*c+ch] = img[ch*hw+p]
				}
			}
		}
		xent.labels[r] = set.y[i]
	}
	clear(x[len(idx)*hw*c:])
	for r := len(idx); r < batch; r++ {
		xent.labels[r] = 0
	}
	xent.valid = len(idx)
}

// dataSet is the part of a dataset.Set the trainer reads.
type dataSet struct {
	x []float32
	y []int
	n int
}
