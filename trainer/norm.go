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

// Batch norm constants, TensorFlow's convention: the running statistics keep
// 0.99 of their old value per step.
const (
	bnMomentum = 0.99
	bnEps      = 1e-3
)

// bnLayer is batch normalisation over the rows of an (M, C) matrix fused with
// an activation: y = act(gamma*(x-mean)/sqrt(var+eps) + beta). In training
// mode it normalises with the batch statistics and updates the running
// statistics; in inference mode it uses the running statistics. Inputs: x,
// gamma (C), beta (C).
type bnLayer struct {
	m, c, act       int
	runMean, runVar []float32
	mean, invstd    []float32
	scale, shift    []float32
	sig             []float32 // sigmoid of the pre-activation (swish), saved for backward
	sum, sq         [][]float64
	dsum, dsq       []float64
	updates         int // training steps folded into the running statistics
	calMean, calVar []float64
	calN            int
	pop             bool // runMean/runVar hold calibrated population statistics
}

func newBN(m, c, act int) *bnLayer {
	l := &bnLayer{m: m, c: c, act: act,
		runMean: make([]float32, c), runVar: make([]float32, c),
		mean: make([]float32, c), invstd: make([]float32, c),
		scale: make([]float32, c), shift: make([]float32, c),
		dsum: make([]float64, c), dsq: make([]float64, c)}
	return l
}

func (l *bnLayer) name() string           { return fmt.Sprintf("bn%d(%d,%d)", l.act, l.m, l.c) }
func (l *bnLayer) outShape() tensor.Shape { return tensor.Shape{l.m, l.c} }
func (l *bnLayer) diff() []bool           { return []bool{true, true, true} }

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

// colSums adds up f(row) per channel over the rows in parallel chunks, in a
// fixed order so that the result does not depend on scheduling.
func (l *bnLayer) partials(t int) {
	if len(l.sum) < t {
		l.sum = make([][]float64, t)
		l.sq = make([][]float64, t)
	}
	for i := 0; i < t; i++ {
		if l.sum[i] == nil {
			l.sum[i] = make([]float64, l.c)
			l.sq[i] = make([]float64, l.c)
		}
		clear(l.sum[i])
		clear(l.sq[i])
	}
}

func (l *bnLayer) forward(rt *runtime, in [][]float32, out []float32) {
	x, gamma, beta, c := in[0], in[1], in[2], l.c
	if rt.training || rt.calib {
		t := max(rt.threads, 1)
		l.partials(t)
		kern.Par(t, l.m, func(ti, lo, hi int) {
			s, q := l.sum[ti], l.sq[ti]
			for i := lo; i < hi; i++ {
				row := x[i*c:][:c]
				for j, v := range row {
					s[j] += float64(v)
					q[j] += float64(v) * float64(v)
				}
			}
		})
		for j := 0; j < c; j++ {
			var s, q float64
			for ti := 0; ti < t; ti++ {
				s += l.sum[ti][j]
				q += l.sq[ti][j]
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
	if l.act == actSwish && l.sig == nil {
		l.sig = make([]float32, l.m*c)
	}
	kern.Par(rt.threads, l.m, func(_, lo, hi int) {
		scale, shift := l.scale[:c], l.shift[:c]
		for i := lo; i < hi; i++ {
			xr, yr := x[i*c:][:c], out[i*c:][:c]
			switch l.act {
			case actSwish:
				sr := l.sig[i*c:][:c]
				for j, v := range xr {
					yr[j] = v*scale[j] + shift[j]
				}
				kern.Sigmoid(sr, yr)
				for j, s := range sr {
					yr[j] *= s
				}
			case actReLU:
				for j, v := range xr {
					yr[j] = max(v*scale[j]+shift[j], 0)
				}
			default:
				for j, v := range xr {
					yr[j] = v*scale[j] + shift[j]
				}
			}
		}
	})
}

func (l *bnLayer) backward(rt *runtime, in [][]float32, out, dy []float32, din [][]float32) {
	x, gamma, c := in[0], in[1], l.c
	t := max(rt.threads, 1)
	l.partials(t)
	dz := din[0]
	if dz == nil {
		// Only parameter gradients wanted: compute dz into scratch.
		dz = make([]float32, l.m*c)
	}
	// Pass 1: dz = dy * act'(z); per channel sums of dz and dz*xhat.
	kern.Par(t, l.m, func(ti, lo, hi int) {
		s, q := l.sum[ti], l.sq[ti]
		mean, invstd, scale, shift := l.mean[:c], l.invstd[:c], l.scale[:c], l.shift[:c]
		for i := lo; i < hi; i++ {
			xr, gr, dr := x[i*c:][:c], dy[i*c:][:c], dz[i*c:][:c]
			switch l.act {
			case actSwish:
				sr := l.sig[i*c:][:c]
				for j, v := range xr {
					z := v*scale[j] + shift[j]
					sg := sr[j]
					dr[j] = gr[j] * sg * (1 + z*(1-sg))
				}
			case actReLU:
				for j, v := range xr {
					if v*scale[j]+shift[j] > 0 {
						dr[j] = gr[j]
					} else {
						dr[j] = 0
					}
				}
			default:
				copy(dr, gr)
			}
			for j, v := range xr {
				d := float64(dr[j])
				s[j] += d
				q[j] += d * float64((v-mean[j])*invstd[j])
			}
		}
	})
	for j := 0; j < c; j++ {
		var s, q float64
		for ti := 0; ti < t; ti++ {
			s += l.sum[ti][j]
			q += l.sq[ti][j]
		}
		l.dsum[j], l.dsq[j] = s, q
	}
	if din[2] != nil {
		for j := 0; j < c; j++ {
			din[2][j] = float32(l.dsum[j])
		}
	}
	if din[1] != nil {
		for j := 0; j < c; j++ {
			din[1][j] = float32(l.dsq[j])
		}
	}
	if din[0] == nil {
		return
	}
	// Pass 2: dx = gamma*invstd * (dz - mean(dz) - xhat*mean(dz*xhat)).
	mdz := make([]float32, c)
	mdq := make([]float32, c)
	for j := 0; j < c; j++ {
		mdz[j] = float32(l.dsum[j] / float64(l.m))
		mdq[j] = float32(l.dsq[j] / float64(l.m))
	}
	kern.Par(t, l.m, func(_, lo, hi int) {
		mean, invstd := l.mean[:c], l.invstd[:c]
		g := gamma[:c]
		for i := lo; i < hi; i++ {
			xr, dr := x[i*c:][:c], dz[i*c:][:c]
			for j, v := range xr {
				xh := (v - mean[j]) * invstd[j]
				dr[j] = g[j] * invstd[j] * (dr[j] - mdz[j] - xh*mdq[j])
			}
		}
	})
}
