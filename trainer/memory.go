package trainer

import "github.com/effnas/effnas/space"

// memCount tallies float32 buffers as buildNetwork and a training step
// allocate them.
type memCount struct {
	floats int64 // float32 values
	params int64 // parameter values
}

// op counts one layer: its output, and for every input with a gradient a
// private gradient buffer and the gradient node's output (the residual
// skip's gradient is passed through: skip is the size of that input).
func (m *memCount) op(out int64, diffIn ...int64) {
	m.floats += out
	for _, n := range diffIn {
		m.floats += 2 * n
	}
}

func (m *memCount) param(n int64) int64 { m.params += n; return n }

// conv counts a k x k convolution from h x h x cin to cout channels, and
// returns the output size.
func (m *memCount) conv(n, h, cin, cout, k, s int) int {
	ho, _ := samePad(h, k, s)
	rows := int64(n) * int64(ho) * int64(ho)
	in := int64(n) * int64(h) * int64(h) * int64(cin)
	m.op(rows*int64(cout), in, m.param(int64(k*k*cin*cout)))
	if k != 1 || s != 1 {
		m.floats += 3 * rows * int64(k*k*cin) // im2col, its transpose, its gradient
	}
	return ho
}

// bn counts a batch norm fused with swish (which saves its sigmoid).
func (m *memCount) bn(rows int64, c int) {
	m.op(rows*int64(c), rows*int64(c), m.param(int64(c)), m.param(int64(c)))
	m.floats += rows * int64(c)
}

func (m *memCount) dense(n, cin, cout int) {
	m.op(int64(n*cout), int64(n*cin), m.param(int64(cin*cout)), m.param(int64(cout)))
}

// EstimateMemory returns about how many bytes training arch with batches of
// batch images allocates: the activations the graph keeps for the
// backward pass and their gradients, the convolution workspaces, and the
// parameters with their gradients, optimizer state and moving average. It
// is computed from the architecture alone, before anything is built, so
// that a candidate too large for the machine is refused instead of killing
// the process (Go cannot recover from running out of memory). It is
// checked against the memory a real training allocates (memory_test.go).
func EstimateMemory(arch space.Arch, batch int) int64 {
	var m memCount
	n, h := batch, arch.Resolution
	in := int64(n) * int64(h) * int64(h) * int64(max(arch.InChannels, 1))
	m.floats += in
	h = m.conv(n, h, max(arch.InChannels, 1), arch.Stem, 3, 2)
	m.bn(int64(n*h*h), arch.Stem)
	for _, blk := range arch.Blocks {
		for j := 0; j < blk.Repeats; j++ {
			cin, s := blk.In, blk.Stride
			if j > 0 {
				cin, s = blk.Out, 1
			}
			rows := int64(n * h * h)
			ch, ho := cin, h
			if blk.Op == space.OpConv {
				ho = m.conv(n, h, cin, blk.Out, blk.Kernel, s)
				m.bn(int64(n*ho*ho), blk.Out)
				ch = blk.Out
			} else {
				if blk.Expand != 1 {
					ch = cin * blk.Expand
					m.conv(n, h, cin, ch, 1, 1)
					m.bn(rows, ch)
				}
				ho, _ = samePad(h, blk.Kernel, s)
				m.op(int64(n*ho*ho*ch), rows*int64(ch), m.param(int64(blk.Kernel*blk.Kernel*ch)))
				m.bn(int64(n*ho*ho), ch)
			}
			orows := int64(n * ho * ho)
			if blk.SE > 0 {
				r := max(1, int(float64(cin)*blk.SE))
				m.op(int64(n*ch), orows*int64(ch))
				m.dense(n, ch, r)
				m.op(int64(n*r), int64(n*r))
				m.dense(n, r, ch)
				m.op(int64(n*ch), int64(n*ch))
				m.op(orows*int64(ch), orows*int64(ch), int64(n*ch))
			}
			if blk.Op != space.OpConv {
				m.conv(n, ho, ch, blk.Out, 1, 1)
				m.bn(orows, blk.Out)
			}
			if blk.Skip && s == 1 && cin == blk.Out {
				m.op(orows*int64(blk.Out), 0, orows*int64(blk.Out))
			}
			h = ho
		}
	}
	last := arch.Stem
	if len(arch.Blocks) > 0 {
		last = arch.Blocks[len(arch.Blocks)-1].Out
	}
	m.conv(n, h, last, arch.Head, 1, 1)
	m.bn(int64(n*h*h), arch.Head)
	m.op(int64(n*arch.Head), int64(n*h*h*arch.Head))
	if arch.Dropout > 0 {
		m.op(int64(n*arch.Head), int64(n*arch.Head))
		m.floats += int64(n * arch.Head)
	}
	m.dense(n, arch.Head, max(arch.Classes, 1))
	m.floats += 2 * int64(n*max(arch.Classes, 1))
	// Parameters: values, optimizer state (2), moving average.
	m.floats += 4 * m.params
	return 4*m.floats + memOverhead
}

// memOverhead is what a training allocates whatever its size: the graph,
// the machines' programs.
const memOverhead = 8 << 20
