package trainer

import (
	"bytes"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/effnas/effnas/space"
)

// tinyBound is a small supernet: three stages whose largest members have
// expansion 6, 5x5 kernels and squeeze-excite, on 12x12x2 images.
func tinyBound() space.Arch {
	return space.Arch{InChannels: 2, Resolution: 12, Classes: 3, Stem: 8, Head: 12, Activation: "swish",
		Blocks: []space.Block{
			{Op: space.OpMBConv, Expand: 6, Repeats: 2, Kernel: 5, Stride: 1, In: 8, Out: 16, SE: 0.25, Skip: true},
			{Op: space.OpMBConv, Expand: 6, Repeats: 2, Kernel: 5, Stride: 2, In: 16, Out: 24, SE: 0.25, Skip: true},
			{Op: space.OpMBConv, Expand: 6, Repeats: 2, Kernel: 5, Stride: 1, In: 24, Out: 40, SE: 0.25, Skip: true},
		}}
}

// tinyMembers are members of tinyBound that between them use every block
// kind, both kernels, prefixes of every width, and stages shorter than the
// bound; the first and the last share layers with other shapes.
func tinyMembers(t testing.TB) []space.Arch {
	var out []space.Arch
	for _, s := range []string{
		"r1_k3_s11_e3_i8_o8_se0.25 r2_k5_s22_e1_i8_o16 r1_k3_s11_e1_i16_o24_se0.25",
		"r2_k5_s11_e6_i8_o16_se0.25 r2_k5_s22_e6_i16_o24_se0.25 r2_k5_s11_e6_i24_o40_se0.25",
		"r2_k3_s11_e1_i8_o16_noskip r1_k3_s22_e3_i16_o16 r2_k5_s11_e6_i16_o32",
		"r1_k3_s11_e3_i8_o8_se0.25 r2_k5_s22_e1_i8_o16 r1_k3_s11_e1_i16_o24_se0.25",
	} {
		blocks, err := space.ParseBlocks(s)
		if err != nil {
			t.Fatal(err)
		}
		a := tinyBound()
		a.Blocks = blocks
		out = append(out, a)
	}
	out[0].Blocks[1].Op = space.OpSepConv
	out[3].Blocks[1].Op = space.OpSepConv
	out[0].Blocks[2].Op = space.OpConv
	out[3].Blocks[2].Op = space.OpConv
	out[2].Blocks[0].Op = space.OpConv
	for _, a := range out {
		if err := a.Validate(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func tinySupernet(t testing.TB, steps int) *Supernet {
	t.Helper()
	return tinySupernetDropout(t, steps, 0)
}

func tinySupernetDropout(t testing.TB, steps int, dropout float64) *Supernet {
	t.Helper()
	bound := tinyBound()
	bound.Dropout = dropout
	sn, err := NewSupernet(bound, synthetic(12, 192, 48, 16, 1),
		SupernetConfig{Train: Config{Batch: 16, Seed: 5, Threads: 1}, Steps: steps, Calib: 2, ScoreImages: 40})
	if err != nil {
		t.Fatal(err)
	}
	return sn
}

// TestSupernetPathIsPlainNetwork: a member's path through the supernet
// computes exactly what trainer.Train's plain network of the member
// computes with the same weights: the same loss and the same gradient of
// every parameter. Members are taken in turn, so layers of other shapes
// have used the same positions' memory in between; and a step moves the
// path's weights exactly as the optimizer moves the plain network's, and
// no other shared weight.
func TestSupernetPathIsPlainNetwork(t *testing.T) {
	for _, threads := range []int{1, 2} {
		sn, err := NewSupernet(tinyBound(), synthetic(12, 192, 48, 16, 1),
			SupernetConfig{Train: Config{Batch: 16, Seed: 5, Threads: threads}, Steps: 10, Calib: 2, ScoreImages: 40})
		if err != nil {
			t.Fatal(err)
		}
		train := sn.train
		for mi, arch := range tinyMembers(t) {
			// Train a step on another member first, so that the shared
			// weights are not at their initial values.
			if _, err := sn.Step(t.Context(), tinyMembers(t)[(mi+1)%4]); err != nil {
				t.Fatal(err)
			}
			groups, err := sn.path(arch)
			if err != nil {
				t.Fatal(err)
			}
			links := links(groups)
			gather(links, true)
			idx := rand.New(rand.NewPCG(uint64(mi), 9)).Perm(train.n)[:16]
			loadBatch(sn.x, sn.xent, 2, 144, 16, train, idx)
			sn.rt.training = true
			loss := sn.forward(groups)
			sn.backward(groups)
			var got []*param
			for _, lk := range links {
				for _, pp := range lk.params {
					got = append(got, pp.p)
				}
			}

			for _, p := range got {
				checkSharing(t, sn, links, p)
			}

			s, err := newSession(arch, 16, threads, 1, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(s.net.params) != len(got) {
				t.Fatalf("member %d: the plain network has %d parameters, the path %d", mi, len(s.net.params), len(got))
			}
			for i, p := range s.net.params {
				if !strings.HasSuffix(got[i].name, p.name[strings.LastIndex(p.name, "."):]) || len(p.data) != len(got[i].data) {
					t.Fatalf("member %d parameter %d: plain %s (%d values), path %s (%d)", mi, i, p.name, len(p.data), got[i].name, len(got[i].data))
				}
				copy(p.data, got[i].data)
			}
			s.net.setBatch(train, idx)
			if err := s.run(); err != nil {
				t.Fatal(err)
			}
			want := s.net.xent.lossSum / 16
			if float32(loss) != float32(want) {
				t.Errorf("threads %d member %d: path loss %v, plain network %v", threads, mi, loss, want)
			}
			for i, p := range s.net.params {
				if !slices.Equal(p.grad[:len(p.data)], got[i].grad) {
					t.Errorf("threads %d member %d: gradient of %s differs from the plain network's", threads, mi, got[i].name)
				}
			}

			// One step: the plain optimizer's update of the path, nothing
			// else.
			before := map[string][]float32{}
			for name, ts := range sn.tensors {
				before[name] = slices.Clone(ts.w)
			}
			step := sn.steps
			for i, p := range s.net.params {
				p.state[0] = slices.Clone(got[i].state[0])
				p.state[1] = slices.Clone(got[i].state[1])
			}
			e, b := step/sn.perEpoch, step%sn.perEpoch
			_ = e
			if _, err := sn.Step(t.Context(), arch); err != nil {
				t.Fatal(err)
			}
			s.net.setBatch(train, sn.order[b*16:(b+1)*16])
			if err := s.run(); err != nil {
				t.Fatal(err)
			}
			opt := &optimizer{kind: "adam", momentum: 0.9, decay: DefaultWeightDecay, t: step}
			opt.step(s.net.params, schedule(sn.cfg.Train.LR, step, sn.warmup, sn.cfg.Steps))
			gather(links, false)
			for i, p := range s.net.params {
				if !slices.Equal(p.data, got[i].data) {
					t.Errorf("threads %d member %d: after a step %s differs from the plain network's update", threads, mi, got[i].name)
				}
			}
			onPath := map[string]map[int]bool{}
			for _, lk := range links {
				for _, pp := range lk.params {
					m := map[int]bool{}
					for _, r := range pp.runs {
						for k := r.src; k < r.src+r.n; k++ {
							m[k] = true
						}
					}
					onPath[pp.t.name] = m
				}
			}
			for name, ts := range sn.tensors {
				old := before[name]
				for k := range old {
					if old[k] != ts.w[k] && !onPath[name][k] {
						t.Fatalf("threads %d member %d: a step changed %s[%d], which is not on the path", threads, mi, name, k)
					}
				}
			}
			s.close()
		}
	}
}

// TestSupernetResume: a supernet restored from a checkpoint goes on
// exactly as the one saved: after the same steps, their checkpoints are
// the same bytes, though the restored one meets its layers in another
// order (tensors it had not met are restored when met), with dropout on.
// A checkpoint of another supernet is refused.
func TestSupernetResume(t *testing.T) {
	members := tinyMembers(t)
	plan := []int{0, 1, 2, 0, 3, 1, 2, 2}
	a := tinySupernetDropout(t, len(plan), 0.3)
	var ck []byte
	for i, m := range plan {
		if i == 4 {
			var err error
			if ck, err = a.MarshalBinary(); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := a.Step(t.Context(), members[m]); err != nil {
			t.Fatal(err)
		}
	}
	b := tinySupernetDropout(t, len(plan), 0.3)
	// b meets a member before it is restored: its tensors take the
	// checkpoint's values.
	if _, err := b.Score(t.Context(), members[1]); err != nil {
		t.Fatal(err)
	}
	if err := b.UnmarshalBinary(ck); err != nil {
		t.Fatal(err)
	}
	if b.Steps() != 4 {
		t.Fatalf("restored at step %d, want 4", b.Steps())
	}
	for _, m := range plan[4:] {
		if _, err := b.Step(t.Context(), members[m]); err != nil {
			t.Fatal(err)
		}
	}
	ca, _ := a.MarshalBinary()
	cb, _ := b.MarshalBinary()
	if !bytes.Equal(ca, cb) {
		t.Errorf("a resumed supernet's checkpoint (%d bytes) differs from the uninterrupted one's (%d bytes)", len(cb), len(ca))
	}
	sa, err := a.Score(t.Context(), members[2])
	if err != nil {
		t.Fatal(err)
	}
	sb, err := b.Score(t.Context(), members[2])
	if err != nil {
		t.Fatal(err)
	}
	if sa != sb {
		t.Errorf("scores %v and %v of the same member on the same weights differ", sa, sb)
	}

	other := tinySupernetDropout(t, len(plan)+1, 0.3) // another budget: another schedule
	if err := other.UnmarshalBinary(ck); err == nil || !strings.Contains(err.Error(), "another supernet") {
		t.Errorf("a checkpoint of another supernet: error %v, want a refusal", err)
	}
	if err := b.UnmarshalBinary(ck[:len(ck)/2]); err == nil {
		t.Error("a truncated checkpoint was accepted")
	}
	if err := b.UnmarshalBinary(append(slices.Clone(ck), 0)); err == nil {
		t.Error("a checkpoint with trailing bytes was accepted")
	}
}

// TestSupernetLearns: after a short training on an easy problem, members
// score well above chance (1/3), and two scorings of one member agree.
func TestSupernetLearns(t *testing.T) {
	members := tinyMembers(t)
	sn := tinySupernet(t, 60)
	r := rand.New(rand.NewPCG(1, 1))
	for range 60 {
		if _, err := sn.Step(t.Context(), members[r.IntN(len(members))]); err != nil {
			t.Fatal(err)
		}
	}
	for i, m := range members {
		s1, err := sn.Score(t.Context(), m)
		if err != nil {
			t.Fatal(err)
		}
		s2, _ := sn.Score(t.Context(), m)
		if s1 != s2 {
			t.Errorf("member %d scored %v then %v", i, s1, s2)
		}
		if s1 < 0.6 {
			t.Errorf("member %d scores %.3f after 60 steps, want >= 0.6 (chance is 0.33)", i, s1)
		}
	}
}

// TestSupernetFits: members outside the supernet are refused with the
// reason, before anything runs.
func TestSupernetFits(t *testing.T) {
	sn := tinySupernet(t, 1)
	for _, c := range []struct {
		edit func(a *space.Arch)
		want string
	}{
		{func(a *space.Arch) { a.Blocks[0].Kernel = 7 }, "kernel 7"},
		{func(a *space.Arch) { a.Blocks[0].Kernel = 4 }, "kernel"},
		{func(a *space.Arch) { a.Blocks[1].Repeats = 3 }, "3 layers"},
		{func(a *space.Arch) { a.Blocks[2].Out = 48 }, "48 filters"},
		{func(a *space.Arch) { a.Blocks[0].Expand = 8 }, "expansion 8"},
		{func(a *space.Arch) { a.Blocks[0].SE = 0.5 }, "squeeze-excite"},
		{func(a *space.Arch) { a.Blocks[1].Stride = 1 }, "stride"},
		{func(a *space.Arch) { a.Stem = 16; a.Blocks[0].In = 16 }, "stem"},
		{func(a *space.Arch) { a.Resolution = 16 }, "images"},
		{func(a *space.Arch) { a.Blocks = a.Blocks[:2] }, "stages"},
	} {
		a := tinyMembers(t)[1]
		c.edit(&a)
		_, err := sn.Score(t.Context(), a)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one naming %q", a, err, c.want)
		}
	}
	if sn.Steps() != 0 {
		t.Errorf("refused members trained %d steps", sn.Steps())
	}
}

// checkSharing checks, from the definitions, where a path's parameter p
// lies in its shared tensor: a k x k depthwise or regular kernel is the
// centre of the 5x5 (tinyBound's), channels (and a regular convolution's
// input channels in each tap) are prefixes, a matrix is its top-left
// corner.
func checkSharing(t *testing.T, sn *Supernet, links []*link, p *param) {
	t.Helper()
	var pp pathParam
	for _, lk := range links {
		for _, q := range lk.params {
			if q.p == p {
				pp = q
			}
		}
	}
	ms := pp.t.spec.shape
	w := pp.t.w
	var shape []int
	k := 0
	for _, lk := range links {
		for i, q := range lk.params {
			if q.p == p {
				switch l := lk.l.(type) {
				case *blockLayer:
					shape, k = l.specs[i].shape, l.k
				case *headLayer:
					if i == 0 {
						shape = []int{l.cin, l.cout}
					}
				}
			}
		}
	}
	if shape == nil || len(shape) == 1 {
		for i, v := range p.data {
			if w[i] != v {
				t.Fatalf("%s[%d] = %v is not the shared %v", p.name, i, v, w[i])
			}
		}
		return
	}
	rows, cols, mcols := shape[0], shape[1], ms[1]
	for r := 0; r < rows; r++ {
		src := r
		switch {
		case strings.HasSuffix(p.name, ".dw.w"):
			ky, kx := r/k, r%k
			off := (5 - k) / 2
			src = (ky+off)*5 + kx + off
		case strings.HasSuffix(p.name, ".conv.w"):
			in, min := rows/(k*k), ms[0]/25
			tap, c := r/in, r%in
			ky, kx := tap/k, tap%k
			off := (5 - k) / 2
			src = ((ky+off)*5+kx+off)*min + c
		}
		for c := 0; c < cols; c++ {
			if p.data[r*cols+c] != w[src*mcols+c] {
				t.Fatalf("%s[%d,%d] = %v is not the shared [%d,%d] %v", p.name, r, c, p.data[r*cols+c], src, c, w[src*mcols+c])
			}
		}
	}
}

// TestSupernetMeanPathGradient: on a mean path (two or three kinds of
// block averaged at each position of some stages), the gradient of every
// layer's weights, those before a mean included, matches central
// differences of the loss: the mean's gradient is shared out and the
// input gradients add up.
func TestSupernetMeanPathGradient(t *testing.T) {
	sn := tinySupernet(t, 1)
	ms := tinyMembers(t)
	a := ms[1]
	b, c := a.Clone(), a.Clone()
	b.Blocks[0].Op, b.Blocks[0].Expand = space.OpSepConv, 1
	c.Blocks[0].Op, c.Blocks[0].Expand = space.OpConv, 1
	b.Blocks[2].Op, b.Blocks[2].Expand = space.OpConv, 1
	c.Blocks[2].Op, c.Blocks[2].Expand = space.OpConv, 1
	groups, err := sn.path(a, b, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(groups[1].links) != 3 || len(groups[5].links) != 2 {
		t.Fatalf("stage 0 averages %d blocks, stage 2 %d; want 3 and 2", len(groups[1].links), len(groups[5].links))
	}
	lks := links(groups)
	gather(lks, false)
	idx := rand.New(rand.NewPCG(1, 2)).Perm(sn.train.n)[:16]
	loadBatch(sn.x, sn.xent, 2, 144, 16, sn.train, idx)
	sn.rt.training = true
	sn.rt.rng = rand.New(rand.NewPCG(1, 1))
	loss := func() float64 {
		sn.forward(groups)
		return sn.xent.lossSum / 16
	}
	loss()
	sn.backward(groups)
	r := rand.New(rand.NewPCG(3, 3))
	checked := 0
	for _, lk := range lks {
		for _, pp := range lk.params {
			if !strings.HasSuffix(pp.p.name, ".w") {
				continue
			}
			grad := slices.Clone(pp.p.grad)
			for range 6 {
				k := r.IntN(len(pp.p.data))
				old := pp.p.data[k]
				const h = 1e-2
				pp.p.data[k] = old + h
				up := loss()
				pp.p.data[k] = old - h
				down := loss()
				pp.p.data[k] = old
				num := (up - down) / (2 * h)
				if math.Abs(num) < 4e-4 {
					continue
				}
				checked++
				if math.Abs(float64(grad[k])-num) > 0.03*math.Abs(num)+2e-5 {
					t.Errorf("%s[%d]: gradient %.6g, central difference %.6g", pp.p.name, k, grad[k], num)
				}
			}
		}
	}
	if checked < 20 {
		t.Fatalf("only %d coordinates checked", checked)
	}
	if _, err := sn.path(a, ms[0]); err == nil || !strings.Contains(err.Error(), "differ") {
		t.Errorf("members with other layers in one mean path: error %v", err)
	}
	d := a.Clone()
	d.Blocks[0].Expand = 3
	if _, err := sn.path(a, d); err == nil || !strings.Contains(err.Error(), "share the weights") {
		t.Errorf("two MBConvs (one kind's weights) in one mean path: error %v", err)
	}
}
