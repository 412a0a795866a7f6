package trainer

import (
	"math"
	"math/rand/v2"
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
func TestNetworkGradient(t *testing.T) {
	forEachISA(t, testNetworkGradient)
}

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
		checked := 0
		for i, p := range s.net.params {
			for _, j := range r.Perm(len(p.data))[:min(2, len(p.data))] {
				old := p.data[j]
				p.data[j] = old + eps
				up := loss()
				p.data[j] = old - eps
				down := loss()
				p.data[j] = old
				num := (up - down) / (2 * eps)
				got := float64(grads[i][j])
				if math.Abs(num-got) > 3e-2*max(0.05, math.Abs(num)) {
					t.Errorf("threads %d: %s[%d]: analytic gradient %.5g, numerical %.5g", threads, p.name, j, got, num)
				}
				checked++
			}
		}
		if checked < 80 {
			t.Fatalf("checked only %d coordinates", checked)
		}
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
