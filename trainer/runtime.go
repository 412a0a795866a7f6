package trainer

import (
	"math/rand/v2"
	"time"

	"github.com/effnas/effnas/trainer/internal/kern"
)

// runtime is the state one training shares with all of its ops: the mode,
// the random source of the masks, and scratch memory. Ops run one at a
// time, so scratch that lives only while an op runs is shared by all of
// them: sized at build time to the largest need.
type runtime struct {
	threads  int
	training bool   // batch statistics, dropout and drop-connect on; backward ops run
	calib    bool   // with training off: batch norm uses batch statistics and averages them (see calibrate)
	gen      uint64 // incremented before every run of the graph
	nextID   int
	rng      *rand.Rand // dropout and drop-connect masks, drawn in graph order
	prof     *profiler  // nil unless the steps are profiled

	shared    [numShared][]float32  // used by one op at a time
	local     [][numLocal][]float32 // per thread: a chunk of images' intermediate results
	needShare [numShared]int        // sizes, in floats, found while building
	needLocal [numLocal]int         // per thread
	needZero  int
	zeros     []float32 // read-only zeros, as long as the widest layer
}

// Shared scratch slots.
const (
	sGradMid = iota // the gradient of an expanded activation, at the output resolution
	sGradExp        // the gradient of an expanded activation, at the input resolution
	sGradOut        // the gradient of a layer's output before its batch norm
	sWT1            // transposed weights
	sWT2
	sWT3
	numShared
)

// Per-thread scratch slots.
const (
	lA = iota // an activation of a chunk of images
	lB
	lC
	lD
	lE
	lCols // im2col of a chunk
	lVec  // small per-image vectors
	numLocal
)

func (rt *runtime) id() int { rt.nextID++; return rt.nextID }

// needShared and needLocalBuf record a layer's scratch needs while
// building; allocate allocates the scratch once all layers are built.
func (rt *runtime) needShared(slot, n int)   { rt.needShare[slot] = max(rt.needShare[slot], n) }
func (rt *runtime) needLocalBuf(slot, n int) { rt.needLocal[slot] = max(rt.needLocal[slot], n) }
func (rt *runtime) needZeros(n int)          { rt.needZero = max(rt.needZero, n) }

func (rt *runtime) allocate() {
	rt.zeros = make([]float32, rt.needZero)
	for i, n := range rt.needShare {
		rt.shared[i] = make([]float32, n)
	}
	rt.local = make([][numLocal][]float32, max(rt.threads, 1))
	for t := range rt.local {
		for i, n := range rt.needLocal {
			rt.local[t][i] = make([]float32, n)
		}
	}
}

// scratchFloats is the scratch a training allocates, in floats.
func (rt *runtime) scratchFloats() int64 {
	var n int64
	for _, v := range rt.needShare {
		n += int64(v)
	}
	for _, v := range rt.needLocal {
		n += int64(v) * int64(max(rt.threads, 1))
	}
	return n + int64(rt.needZero)
}

func (rt *runtime) sharedBuf(slot, n int) []float32   { return rt.shared[slot][:n] }
func (rt *runtime) localBuf(t, slot, n int) []float32 { return rt.local[t][slot][:n] }

// chunkBytes bounds the largest intermediate tensor of a chunk of images
// that a layer carries through several passes: it should stay in the
// per-core cache (L2) between them.
var chunkBytes = 320 << 10

// chunkImages returns how many images go in a chunk when each image's
// largest intermediate tensor holds perImage floats.
func chunkImages(perImage int) int {
	return max(1, chunkBytes/(4*max(perImage, 1)))
}

// perThread is the most images of n that parImages gives one thread: a
// thread's scratch need not hold more.
func (rt *runtime) perThread(n int) int {
	t := max(rt.threads, 1)
	return (n + t - 1) / t
}

// parImages splits images [0, n) over the threads and calls fn on chunks
// of at most per images: fn(t, n0, n1) runs on thread t, which handles its
// chunks in order.
func (rt *runtime) parImages(n, per int, fn func(t, n0, n1 int)) {
	kern.Par(rt.threads, n, func(t, lo, hi int) {
		for n0 := lo; n0 < hi; n0 += per {
			fn(t, n0, min(n0+per, hi))
		}
	})
}

// A phase is one parallel pass of a layer whose chunks do several kinds of
// work in turn: its wall time is split between the kinds in the
// proportions thread 0 spent on them.
type phase struct {
	p     *profiler
	start time.Time
	last  time.Time
	d     [numKinds]time.Duration
}

// phase starts a phase; it is nil (and its methods do nothing) unless the
// step is profiled.
func (rt *runtime) phase() *phase {
	if rt.prof == nil {
		return nil
	}
	now := time.Now()
	return &phase{p: rt.prof, start: now, last: now}
}

// begin marks the start of thread t's work on a chunk.
func (ph *phase) begin(t int) {
	if ph != nil && t == 0 {
		ph.last = time.Now()
	}
}

// mark charges thread t's time since its last mark to kind.
func (ph *phase) mark(t int, kind profKind) {
	if ph != nil && t == 0 {
		now := time.Now()
		ph.d[kind] += now.Sub(ph.last)
		ph.last = now
	}
}

// end closes the phase and charges its wall time.
func (ph *phase) end() {
	if ph == nil {
		return
	}
	wall := time.Since(ph.start)
	var sum time.Duration
	for _, d := range ph.d {
		sum += d
	}
	if sum <= 0 {
		return
	}
	for k, d := range ph.d {
		ph.p.d[k] += time.Duration(float64(wall) * float64(d) / float64(sum))
	}
}

// work charges floating-point operations and memory traffic to kind.
func (rt *runtime) work(kind profKind, flops, bytes float64) {
	if p := rt.prof; p != nil {
		p.flops[kind] += flops
		p.bytes[kind] += bytes
	}
}

// single times a pass that is all of one kind.
func (rt *runtime) single(kind profKind, fn func()) {
	ph := rt.phase()
	ph.begin(0)
	fn()
	ph.mark(0, kind)
	ph.end()
}

// grow allocates the scratch that the needs recorded since the last
// allocate or grow no longer fit in, keeping what still fits: a supernet
// builds the layers of its paths as it meets them.
func (rt *runtime) grow() {
	if len(rt.zeros) < rt.needZero {
		rt.zeros = make([]float32, rt.needZero)
	}
	for i, n := range rt.needShare {
		if len(rt.shared[i]) < n {
			rt.shared[i] = make([]float32, n)
		}
	}
	for len(rt.local) < max(rt.threads, 1) {
		rt.local = append(rt.local, [numLocal][]float32{})
	}
	for t := range rt.local {
		for i, n := range rt.needLocal {
			if len(rt.local[t][i]) < n {
				rt.local[t][i] = make([]float32, n)
			}
		}
	}
}
