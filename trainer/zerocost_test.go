package trainer

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// zeroCostSession builds tinyArch at resolution 12 as ZeroCost does
// (without dropout or drop-connect), for tests that change its weights
// before scoring.
func zeroCostSession(t *testing.T, seed uint64) *session {
	t.Helper()
	arch := tinyArch(t)
	arch.Resolution = 12
	arch.Dropout, arch.DropConnect = 0, 0
	s, err := newSession(arch, 16, 1, seed, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	return s
}

// TestZeroCostSeeds: a score is a function of its seed (initialisation
// and batch): the same seed gives the same score bit for bit, another
// seed another score, for both kinds, and dropout and drop-connect do not
// change it; an unknown kind is refused, naming the kinds.
func TestZeroCostSeeds(t *testing.T) {
	arch := tinyArch(t)
	arch.Resolution = 12
	arch.Dropout, arch.DropConnect = 0.2, 0.2 // turned off: they would add their masks' noise
	data := synthetic(12, 160, 16, 16, 4)
	for _, kind := range ZeroCostKinds {
		score := func(seed uint64) float64 {
			cfg := tinyConfig()
			cfg.Seed = seed
			v, err := ZeroCost(t.Context(), kind, arch, data, cfg)
			if err != nil {
				t.Fatalf("%s seed %d: %v", kind, seed, err)
			}
			if !(v > 0) {
				t.Fatalf("%s seed %d: score %v; want a positive number", kind, seed, v)
			}
			return v
		}
		a, b, c := score(7), score(7), score(8)
		if a != b {
			t.Errorf("%s: seed 7 scores %v, then %v; want the same", kind, a, b)
		}
		plain := arch
		plain.Dropout, plain.DropConnect = 0, 0
		cfg := tinyConfig()
		cfg.Seed = 7
		if v, err := ZeroCost(t.Context(), kind, plain, data, cfg); err != nil || v != a {
			t.Errorf("%s: seed 7 scores %v (%v) without dropout and drop-connect, %v with; want the same: they are off", kind, v, err, a)
		}
		if a == c {
			t.Errorf("%s: seeds 7 and 8 both score %v; want each seed's own weights and batch", kind, a)
		}
		// With every training image alike, every batch is: the seeds
		// still differ by their weights.
		same := *data
		per := data.Train.C * data.Train.H * data.Train.W
		same.Train.X, same.Train.Y = make([]float32, len(data.Train.X)), make([]int, data.Train.N)
		for i := range data.Train.N {
			copy(same.Train.X[i*per:(i+1)*per], data.Train.X[:per])
			same.Train.Y[i] = data.Train.Y[0]
		}
		var alike [2]float64
		for i, seed := range []uint64{7, 8} {
			cfg := tinyConfig()
			cfg.Seed = seed
			v, err := ZeroCost(t.Context(), kind, arch, &same, cfg)
			if err != nil {
				t.Fatal(err)
			}
			alike[i] = v
		}
		if alike[0] == alike[1] {
			t.Errorf("%s: seeds 7 and 8 both score %v on a batch of one image repeated; want each seed's own initial weights", kind, alike[0])
		}
	}
	_, err := ZeroCost(t.Context(), "snip", arch, data, tinyConfig())
	if err == nil || !strings.Contains(err.Error(), "gradnorm, synflow") {
		t.Errorf("kind snip: %v; want it refused, naming gradnorm and synflow", err)
	}
}

// TestZeroCostBatch: the score's batch is the first batch of Train's
// first shuffle under the seed (drawn here as Train draws it): blanking
// every other training image leaves the score as it is, blanking one of
// the batch changes it.
func TestZeroCostBatch(t *testing.T) {
	arch := tinyArch(t)
	arch.Resolution = 12
	data := synthetic(12, 160, 16, 16, 5)
	cfg := tinyConfig()
	order := make([]int, data.Train.N)
	for i := range order {
		order[i] = i
	}
	rand.New(rand.NewPCG(cfg.Seed, 2)).Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	inBatch := map[int]bool{}
	for _, i := range order[:cfg.Batch] {
		inBatch[i] = true
	}
	per := data.Train.C * data.Train.H * data.Train.W
	blank := func(keep func(i int) bool) float64 {
		d := *data
		d.Train.X = append([]float32(nil), data.Train.X...)
		for i := range d.Train.N {
			if !keep(i) {
				clear(d.Train.X[i*per : (i+1)*per])
			}
		}
		v, err := ZeroCost(t.Context(), GradNorm, arch, &d, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	all := blank(func(int) bool { return true })
	if got := blank(func(i int) bool { return inBatch[i] }); got != all {
		t.Errorf("gradnorm %v with only the first batch's images kept, %v with all; want the same: the score sees one batch", got, all)
	}
	if got := blank(func(i int) bool { return i != order[0] }); got == all {
		t.Errorf("gradnorm %v with the batch's first image blanked, as with it; want the batch to be Train's first", got)
	}
}

// TestZeroCostScaling checks both scores against what batch norm implies.
// A convolution followed by a batch norm is scale-invariant: multiplying
// its weights by c leaves the network's output as it is (up to the norm's
// epsilon, 1e-3 against activations' variances of about 0.1 to 1, i.e.
// within a percent at c = 1 and, measured, 2e-6 between c = 4 and 16) and divides
// their gradient by c. So going from c = 4 to c = 16 on every such
// convolution must leave synflow (which sums |θ·∂L/∂θ|) unchanged, and
// take 3/4 of those tensors' gradient norms off gradnorm (which sums
// ‖∂L/∂θ_p‖ per tensor). Scaling the classifier, which no batch norm
// follows, changes synflow.
func TestZeroCostScaling(t *testing.T) {
	data := synthetic(12, 160, 16, 16, 6)
	train := &dataSet{x: data.Train.X, y: data.Train.Y, n: data.Train.N}
	idx := firstBatch(train.n, 16, 9)
	// normed reports whether parameter i is a convolution's weights that
	// a batch norm follows (its next parameter is that norm's scale).
	normed := func(s *session, i int) bool {
		ps := s.net.params
		name := ps[i].name
		return strings.HasSuffix(name, ".w") && i+1 < len(ps) && ps[i+1].name == strings.TrimSuffix(name, "w")+"bn.gamma"
	}
	score := func(kind string, scale func(s *session, i int) float32) (float64, *session) {
		s := zeroCostSession(t, 9)
		for i, p := range s.net.params {
			c := scale(s, i)
			for j := range p.data {
				p.data[j] *= c
			}
		}
		v, err := s.zeroCost(kind, train, idx)
		if err != nil {
			t.Fatal(err)
		}
		return v, s
	}
	convs := func(c float32) func(*session, int) float32 {
		return func(s *session, i int) float32 {
			if normed(s, i) {
				return c
			}
			return 1
		}
	}
	n := 0
	for s, i := zeroCostSession(t, 9), 0; i < len(s.net.params); i++ {
		if normed(s, i) {
			n++
		}
	}
	if n < 8 {
		t.Fatalf("%d convolutions followed by a batch norm found; want every one of tinyArch's (at least 8)", n)
	}

	s4, _ := score(SynFlow, convs(4))
	s16, _ := score(SynFlow, convs(16))
	if math.Abs(s16-s4) > 1e-4*s4 {
		t.Errorf("synflow %v with the normed convolutions x4, %v x16; want the same within 0.01%% (batch norm's scale invariance)", s4, s16)
	}
	cls, _ := score(SynFlow, func(s *session, i int) float32 {
		if s.net.params[i].name == "classifier.w" {
			return 4
		}
		return 1
	})
	base, _ := score(SynFlow, convs(1))
	if math.Abs(cls-base) < 0.05*base {
		t.Errorf("synflow %v with the classifier x4, %v without; want it changed: no batch norm follows the classifier", cls, base)
	}

	g4, sess := score(GradNorm, convs(4))
	var normedNorm float64 // at x4: their gradients' norms
	for i, p := range sess.net.params {
		if normed(sess, i) {
			var sq float64
			for _, g := range p.grad {
				sq += float64(g) * float64(g)
			}
			normedNorm += math.Sqrt(sq)
		}
	}
	g16, _ := score(GradNorm, convs(16))
	t.Logf("synflow base %v, convs x4 %v, x16 %v, classifier x4 %v; gradnorm x4 %v (normed %v), x16 %v", base, s4, s16, cls, g4, normedNorm, g16)
	if want := g4 - 0.75*normedNorm; math.Abs(g16-want) > 5e-4*want {
		t.Errorf("gradnorm %v with the normed convolutions x16; want %v: %v at x4 less 3/4 of their %v", g16, want, g4, normedNorm)
	}
}

// TestZeroCostSigns: synflow takes every weight's absolute value, so
// flipping the sign of every weight leaves it as it is, bit for bit;
// gradnorm, on the weights as they are, changes.
func TestZeroCostSigns(t *testing.T) {
	data := synthetic(12, 160, 16, 16, 7)
	train := &dataSet{x: data.Train.X, y: data.Train.Y, n: data.Train.N}
	idx := firstBatch(train.n, 16, 11)
	for _, c := range []struct {
		kind string
		same bool
	}{{SynFlow, true}, {GradNorm, false}} {
		score := func(flip bool) float64 {
			s := zeroCostSession(t, 11)
			if flip {
				for _, p := range s.net.params {
					for j := range p.data {
						p.data[j] = -p.data[j]
					}
				}
			}
			v, err := s.zeroCost(c.kind, train, idx)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		a, b := score(false), score(true)
		if (a == b) != c.same {
			t.Errorf("%s: %v, and %v with every weight's sign flipped; want them equal: %v", c.kind, a, b, c.same)
		}
	}
}
