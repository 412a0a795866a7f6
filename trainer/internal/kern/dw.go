package kern

import (
	"fmt"
	"slices"
)

// DW is a depthwise convolution of one H x W image of C channels (an
// (H*W, C) matrix in NHWC order) with a K x K filter per channel (a
// (K*K, C) matrix), stride S and the leading padding PT (top) and PL
// (left), giving Ho x Wo outputs; pixels outside the image are zero.
//
// NewDW plans the convolution once: the outputs are grouped in runs of
// pixels that see the same taps (all of a row's interior pixels form one
// run), so the kernels loop over channels and taps without bounds tests.
type DW struct {
	H, W, C, K, S, Ho, Wo, PT, PL int

	fwd, bwd []dwRun // the forward (and filter-gradient) and input-gradient plans
	taps     []int32 // (input offset, filter offset) pairs of all runs, in floats
}

// A dwRun is n output pixels, the first at offset o and then every ostep
// floats, whose inputs are at x, x+xstep, ... plus the offsets of the taps
// taps[2*t0 : 2*(t0+nt)].
type dwRun struct {
	o, ostep, x, xstep, n, t0, nt int
}

// NewDW plans a depthwise convolution; see DW.
func NewDW(h, w, c, k, s, ho, wo, pt, pl int) *DW {
	if h < 1 || w < 1 || c < 1 || k < 1 || s < 1 || ho < 1 || wo < 1 {
		panic(fmt.Sprintf("kern: bad depthwise convolution %dx%dx%d k%d s%d -> %dx%d", h, w, c, k, s, ho, wo))
	}
	d := &DW{H: h, W: w, C: c, K: k, S: s, Ho: ho, Wo: wo, PT: pt, PL: pl}
	var p planner
	p.d = d
	p.seen = map[string]int{}
	var taps [][2]int // absolute (input pixel, filter tap) of one output
	for oh := 0; oh < ho; oh++ {
		for ow := 0; ow < wo; ow++ {
			taps = taps[:0]
			for kh := 0; kh < k; kh++ {
				ih := oh*s - pt + kh
				if ih < 0 || ih >= h {
					continue
				}
				for kw := 0; kw < k; kw++ {
					iw := ow*s - pl + kw
					if iw < 0 || iw >= w {
						continue
					}
					taps = append(taps, [2]int{ih*w + iw, kh*k + kw})
				}
			}
			p.add(&d.fwd, oh*wo+ow, taps)
		}
	}
	p.flush(&d.fwd)
	// The input gradient gathers, for every input pixel, the outputs
	// whose taps it fed: pixels of one phase (column mod stride) in a row
	// see the same taps.
	for ih := 0; ih < h; ih++ {
		for phase := 0; phase < s; phase++ {
			p.flush(&d.bwd)
			for iw := phase; iw < w; iw += s {
				taps = taps[:0]
				for kh := 0; kh < k; kh++ {
					oh, ok := div(ih+pt-kh, s)
					if !ok || oh < 0 || oh >= ho {
						continue
					}
					for kw := 0; kw < k; kw++ {
						ow, ok := div(iw+pl-kw, s)
						if !ok || ow < 0 || ow >= wo {
							continue
						}
						taps = append(taps, [2]int{oh*wo + ow, kh*k + kw})
					}
				}
				p.add(&d.bwd, ih*w+iw, taps)
			}
		}
	}
	p.flush(&d.bwd)
	return d
}

// div returns a/s when s divides a.
func div(a, s int) (int, bool) {
	if a < 0 || a%s != 0 {
		return 0, false
	}
	return a / s, true
}

// planner merges consecutive outputs with the same relative taps into runs.
type planner struct {
	d    *DW
	cur  dwRun
	rel  []int32
	seen map[string]int // tap lists already in d.taps
}

// add appends output pixel o whose taps are (input pixel, filter tap) pairs.
func (p *planner) add(runs *[]dwRun, o int, taps [][2]int) {
	c := p.d.C
	base := 0
	if len(taps) > 0 {
		base = taps[0][0]
		for _, t := range taps {
			base = min(base, t[0])
		}
	}
	rel := make([]int32, 0, 2*len(taps))
	for _, t := range taps {
		rel = append(rel, int32((t[0]-base)*c), int32(t[1]*c))
	}
	o, x := o*c, base*c
	r := &p.cur
	switch {
	case r.n > 0 && slices.Equal(rel, p.rel) && (r.n == 1 || (o-r.o == r.n*r.ostep && x-r.x == r.n*r.xstep)):
		if r.n == 1 {
			r.ostep, r.xstep = o-r.o, x-r.x
		}
		r.n++
		return
	default:
		p.flush(runs)
	}
	key := fmt.Sprint(rel)
	t0, ok := p.seen[key]
	if !ok {
		t0 = len(p.d.taps) / 2
		p.d.taps = append(p.d.taps, rel...)
		p.seen[key] = t0
	}
	p.cur = dwRun{o: o, x: x, n: 1, t0: t0, nt: len(taps)}
	p.rel = rel
}

func (p *planner) flush(runs *[]dwRun) {
	if p.cur.n > 0 {
		*runs = append(*runs, p.cur)
	}
	p.cur = dwRun{}
}

func (d *DW) check(out, outLen int, in, inLen int, w int) {
	if out < outLen || in < inLen || w < d.K*d.K*d.C {
		panic(fmt.Sprintf("kern: depthwise convolution %dx%dx%d k%d: slices too short", d.H, d.W, d.C, d.K))
	}
}

// Forward sets out (Ho*Wo, C) to the convolution of x (H*W, C) with w.
func (d *DW) Forward(out, x, w []float32) {
	d.check(len(out), d.Ho*d.Wo*d.C, len(x), d.H*d.W*d.C, len(w))
	for _, r := range d.fwd {
		dwRunK(out[r.o:], x[r.x:], w, d.C, r.n, r.ostep, r.xstep, d.taps[2*r.t0:2*(r.t0+r.nt)], false)
	}
}

// BackwardData sets dx (H*W, C) to the gradient of the input given dy
// (Ho*Wo, C), the gradient of the output; with acc it adds it to dx.
func (d *DW) BackwardData(dx, dy, w []float32, acc bool) {
	d.check(len(dx), d.H*d.W*d.C, len(dy), d.Ho*d.Wo*d.C, len(w))
	for _, r := range d.bwd {
		dwRunK(dx[r.o:], dy[r.x:], w, d.C, r.n, r.ostep, r.xstep, d.taps[2*r.t0:2*(r.t0+r.nt)], acc)
	}
}

// BackwardFilter adds to dw (K*K, C) the gradient of the filter given the
// input x and dy, the gradient of the output.
func (d *DW) BackwardFilter(dw, dy, x []float32) {
	d.check(len(dy), d.Ho*d.Wo*d.C, len(x), d.H*d.W*d.C, len(dw))
	for _, r := range d.fwd {
		dwGradRunK(dw, dy[r.o:], x[r.x:], d.C, r.n, r.ostep, r.xstep, d.taps[2*r.t0:2*(r.t0+r.nt)])
	}
}

// dwRunGo sets (or with acc adds to) o[i*ostep+j], for i < n and j < c, the
// sum over taps t of x[i*xstep+taps[2t]+j] * w[taps[2t+1]+j].
func dwRunGo(o, x, w []float32, c, n, ostep, xstep int, taps []int32, acc bool) {
	for i := 0; i < n; i++ {
		oi := o[i*ostep:][:c]
		if !acc {
			clear(oi)
		}
		xi := x[i*xstep:]
		for t := 0; t < len(taps); t += 2 {
			xt, wt := xi[taps[t]:][:c], w[taps[t+1]:][:c]
			for j, v := range xt {
				oi[j] += v * wt[j]
			}
		}
	}
}

// dwGradRunGo adds to g[taps[2t+1]+j], for every tap t and j < c, the sum
// over i < n of dy[i*ostep+j] * x[i*xstep+taps[2t]+j].
func dwGradRunGo(g, dy, x []float32, c, n, ostep, xstep int, taps []int32) {
	for i := 0; i < n; i++ {
		di := dy[i*ostep:][:c]
		xi := x[i*xstep:]
		for t := 0; t < len(taps); t += 2 {
			xt, gt := xi[taps[t]:][:c], g[taps[t+1]:][:c]
			for j, v := range di {
				gt[j] += v * xt[j]
			}
		}
	}
}
