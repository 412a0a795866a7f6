package trainer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/effnas/effnas/space"
)

// tinyArch has every kind of block: MBConv with SE and a skip, a
// depthwise-separable conv, a regular conv with SE, and a stride-2 stage.
func tinyArch(t testing.TB) space.Arch {
	blocks, err := space.ParseBlocks("r2_k3_s11_e2_i8_o8_se0.25 r1_k5_s22_e1_i8_o8 r1_k3_s11_e3_i8_o16_se0.5")
	if err != nil {
		t.Fatal(err)
	}
	blocks[1].Op = space.OpSepConv
	conv := space.Block{Op: space.OpConv, Repeats: 2, Kernel: 3, Stride: 1, Expand: 1, In: 16, Out: 16, SE: 0.25, Skip: true}
	blocks = append(blocks, conv)
	a := space.Arch{InChannels: 2, Resolution: 7, Classes: 3, Stem: 8, Head: 12, Activation: "swish", Blocks: blocks}
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	return a
}

// TestNetworkGradient checks the whole graph's parameter gradients against
// central differences, on each kernel path.
//
// The loss (about 1.1) is computed in float32, so a central difference with
// step 1e-2 carries a rounding error of about 2^-24 * 1.1 / 1e-2 = 7e-6
// (up to 1e-5 seen), and its truncation error stays under 0.5% of the
// gradient. A coordinate passes when the analytic gradient is within
// netTol (1% plus 2e-5) of the numerical one. Coordinates whose numerical
// gradient is below netFloor (4e-4) are not counted as checked: there a
// zero gradient, or one 10% off, would pass too. Of each parameter, up to
// 8 random coordinates are tried until 2 above the floor are checked; the
// only parameter without one is zeroGradParams's. (Before, a zero gradient
// passed at 23 of the 134 coordinates checked.)
func TestNetworkGradient(t *testing.T) {
	forEachISA(t, testNetworkGradient)
}

var (
	netTol   = gradTol{rel: 1e-2, abs: 2e-5}
	netFloor = 4e-4
)

// zeroGradParams are the parameters of tinyArch whose gradient is exactly
// zero: the beta of a block that ends without a skip, whose output only
// feeds the next block's expansion batch norm, which subtracts its mean.
var zeroGradParams = []string{"blocks.1.0.project.bn.beta"}

func testNetworkGradient(t *testing.T) {
	arch := tinyArch(t)
	for _, threads := range []int{1, 2} {
		s, err := newSession(arch, 4, threads, 5, 0.1)
		if err != nil {
			t.Fatal(err)
		}
		defer s.close()
		r := rand.New(rand.NewPCG(1, 1))
		ds := &dataSet{x: make([]float32, 4*2*7*7), y: []int{0, 2, 1, 2}, n: 4}
		for i := range ds.x {
			ds.x[i] = float32(r.NormFloat64())
		}
		// Residual blocks start with a zero gamma, which would hide their
		// insides from the check: start every gamma and beta somewhere random.
		for _, p := range s.net.params {
			if strings.HasSuffix(p.name, ".gamma") || strings.HasSuffix(p.name, ".beta") {
				for j := range p.data {
					p.data[j] = float32(0.5 + r.Float64())
				}
			}
		}
		s.net.setBatch(ds, []int{0, 1, 2, 3})
		loss := func() float64 {
			if err := s.run(); err != nil {
				t.Fatal(err)
			}
			return s.net.xent.lossSum / 4
		}
		// Run a few times first: gorgonia reuses buffers between runs.
		loss()
		loss()
		loss()
		grads := make([][]float32, len(s.net.params))
		for i, p := range s.net.params {
			grads[i] = append([]float32(nil), p.grad...)
		}
		const eps = 1e-2
		var pts []gradPoint
		var silent []string // parameters without a coordinate above the floor
		for i, p := range s.net.params {
			checked := 0
			for _, j := range r.Perm(len(p.data))[:min(8, len(p.data))] {
				old := p.data[j]
				p.data[j] = old + eps
				up := loss()
				p.data[j] = old - eps
				down := loss()
				p.data[j] = old
				pt := gradPoint{name: fmt.Sprintf("%s[%d]", p.name, j), num: (up - down) / (2 * eps), got: float64(grads[i][j])}
				if math.Abs(pt.num) < netFloor {
					// Too small to tell, but a gradient here should be as small.
					if !netTol.ok(pt.got, pt.num) {
						t.Errorf("threads %d: %s: analytic gradient %.5g, numerical %.5g", threads, pt.name, pt.got, pt.num)
					}
					continue
				}
				pts = append(pts, pt)
				if checked++; checked == 2 {
					break
				}
			}
			if checked == 0 {
				silent = append(silent, p.name)
			}
		}
		if !slices.Equal(silent, zeroGradParams) {
			t.Errorf("threads %d: parameters without a gradient above %g: %q; want %q", threads, netFloor, silent, zeroGradParams)
		}
		// 2 coordinates of each parameter but blocks.0.0.se.reduce.b, one of
		// whose 2 has a gradient below the floor.
		if want := 2*(len(s.net.params)-len(zeroGradParams)) - 1; len(pts) < want {
			t.Errorf("threads %d: checked %d coordinates; want %d", threads, len(pts), want)
		}
		checkGradPoints(t, fmt.Sprintf("threads %d", threads), netTol, pts)
	}
}

func TestZeroInitResidualGamma(t *testing.T) {
	s, err := newSession(tinyArch(t), 2, 1, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	want := map[string]float32{
		"blocks.0.0.project.bn.gamma": 0, // 8 -> 8, stride 1: identity skip
		"blocks.0.1.project.bn.gamma": 0,
		"blocks.2.0.project.bn.gamma": 1, // 8 -> 16: no skip
		"blocks.0.0.dw.bn.gamma":      1,
		"stem.bn.gamma":               1,
	}
	found := 0
	for _, p := range s.net.params {
		w, ok := want[p.name]
		if !ok {
			continue
		}
		found++
		for _, v := range p.data {
			if v != w {
				t.Errorf("%s starts at %g, want %g", p.name, v, w)
				break
			}
		}
	}
	if found != len(want) {
		t.Errorf("found %d of the %d parameters", found, len(want))
	}
}
