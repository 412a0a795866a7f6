package trainer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/effnas/effnas/space"
	"github.com/effnas/effnas/trainer/dataset"
	G "gorgonia.org/gorgonia"
)

// ErrDiverged is returned (wrapped) when the training loss becomes NaN or
// infinite, or explodes: rises above explodeFactor times the first step's.
var ErrDiverged = errors.New("training diverged")

// explodeFactor: a loss this many times the first step's has diverged.
const explodeFactor = 10.0

// Result is what one training reports.
type Result struct {
	ValAccuracy     float64 `json:"val_accuracy"`      // fraction of the validation set classified correctly (0 with no validation set)
	TestAccuracy    float64 `json:"test_accuracy"`     // the same on the test set
	TrainLoss       float64 `json:"train_loss"`        // mean training loss over the last epoch
	ValLoss         float64 `json:"val_loss"`          // mean cross-entropy on the validation set
	TestLoss        float64 `json:"test_loss"`         // mean cross-entropy on the test set
	Epochs          int     `json:"epochs"`            // epochs completed
	Steps           int     `json:"steps"`             // optimizer steps taken
	Seconds         float64 `json:"seconds"`           // wall time of the whole call
	ImagesPerSecond float64 `json:"images_per_second"` // training images per second (training steps only)
	// EvalImagesPerSecond is the speed of evaluation (validation and test,
	// forward pass only); CalibImagesPerSecond that of batch-norm
	// calibration (forward pass with batch statistics).
	EvalImagesPerSecond  float64 `json:"eval_images_per_second"`
	CalibImagesPerSecond float64 `json:"calib_images_per_second"`
}

// Progress is called after every training step with the step (1-based), the
// total number of steps and the step's loss. It runs on the training
// goroutine; keep it quick.
type Progress func(step, totalSteps int, loss float64)

// session is one network with its VMs, ready to run steps: vm runs the
// whole graph (forward and backward), fwd only the forward pass, for
// evaluation and batch-norm calibration.
type session struct {
	net *network
	vm  G.VM
	fwd G.VM
}

func newSession(arch space.Arch, batch, threads int, seed uint64, smoothing float64) (*session, error) {
	rt := &runtime{threads: threads, training: true, rng: rand.New(rand.NewPCG(seed, 3))}
	net, err := buildNetwork(arch, batch, rt, seed, smoothing)
	if err != nil {
		return nil, err
	}
	return &session{net: net, vm: G.NewTapeMachine(net.g), fwd: G.NewTapeMachine(net.g.SubgraphRoots(net.loss))}, nil
}

func (s *session) close() {
	s.vm.Close()
	s.fwd.Close()
}

// run executes the whole graph once: a training step's forward and
// backward passes.
func (s *session) run() error { return s.exec(s.vm) }

// forward executes the forward pass only: no gradient node runs.
func (s *session) forward() error { return s.exec(s.fwd) }

func (s *session) exec(vm G.VM) error {
	s.net.rt.gen++
	err := vm.RunAll()
	vm.Reset()
	if err != nil {
		return fmt.Errorf("run the graph: %w", err)
	}
	return nil
}

func checkArch(arch space.Arch, data *dataset.Data) error {
	if err := arch.Validate(); err != nil {
		return fmt.Errorf("architecture: %w", err)
	}
	if arch.InChannels != data.Channels {
		return fmt.Errorf("architecture takes %d input channels but dataset %q has %d; set the arch's InChannels to %d",
			arch.InChannels, data.Name, data.Channels, data.Channels)
	}
	if arch.Classes != data.Classes {
		return fmt.Errorf("architecture has %d classes but dataset %q has %d; set the arch's Classes to %d",
			arch.Classes, data.Name, data.Classes, data.Classes)
	}
	for _, set := range []struct {
		name string
		s    *dataset.Set
	}{{"train", &data.Train}, {"validation", &data.Val}, {"test", &data.Test}} {
		s := set.s
		if s.N == 0 {
			continue
		}
		if s.H != arch.Resolution || s.W != arch.Resolution || s.C != arch.InChannels {
			return fmt.Errorf("%s images are %dx%dx%d but the architecture takes %dx%dx%d; load the dataset at resolution %d",
				set.name, s.C, s.H, s.W, arch.InChannels, arch.Resolution, arch.Resolution, arch.Resolution)
		}
		if len(s.X) != s.N*s.C*s.H*s.W || len(s.Y) != s.N {
			return fmt.Errorf("%s set holds %d values and %d labels for %d images of %dx%dx%d", set.name, len(s.X), len(s.Y), s.N, s.C, s.H, s.W)
		}
		for i, y := range s.Y {
			if y < 0 || y >= data.Classes {
				return fmt.Errorf("%s label %d of image %d is outside [0, %d)", set.name, y, i, data.Classes)
			}
		}
	}
	return nil
}

// Train trains arch on data.Train with cfg and reports validation and test
// accuracy in inference mode. arch must already be scaled: its InChannels,
// Classes and Resolution must match the data. It stops between minibatches
// when ctx is done, and returns an error wrapping ErrDiverged if the loss
// becomes NaN or infinite. Several Trains may run at once in goroutines.
func Train(ctx context.Context, arch space.Arch, data *dataset.Data, cfg Config, progress Progress) (Result, error) {
	start := time.Now()
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return Result{}, fmt.Errorf("training config: %w", err)
	}
	if data == nil {
		return Result{}, errors.New("no dataset")
	}
	if err := checkArch(arch, data); err != nil {
		return Result{}, err
	}
	if data.Train.N < cfg.Batch {
		return Result{}, fmt.Errorf("training set has %d images, fewer than one batch of %d; lower the batch size or load more images", data.Train.N, cfg.Batch)
	}
	s, err := newSession(arch, cfg.Batch, cfg.Threads, cfg.Seed, cfg.LabelSmoothing)
	if err != nil {
		return Result{}, err
	}
	defer s.close()

	train := &dataSet{x: data.Train.X, y: data.Train.Y, n: data.Train.N}
	perEpoch := train.n / cfg.Batch
	total := perEpoch * cfg.Epochs
	warmup := int(math.Round(cfg.WarmupEpochs * float64(perEpoch)))
	opt := &optimizer{kind: cfg.Optimizer, momentum: cfg.Momentum, decay: cfg.WeightDecay, clip: cfg.GradClip}
	shuffle := rand.New(rand.NewPCG(cfg.Seed, 2))
	order := make([]int, train.n)
	for i := range order {
		order[i] = i
	}
	ema := &weightAverage{decay: cfg.EMA}
	var res Result
	var trainTime time.Duration
	step := 0
	var firstLoss float64
	for epoch := 0; epoch < cfg.Epochs; epoch++ {
		shuffle.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		var sum float64
		for bi := 0; bi < perEpoch; bi++ {
			if err := ctx.Err(); err != nil {
				return res, fmt.Errorf("training stopped at step %d of %d: %w", step, total, err)
			}
			t0 := time.Now()
			s.net.rt.training = true
			s.net.setBatch(train, order[bi*cfg.Batch:(bi+1)*cfg.Batch])
			if err := s.run(); err != nil {
				return res, err
			}
			loss := s.net.xent.lossSum / float64(cfg.Batch)
			if math.IsNaN(loss) || math.IsInf(loss, 0) {
				return res, fmt.Errorf("loss is %v at step %d of %d (epoch %d); lower the learning rate (%g): %w",
					loss, step+1, total, epoch+1, cfg.LR, ErrDiverged)
			}
			if step == 0 {
				firstLoss = loss
			} else if loss > explodeFactor*firstLoss {
				return res, fmt.Errorf("loss %.3g at step %d of %d (epoch %d) is over %g times the first step's %.3g; lower the learning rate (%g): %w",
					loss, step+1, total, epoch+1, explodeFactor, firstLoss, cfg.LR, ErrDiverged)
			}
			opt.step(s.net.params, schedule(cfg.LR, step, warmup, total))
			if cfg.EMA > 0 {
				ema.update(s.net.params)
			}
			trainTime += time.Since(t0)
			step++
			sum += loss
			if progress != nil {
				progress(step, total, loss)
			}
		}
		res.TrainLoss = sum / float64(perEpoch)
		res.Epochs = epoch + 1
	}
	res.Steps = step
	if trainTime > 0 {
		res.ImagesPerSecond = float64(step*cfg.Batch) / trainTime.Seconds()
	}
	if cfg.EMA > 0 {
		ema.apply(s.net.params)
	}
	if cfg.BNCalibration > 0 {
		t0 := time.Now()
		n, err := s.calibrate(ctx, train, order, cfg.BNCalibration)
		if err != nil {
			return res, err
		}
		if d := time.Since(t0).Seconds(); d > 0 {
			res.CalibImagesPerSecond = float64(n) / d
		}
	}
	t0 := time.Now()
	if data.Val.N > 0 {
		if res.ValAccuracy, res.ValLoss, err = s.evaluate(ctx, &data.Val); err != nil {
			return res, fmt.Errorf("validation: %w", err)
		}
	}
	if data.Test.N > 0 {
		if res.TestAccuracy, res.TestLoss, err = s.evaluate(ctx, &data.Test); err != nil {
			return res, fmt.Errorf("test: %w", err)
		}
	}
	if d := time.Since(t0).Seconds(); d > 0 && data.Val.N+data.Test.N > 0 {
		res.EvalImagesPerSecond = float64(data.Val.N+data.Test.N) / d
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// calibrate sets the batch-norm statistics used for evaluation to the
// average batch statistics of up to batches training batches (in the order
// given), computed with the final weights. The moving averages mix in
// statistics of weights from hundreds of steps ago, which in a short proxy
// run are far from the final ones. It returns the number of images used.
func (s *session) calibrate(ctx context.Context, set *dataSet, order []int, batches int) (int, error) {
	s.net.rt.training, s.net.rt.calib = false, true
	defer func() { s.net.rt.training, s.net.rt.calib = true, false }()
	for _, bn := range s.net.bns {
		bn.startCalibration()
	}
	b := s.net.batch
	n := 0
	for i := 0; i < batches && (i+1)*b <= len(order); i++ {
		if err := ctx.Err(); err != nil {
			return n, fmt.Errorf("batch-norm calibration stopped: %w", err)
		}
		s.net.setBatch(set, order[i*b:(i+1)*b])
		if err := s.forward(); err != nil {
			return n, fmt.Errorf("batch-norm calibration: %w", err)
		}
		n += b
	}
	for _, bn := range s.net.bns {
		bn.endCalibration()
	}
	return n, nil
}

// evaluate runs set through the network in inference mode and returns the
// accuracy and mean cross-entropy.
func (s *session) evaluate(ctx context.Context, set *dataset.Set) (acc, loss float64, err error) {
	s.net.rt.training = false
	defer func() { s.net.rt.training = true }()
	smoothing := s.net.xent.smoothing
	s.net.xent.smoothing = 0
	defer func() { s.net.xent.smoothing = smoothing }()
	ds := &dataSet{x: set.X, y: set.Y, n: set.N}
	idx := make([]int, 0, s.net.batch)
	correct, sum := 0, 0.0
	for lo := 0; lo < ds.n; lo += s.net.batch {
		if err := ctx.Err(); err != nil {
			return 0, 0, fmt.Errorf("evaluation stopped: %w", err)
		}
		idx = idx[:0]
		for i := lo; i < min(lo+s.net.batch, ds.n); i++ {
			idx = append(idx, i)
		}
		s.net.setBatch(ds, idx)
		if err := s.forward(); err != nil {
			return 0, 0, err
		}
		correct += s.net.xent.correct
		sum += s.net.xent.lossSum
	}
	return float64(correct) / float64(ds.n), sum / float64(ds.n), nil
}
