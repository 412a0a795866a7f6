package kern

import "sync"

// Par runs fn over [0, n) split into at most threads contiguous chunks, one
// goroutine per chunk beyond the first, and waits for all of them. fn gets
// the chunk index t (0 <= t < threads) so it can use per-chunk scratch.
func Par(threads, n int, fn func(t, lo, hi int)) {
	if threads > n {
		threads = n
	}
	if threads <= 1 {
		if n > 0 {
			fn(0, 0, n)
		}
		return
	}
	var wg sync.WaitGroup
	chunk := (n + threads - 1) / threads
	for t := 1; t < threads; t++ {
		lo, hi := t*chunk, min((t+1)*chunk, n)
		if lo >= hi {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(t, lo, hi)
		}()
	}
	fn(0, 0, min(chunk, n))
	wg.Wait()
}
