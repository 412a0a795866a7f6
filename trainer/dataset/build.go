package dataset

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"

	"golang.org/x/sync/errgroup"
)

// PCG streams of the seeded choices.
const (
	streamSplit = 1 // validation/training (and carved test) permutation
	streamTest  = 2 // test subset
)

// source is an opened dataset: raw 8-bit images at their native size.
type source struct {
	name      string
	format    string
	classes   int
	channels  int
	names     []string
	mean, std []float32 // fixed normalisation; nil: computed on the training subset
	train     raw
	test      raw  // empty when carveTest
	carveTest bool // the test set comes out of train (image folder without train/ and test/)
}

// raw is one split of a source. Image i is either
// pix[i*stride+offset:][:c*h*w] in CHW order (IDX, CIFAR) or the file
// files[i], decoded on demand (image folders).
type raw struct {
	labels []int
	pix    []byte
	stride int
	offset int
	h, w   int
	files  []string
}

func (r *raw) len() int { return len(r.labels) }

// image returns image i in CHW order with c channels.
func (r *raw) image(i, c int) (pix []byte, h, w int, err error) {
	if r.files != nil {
		return decodeImage(r.files[i], c)
	}
	start := i*r.stride + r.offset
	return r.pix[start : start+c*r.h*r.w], r.h, r.w, nil
}

// plan is the chosen indices of each set.
type plan struct {
	train, val, test []int // indices into src.train, src.train, and src.test (src.train when carveTest)
}

// resolve turns requested sizes (at most one -1, meaning the rest) into
// counts that sum to at most n.
func resolve(n int, names []string, sizes []int, what string) ([]int, error) {
	out := slices.Clone(sizes)
	sum, rest := 0, -1
	for i, s := range sizes {
		if s == -1 {
			if rest >= 0 {
				return nil, fmt.Errorf("%s and %s are both -1; at most one of them can take all the remaining %s", names[rest], names[i], what)
			}
			rest = i
			continue
		}
		sum += s
	}
	if rest >= 0 && sum == n {
		return nil, fmt.Errorf("asks for %d %s besides %s -1, but only %d exist and none would be left for %s; ask for fewer",
			sum, what, names[rest], n, names[rest])
	}
	if sum > n {
		desc := ""
		for i, s := range sizes {
			if s == -1 {
				continue
			}
			if desc != "" {
				desc += " + "
			}
			desc += fmt.Sprintf("%s %d", names[i], s)
		}
		return nil, fmt.Errorf("asks for %s = %d %s, but only %d exist; ask for fewer", desc, sum, what, n)
	}
	if rest >= 0 {
		out[rest] = n - sum
	}
	return out, nil
}

// choose picks the subsets of src that opts asks for.
func choose(src *source, opts Options) (plan, error) {
	var p plan
	n := src.train.len()
	if src.carveTest {
		sizes, err := resolve(n, []string{"TestSize", "ValSize", "TrainSize"},
			[]int{opts.TestSize, opts.ValSize, opts.TrainSize}, "images")
		if err != nil {
			return p, err
		}
		perm := rand.New(rand.NewPCG(opts.Seed, streamSplit)).Perm(n)
		t, v, tr := sizes[0], sizes[1], sizes[2]
		p.test, p.val, p.train = perm[:t], perm[t:t+v], perm[t+v:t+v+tr]
	} else {
		sizes, err := resolve(n, []string{"ValSize", "TrainSize"},
			[]int{opts.ValSize, opts.TrainSize}, "training images")
		if err != nil {
			return p, err
		}
		perm := rand.New(rand.NewPCG(opts.Seed, streamSplit)).Perm(n)
		v, tr := sizes[0], sizes[1]
		p.val, p.train = perm[:v], perm[v:v+tr]
		nt := src.test.len()
		switch {
		case opts.TestSize == -1:
			p.test = make([]int, nt)
			for i := range p.test {
				p.test[i] = i
			}
		case opts.TestSize > nt:
			return p, fmt.Errorf("asks for TestSize %d test images, but only %d exist; ask for fewer or -1 for all", opts.TestSize, nt)
		default:
			p.test = rand.New(rand.NewPCG(opts.Seed, streamTest)).Perm(nt)[:opts.TestSize]
		}
	}
	slices.Sort(p.train)
	slices.Sort(p.val)
	slices.Sort(p.test)
	return p, nil
}

// build resizes and normalises the chosen images of src.
func build(ctx context.Context, src *source, opts Options) (*Data, error) {
	p, err := choose(src, opts)
	if err != nil {
		return nil, err
	}
	c, r := src.channels, opts.Resolution
	total := float64(len(p.train)+len(p.val)+len(p.test)) * float64(c*r*r)
	if total > maxFloats {
		return nil, fmt.Errorf("%d images of %dx%dx%d would take %.1f GiB; ask for fewer images or a lower Resolution",
			len(p.train)+len(p.val)+len(p.test), c, r, r, total*4/(1<<30))
	}
	testRaw := &src.test
	if src.carveTest {
		testRaw = &src.train
	}
	d := &Data{
		Name:       src.name,
		Format:     src.format,
		Classes:    src.classes,
		Channels:   c,
		ClassNames: slices.Clone(src.names),
	}
	sets := []struct {
		set *Set
		raw *raw
		idx []int
	}{
		{&d.Train, &src.train, p.train},
		{&d.Val, &src.train, p.val},
		{&d.Test, testRaw, p.test},
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	const chunk = 512
	for _, s := range sets {
		*s.set = Set{X: make([]float32, len(s.idx)*c*r*r), Y: make([]int, len(s.idx)), N: len(s.idx), C: c, H: r, W: r}
		for lo := 0; lo < len(s.idx); lo += chunk {
			hi := min(lo+chunk, len(s.idx))
			g.Go(func() error {
				return resizeChunk(gctx, s.raw, s.idx[lo:hi], s.set, lo)
			})
		}
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d.Mean, d.Std = src.mean, src.std
	if d.Mean == nil {
		d.Mean, d.Std = stats(&d.Train)
	}
	d.Mean, d.Std = slices.Clone(d.Mean), slices.Clone(d.Std)
	for _, s := range sets {
		normalise(s.set, d.Mean, d.Std)
	}
	return d, nil
}

// resizeChunk fills images first.. of set from the raw images idx, scaled to [0,1].
func resizeChunk(ctx context.Context, rw *raw, idx []int, set *Set, first int) error {
	c, r := set.C, set.H
	var rs *resizer
	for k, i := range idx {
		if k%64 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		pix, h, w, err := rw.image(i, c)
		if err != nil {
			return err
		}
		if rs == nil || rs.inH != h || rs.inW != w {
			rs = newResizer(h, w, r, r)
		}
		out := set.X[(first+k)*c*r*r : (first+k+1)*c*r*r]
		for ch := range c {
			rs.resize(pix[ch*h*w:(ch+1)*h*w], out[ch*r*r:(ch+1)*r*r])
		}
		set.Y[first+k] = rw.labels[i]
	}
	return nil
}

// stats returns the per-channel mean and standard deviation of s; a channel
// with no spread gets standard deviation 1.
func stats(s *Set) (mean, std []float32) {
	mean, std = make([]float32, s.C), make([]float32, s.C)
	hw := s.H * s.W
	for ch := range s.C {
		var sum, sq float64
		for i := range s.N {
			for _, v := range s.X[(i*s.C+ch)*hw : (i*s.C+ch+1)*hw] {
				sum += float64(v)
				sq += float64(v) * float64(v)
			}
		}
		n := float64(s.N * hw)
		m := sum / n
		sd := math.Sqrt(max(sq/n-m*m, 0))
		if n == 0 || !(sd > 1e-6) {
			sd = 1
		}
		if n == 0 {
			m = 0
		}
		mean[ch], std[ch] = float32(m), float32(sd)
	}
	return mean, std
}

// normalise maps every value x of channel ch of s to (x-mean[ch])/std[ch].
func normalise(s *Set, mean, std []float32) {
	hw := s.H * s.W
	for i := range s.N {
		for ch := range s.C {
			m, inv := mean[ch], 1/std[ch]
			x := s.X[(i*s.C+ch)*hw : (i*s.C+ch+1)*hw]
			for j := range x {
				x[j] = (x[j] - m) * inv
			}
		}
	}
}
