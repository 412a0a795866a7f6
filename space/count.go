package space

import "strconv"

// This file counts parameters and multiply-adds with the EfficientNet
// convention: the multiply-adds of every convolution (squeeze-excite's two
// 1x1 convs included) and of the classifier; batch norm, activations,
// pooling and elementwise products are free. Parameters are every weight and
// bias plus batch norm's scale and shift (2 per channel); running statistics
// are not parameters. Convolutions use same padding (output size
// ceil(in/stride)) and no bias, since batch norm follows; squeeze-excite's
// convs and the classifier have a bias.
//
// A regular conv block (OpConv) is counted as what it computes: a k x k conv
// from In to Out filters, batch norm, the activation, and squeeze-excite on
// its Out channels reduced to max(1, int(In*SE)) channels.

// Layer is one row of the count: a convolution (or squeeze-excite, or the
// classifier) with its output shape, parameters and multiply-adds.
type Layer struct {
	Name     string `json:"name"`      // e.g. "stem", "blocks.3.1.expand", "head", "classifier"
	OutShape [3]int `json:"out_shape"` // channels, height, width
	Params   int64  `json:"params"`
	MACs     int64  `json:"flops"` // multiply-adds
}

// conv is a k x k convolution producing an h x w x cout output.
type conv struct {
	cin, cout, k, h, w int
	depthwise          bool
	bias, bn           bool
}

func (c conv) counts() (params, macs int64) {
	perOut := int64(c.k) * int64(c.k) * int64(c.cin) // weights feeding one output channel
	if c.depthwise {
		perOut = int64(c.k) * int64(c.k)
	}
	params = perOut * int64(c.cout)
	if c.bias {
		params += int64(c.cout)
	}
	if c.bn {
		params += 2 * int64(c.cout)
	}
	macs = int64(c.h) * int64(c.w) * perOut * int64(c.cout)
	return params, macs
}

func (c conv) countsFloat() float64 {
	perOut := float64(c.k) * float64(c.k) * float64(c.cin)
	if c.depthwise {
		perOut = float64(c.k) * float64(c.k)
	}
	return float64(c.h) * float64(c.w) * perOut * float64(c.cout)
}

// sameOut is the output size of a same-padded conv: ceil(in/stride).
func sameOut(in, stride int) int {
	if stride < 1 {
		stride = 1
	}
	return (in + stride - 1) / stride
}

// seReduced is squeeze-excite's reduced channel count: max(1, int(in*ratio)),
// from the block's input filters.
func seReduced(in int, ratio float64) int {
	return max(1, int(float64(in)*ratio))
}

// layerSpec is one layer of the walk: block and repeat are -1 for the stem,
// head and classifier.
type layerSpec struct {
	kind          string // "stem", "expand", "dw", "se", "project", "conv", "head", "classifier"
	block, repeat int
	shape         [3]int
	convs         [2]conv
	n             int // convs used
}

func (l *layerSpec) name() string {
	if l.block < 0 {
		return l.kind
	}
	return "blocks." + strconv.Itoa(l.block) + "." + strconv.Itoa(l.repeat) + "." + l.kind
}

func (l *layerSpec) counts() (params, macs int64) {
	for _, c := range l.convs[:l.n] {
		p, m := c.counts()
		params += p
		macs += m
	}
	return params, macs
}

// walk calls emit for every layer of a, in order. It allocates nothing.
func (a Arch) walk(emit func(l layerSpec)) {
	one := func(kind string, i, j int, shape [3]int, c conv) {
		emit(layerSpec{kind: kind, block: i, repeat: j, shape: shape, convs: [2]conv{c}, n: 1})
	}
	h := sameOut(a.Resolution, 2)
	one("stem", -1, -1, [3]int{a.Stem, h, h}, conv{cin: a.InChannels, cout: a.Stem, k: 3, h: h, w: h, bn: true})
	c := a.Stem
	for i, b := range a.Blocks {
		for j := range b.Repeats {
			in, stride := b.In, b.Stride
			if j > 0 {
				in, stride = b.Out, 1
			}
			ho := sameOut(h, stride)
			seCh := b.Out // the channels squeeze-excite gates
			if b.Op == OpConv {
				one("conv", i, j, [3]int{b.Out, ho, ho}, conv{cin: in, cout: b.Out, k: b.Kernel, h: ho, w: ho, bn: true})
			} else {
				mid := in * b.Expand
				if b.Expand != 1 {
					one("expand", i, j, [3]int{mid, h, h}, conv{cin: in, cout: mid, k: 1, h: h, w: h, bn: true})
				}
				one("dw", i, j, [3]int{mid, ho, ho}, conv{cin: mid, cout: mid, k: b.Kernel, h: ho, w: ho, depthwise: true, bn: true})
				seCh = mid
			}
			if b.SE > 0 {
				r := seReduced(in, b.SE)
				emit(layerSpec{kind: "se", block: i, repeat: j, shape: [3]int{seCh, ho, ho}, n: 2, convs: [2]conv{
					{cin: seCh, cout: r, k: 1, h: 1, w: 1, bias: true},
					{cin: r, cout: seCh, k: 1, h: 1, w: 1, bias: true},
				}})
			}
			if b.Op != OpConv {
				one("project", i, j, [3]int{b.Out, ho, ho}, conv{cin: seCh, cout: b.Out, k: 1, h: ho, w: ho, bn: true})
			}
			h = ho
		}
		c = b.Out
	}
	one("head", -1, -1, [3]int{a.Head, h, h}, conv{cin: c, cout: a.Head, k: 1, h: h, w: h, bn: true})
	one("classifier", -1, -1, [3]int{a.Classes, 1, 1}, conv{cin: a.Head, cout: a.Classes, k: 1, h: 1, w: 1, bias: true})
}

// Layers returns the count of every layer of a: the stem, each block
// repeat's sublayers (blocks.<block>.<repeat>.expand, .dw, .se, .project, or
// .conv and .se for a regular conv), the head and the classifier. Global
// pooling and dropout have no parameters or multiply-adds and get no row.
// The counts of an Arch that fails Validate are meaningless (but Layers does
// not panic).
func (a Arch) Layers() []Layer {
	var layers []Layer
	a.walk(func(l layerSpec) {
		p, m := l.counts()
		layers = append(layers, Layer{Name: l.name(), OutShape: l.shape, Params: p, MACs: m})
	})
	return layers
}

// Params returns the number of parameters of a (see Layers for the convention).
func (a Arch) Params() int64 {
	var n int64
	a.walk(func(l layerSpec) {
		p, _ := l.counts()
		n += p
	})
	return n
}

// FLOPs returns the multiply-adds of one forward pass of one image, which
// the EfficientNet and MnasNet papers call FLOPS.
func (a Arch) FLOPs() int64 {
	var n int64
	a.walk(func(l layerSpec) {
		_, m := l.counts()
		n += m
	})
	return n
}

// flopsFloat is FLOPs in float64, for checking that the int64 count cannot
// overflow.
func (a Arch) flopsFloat() float64 {
	var f float64
	a.walk(func(l layerSpec) {
		for _, c := range l.convs[:l.n] {
			f += c.countsFloat()
		}
	})
	return f
}
