package trainer

import (
	"fmt"

	"github.com/effnas/effnas/trainer/internal/kern"
	"gorgonia.org/tensor"
)

// samePad returns the output size and the leading padding of TensorFlow's
// "same" padding: out = ceil(in/stride), the total padding split with the
// extra pixel (if any) at the end.
func samePad(in, k, s int) (out, lead int) {
	out = (in + s - 1) / s
	total := max((out-1)*s+k-in, 0)
	return out, total / 2
}

// convLayer is a regular k x k convolution with "same" padding over NHWC
// input as im2col + GEMM; a 1x1 stride-1 convolution (and a fully connected
// layer: H = W = 1) is a plain GEMM. Inputs: x (N*H*W, Cin), w (k*k*Cin,
// Cout) and, with bias, b (Cout).
type convLayer struct {
	n, h, w, cin, cout, k, s int
	ho, wo, pt, pl           int
	bias                     bool
	cols, colsT, wT, dcols   []float32
	parts                    [][]float32
}

func newConv(n, h, w, cin, cout, k, s int, bias bool) *convLayer {
	l := &convLayer{n: n, h: h, w: w, cin: cin, cout: cout, k: k, s: s, bias: bias}
	l.ho, l.pt = samePad(h, k, s)
	l.wo, l.pl = samePad(w, k, s)
	return l
}

func (l *convLayer) direct() bool { return l.k == 1 && l.s == 1 }
func (l *convLayer) name() string {
	return fmt.Sprintf("conv%dx%d/%d(%d->%d)", l.k, l.k, l.s, l.cin, l.cout)
}
func (l *convLayer) outShape() tensor.Shape { return tensor.Shape{l.n * l.ho * l.wo, l.cout} }
func (l *convLayer) diff() []bool {
	if l.bias {
		return []bool{true, true, true}
	}
	return []bool{true, true}
}

func (l *convLayer) im2col(rt *runtime, x []float32) []float32 {
	if l.direct() {
		return x
	}
	kk := l.k * l.k * l.cin
	if l.cols == nil {
		l.cols = make([]float32, l.n*l.ho*l.wo*kk)
	}
	kern.Par(rt.threads, l.n, func(_, lo, hi int) {
		for n := lo; n < hi; n++ {
			for oh := 0; oh < l.ho; oh++ {
				for ow := 0; ow < l.wo; ow++ {
					row := l.cols[((n*l.ho+oh)*l.wo+ow)*kk:][:kk]
					for kh := 0; kh < l.k; kh++ {
						ih := oh*l.s - l.pt + kh
						for kw := 0; kw < l.k; kw++ {
							iw := ow*l.s - l.pl + kw
							dst := row[(kh*l.k+kw)*l.cin:][:l.cin]
							if ih < 0 || ih >= l.h || iw < 0 || iw >= l.w {
								clear(dst)
								continue
							}
							copy(dst, x[((n*l.h+ih)*l.w+iw)*l.cin:][:l.cin])
						}
					}
				}
			}
		}
	})
	return l.cols
}

func (l *convLayer) forward(rt *runtime, in [][]float32, out []float32) {
	a := l.im2col(rt, in[0])
	m, kk := l.n*l.ho*l.wo, l.k*l.k*l.cin
	kern.Gemm(rt.threads, m, l.cout, kk, a, kk, in[1], l.cout, out, l.cout, false)
	if l.bias {
		b := in[2][:l.cout]
		for i := 0; i < m; i++ {
			row := out[i*l.cout:][:l.cout]
			for j, v := range b {
				row[j] += v
			}
		}
	}
}

func (l *convLayer) backward(rt *runtime, in [][]float32, out, dy []float32, din [][]float32) {
	m, kk := l.n*l.ho*l.wo, l.k*l.k*l.cin
	a := in[0]
	if !l.direct() {
		a = l.cols // still holds this step's im2col
	}
	if din[1] != nil {
		// dW = a^T dy, the long inner dimension m split across threads.
		if len(l.colsT) < m*kk {
			l.colsT = make([]float32, m*kk)
		}
		kern.Transpose(rt.threads, m, kk, a, l.colsT)
		t := max(rt.threads, 1)
		if int64(m)*int64(kk)*int64(l.cout) < 1<<16 {
			t = 1
		}
		if len(l.parts) < t {
			l.parts = make([][]float32, t)
		}
		chunk := (m + t - 1) / t
		kern.Par(t, t, func(ti, _, _ int) {
			lo, hi := ti*chunk, min((ti+1)*chunk, m)
			dst := din[1]
			if ti > 0 {
				if l.parts[ti] == nil {
					l.parts[ti] = make([]float32, kk*l.cout)
				}
				dst = l.parts[ti]
			}
			if lo >= hi {
				clear(dst[:kk*l.cout])
				return
			}
			kern.Gemm(1, kk, l.cout, hi-lo, l.colsT[lo:], m, dy[lo*l.cout:], l.cout, dst, l.cout, false)
		})
		for ti := 1; ti < t; ti++ {
			for i, v := range l.parts[ti][:kk*l.cout] {
				din[1][i] += v
			}
		}
	}
	if l.bias && din[2] != nil {
		db := din[2][:l.cout]
		clear(db)
		for i := 0; i < m; i++ {
			for j, v := range dy[i*l.cout:][:l.cout] {
				db[j] += v
			}
		}
	}
	if din[0] == nil {
		return
	}
	if len(l.wT) < kk*l.cout {
		l.wT = make([]float32, kk*l.cout)
	}
	kern.Transpose(1, kk, l.cout, in[1], l.wT)
	if l.direct() {
		kern.Gemm(rt.threads, m, kk, l.cout, dy, l.cout, l.wT, kk, din[0], kk, false)
		return
	}
	if l.dcols == nil {
		l.dcols = make([]float32, m*kk)
	}
	kern.Gemm(rt.threads, m, kk, l.cout, dy, l.cout, l.wT, kk, l.dcols, kk, false)
	dx := din[0]
	kern.Par(rt.threads, l.n, func(_, lo, hi int) {
		clear(dx[lo*l.h*l.w*l.cin : hi*l.h*l.w*l.cin])
		for n := lo; n < hi; n++ {
			for oh := 0; oh < l.ho; oh++ {
				for ow := 0; ow < l.wo; ow++ {
					row := l.dcols[((n*l.ho+oh)*l.wo+ow)*kk:][:kk]
					for kh := 0; kh < l.k; kh++ {
						ih := oh*l.s - l.pt + kh
						if ih < 0 || ih >= l.h {
							continue
						}
						for kw := 0; kw < l.k; kw++ {
							iw := ow*l.s - l.pl + kw
							if iw < 0 || iw >= l.w {
								continue
							}
							src := row[(kh*l.k+kw)*l.cin:][:l.cin]
							d := dx[((n*l.h+ih)*l.w+iw)*l.cin:][:l.cin]
							for c, v := range src {
								d[c] += v
							}
						}
					}
				}
			}
		}
	})
}

// dwLayer is a depthwise k x k convolution with stride s and "same"
// padding. Inputs: x (N*H*W, C) and w (k*k, C).
type dwLayer struct {
	n, h, w, c, k, s int
	ho, wo, pt, pl   int
	parts            [][]float32
}

func newDW(n, h, w, c, k, s int) *dwLayer {
	l := &dwLayer{n: n, h: h, w: w, c: c, k: k, s: s}
	l.ho, l.pt = samePad(h, k, s)
	l.wo, l.pl = samePad(w, k, s)
	return l
}

func (l *dwLayer) name() string           { return fmt.Sprintf("dw%dx%d/%d(%d)", l.k, l.k, l.s, l.c) }
func (l *dwLayer) outShape() tensor.Shape { return tensor.Shape{l.n * l.ho * l.wo, l.c} }
func (l *dwLayer) diff() []bool           { return []bool{true, true} }

func (l *dwLayer) forward(rt *runtime, in [][]float32, out []float32) {
	x, wt, c := in[0], in[1], l.c
	kern.Par(rt.threads, l.n, func(_, lo, hi int) {
		for n := lo; n < hi; n++ {
			for oh := 0; oh < l.ho; oh++ {
				for ow := 0; ow < l.wo; ow++ {
					o := out[((n*l.ho+oh)*l.wo+ow)*c:][:c]
					clear(o)
					for kh := 0; kh < l.k; kh++ {
						ih := oh*l.s - l.pt + kh
						if ih < 0 || ih >= l.h {
							continue
						}
						for kw := 0; kw < l.k; kw++ {
							iw := ow*l.s - l.pl + kw
							if iw < 0 || iw >= l.w {
								continue
							}
							kern.MulAdd(o, x[((n*l.h+ih)*l.w+iw)*c:][:c], wt[(kh*l.k+kw)*c:][:c])
						}
					}
				}
			}
		}
	})
}

func (l *dwLayer) backward(rt *runtime, in [][]float32, out, dy []float32, din [][]float32) {
	x, wt, c := in[0], in[1], l.c
	dx, dw := din[0], din[1]
	t := max(rt.threads, 1)
	if len(l.parts) < t {
		l.parts = make([][]float32, t)
	}
	for i := 0; i < t; i++ {
		if l.parts[i] == nil {
			l.parts[i] = make([]float32, l.k*l.k*c)
		}
		clear(l.parts[i])
	}
	kern.Par(t, l.n, func(ti, lo, hi int) {
		pw := l.parts[ti]
		if dx != nil {
			clear(dx[lo*l.h*l.w*c : hi*l.h*l.w*c])
		}
		for n := lo; n < hi; n++ {
			for oh := 0; oh < l.ho; oh++ {
				for ow := 0; ow < l.wo; ow++ {
					g := dy[((n*l.ho+oh)*l.wo+ow)*c:][:c]
					for kh := 0; kh < l.k; kh++ {
						ih := oh*l.s - l.pt + kh
						if ih < 0 || ih >= l.h {
							continue
						}
						for kw := 0; kw < l.k; kw++ {
							iw := ow*l.s - l.pl + kw
							if iw < 0 || iw >= l.w {
								continue
							}
							off := ((n*l.h+ih)*l.w + iw) * c
							tap := (kh*l.k + kw) * c
							if dx != nil {
								kern.MulAdd(dx[off:][:c], g, wt[tap:][:c])
							}
							kern.MulAdd(pw[tap:][:c], g, x[off:][:c])
						}
					}
				}
			}
		}
	})
	if dw != nil {
		copy(dw, l.parts[0])
		for i := 1; i < t; i++ {
			for j, v := range l.parts[i] {
				dw[j] += v
			}
		}
	}
}
