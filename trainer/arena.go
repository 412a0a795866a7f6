package trainer

// arena hands out float32 buffers from one allocation. A nil arena
// allocates each buffer on its own. With count set it hands out nothing
// and only adds up what was asked (to size an arena before allocating it).
type arena struct {
	buf   []float32
	off   int
	count bool
}

// arenaAlign keeps every buffer on a 64-byte boundary of the arena, as the
// vector kernels prefer.
const arenaAlign = 16

func (a *arena) take(n int) []float32 {
	if a == nil {
		return make([]float32, n)
	}
	at := a.off
	a.off += (n + arenaAlign - 1) / arenaAlign * arenaAlign
	if a.count {
		return nil
	}
	if a.off > len(a.buf) {
		// Sized too small: fall back to the heap rather than fail.
		return make([]float32, n)
	}
	return a.buf[at : at+n : at+n]
}

// reset hands the arena's memory out again from the start.
func (a *arena) reset() { a.off = 0 }
