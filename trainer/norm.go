package trainer

import (
	"fmt"
	"math"

	"github.com/effnas/effnas/trainer/internal/kern"
	"gorgonia.org/tensor"
)

// Activation codes of fused layers.
const (
	actNone = iota
	actSwish
	actReLU
	actSigmoid
)

// kernAct is the kernel form of an activation code (sigmoid is not fused).
func kernAct(act int) kern.Act {
	switch act {
	case actSwish:
		return kern.ActSwish
	case actReLU:
		return kern.ActReLU
	}
	return kern.ActNone
}

// Batch norm constants, TensorFlow's convention: the running statistics keep
// 0.99 of their old value per step.
const (
	bnMomentum = 0.99
	bnEps      = 1e-3
)

// statRows is how many rows a float32 column sum covers before it is added
// to the float64 totals.
const statRows = 64

// bnLayer is batch normalisation over the m rows of an (m, c) matrix
// fused with an activation: y = act(gamma*(z-mean)/sqrt(var+eps) + beta).
// In training it normalises with the batch statistics and updates the
// running statistics; in inference it uses the running statistics.
//
// It is a layer of its own (inputs z, gamma, beta), and the passes it is
// made of are the batch norms inside the stem, the blocks and the head,
// which keep z (the input of the batch norm, not its output: they
// recompute the output where they need it) and compute the statistics in
// the same pass that produces z (accum), chunk by chunk on several
// threads.
type bnLayer struct {
	m, c            int
	act             int
	runMean, runVar []float32
	mean, invstd    []float32
	scale, shift    []float32 // y = act(z*scale + shift)
	ka, kb, k0      []float32 // backward: dz = ka*g + kb*z + k0
	sum, sq         [][]float64
	tmp             [][]float32 // per thread: float32 sums of up to statRows rows
	updates         int         // training steps folded into the running statistics
	calMean, calVar []float64
	calN            int
	pop             bool // runMean/runVar hold calibrated population statistics
}

func newBN(m, c, act int) *bnLayer {
	return &bnLayer{m: m, c: c, act: act,
		runMean: make([]float32, c), runVar: make([]float32, c),
		mean: make([]float32, c), invstd: make([]float32, c),
		scale: make([]float32, c), shift: make([]float32, c),
		ka: make([]float32, c), kb: make([]float32, c), k0: make([]float32, c)}
}

// threads makes room for the sums of n threads.
func (l *bnLayer) threads(n int) *bnLayer {
	for len(l.sum) < max(n, 1) {
		l.sum = append(l.sum, make([]float64, l.c))
		l.sq = append(l.sq, make([]float64, l.c))
		l.tmp = append(l.tmp, make([]float32, 2*l.c))
	}
	return l
}

func (l *bnLayer) name() string           { return fmt.Sprintf("bn%d(%d,%d)", l.act, l.m, l.c) }
func (l *bnLayer) outShape() tensor.Shape { return tensor.Shape{l.m, l.c} }
func (l *bnLayer) diff() []bool           { return []bool{true, true, true} }

// forward and backward run the batch norm as a layer of its own, on
// inputs z, gamma and beta.
func (l *bnLayer) forward(rt *runtime, in [][]float32, out []float32) {
	l.threads(rt.threads)
	z := in[0]
	l.begin()
	if stats(rt) {
		kern.Par(rt.threads, l.m, func(t, lo, hi int) { l.accum(t, z[lo*l.c:], hi-lo) })
	}
	l.finish(rt, in[1], in[2])
	kern.Par(rt.threads, l.m, func(_, lo, hi int) { l.apply(out[lo*l.c:], z[lo*l.c:], hi-lo, nil, nil) })
}

func (l *bnLayer) backward(rt *runtime, in [][]float32, out, dy []float32, din [][]float32) {
	l.threads(rt.threads)
	z, dz := in[0], din[0]
	if dz == nil {
		dz = make([]float32, l.m*l.c)
	}
	l.begin()
	kern.Par(rt.threads, l.m, func(t, lo, hi int) { l.grad(t, dz[lo*l.c:], dy[lo*l.c:], z[lo*l.c:], hi-lo, nil, nil, nil) })
	l.finishGrad(in[1], din[1], din[2])
	if din[0] != nil {
		kern.Par(rt.threads, l.m, func(_, lo, hi int) { l.gradApply(dz[lo*l.c:], dz[lo*l.c:], z[lo*l.c:], hi-lo) })
	}
}

// floats is the memory a bnLayer holds, in floats.
func (l *bnLayer) floats() int64 {
	return int64(l.c)*9 + int64(len(l.sum))*int64(l.c)*4
}

// stats reports whether the forward pass computes batch statistics.
func stats(rt *runtime) bool { return rt.training || rt.calib }

// running returns the running mean and variance, debiased as Adam debiases
// its moments: the averages start at zero and are divided by 1-0.99^t after
// t updates. Without this a proxy run of a few hundred steps evaluates with
// statistics still dominated by their initial values (0.99^300 = 5%).
// Before any update it returns mean 0 and variance 1.
func (l *bnLayer) running() (mean, variance []float32) {
	if l.pop {
		return l.runMean, l.runVar
	}
	mean = make([]float32, l.c)
	variance = make([]float32, l.c)
	if l.updates == 0 {
		for j := range variance {
			variance[j] = 1
		}
		return mean, variance
	}
	corr := 1 - math.Pow(bnMomentum, float64(l.updates))
	for j := range mean {
		mean[j] = float32(float64(l.runMean[j]) / corr)
		variance[j] = float32(float64(l.runVar[j]) / corr)
	}
	return mean, variance
}

// restartEMA goes back to a moving average after a calibration: the
// calibrated statistics count as fully warmed-up averages.
func (l *bnLayer) restartEMA() {
	l.pop = false
	l.updates = 1 << 20 // 0.99^t is 0: no debiasing
}

// startCalibration clears the accumulators of calibrate.
func (l *bnLayer) startCalibration() {
	if l.calMean == nil {
		l.calMean = make([]float64, l.c)
		l.calVar = make([]float64, l.c)
	}
	clear(l.calMean)
	clear(l.calVar)
	l.calN = 0
}

// endCalibration replaces the running statistics with the averages of the
// batch statistics seen since startCalibration, if there were any.
func (l *bnLayer) endCalibration() {
	if l.calN == 0 {
		return
	}
	for j := range l.runMean {
		l.runMean[j] = float32(l.calMean[j] / float64(l.calN))
		l.runVar[j] = float32(l.calVar[j] / float64(l.calN))
	}
	l.pop = true
}

// begin clears the per-thread sums before a pass of accum or grad.
func (l *bnLayer) begin() {
	for t := range l.sum {
		clear(l.sum[t])
		clear(l.sq[t])
	}
}

// accum adds the column sums of z (rows x c) and of its squares to thread
// t's statistics.
func (l *bnLayer) accum(t int, z []float32, rows int) {
	c := l.c
	s, q := l.tmp[t][:c], l.tmp[t][c:2*c]
	for r0 := 0; r0 < rows; r0 += statRows {
		n := min(statRows, rows-r0)
		clear(s)
		clear(q)
		kern.ColStats(z[r0*c:], n, c, s, q)
		fold(l.sum[t], s)
		fold(l.sq[t], q)
	}
}

func fold(dst []float64, src []float32) {
	for j, v := range src {
		dst[j] += float64(v)
	}
}

// finish computes the normalisation of this pass from gamma and beta: from
// the batch statistics accumulated since begin in training and
// calibration, from the running statistics in inference.
func (l *bnLayer) finish(rt *runtime, gamma, beta []float32) {
	c := l.c
	if stats(rt) {
		for j := 0; j < c; j++ {
			var s, q float64
			for t := range l.sum {
				s += l.sum[t][j]
				q += l.sq[t][j]
			}
			mean := s / float64(l.m)
			v := max(q/float64(l.m)-mean*mean, 0)
			l.mean[j] = float32(mean)
			l.invstd[j] = float32(1 / math.Sqrt(v+bnEps))
			unbiased := v
			if l.m > 1 {
				unbiased = v * float64(l.m) / float64(l.m-1)
			}
			if rt.calib {
				l.calMean[j] += mean
				l.calVar[j] += unbiased
				continue
			}
			l.runMean[j] = float32(bnMomentum*float64(l.runMean[j]) + (1-bnMomentum)*mean)
			l.runVar[j] = float32(bnMomentum*float64(l.runVar[j]) + (1-bnMomentum)*unbiased)
		}
		if rt.calib {
			l.calN++
		} else {
			if l.pop {
				l.restartEMA()
			}
			l.updates++
		}
	} else {
		mean, variance := l.running()
		for j := 0; j < c; j++ {
			l.mean[j] = mean[j]
			l.invstd[j] = float32(1 / math.Sqrt(float64(variance[j])+bnEps))
		}
	}
	for j := 0; j < c; j++ {
		l.scale[j] = gamma[j] * l.invstd[j]
		l.shift[j] = beta[j] - l.mean[j]*l.scale[j]
	}
}

// apply sets dst = act(bn(z)) for rows rows, times mul (per channel) when
// it is not nil. With swish and a sig that is not nil it keeps the
// sigmoids in sig, for a grad over the same rows.
func (l *bnLayer) apply(dst, z []float32, rows int, mul, sig []float32) {
	kern.Affine(dst, z, rows, l.c, l.scale, l.shift, kernAct(l.act), mul, sig)
}

// grad is the first backward pass over rows rows, on thread t: with the
// gradient of the output g = dy*gmul + gadd (see kern.ActGrad), it sets
// dz to the gradient of the activation's input and adds up the sums the
// second pass needs. sig, unless nil, holds the sigmoids an apply over
// the same rows kept.
func (l *bnLayer) grad(t int, dz, dy, z []float32, rows int, gmul, gadd, sig []float32) {
	c := l.c
	s, q := l.tmp[t][:c], l.tmp[t][c:2*c]
	for r0 := 0; r0 < rows; r0 += statRows {
		n := min(statRows, rows-r0)
		clear(s)
		clear(q)
		var d, sg []float32
		if dy != nil {
			d = dy[r0*c:]
		}
		if sig != nil {
			sg = sig[r0*c:]
		}
		kern.ActGrad(dz[r0*c:], d, z[r0*c:], n, c, l.scale, l.shift, gmul, gadd, kernAct(l.act), sg, s, q)
		fold(l.sum[t], s)
		fold(l.sq[t], q)
	}
}

// finishGrad turns the sums of grad into the gradients of gamma and beta
// (either may be nil) and the coefficients of gradApply.
func (l *bnLayer) finishGrad(gamma, dgamma, dbeta []float32) {
	m := float64(l.m)
	for j := 0; j < l.c; j++ {
		var s, q float64
		for t := range l.sum {
			s += l.sum[t][j]
			q += l.sq[t][j]
		}
		mean, invstd := float64(l.mean[j]), float64(l.invstd[j])
		dxhat := invstd * (q - mean*s) // sum of dz * xhat
		if dbeta != nil {
			dbeta[j] = float32(s)
		}
		if dgamma != nil {
			dgamma[j] = float32(dxhat)
		}
		// dx = gamma*invstd*(dz - mean(dz) - xhat*mean(dz*xhat))
		a := float64(gamma[j]) * invstd
		mdz, mdq := s/m, dxhat/m
		l.ka[j] = float32(a)
		l.kb[j] = float32(-a * invstd * mdq)
		l.k0[j] = float32(-a*mdz + a*invstd*mdq*mean)
	}
}

// gradApply is the second backward pass: dx = gradient of bn's input,
// from dz (the first pass's result) and z. dx may be dz.
func (l *bnLayer) gradApply(dx, dz, z []float32, rows int) {
	kern.Affine2(dx, dz, z, rows, l.c, l.ka, l.kb, l.k0)
}
