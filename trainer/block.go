package trainer

import (
	"fmt"
	"math"

	"github.com/effnas/effnas/space"
	"github.com/effnas/effnas/trainer/internal/kern"
	"gorgonia.org/tensor"
)

// blockLayer is one repeat of a block as a single op: for MBConv, the 1x1
// expansion, batch norm and activation, the k x k depthwise convolution,
// batch norm and activation, squeeze-excite, the 1x1 projection, batch
// norm, and the identity skip with drop-connect. OpSepConv is the same
// without the expansion; OpConv has a regular k x k convolution in place
// of the depthwise one and ends after squeeze-excite (no projection).
//
// It keeps only the inputs of its batch norms (z1, z2, z4) for the
// backward pass and recomputes the activations from them: a layer's
// memory is two expanded tensors (one when it recomputes z1 too) instead
// of about ten. Between batch norms,
// whose batch statistics are the only points where every image must be
// done before any can go on, it works through chunks of images small
// enough to stay in cache, so that an activation is written and read
// back in the same chunk without going through main memory.
type blockLayer struct {
	n, h, w, ho, wo int
	cin, mid, cout  int // input, expanded and output channels
	k, s            int
	conv, expand    bool
	keepZ1          bool // z1 is kept; else recomputed from x where it is needed
	se              int  // squeeze-excite width; 0 for none
	skip            bool
	survival        float64
	act             int

	bn1, bn2, bn3 *bnLayer
	dw            *kern.DW
	cv            *im2col
	z1, z2, z4    []float32   // inputs of bn1 (n*h*w, mid), bn2 (n*ho*wo, mid), bn3 (n*ho*wo, cout)
	pool, seh     []float32   // squeeze-excite: mean of each channel (n, mid), hidden layer before its activation (n, se)
	ses           []float32   // the excitation, after its sigmoid (n, mid)
	mask          []float32   // drop-connect factor of each image
	vec           [][]float32 // per thread: a drop-connect factor or scaled batch-norm coefficients
	gram          [][]float64 // per thread: x^T x and the column sums of x (see expansionStats)
	gramTmp       [][]float32

	// Input indices of the parameters (in[0] is x); -1 when absent.
	iW1, iG1, iB1, iWd, iG2, iB2, iWr, iBr, iWe, iBe, iW4, iG3, iB3 int
	specs                                                           []paramSpec
	chunkIn, chunkOut                                               int
	parts                                                           [][][]float32 // [thread >= 1][input]: private weight gradients
}

// paramSpec describes a parameter a layer takes as an input: uniform in
// [-bound, bound] when bound > 0, else constant value.
type paramSpec struct {
	name  string
	shape tensor.Shape
	decay bool
	bound float64
	value float32
}

// newBlock builds the layer for one repeat of blk on n images of h x h
// with in input channels and the given stride; the projection's batch-norm
// gamma starts at gamma3 (0 starts a residual block as the identity). The
// parameters are named after name.
func newBlock(rt *runtime, n, h int, blk space.Block, in, stride int, survival float64, act int, gamma3 float32, name string) *blockLayer {
	l := &blockLayer{n: n, h: h, w: h, cin: in, mid: in, cout: blk.Out, k: blk.Kernel, s: stride,
		conv: blk.Op == space.OpConv, survival: survival, act: act}
	l.ho, _ = samePad(h, blk.Kernel, stride)
	l.wo = l.ho
	l.expand = !l.conv && blk.Expand != 1
	l.skip = blk.Skip && stride == 1 && in == blk.Out
	if blk.SE > 0 {
		l.se = max(1, int(float64(in)*blk.SE))
	}
	l.iW1, l.iG1, l.iB1, l.iWd, l.iG2, l.iB2, l.iWr, l.iBr, l.iWe, l.iBe, l.iW4, l.iG3, l.iB3 = -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1
	add := func(idx *int, s paramSpec) {
		l.specs = append(l.specs, s)
		*idx = len(l.specs)
	}
	hwI, hwO := l.h*l.w, l.ho*l.wo
	k := l.k
	if l.conv {
		l.mid = blk.Out
		l.cv = newIm2col(h, h, in, k, stride)
		add(&l.iWd, paramSpec{name: name + ".conv.w", shape: tensor.Shape{k * k * in, l.mid}, decay: true, bound: 1 / sqrtf(k*k*in)})
		add(&l.iG2, paramSpec{name: name + ".conv.bn.gamma", shape: tensor.Shape{l.mid}, value: 1})
		add(&l.iB2, paramSpec{name: name + ".conv.bn.beta", shape: tensor.Shape{l.mid}})
	} else {
		if l.expand {
			l.mid = in * blk.Expand
			add(&l.iW1, paramSpec{name: name + ".expand.w", shape: tensor.Shape{in, l.mid}, decay: true, bound: 1 / sqrtf(in)})
			add(&l.iG1, paramSpec{name: name + ".expand.bn.gamma", shape: tensor.Shape{l.mid}, value: 1})
			add(&l.iB1, paramSpec{name: name + ".expand.bn.beta", shape: tensor.Shape{l.mid}})
			l.bn1 = newBN(n*hwI, l.mid, act).threads(rt.threads)
			l.keepZ1 = in > recomputeZ1
		}
		_, pt := samePad(h, k, stride)
		l.dw = kern.NewDW(h, h, l.mid, k, stride, l.ho, l.wo, pt, pt)
		add(&l.iWd, paramSpec{name: name + ".dw.w", shape: tensor.Shape{k * k, l.mid}, decay: true, bound: 1 / float64(k)})
		add(&l.iG2, paramSpec{name: name + ".dw.bn.gamma", shape: tensor.Shape{l.mid}, value: 1})
		add(&l.iB2, paramSpec{name: name + ".dw.bn.beta", shape: tensor.Shape{l.mid}})
	}
	l.bn2 = newBN(n*hwO, l.mid, act).threads(rt.threads)
	if l.se > 0 {
		add(&l.iWr, paramSpec{name: name + ".se.reduce.w", shape: tensor.Shape{l.mid, l.se}, decay: true, bound: 1 / sqrtf(l.mid)})
		add(&l.iBr, paramSpec{name: name + ".se.reduce.b", shape: tensor.Shape{l.se}})
		add(&l.iWe, paramSpec{name: name + ".se.expand.w", shape: tensor.Shape{l.se, l.mid}, decay: true, bound: 1 / sqrtf(l.se)})
		add(&l.iBe, paramSpec{name: name + ".se.expand.b", shape: tensor.Shape{l.mid}})
	}
	if !l.conv {
		add(&l.iW4, paramSpec{name: name + ".project.w", shape: tensor.Shape{l.mid, l.cout}, decay: true, bound: 1 / sqrtf(l.mid)})
		add(&l.iG3, paramSpec{name: name + ".project.bn.gamma", shape: tensor.Shape{l.cout}, value: gamma3})
		add(&l.iB3, paramSpec{name: name + ".project.bn.beta", shape: tensor.Shape{l.cout}})
		l.bn3 = newBN(n*hwO, l.cout, actNone).threads(rt.threads)
	}

	// Chunks: the phases that touch the input resolution carry an
	// expanded tensor at the input resolution; the others at the output's.
	perIn := hwI * l.mid
	perOut := hwO * l.mid
	if l.conv {
		perIn = max(perIn, hwO*l.cv.width())
	}
	l.chunkIn, l.chunkOut = chunkImages(perIn), chunkImages(perOut)
	ci, co := min(l.chunkIn, rt.perThread(n)), min(l.chunkOut, rt.perThread(n))
	if l.expand {
		if !l.keepZ1 {
			rt.needLocalBuf(lE, ci*hwI*l.mid)
		}
		rt.needLocalBuf(lA, ci*hwI*l.mid)
		rt.needLocalBuf(lB, ci*hwI*l.mid)
		rt.needLocalBuf(lC, ci*hwI*l.mid)
		rt.needShared(sGradExp, n*hwI*l.mid)
		rt.needShared(sWT2, l.cin*l.mid)
	}
	if l.conv {
		rt.needLocalBuf(lCols, ci*hwO*l.cv.width())
		rt.needLocalBuf(lC, ci*hwO*l.cv.width())
		rt.needShared(sWT1, l.cv.width()*l.mid)
	} else {
		rt.needShared(sGradOut, n*hwO*l.cout)
		rt.needShared(sWT1, l.mid*l.cout)
	}
	rt.needLocalBuf(lA, co*hwO*l.mid)
	rt.needLocalBuf(lB, co*hwO*l.mid)
	rt.needLocalBuf(lC, co*hwO*l.mid)
	rt.needLocalBuf(lD, max(ci*hwO*l.mid, co*hwO*l.cout))
	rt.needShared(sGradMid, n*hwO*l.mid)
	if l.se > 0 {
		rt.needLocalBuf(lVec, co*(2*l.mid+2*l.se))
		rt.needShared(sWT3, 2*l.mid*l.se)
	}
	rt.needZeros(max(l.mid, l.cout))
	l.vec = make([][]float32, max(rt.threads, 1))
	return l
}

// alloc allocates what the layer keeps, from a when it is not nil (a
// supernet's layers at one position share one arena: only one of them
// runs in a step).
func (l *blockLayer) alloc(a *arena) {
	hwI, hwO := l.h*l.w, l.ho*l.wo
	if l.keepZ1 {
		l.z1 = a.take(l.n * hwI * l.mid)
	}
	l.z2 = a.take(l.n * hwO * l.mid)
	if !l.conv {
		l.z4 = a.take(l.n * hwO * l.cout)
	}
	if l.se > 0 {
		l.pool = a.take(l.n * l.mid)
		l.seh = a.take(l.n * l.se)
		l.ses = a.take(l.n * l.mid)
	}
	l.mask = a.take(l.n)
	for t := range l.vec {
		l.vec[t] = a.take(2 * max(l.mid, l.cout))
	}
	if l.expand && !l.keepZ1 {
		l.gram = make([][]float64, len(l.vec))
		l.gramTmp = make([][]float32, len(l.vec))
		for t := range l.gram {
			l.gram[t] = make([]float64, l.cin*l.cin+l.cin)
			l.gramTmp[t] = a.take(l.cin*l.cin + l.cin)
		}
	}
}

func sqrtf(n int) float64 { return math.Sqrt(float64(n)) }

func (l *blockLayer) name() string {
	kind := "mbconv"
	switch {
	case l.conv:
		kind = "conv"
	case !l.expand:
		kind = "sepconv"
	}
	return fmt.Sprintf("%s%dx%d/%d(%d->%d->%d,se%d)", kind, l.k, l.k, l.s, l.cin, l.mid, l.cout, l.se)
}

func (l *blockLayer) outShape() tensor.Shape { return tensor.Shape{l.n * l.ho * l.wo, l.cout} }

func (l *blockLayer) diff() []bool {
	d := make([]bool, 1+len(l.specs))
	for i := range d {
		d[i] = true
	}
	return d
}

func (l *blockLayer) selfTimed() bool { return true }

// floats is the memory the layer keeps once allocated, in floats (not
// its scratch, its output or its gradients).
func (l *blockLayer) floats() int64 {
	n, hwI, hwO := int64(l.n), int64(l.h*l.w), int64(l.ho*l.wo)
	f := n*hwO*int64(l.mid) + n + int64(len(l.vec)*2*max(l.mid, l.cout))
	if l.keepZ1 {
		f += n * hwI * int64(l.mid)
	}
	if !l.conv {
		f += n * hwO * int64(l.cout)
	}
	if l.se > 0 {
		f += n * int64(2*l.mid+l.se)
	}
	if l.expand && !l.keepZ1 {
		f += int64(len(l.vec)*(l.cin*l.cin+l.cin)) * 3 // float64 and float32
	}
	for _, bn := range []*bnLayer{l.bn1, l.bn2, l.bn3} {
		if bn != nil {
			f += bn.floats()
		}
	}
	return f
}

// weights are the inputs whose gradients add up over chunks (and threads).
func (l *blockLayer) weights() []int {
	var w []int
	for _, i := range []int{l.iW1, l.iWd, l.iWr, l.iBr, l.iWe, l.iBe, l.iW4} {
		if i > 0 {
			w = append(w, i)
		}
	}
	return w
}

func (l *blockLayer) forward(rt *runtime, in [][]float32, out []float32) {
	x := in[0]
	for i := range l.mask {
		l.mask[i] = 1
		if l.skip && rt.training && l.survival < 1 {
			if rt.rng.Float64() < l.survival {
				l.mask[i] = float32(1 / l.survival)
			} else {
				l.mask[i] = 0
			}
		}
	}
	hwI, hwO := l.h*l.w, l.ho*l.wo
	mid, cin, cout := l.mid, l.cin, l.cout
	st := stats(rt)
	if l.expand && l.keepZ1 {
		ph := rt.phase()
		ph.begin(0)
		l.bn1.begin()
		var epi func(t, i0, i1 int)
		if st {
			epi = func(t, i0, i1 int) { l.bn1.accum(t, l.z1[i0*mid:], i1-i0) }
		}
		kern.GemmEpi(rt.threads, l.n*hwI, mid, cin, x, cin, in[l.iW1], mid, l.z1, mid, false, epi)
		l.bn1.finish(rt, in[l.iG1], in[l.iB1])
		ph.mark(0, kindExpand)
		ph.end()
		rt.work(kindExpand, 2*float64(l.n*hwI)*float64(cin*mid), 4*float64(l.n*hwI)*float64(cin+mid))
	} else if l.expand {
		l.bn1.begin()
		if st {
			rt.single(kindBNAct, func() { l.expansionStats(rt, x, in[l.iW1]) })
			rt.work(kindBNAct, 2*float64(l.n*hwI)*float64(cin*cin), 4*float64(l.n*hwI*cin))
		}
		l.bn1.finish(rt, in[l.iG1], in[l.iB1])
	}

	// The depthwise (or regular) convolution of the expanded activation,
	// recomputed chunk by chunk from z1.
	l.bn2.begin()
	ph := rt.phase()
	rt.parImages(l.n, l.chunkIn, func(t, n0, n1 int) {
		ph.begin(t)
		nc := n1 - n0
		src, c := x[n0*hwI*cin:], cin
		if l.expand {
			z1 := l.expansion(rt, t, x, in, n0, n1)
			ph.mark(t, kindExpand)
			a := rt.localBuf(t, lA, nc*hwI*mid)
			l.bn1.apply(a, z1, nc*hwI, nil, nil)
			src, c = a, mid
			ph.mark(t, kindBNAct)
		}
		z2 := l.z2[n0*hwO*mid:][:nc*hwO*mid]
		if l.conv {
			kk := l.cv.width()
			cols := rt.localBuf(t, lCols, nc*hwO*kk)
			l.cv.fill(cols, src, 0, nc)
			kern.Gemm(1, nc*hwO, mid, kk, cols, kk, in[l.iWd], mid, z2, mid, false)
		} else {
			for i := 0; i < nc; i++ {
				l.dw.Forward(z2[i*hwO*mid:], src[i*hwI*c:], in[l.iWd])
			}
		}
		if st {
			l.bn2.accum(t, z2, nc*hwO)
		}
		ph.mark(t, l.convKind())
	})
	l.bn2.finish(rt, in[l.iG2], in[l.iB2])
	ph.end()
	l.recomputed(rt)
	rt.work(l.convKind(), 2*float64(l.n*hwO)*float64(l.k*l.k*mid)*float64(l.convFanIn()), 4*float64(l.n)*float64(hwI*mid+hwO*mid))
	if l.expand {
		rt.work(kindBNAct, 0, 8*float64(l.n*hwI*mid))
	}

	// Activation, squeeze-excite and projection, chunk by chunk.
	if !l.conv {
		l.bn3.begin()
	}
	ph = rt.phase()
	rt.parImages(l.n, l.chunkOut, func(t, n0, n1 int) {
		ph.begin(t)
		nc := n1 - n0
		rows := nc * hwO
		a3 := rt.localBuf(t, lA, rows*mid)
		l.bn2.apply(a3, l.z2[n0*hwO*mid:], rows, nil, nil)
		ph.mark(t, kindBNAct)
		if l.se > 0 {
			l.squeeze(rt, t, a3, n0, n1, in)
			ph.mark(t, kindSE)
		}
		if l.conv {
			for i := n0; i < n1; i++ {
				a, o := a3[(i-n0)*hwO*mid:][:hwO*mid], out[i*hwO*cout:][:hwO*cout]
				if !l.skip {
					copy(o, a)
					continue
				}
				sc := l.vec[t][:mid]
				for j := range sc {
					sc[j] = l.mask[i]
				}
				kern.AffineAdd(o, a, x[i*hwI*cin:], hwO, mid, sc, rt.zeros)
			}
			ph.mark(t, kindResidual)
			return
		}
		z4 := l.z4[n0*hwO*cout:][:rows*cout]
		var epi func(int, int, int)
		if st {
			epi = func(_, i0, i1 int) { l.bn3.accum(t, z4[i0*cout:], i1-i0) }
		}
		kern.GemmEpi(1, rows, cout, mid, a3, mid, in[l.iW4], cout, z4, cout, false, epi)
		ph.mark(t, kindProject)
	})
	ph.end()
	rt.work(kindBNAct, 0, 8*float64(l.n*hwO*mid))
	if l.conv {
		return
	}
	rt.work(kindProject, 2*float64(l.n*hwO)*float64(mid*cout), 4*float64(l.n*hwO)*float64(cout))
	l.bn3.finish(rt, in[l.iG3], in[l.iB3])

	// Batch norm of the projection, and the skip.
	ph = rt.phase()
	rt.parImages(l.n, l.chunkOut, func(t, n0, n1 int) {
		ph.begin(t)
		if !l.skip {
			rows := (n1 - n0) * hwO
			kern.Affine(out[n0*hwO*cout:], l.z4[n0*hwO*cout:], rows, cout, l.bn3.scale, l.bn3.shift, kern.ActNone, nil, nil)
			ph.mark(t, kindBNAct)
			return
		}
		for i := n0; i < n1; i++ {
			sc, sh := l.bn3.scale, l.bn3.shift
			if m := l.mask[i]; m != 1 {
				sc, sh = l.vec[t][:cout], l.vec[t][cout:2*cout]
				for j := range sc {
					sc[j], sh[j] = l.bn3.scale[j]*m, l.bn3.shift[j]*m
				}
			}
			o := i * hwO * cout
			kern.AffineAdd(out[o:], l.z4[o:], x[o:], hwO, cout, sc, sh)
		}
		ph.mark(t, kindResidual)
	})
	ph.end()
	rt.work(kindBNAct, 0, 12*float64(l.n*hwO*cout))
}

// dropped reports whether drop-connect scales any of images [n0, n1).
func (l *blockLayer) dropped(n0, n1 int) bool {
	for _, m := range l.mask[n0:n1] {
		if m != 1 {
			return true
		}
	}
	return false
}

// recomputeZ1 is the widest input for which a block recomputes its
// expansion z1 = x*W1 wherever it needs it instead of keeping it: a
// multiply-add per input channel costs less than reading the value back
// from memory, and z1 is a block's largest tensor.
const recomputeZ1 = 32

// expansion returns z1 for images [n0, n1): the kept rows, or the rows
// recomputed into thread t's scratch.
func (l *blockLayer) expansion(rt *runtime, t int, x []float32, in [][]float32, n0, n1 int) []float32 {
	hw := l.h * l.w
	if l.keepZ1 {
		return l.z1[n0*hw*l.mid:][:(n1-n0)*hw*l.mid]
	}
	z := rt.localBuf(t, lE, (n1-n0)*hw*l.mid)
	kern.Gemm(1, (n1-n0)*hw, l.mid, l.cin, x[n0*hw*l.cin:], l.cin, in[l.iW1], l.mid, z, l.mid, false)
	return z
}

// expansionStats sets bn1's sums to those of z1 = x*W1 without computing
// z1: the column sums of z1 are colsum(x)*W1, and the column sums of its
// squares are w_j^T (x^T x) w_j for column w_j of W1. x^T x and colsum(x)
// cost cin/mid of what z1 does.
func (l *blockLayer) expansionStats(rt *runtime, x, w1 []float32) {
	cin, mid, hw := l.cin, l.mid, l.h*l.w
	for t := range l.gram {
		clear(l.gram[t])
	}
	rt.parImages(l.n, l.chunkIn, func(t, n0, n1 int) {
		xs := x[n0*hw*cin:]
		g, s := l.gramTmp[t][:cin*cin], l.gramTmp[t][cin*cin:]
		for r0, rows := 0, (n1-n0)*hw; r0 < rows; r0 += statRows {
			n := min(statRows, rows-r0)
			xr := xs[r0*cin:]
			kern.GemmTN(1, cin, cin, n, xr, cin, xr, cin, g, cin, false)
			clear(s)
			kern.ColSum(xr, n, cin, s)
			fold(l.gram[t][:cin*cin], g)
			fold(l.gram[t][cin*cin:], s)
		}
	})
	tot := l.gram[0]
	for t := 1; t < len(l.gram); t++ {
		for i, v := range l.gram[t] {
			tot[i] += v
		}
	}
	g, s := tot[:cin*cin], tot[cin*cin:]
	sum, sq := l.bn1.sum[0], l.bn1.sq[0]
	for j := 0; j < mid; j++ {
		var a, b float64
		for p := 0; p < cin; p++ {
			wp := float64(w1[p*mid+j])
			a += s[p] * wp
			var h float64 // (x^T x w_j)_p
			for q, gv := range g[p*cin : p*cin+cin] {
				h += gv * float64(w1[q*mid+j])
			}
			b += wp * h
		}
		sum[j], sq[j] = a, b
	}
}

// recomputed charges the work of a pass's recomputations of z1.
func (l *blockLayer) recomputed(rt *runtime) {
	if l.expand && !l.keepZ1 {
		rt.work(kindExpand, 2*float64(l.n*l.h*l.w)*float64(l.cin*l.mid), 0)
	}
}

func (l *blockLayer) convKind() profKind {
	if l.conv {
		return kindConv
	}
	return kindDepthwise
}

// convFanIn is the input channels each output of the k x k convolution
// sums over: all of them for a regular convolution, one for a depthwise.
func (l *blockLayer) convFanIn() int {
	if l.conv {
		return l.cin
	}
	return 1
}

// squeeze computes the excitation of images [n0, n1) from their
// activations a3 (chunk-relative) and scales a3 by it.
func (l *blockLayer) squeeze(rt *runtime, t int, a3 []float32, n0, n1 int, in [][]float32) {
	c, r, hw, nc := l.mid, l.se, l.ho*l.wo, n1-n0
	pool := l.pool[n0*c:][:nc*c]
	clear(pool)
	inv := 1 / float32(hw)
	for i := 0; i < nc; i++ {
		p := pool[i*c:][:c]
		kern.ColSum(a3[i*hw*c:], hw, c, p)
		for j := range p {
			p[j] *= inv
		}
	}
	h := l.seh[n0*r:][:nc*r]
	kern.Gemm(1, nc, r, c, pool, c, in[l.iWr], r, h, r, false)
	g := rt.localBuf(t, lVec, nc*r)
	for i := 0; i < nc; i++ {
		for j, b := range in[l.iBr][:r] {
			h[i*r+j] += b
			g[i*r+j] = actValue(l.act, h[i*r+j])
		}
	}
	s := l.ses[n0*c:][:nc*c]
	kern.Gemm(1, nc, c, r, g, r, in[l.iWe], c, s, c, false)
	for i := 0; i < nc; i++ {
		si := s[i*c:][:c]
		for j, b := range in[l.iBe][:c] {
			si[j] += b
		}
		kern.Sigmoid(si, si)
		kern.Affine(a3[i*hw*c:], a3[i*hw*c:], hw, c, si, rt.zeros, kern.ActNone, nil, nil)
	}
}

// actValue and actDeriv are an activation and its derivative at one point.
func actValue(act int, v float32) float32 {
	switch act {
	case actSwish:
		return v * kern.Sigmoid1(v)
	case actReLU:
		return max(v, 0)
	case actSigmoid:
		return kern.Sigmoid1(v)
	}
	return v
}

func actDeriv(act int, v float32) float32 {
	switch act {
	case actSwish:
		s := kern.Sigmoid1(v)
		return s * (1 + v*(1-s))
	case actReLU:
		if v > 0 {
			return 1
		}
		return 0
	case actSigmoid:
		s := kern.Sigmoid1(v)
		return s * (1 - s)
	}
	return 1
}

// grad returns where thread t adds up the gradient of input i.
func (l *blockLayer) grad(t int, din [][]float32, i int) []float32 {
	if t == 0 {
		return din[i]
	}
	return l.parts[t][i]
}

// startGrads clears the weight gradients every thread adds to, each
// thread its own.
func startGrads(parts *[][][]float32, threads int, din [][]float32, weights []int) {
	if threads > 1 && len(*parts) < threads {
		*parts = make([][][]float32, threads)
		for t := 1; t < threads; t++ {
			(*parts)[t] = make([][]float32, len(din))
			for _, i := range weights {
				(*parts)[t][i] = make([]float32, len(din[i]))
			}
		}
	}
	p := *parts
	kern.Par(threads, threads, func(t, _, _ int) {
		for _, i := range weights {
			if t == 0 {
				clear(din[i])
			} else {
				clear(p[t][i])
			}
		}
	})
}

// sumGrads adds the other threads' weight gradients to din, each thread
// a share of every weight.
func sumGrads(parts [][][]float32, din [][]float32, weights []int) {
	threads := len(parts)
	if threads < 2 {
		return
	}
	kern.Par(threads, threads, func(t, _, _ int) {
		for _, i := range weights {
			n := len(din[i])
			lo, hi := t*n/threads, (t+1)*n/threads
			d := din[i][lo:hi]
			for tt := 1; tt < threads; tt++ {
				for j, v := range parts[tt][i][lo:hi] {
					d[j] += v
				}
			}
		}
	})
}

func (l *blockLayer) backward(rt *runtime, in [][]float32, out, dy []float32, din [][]float32) {
	x, dx := in[0], din[0]
	weights := l.weights()
	startGrads(&l.parts, rt.threads, din, weights)
	hwI, hwO := l.h*l.w, l.ho*l.wo
	mid, cin, cout := l.mid, l.cin, l.cout
	mo := l.n * hwO

	// Batch norm of the projection, through the drop-connect factor.
	var dz4, wT4 []float32
	if !l.conv {
		dz4 = rt.sharedBuf(sGradOut, mo*cout)
		l.bn3.begin()
		ph := rt.phase()
		rt.parImages(l.n, l.chunkOut, func(t, n0, n1 int) {
			ph.begin(t)
			o := n0 * hwO * cout
			g := dy[o:]
			if l.dropped(n0, n1) {
				// The gradient through each image's factor, then one pass.
				g = dz4[o:]
				for i := n0; i < n1; i++ {
					m := l.vec[t][:cout]
					for j := range m {
						m[j] = l.mask[i]
					}
					p := i * hwO * cout
					kern.Affine(dz4[p:], dy[p:], hwO, cout, m, rt.zeros, kern.ActNone, nil, nil)
				}
			}
			l.bn3.grad(t, dz4[o:], g, l.z4[o:], (n1-n0)*hwO, nil, nil, nil)
			ph.mark(t, kindBNAct)
		})
		l.bn3.finishGrad(in[l.iG3], din[l.iG3], din[l.iB3])
		ph.end()
		wT4 = rt.sharedBuf(sWT1, cout*mid)
		rt.single(kindProject, func() { kern.Transpose(rt.threads, mid, cout, in[l.iW4], wT4) })
	}
	var weT, wrT []float32
	if l.se > 0 {
		weT = rt.sharedBuf(sWT3, 2*mid*l.se)
		weT, wrT = weT[:mid*l.se], weT[mid*l.se:]
		rt.single(kindSE, func() {
			kern.Transpose(rt.threads, l.se, mid, in[l.iWe], weT)
			kern.Transpose(rt.threads, mid, l.se, in[l.iWr], wrT)
		})
	}

	// The projection and squeeze-excite, chunk by chunk, and the first
	// pass of the second batch norm.
	dz2 := rt.sharedBuf(sGradMid, mo*mid)
	l.bn2.begin()
	ph := rt.phase()
	rt.parImages(l.n, l.chunkOut, func(t, n0, n1 int) {
		ph.begin(t)
		nc := n1 - n0
		rows := nc * hwO
		z2 := l.z2[n0*hwO*mid:]
		var a3, da3, sig []float32
		if !l.conv || l.se > 0 {
			a3 = rt.localBuf(t, lA, rows*mid)
			sig = rt.localBuf(t, lC, rows*mid)
			l.bn2.apply(a3, z2, rows, nil, sig)
			if l.se > 0 {
				for i := 0; i < nc; i++ {
					kern.Affine(a3[i*hwO*mid:], a3[i*hwO*mid:], hwO, mid, l.ses[(n0+i)*mid:], rt.zeros, kern.ActNone, nil, nil)
				}
			}
			ph.mark(t, kindBNAct)
		}
		if !l.conv {
			dz4c := rt.localBuf(t, lD, rows*cout)
			l.bn3.gradApply(dz4c, dz4[n0*hwO*cout:], l.z4[n0*hwO*cout:], rows)
			ph.mark(t, kindBNAct)
			da3 = rt.localBuf(t, lB, rows*mid)
			kern.Gemm(1, rows, mid, cout, dz4c, cout, wT4, mid, da3, mid, false)
			kern.GemmTN(1, mid, cout, rows, a3, mid, dz4c, cout, l.grad(t, din, l.iW4), cout, true)
			ph.mark(t, kindProject)
		} else {
			da3 = dy[n0*hwO*cout:][:rows*cout]
			if l.dropped(n0, n1) || l.se > 0 {
				// A copy the excitation can scale, through each image's
				// drop-connect factor.
				d := rt.localBuf(t, lB, rows*mid)
				for i := n0; i < n1; i++ {
					m := l.mask[i]
					for j, v := range da3[(i-n0)*hwO*mid:][:hwO*mid] {
						d[(i-n0)*hwO*mid+j] = v * m
					}
				}
				da3 = d
			}
		}
		if l.se == 0 {
			l.bn2.grad(t, dz2[n0*hwO*mid:], da3, z2, rows, nil, nil, sig)
			ph.mark(t, kindBNAct)
			return
		}
		gadd := l.excite(rt, t, da3, a3, n0, n1, in, din, weT, wrT)
		// The gradient of the activation: through the excitation, plus
		// what the pooling passes back.
		for i := 0; i < nc; i++ {
			o := i * hwO * mid
			kern.Affine(da3[o:], da3[o:], hwO, mid, l.ses[(n0+i)*mid:], gadd[i*mid:], kern.ActNone, nil, nil)
		}
		ph.mark(t, kindSE)
		l.bn2.grad(t, dz2[n0*hwO*mid:], da3, z2, rows, nil, nil, sig)
		ph.mark(t, kindBNAct)
	})
	l.bn2.finishGrad(in[l.iG2], din[l.iG2], din[l.iB2])
	ph.end()
	rt.work(kindBNAct, 0, 16*float64(mo*mid))
	if !l.conv {
		rt.work(kindProject, 4*float64(mo)*float64(mid*cout), 4*float64(mo)*float64(mid+cout))
	}

	// The convolution's gradients and the first pass of the first batch
	// norm, chunk by chunk.
	var dz1, wTc []float32
	if l.expand {
		dz1 = rt.sharedBuf(sGradExp, l.n*hwI*mid)
		l.bn1.begin()
	}
	if l.conv {
		wTc = rt.sharedBuf(sWT1, mid*l.cv.width())
		rt.single(kindConv, func() { kern.Transpose(rt.threads, l.cv.width(), mid, in[l.iWd], wTc) })
	}
	ph = rt.phase()
	rt.parImages(l.n, l.chunkIn, func(t, n0, n1 int) {
		ph.begin(t)
		nc := n1 - n0
		dz2c := rt.localBuf(t, lD, nc*hwO*mid)
		l.bn2.gradApply(dz2c, dz2[n0*hwO*mid:], l.z2[n0*hwO*mid:], nc*hwO)
		ph.mark(t, kindBNAct)
		src, c := x[n0*hwI*cin:], cin
		var sig, z1 []float32
		if l.expand {
			z1 = l.expansion(rt, t, x, in, n0, n1)
			ph.mark(t, kindExpand)
			a1 := rt.localBuf(t, lA, nc*hwI*mid)
			sig = rt.localBuf(t, lC, nc*hwI*mid)
			l.bn1.apply(a1, z1, nc*hwI, nil, sig)
			src, c = a1, mid
			ph.mark(t, kindBNAct)
		}
		var dsrc []float32
		acc := !l.expand && l.skip
		if l.expand {
			dsrc = rt.localBuf(t, lB, nc*hwI*mid)
		} else {
			dsrc = dx[n0*hwI*cin:][:nc*hwI*cin]
			if acc {
				copy(dsrc, dy[n0*hwO*cout:][:nc*hwO*cout])
			}
		}
		if l.conv {
			kk := l.cv.width()
			cols := rt.localBuf(t, lCols, nc*hwO*kk)
			l.cv.fill(cols, src, 0, nc)
			kern.GemmTN(1, kk, mid, nc*hwO, cols, kk, dz2c, mid, l.grad(t, din, l.iWd), mid, true)
			dcols := rt.localBuf(t, lC, nc*hwO*kk)
			kern.Gemm(1, nc*hwO, kk, mid, dz2c, mid, wTc, kk, dcols, kk, false)
			if !acc {
				clear(dsrc)
			}
			l.cv.scatter(dsrc, dcols, 0, nc)
		} else {
			gw := l.grad(t, din, l.iWd)
			for i := 0; i < nc; i++ {
				l.dw.BackwardFilter(gw, dz2c[i*hwO*mid:], src[i*hwI*c:])
				l.dw.BackwardData(dsrc[i*hwI*c:], dz2c[i*hwO*mid:], in[l.iWd], acc)
			}
		}
		ph.mark(t, l.convKind())
		if l.expand {
			l.bn1.grad(t, dz1[n0*hwI*mid:], dsrc, z1, nc*hwI, nil, nil, sig)
			ph.mark(t, kindBNAct)
		}
	})
	ph.end()
	l.recomputed(rt)
	rt.work(l.convKind(), 4*float64(mo)*float64(l.k*l.k*mid)*float64(l.convFanIn()), 4*float64(l.n)*float64(2*hwI*mid+hwO*mid))
	if !l.expand {
		sumGrads(l.parts, din, weights)
		return
	}
	rt.work(kindBNAct, 0, 12*float64(l.n*hwI*mid))
	l.bn1.finishGrad(in[l.iG1], din[l.iG1], din[l.iB1])

	// The expansion's gradients.
	wT1 := rt.sharedBuf(sWT2, mid*cin)
	rt.single(kindExpand, func() { kern.Transpose(rt.threads, cin, mid, in[l.iW1], wT1) })
	ph = rt.phase()
	rt.parImages(l.n, l.chunkIn, func(t, n0, n1 int) {
		ph.begin(t)
		rows := (n1 - n0) * hwI
		z1 := l.expansion(rt, t, x, in, n0, n1)
		ph.mark(t, kindExpand)
		dz1c := rt.localBuf(t, lA, rows*mid)
		l.bn1.gradApply(dz1c, dz1[n0*hwI*mid:], z1, rows)
		ph.mark(t, kindBNAct)
		kern.GemmTN(1, cin, mid, rows, x[n0*hwI*cin:], cin, dz1c, mid, l.grad(t, din, l.iW1), mid, true)
		dxc := dx[n0*hwI*cin:][:rows*cin]
		if l.skip {
			copy(dxc, dy[n0*hwI*cin:][:rows*cin])
		}
		kern.Gemm(1, rows, cin, mid, dz1c, mid, wT1, cin, dxc, cin, l.skip)
		ph.mark(t, kindExpand)
	})
	ph.end()
	l.recomputed(rt)
	rt.work(kindExpand, 4*float64(l.n*hwI)*float64(cin*mid), 4*float64(l.n*hwI)*float64(2*cin+mid))
	sumGrads(l.parts, din, weights)
}

// excite is squeeze-excite's backward pass for images [n0, n1), given da3,
// the gradient of the scaled activations a3: it adds the gradients of the
// squeeze-excite weights and returns what each image's channels get from
// the pooling (chunk-relative, (n1-n0, mid)).
func (l *blockLayer) excite(rt *runtime, t int, da3, a3 []float32, n0, n1 int, in, din [][]float32, weT, wrT []float32) []float32 {
	c, r, hw, nc := l.mid, l.se, l.ho*l.wo, n1-n0
	vec := rt.localBuf(t, lVec, nc*(2*c+2*r))
	dt, dpool, g, dh := vec[:nc*c], vec[nc*c:2*nc*c], vec[2*nc*c:][:nc*r], vec[2*nc*c+nc*r:][:nc*r]
	clear(dt)
	s := l.ses[n0*c:][:nc*c]
	for i := 0; i < nc; i++ {
		// sum(da3*a2) = sum(da3*a3)/s, so the sigmoid's input gets
		// sum(da3*a3)*(1-s).
		d := dt[i*c:][:c]
		kern.ColDot(da3[i*hw*c:], a3[i*hw*c:], hw, c, d)
		for j, sv := range s[i*c:][:c] {
			d[j] *= 1 - sv
		}
	}
	h := l.seh[n0*r:][:nc*r]
	for i, v := range h {
		g[i] = actValue(l.act, v)
	}
	kern.GemmTN(1, r, c, nc, g, r, dt, c, l.grad(t, din, l.iWe), c, true)
	dbe := l.grad(t, din, l.iBe)
	for i := 0; i < nc; i++ {
		for j, v := range dt[i*c:][:c] {
			dbe[j] += v
		}
	}
	kern.Gemm(1, nc, r, c, dt, c, weT, r, dh, r, false)
	dbr := l.grad(t, din, l.iBr)
	for i, v := range h {
		dh[i] *= actDeriv(l.act, v)
		dbr[i%r] += dh[i]
	}
	kern.GemmTN(1, c, r, nc, l.pool[n0*c:], c, dh, r, l.grad(t, din, l.iWr), r, true)
	kern.Gemm(1, nc, c, r, dh, r, wrT, c, dpool, c, false)
	inv := 1 / float32(hw)
	for i := range dpool {
		dpool[i] *= inv
	}
	return dpool
}
