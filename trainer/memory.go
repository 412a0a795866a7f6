package trainer

import "github.com/effnas/effnas/space"

// EstimateMemory returns about how many bytes training arch with batches of
// batch images on one thread allocates: what the layers keep for the
// backward pass (the inputs of their batch norms), their outputs and the
// gradients of their inputs, the scratch memory they share, and the
// parameters with their gradients, optimizer state and moving average. It
// describes the layers the network would be built from without allocating
// them, before anything is built, so that a candidate too large for the
// machine is refused instead of killing the process (Go cannot recover from
// running out of memory). It is checked against the memory a real training
// allocates (memory_test.go). Each thread beyond the first adds a copy of
// the parameter gradients and of the per-thread scratch.
func EstimateMemory(arch space.Arch, batch int) int64 {
	rt := &runtime{threads: 1}
	n, h := batch, arch.Resolution
	inCh := max(arch.InChannels, 1)
	floats := int64(n) * int64(h) * int64(h) * int64(inCh) // the input batch
	var params int64
	count := func(specs []paramSpec) {
		for _, s := range specs {
			params += int64(s.shape.TotalSize())
		}
	}
	stem := newStem(rt, n, h, inCh, arch.Stem, actSwish)
	h = stem.cv.ho
	floats += stem.floats() + int64(n*h*h)*int64(arch.Stem)
	params += int64(9*inCh*arch.Stem + 2*arch.Stem)
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
			count(l.specs)
			h, ch = l.ho, blk.Out
			ops++
		}
	}
	head := newHead(rt, n, h*h, ch, arch.Head, actSwish)
	floats += head.floats() + int64(n*arch.Head) + int64(n*h*h)*int64(ch)
	params += int64(ch*arch.Head + 2*arch.Head)
	classes := max(arch.Classes, 1)
	if arch.Dropout > 0 {
		floats += 3 * int64(n*arch.Head) // output, mask, gradient
	}
	// Classifier: output, input gradient, transposed weights; the loss's
	// probabilities.
	floats += int64(n*classes) + int64(n*arch.Head) + int64(arch.Head*classes) + int64(n*classes)
	params += int64(arch.Head*classes + classes)
	// Parameters: values, private gradient, gradient node, optimizer state
	// (2), moving average.
	floats += 6 * params
	floats += rt.scratchFloats()
	return 4*floats + memOverhead + ops*memPerBlock
}

// memOverhead is what a training allocates whatever its size, and
// memPerBlock what the graph and the machines' programs take for each
// block (measured with B0 at widths 0.1 to 0.5, 8x8, batch 1).
const (
	memOverhead = 512 << 10
	memPerBlock = 200 << 10
)
