package dataset

import "math"

// tap is one source pixel's weight in an output pixel.
type tap struct {
	i int
	w float32
}

// taps returns, for each of out output positions along an axis of in source
// pixels, the source pixels and weights that make it. Shrinking uses the area
// filter: output j covers source [j*s, (j+1)*s) with s = in/out, each source
// pixel weighted by its overlap. Enlarging uses bilinear interpolation with
// pixel centres aligned (source x = (j+0.5)*s - 0.5), clamped at the edges.
// Equal sizes copy.
func taps(in, out int) [][]tap {
	t := make([][]tap, out)
	s := float64(in) / float64(out)
	switch {
	case in == out:
		for j := range t {
			t[j] = []tap{{j, 1}}
		}
	case in > out:
		for j := range t {
			lo, hi := float64(j)*s, float64(j+1)*s
			for i := int(math.Floor(lo)); i < in && float64(i) < hi; i++ {
				ov := math.Min(float64(i+1), hi) - math.Max(float64(i), lo)
				if ov > 1e-9 {
					t[j] = append(t[j], tap{i, float32(ov / s)})
				}
			}
		}
	default:
		for j := range t {
			x := (float64(j)+0.5)*s - 0.5
			x = math.Min(math.Max(x, 0), float64(in-1))
			i0 := int(math.Floor(x))
			f := x - float64(i0)
			if f < 1e-9 || i0+1 >= in {
				t[j] = []tap{{i0, 1}}
			} else {
				t[j] = []tap{{i0, float32(1 - f)}, {i0 + 1, float32(f)}}
			}
		}
	}
	return t
}

// axis is the taps of one axis, flattened: output j reads the consecutive
// source pixels first[j], first[j]+1, ... with weights w[off[j]:off[j+1]].
type axis struct {
	first []int
	off   []int
	w     []float32
}

func newAxis(in, out int) axis {
	t := taps(in, out)
	a := axis{first: make([]int, out), off: make([]int, out+1)}
	for j, tt := range t {
		a.first[j] = tt[0].i
		for k, x := range tt {
			if x.i != tt[0].i+k {
				panic("dataset: taps are not consecutive")
			}
			a.w = append(a.w, x.w)
		}
		a.off[j+1] = len(a.w)
	}
	return a
}

// resizer resizes one channel of inH x inW bytes to outH x outW float32 in
// [0,1], separably: rows first, then columns.
type resizer struct {
	inH, inW, outH, outW int
	// Rows: tap k of output j is source pixel xi[k][j] with weight xw[k][j];
	// every output has the same number of taps, padded with zero weights.
	xi  [][]int
	xw  [][]float32
	y   axis
	tmp []float32 // inH x outW
}

func newResizer(inH, inW, outH, outW int) *resizer {
	r := &resizer{
		inH: inH, inW: inW, outH: outH, outW: outW,
		y:   newAxis(inH, outH),
		tmp: make([]float32, inH*outW),
	}
	t := taps(inW, outW)
	k := 0
	for _, tt := range t {
		k = max(k, len(tt))
	}
	r.xi, r.xw = make([][]int, k), make([][]float32, k)
	for i := range k {
		r.xi[i], r.xw[i] = make([]int, outW), make([]float32, outW)
		for j, tt := range t {
			if i < len(tt) {
				r.xi[i][j], r.xw[i][j] = tt[i].i, tt[i].w
			} else {
				r.xi[i][j] = tt[0].i
			}
		}
	}
	return r
}

// byteScale maps a byte to [0,1].
var byteScale = func() (t [256]float32) {
	for i := range t {
		t[i] = float32(i) / 255
	}
	return t
}()

// resize writes the resized src (inH*inW bytes) to dst (outH*outW values).
func (r *resizer) resize(src []byte, dst []float32) {
	outW := r.outW
	for y := range r.inH {
		row := src[y*r.inW : (y+1)*r.inW]
		out := r.tmp[y*outW : (y+1)*outW]
		xi, xw := r.xi[0][:len(out)], r.xw[0][:len(out)]
		for j := range out {
			out[j] = byteScale[row[xi[j]]] * xw[j]
		}
		for k := 1; k < len(r.xi); k++ {
			xi, xw := r.xi[k][:len(out)], r.xw[k][:len(out)]
			for j := range out {
				out[j] += byteScale[row[xi[j]]] * xw[j]
			}
		}
	}
	for j := range r.outH {
		out := dst[j*outW : (j+1)*outW]
		ws := r.y.w[r.y.off[j]:r.y.off[j+1]]
		first := r.y.first[j]
		in := r.tmp[first*outW : (first+1)*outW]
		w0 := ws[0]
		for x := range out {
			out[x] = in[x] * w0
		}
		for k := 1; k < len(ws); k++ {
			in := r.tmp[(first+k)*outW : (first+k+1)*outW]
			in = in[:len(out)]
			w := ws[k]
			for x := range out {
				out[x] += in[x] * w
			}
		}
	}
}
