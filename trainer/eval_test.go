package trainer

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestForwardOnlyEvaluation: evaluation runs a machine that holds only the
// forward pass; it gives exactly what the whole graph gives in inference
// mode, and it is faster, because no gradient node runs.
func TestForwardOnlyEvaluation(t *testing.T) {
	arch := tinyArch(t)
	arch.Resolution = 12
	data := synthetic(12, 64, 160, 16, 5)
	s, err := newSession(arch, 16, 1, 7, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	train := &dataSet{x: data.Train.X, y: data.Train.Y, n: data.Train.N}
	opt := &optimizer{kind: "sgd", momentum: 0.9}
	idx := rand.New(rand.NewPCG(1, 1)).Perm(train.n)
	for i := 0; i+16 <= train.n; i += 16 {
		s.net.setBatch(train, idx[i:i+16])
		if err := s.run(); err != nil {
			t.Fatal(err)
		}
		opt.step(s.net.params, 0.05)
	}
	timed := func() (acc, loss float64, d time.Duration) {
		start := time.Now()
		for range 5 {
			if acc, loss, err = s.evaluate(t.Context(), &data.Val); err != nil {
				t.Fatal(err)
			}
		}
		return acc, loss, time.Since(start)
	}
	acc, loss, fwd := timed()
	s.fwd, s.vm = s.vm, s.fwd // evaluate through the whole graph
	acc2, loss2, full := timed()
	s.fwd, s.vm = s.vm, s.fwd
	if acc != acc2 || loss != loss2 {
		t.Fatalf("forward-only evaluation gives accuracy %v, loss %v; the whole graph %v, %v", acc, loss, acc2, loss2)
	}
	t.Logf("evaluation of %d images x 5: forward-only %v, whole graph %v", data.Val.N, fwd, full)
}
