package dataset

import (
	"math"
	"testing"
)

func TestTaps(t *testing.T) {
	tests := []struct {
		name    string
		in, out int
		want    [][]tap
	}{
		{"copy", 3, 3, [][]tap{{{0, 1}}, {{1, 1}}, {{2, 1}}}},
		{"bilinear 2->4", 2, 4, [][]tap{{{0, 1}}, {{0, 0.75}, {1, 0.25}}, {{0, 0.25}, {1, 0.75}}, {{1, 1}}}},
		{"bilinear 1->3", 1, 3, [][]tap{{{0, 1}}, {{0, 1}}, {{0, 1}}}},
		{"area 4->2", 4, 2, [][]tap{{{0, 0.5}, {1, 0.5}}, {{2, 0.5}, {3, 0.5}}}},
		{"area 3->2", 3, 2, [][]tap{{{0, 2.0 / 3}, {1, 1.0 / 3}}, {{1, 1.0 / 3}, {2, 2.0 / 3}}}},
		{"area 4->1", 4, 1, [][]tap{{{0, 0.25}, {1, 0.25}, {2, 0.25}, {3, 0.25}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := taps(tt.in, tt.out)
			if len(got) != len(tt.want) {
				t.Fatalf("taps(%d, %d) has %d outputs; want %d", tt.in, tt.out, len(got), len(tt.want))
			}
			for j := range got {
				if len(got[j]) != len(tt.want[j]) {
					t.Fatalf("output %d: taps %v; want %v", j, got[j], tt.want[j])
				}
				for k := range got[j] {
					g, w := got[j][k], tt.want[j][k]
					if g.i != w.i || math.Abs(float64(g.w-w.w)) > 1e-6 {
						t.Errorf("output %d tap %d: %v; want %v", j, k, g, w)
					}
				}
			}
		})
	}
}

// Every output's taps are consecutive in-range source pixels whose weights
// sum to 1, for shrinking and enlarging alike.
func TestTapsSumToOne(t *testing.T) {
	for in := 1; in <= 40; in++ {
		for out := 1; out <= 40; out++ {
			for j, tt := range taps(in, out) {
				sum := 0.0
				for k, x := range tt {
					if x.i < 0 || x.i >= in || x.i != tt[0].i+k || x.w < 0 {
						t.Fatalf("taps(%d, %d) output %d: bad taps %v", in, out, j, tt)
					}
					sum += float64(x.w)
				}
				if math.Abs(sum-1) > 1e-5 {
					t.Fatalf("taps(%d, %d) output %d: weights sum to %v; want 1", in, out, j, sum)
				}
			}
		}
	}
}

func TestResizeByHand(t *testing.T) {
	b := func(v float32) float32 { return v / 255 }
	tests := []struct {
		name                 string
		inH, inW, outH, outW int
		src                  []byte
		want                 []float32
	}{
		{
			// Each axis: [a, .75a+.25b, .25a+.75b, b]; rows [0 25 75 100] and
			// [200 160 80 40], then mixed .75/.25 and .25/.75 down the columns.
			name: "2x2 up to 4x4", inH: 2, inW: 2, outH: 4, outW: 4,
			src: []byte{0, 100, 200, 40},
			want: []float32{
				b(0), b(25), b(75), b(100),
				b(50), b(58.75), b(76.25), b(85),
				b(150), b(126.25), b(78.75), b(55),
				b(200), b(160), b(80), b(40),
			},
		},
		{
			name: "4x4 down to 2x2 averages 2x2 blocks", inH: 4, inW: 4, outH: 2, outW: 2,
			src: []byte{
				0, 4, 8, 8,
				4, 0, 8, 8,
				100, 100, 255, 255,
				100, 100, 255, 1,
			},
			want: []float32{b(2), b(8), b(100), b(191.5)},
		},
		{
			name: "3x1 down to 2x1", inH: 3, inW: 1, outH: 2, outW: 1,
			src:  []byte{30, 60, 90},
			want: []float32{b(40), b(80)},
		},
		{
			// Non-square, mixing both filters: rows 1 -> 3 (copies), columns 4 -> 2.
			name: "1x4 to 3x2", inH: 1, inW: 4, outH: 3, outW: 2,
			src:  []byte{10, 20, 30, 50},
			want: []float32{b(15), b(40), b(15), b(40), b(15), b(40)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := make([]float32, tt.outH*tt.outW)
			newResizer(tt.inH, tt.inW, tt.outH, tt.outW).resize(tt.src, got)
			for i := range got {
				if math.Abs(float64(got[i]-tt.want[i])) > 1e-6 {
					t.Errorf("pixel %d: %v (%v/255); want %v (%v/255)", i, got[i], got[i]*255, tt.want[i], tt.want[i]*255)
				}
			}
		})
	}
}

// Shrinking by the area filter keeps an image's mean exactly; any size
// keeps a constant image constant.
func TestResizeInvariants(t *testing.T) {
	src := make([]byte, 28*28)
	for i := range src {
		src[i] = byte(i * 37 % 251)
	}
	mean := func(x []float32) float64 {
		s := 0.0
		for _, v := range x {
			s += float64(v)
		}
		return s / float64(len(x))
	}
	srcMean := 0.0
	for _, v := range src {
		srcMean += float64(v) / 255
	}
	srcMean /= float64(len(src))
	for _, out := range []int{1, 5, 7, 14, 27} {
		dst := make([]float32, out*out)
		newResizer(28, 28, out, out).resize(src, dst)
		if m := mean(dst); math.Abs(m-srcMean) > 1e-5 {
			t.Errorf("28 -> %d: mean %v; want %v", out, m, srcMean)
		}
	}
	flat := make([]byte, 13*9)
	for i := range flat {
		flat[i] = 77
	}
	for _, out := range []int{1, 4, 9, 13, 32, 100} {
		dst := make([]float32, out*out)
		newResizer(13, 9, out, out).resize(flat, dst)
		for i, v := range dst {
			if math.Abs(float64(v)-77.0/255) > 1e-6 {
				t.Fatalf("constant 13x9 -> %d: pixel %d is %v; want %v", out, i, v, 77.0/255)
			}
		}
	}
}
