package trainer

import "github.com/effnas/effnas/space"

// EstimateMemory returns about how many bytes training arch with cfg (after
// WithDefaults) adds to the process at its peak: what the layers keep for
// the backward pass (the inputs of their batch norms), their outputs and
// the gradients of their inputs, the scratch memory they share and each
// thread's own, the parameters with their gradients (and a private copy of
// the weights' for each thread beyond the first), the optimizer's two
// moments, the weights' moving average (with Config.EMA), and the graph.
// It describes the layers the network would be built from without
// allocating them, so that a candidate too large for the machine is
// refused before anything is built instead of killing the process (Go
// cannot recover from running out of memory). memory_test.go checks it
// against the peak resident memory of real trainings.
//
// It does not count what the process holds anyway (the Go runtime, the
// program, the dataset), nor the garbage a long training's steps leave
// (0.2 to 0.5 MiB a step, from gorgonia's bookkeeping and the kernels'
// closures), which the garbage collector lets grow until the heap has
// doubled since its last collection unless a soft memory limit
// (GOMEMLIMIT) makes it collect sooner.
func EstimateMemory(arch space.Arch, cfg Config) int64 {
	cfg = cfg.WithDefaults()
	rt := &runtime{threads: cfg.Threads}
	n, h := cfg.Batch, arch.Resolution
	inCh := max(arch.InChannels, 1)
	floats := int64(n) * int64(h) * int64(h) * int64(inCh) // the input batch
	// params counts every parameter, weights those whose gradients every
	// thread sums privately.
	var params, weights int64
	stem := newStem(rt, n, h, inCh, arch.Stem, actSwish)
	h = stem.cv.ho
	floats += stem.floats() + int64(n*h*h)*int64(arch.Stem)
	params += int64(9*inCh*arch.Stem + 2*arch.Stem)
	weights += int64(9 * inCh * arch.Stem)
	ch, ops := arch.Stem, int64(0)
	for _, blk := range arch.Blocks {
		for j := 0; j < blk.Repeats; j++ {
			in, s := blk.In, blk.Stride
			if j > 0 {
				in, s = blk.Out, 1
			}
			l := newBlock(rt, n, h, blk, in, s, 1, actSwish, 1, "")
			floats += l.floats()
			floats += int64(n*l.ho*l.wo) * int64(l.cout) // output
			floats += int64(n*h*h) * int64(in)           // gradient of the input
			for _, sp := range l.specs {
				params += int64(sp.shape.TotalSize())
			}
			for _, i := range l.weights() {
				weights += int64(l.specs[i-1].shape.TotalSize())
			}
			h, ch = l.ho, blk.Out
			ops++
		}
	}
	head := newHead(rt, n, h*h, ch, arch.Head, actSwish)
	floats += head.floats() + int64(n*arch.Head) + int64(n*h*h)*int64(ch)
	params += int64(ch*arch.Head + 2*arch.Head)
	weights += int64(ch * arch.Head)
	classes := max(arch.Classes, 1)
	if arch.Dropout > 0 {
		floats += 3 * int64(n*arch.Head) // output, mask, gradient
	}
	// Classifier: output, input gradient, transposed weights; the loss's
	// probabilities.
	floats += int64(n*classes) + int64(n*arch.Head) + int64(arch.Head*classes) + int64(n*classes)
	params += int64(arch.Head*classes + classes)
	// Parameters: values, private gradient, the gradient node's copy,
	// the optimizer's two moments, and the moving average.
	copies := int64(5)
	if cfg.EMA > 0 {
		copies++
	}
	floats += copies*params + int64(cfg.Threads-1)*weights
	floats += rt.scratchFloats()
	return 4*floats + memOverhead + ops*memPerBlock
}

// memOverhead is what a training allocates whatever its size, and
// memPerBlock what the graph and the machines' programs take for each
// block: most of the peak of B0 at width 0.1, 8x8 (memory_test.go).
const (
	memOverhead = 512 << 10
	memPerBlock = 200 << 10
)
