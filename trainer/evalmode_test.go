package trainer

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/effnas/effnas/trainer/dataset"
)

// Three batches of 4 rows and 2 channels, with their statistics worked out
// by hand: the mean, and the unbiased variance (sum of squared deviations
// over 3) that the running statistics keep; batch norm in training mode
// normalises with the biased one (over 4).
var (
	bnBatchA = []float32{
		1, -1,
		2, -1,
		3, 1,
		6, 1,
	} // means 3, 0; squared deviations 4+1+0+9 = 14 and 4: unbiased variances 14/3, 4/3; biased 3.5, 1
	bnBatchB = []float32{
		0, 2,
		0, 2,
		4, 2,
		4, 2,
	} // means 2, 2; unbiased variances 16/3, 0
	bnBatchC = []float32{
		5, 0,
		5, 0,
		5, 4,
		5, 4,
	} // means 5, 2; unbiased variances 0, 16/3
	bnGamma = []float32{2, 0.5}
	bnBeta  = []float32{0.5, -1}
	bnProbe = []float32{ // inputs for inference mode
		0, 0,
		3, 1,
		-2, 5,
		10, -3,
	}
)

// bnRun runs x (4 rows of 2 channels) through l in the mode of rt and returns
// the output.
func bnRun(l *bnLayer, rt *runtime, x []float32) []float32 {
	out := make([]float32, len(x))
	l.forward(rt, [][]float32{x, bnGamma, bnBeta}, out)
	return out
}

// bnWant is gamma*(x-mean)/sqrt(v+eps)+beta, per channel, in float64.
func bnWant(x []float32, mean, v [2]float64) []float64 {
	want := make([]float64, len(x))
	for i, xi := range x {
		j := i % 2
		want[i] = float64(bnGamma[j])*(float64(xi)-mean[j])/math.Sqrt(v[j]+1e-3) + float64(bnBeta[j])
	}
	return want
}

func close32(got []float32, want []float64, tol float64) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if !(math.Abs(float64(got[i])-want[i]) <= tol*max(1, math.Abs(want[i]))) { // NaN fails
			return false
		}
	}
	return true
}

// checkRunning compares l.running() with the mean and variance wanted.
func checkRunning(t *testing.T, what string, l *bnLayer, mean, v [2]float64) {
	t.Helper()
	m, s := l.running()
	if !close32(m, mean[:], 1e-5) || !close32(s, v[:], 1e-5) {
		t.Errorf("%s: running mean %v variance %v, want %v and %v", what, m, s, mean, v)
	}
}

// TestBNTrainingAndInference: training mode normalises with the batch's
// own statistics and folds them into the running averages; inference mode
// normalises with the running averages, debiased: after t updates they are
// the averages of the batch statistics weighted 0.99^(t-i), not 1-0.99^t
// of it.
func TestBNTrainingAndInference(t *testing.T) {
	for _, threads := range []int{1, 2} {
		train := &runtime{threads: threads, training: true}
		infer := &runtime{threads: threads}
		l := newBN(4, 2, actNone)

		// Before any update: mean 0, variance 1.
		checkRunning(t, "no update", l, [2]float64{0, 0}, [2]float64{1, 1})
		if got, want := bnRun(l, infer, bnProbe), bnWant(bnProbe, [2]float64{0, 0}, [2]float64{1, 1}); !close32(got, want, 1e-6) {
			t.Errorf("threads %d: inference before training = %v, want %v", threads, got, want)
		}

		if got, want := bnRun(l, train, bnBatchA), bnWant(bnBatchA, [2]float64{3, 0}, [2]float64{3.5, 1}); !close32(got, want, 1e-6) {
			t.Errorf("threads %d: training on batch A = %v, want %v (its own mean and biased variance)", threads, got, want)
		}
		// One update: the debiased average is batch A's statistics.
		meanA, varA := [2]float64{3, 0}, [2]float64{14.0 / 3, 4.0 / 3}
		checkRunning(t, "after A", l, meanA, varA)
		if got, want := bnRun(l, infer, bnProbe), bnWant(bnProbe, meanA, varA); !close32(got, want, 1e-5) {
			t.Errorf("threads %d: inference after batch A = %v, want %v", threads, got, want)
		}

		bnRun(l, train, bnBatchB)
		meanAB := [2]float64{(0.99*3 + 2) / 1.99, (0.99*0 + 2) / 1.99}
		varAB := [2]float64{(0.99*14.0/3 + 16.0/3) / 1.99, (0.99 * 4.0 / 3) / 1.99}
		checkRunning(t, "after A, B", l, meanAB, varAB)

		bnRun(l, train, bnBatchC)
		// Weights 0.9801, 0.99, 1; they sum to 2.9701.
		meanABC := [2]float64{(0.9801*3 + 0.99*2 + 5) / 2.9701, (0.9801*0 + 0.99*2 + 2) / 2.9701}
		varABC := [2]float64{(0.9801*14.0/3 + 0.99*16.0/3 + 0) / 2.9701, (0.9801*4.0/3 + 0 + 16.0/3) / 2.9701}
		checkRunning(t, "after A, B, C", l, meanABC, varABC)
		if got, want := bnRun(l, infer, bnProbe), bnWant(bnProbe, meanABC, varABC); !close32(got, want, 1e-5) {
			t.Errorf("threads %d: inference after batches A, B, C = %v, want %v", threads, got, want)
		}
		// Inference changes nothing.
		checkRunning(t, "after inference", l, meanABC, varABC)
	}
}

// TestBNCalibration: calibration normalises each batch with its own
// statistics, leaves the running averages alone until it ends, and then
// replaces them by the mean over its batches of the batch means and of the
// unbiased batch variances. A later training step goes back to a moving
// average that starts from the calibrated statistics.
func TestBNCalibration(t *testing.T) {
	train := &runtime{threads: 1, training: true}
	calib := &runtime{threads: 1, calib: true}
	infer := &runtime{threads: 1}
	l := newBN(4, 2, actNone)
	bnRun(l, train, bnBatchA)
	meanA, varA := [2]float64{3, 0}, [2]float64{14.0 / 3, 4.0 / 3}

	// A calibration without batches keeps the statistics.
	l.startCalibration()
	l.endCalibration()
	checkRunning(t, "empty calibration", l, meanA, varA)

	l.startCalibration()
	if got, want := bnRun(l, calib, bnBatchB), bnWant(bnBatchB, [2]float64{2, 2}, [2]float64{4, 0}); !close32(got, want, 1e-5) {
		t.Errorf("calibration on batch B = %v, want %v (its own mean and biased variance)", got, want)
	}
	bnRun(l, calib, bnBatchC)
	checkRunning(t, "during calibration", l, meanA, varA)
	l.endCalibration()
	meanBC := [2]float64{(2 + 5) / 2.0, (2 + 2) / 2.0}
	varBC := [2]float64{(16.0/3 + 0) / 2, (0 + 16.0/3) / 2}
	checkRunning(t, "calibrated on B, C", l, meanBC, varBC)
	if got, want := bnRun(l, infer, bnProbe), bnWant(bnProbe, meanBC, varBC); !close32(got, want, 1e-5) {
		t.Errorf("inference after calibration = %v, want %v", got, want)
	}

	// A second calibration starts afresh.
	l.startCalibration()
	bnRun(l, calib, bnBatchC)
	l.endCalibration()
	meanC, varC := [2]float64{5, 2}, [2]float64{0, 16.0 / 3}
	checkRunning(t, "calibrated on C", l, meanC, varC)

	// Training again: 0.99 of the calibrated statistics, 0.01 of the
	// batch's, with no debiasing.
	bnRun(l, train, bnBatchA)
	checkRunning(t, "calibrated on C, then trained on A", l,
		[2]float64{0.99*5 + 0.01*3, 0.99*2 + 0.01*0},
		[2]float64{0.99*0 + 0.01*14.0/3, 0.99*16.0/3 + 0.01*4.0/3})
}

// TestWeightAverage: apply writes the debiased exponential average of the
// values update saw, weighted decay^(t-i); update leaves the parameters
// alone, and apply before any update does nothing.
func TestWeightAverage(t *testing.T) {
	steps := [][2][]float32{
		{{1}, {0, -2}},
		{{2}, {3, -2}},
		{{4}, {3, 1}},
	}
	for _, c := range []struct {
		decay float64
		want  [3][]float64 // after 1, 2, 3 updates: p, q
	}{
		{0.9, [3][]float64{
			{1, 0, -2},
			{(0.9*1 + 2) / 1.9, (0.9*0 + 3) / 1.9, -2},
			// Weights 0.81, 0.9, 1; they sum to 2.71.
			{(0.81*1 + 0.9*2 + 4) / 2.71, (0.81*0 + 0.9*3 + 3) / 2.71, (0.81*-2 + 0.9*-2 + 1) / 2.71},
		}},
		{0.99, [3][]float64{
			{1, 0, -2},
			{(0.99*1 + 2) / 1.99, (0.99*0 + 3) / 1.99, -2},
			{(0.9801*1 + 0.99*2 + 4) / 2.9701, (0.9801*0 + 0.99*3 + 3) / 2.9701, (0.9801*-2 + 0.99*-2 + 1) / 2.9701},
		}},
	} {
		p := &param{name: "p", data: []float32{7}}
		q := &param{name: "q", data: []float32{7, 7}}
		params := []*param{p, q}
		w := &weightAverage{decay: c.decay}
		w.apply(params)
		if p.data[0] != 7 || q.data[0] != 7 || q.data[1] != 7 {
			t.Errorf("decay %g: apply before any update changed the parameters to %v %v", c.decay, p.data, q.data)
		}
		for i, s := range steps {
			copy(p.data, s[0])
			copy(q.data, s[1])
			w.update(params)
			if !slices.Equal(p.data, s[0]) || !slices.Equal(q.data, s[1]) {
				t.Errorf("decay %g: update %d changed the parameters to %v %v", c.decay, i+1, p.data, q.data)
			}
			// apply overwrites the parameters: check it on copies.
			pc := &param{data: slices.Clone(p.data)}
			qc := &param{data: slices.Clone(q.data)}
			w.apply([]*param{pc, qc})
			if got := append(pc.data, qc.data...); !close32(got, c.want[i], 1e-5) {
				t.Errorf("decay %g: average after %d updates = %v, want %v", c.decay, i+1, got, c.want[i])
			}
		}
	}
}

// trainedSession returns a session of tinyArch at resolution 12 after a
// few SGD steps on data, so that its weights and batch-norm statistics are
// no longer the initial ones.
func trainedSession(t *testing.T, data *dataset.Data, smoothing float64) *session {
	t.Helper()
	arch := tinyArch(t)
	arch.Resolution = 12
	s, err := newSession(arch, 16, 1, 7, smoothing)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
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
	return s
}

// bnStats returns a copy of every batch norm's running mean and variance,
// as evaluation would use them.
func bnStats(s *session) [][]float32 {
	var out [][]float32
	for _, bn := range s.net.bns {
		m, v := bn.running()
		out = append(out, slices.Clone(m), slices.Clone(v))
	}
	return out
}

func paramValues(s *session) [][]float32 {
	var out [][]float32
	for _, p := range s.net.params {
		out = append(out, slices.Clone(p.data))
	}
	return out
}

// TestCalibrate: a network's calibration over two batches gives every
// batch norm the average of the statistics that each batch alone gives
// (they depend only on the weights and the batch); it uses whole batches
// only, changes no weight, and leaves the network in training mode.
func TestCalibrate(t *testing.T) {
	data := synthetic(12, 64, 16, 16, 8)
	s := trainedSession(t, data, 0)
	train := &dataSet{x: data.Train.X, y: data.Train.Y, n: data.Train.N}
	order := rand.New(rand.NewPCG(2, 2)).Perm(train.n)
	before, weights := bnStats(s), paramValues(s)

	calibrate := func(order []int, batches, wantN int) [][]float32 {
		t.Helper()
		n, err := s.calibrate(t.Context(), train, order, batches)
		if err != nil {
			t.Fatal(err)
		}
		if n != wantN {
			t.Errorf("calibrate on %d images, %d batches: used %d images, want %d", len(order), batches, n, wantN)
		}
		if !s.net.rt.training || s.net.rt.calib {
			t.Errorf("after calibrate: training %v, calib %v; want training mode back", s.net.rt.training, s.net.rt.calib)
		}
		return bnStats(s)
	}
	one := calibrate(order[:16], 1, 16)
	two := calibrate(order[16:32], 5, 16) // one whole batch only
	both := calibrate(order[:40], 3, 32)  // two whole batches; 8 images left over
	for i := range both {
		want := make([]float64, len(both[i]))
		for j := range want {
			want[j] = (float64(one[i][j]) + float64(two[i][j])) / 2
		}
		if !close32(both[i], want, 1e-4) {
			t.Errorf("statistics %d (batch norm %d, %s): calibrated on two batches %v, want the average %v of one batch's %v and the other's %v",
				i, i/2, []string{"mean", "variance"}[i%2], both[i], want, one[i], two[i])
		}
	}
	if slices.EqualFunc(one, two, slices.Equal) || slices.EqualFunc(one, before, slices.Equal) {
		t.Error("two batches, or a batch and the moving averages, gave the same statistics: the test shows nothing")
	}
	if !slices.EqualFunc(weights, paramValues(s), slices.Equal) {
		t.Error("calibration changed the weights")
	}
	calibrate(order, 100, 64)
}

// TestEvaluateInInferenceMode: evaluation normalises with the running
// statistics, so an image's loss does not depend on the images batched
// with it (the order of the set, a partial last batch); it does not change
// the statistics or the weights, evaluates without label smoothing, and
// leaves the network in training mode with its smoothing.
func TestEvaluateInInferenceMode(t *testing.T) {
	data := synthetic(12, 64, 40, 16, 9)
	s := trainedSession(t, data, 0.2)
	stats, weights := bnStats(s), paramValues(s)

	acc, loss, err := s.evaluate(t.Context(), &data.Val)
	if err != nil {
		t.Fatal(err)
	}
	if !s.net.rt.training || s.net.xent.smoothing != 0.2 {
		t.Errorf("after evaluate: training %v, smoothing %g; want training mode and 0.2 back", s.net.rt.training, s.net.xent.smoothing)
	}
	if !slices.EqualFunc(stats, bnStats(s), slices.Equal) || !slices.EqualFunc(weights, paramValues(s), slices.Equal) {
		t.Error("evaluation changed the batch-norm statistics or the weights")
	}

	// The set reversed: 40 images in batches 16, 16, 8 with other
	// neighbours.
	rev := dataset.Set{N: data.Val.N, C: data.Val.C, H: data.Val.H, W: data.Val.W}
	size := data.Val.C * data.Val.H * data.Val.W
	for i := data.Val.N - 1; i >= 0; i-- {
		rev.X = append(rev.X, data.Val.X[i*size:(i+1)*size]...)
		rev.Y = append(rev.Y, data.Val.Y[i])
	}
	acc2, loss2, err := s.evaluate(t.Context(), &rev)
	if err != nil {
		t.Fatal(err)
	}
	if acc2 != acc || math.Abs(loss2-loss) > 1e-5*loss {
		t.Errorf("reversed set: accuracy %g loss %g; in order: %g, %g", acc2, loss2, acc, loss)
	}

	// Image by image, a batch of one.
	var sum float64
	correct := 0.0
	for i := range data.Val.N {
		one := dataset.Set{N: 1, C: data.Val.C, H: data.Val.H, W: data.Val.W, X: data.Val.X[i*size : (i+1)*size], Y: data.Val.Y[i : i+1]}
		a, l, err := s.evaluate(t.Context(), &one)
		if err != nil {
			t.Fatal(err)
		}
		sum += l
		correct += a
		// The plain cross-entropy, not the training's smoothed one.
		if p := float64(s.net.xent.prob[one.Y[0]]); math.Abs(l+math.Log(p)) > 1e-5*max(l, 1) {
			t.Errorf("image %d: loss %g, want -log(p of its label %g) = %g", i, l, p, -math.Log(p))
		}
	}
	if correct/float64(data.Val.N) != acc || math.Abs(sum/float64(data.Val.N)-loss) > 1e-5*loss {
		t.Errorf("image by image: accuracy %g loss %g; in batches: %g, %g", correct/float64(data.Val.N), sum/float64(data.Val.N), acc, loss)
	}

}

// TestTrainEvaluatesAverageAndCalibrated: the weight average and the
// batch-norm calibration change what Train evaluates, and only that: the
// training itself is the same.
func TestTrainEvaluatesAverageAndCalibrated(t *testing.T) {
	arch := tinyArch(t)
	arch.Resolution = 12
	data := synthetic(12, 96, 32, 32, 10)
	run := func(ema float64, calib int) Result {
		t.Helper()
		cfg := tinyConfig()
		cfg.Epochs, cfg.EMA, cfg.BNCalibration = 2, ema, calib
		res, err := Train(t.Context(), arch, data, cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	plain := run(-1, -1)
	avg := run(0.9, -1)
	cal := run(-1, 3)
	if avg.TrainLoss != plain.TrainLoss || cal.TrainLoss != plain.TrainLoss || avg.Steps != plain.Steps {
		t.Errorf("training losses %g (average), %g (calibrated), %g (neither): want the same training", avg.TrainLoss, cal.TrainLoss, plain.TrainLoss)
	}
	if avg.ValLoss == plain.ValLoss || avg.TestLoss == plain.TestLoss {
		t.Errorf("with a weight average, validation loss %g test loss %g; without, %g %g: want different weights evaluated",
			avg.ValLoss, avg.TestLoss, plain.ValLoss, plain.TestLoss)
	}
	if cal.ValLoss == plain.ValLoss || cal.TestLoss == plain.TestLoss {
		t.Errorf("with calibration, validation loss %g test loss %g; without, %g %g: want different statistics used",
			cal.ValLoss, cal.TestLoss, plain.ValLoss, plain.TestLoss)
	}
	if plain.CalibImagesPerSecond != 0 || !(cal.CalibImagesPerSecond > 0) {
		t.Errorf("calibration speed %g without calibration, %g with 3 batches", plain.CalibImagesPerSecond, cal.CalibImagesPerSecond)
	}
}
