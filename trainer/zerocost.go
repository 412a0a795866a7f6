package trainer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/effnas/effnas/space"
	"github.com/effnas/effnas/trainer/dataset"
)

// Zero-cost scores: ZeroCost's kinds.
const (
	// GradNorm is the sum over the parameter tensors of the L2 norm of
	// the training loss's gradient.
	GradNorm = "gradnorm"
	// SynFlow is the sum over every parameter of |θ·∂L/∂θ| with every
	// parameter replaced by its absolute value (see ZeroCost).
	SynFlow = "synflow"
)

// ZeroCostKinds lists the accepted kinds of ZeroCost, sorted.
var ZeroCostKinds = []string{GradNorm, SynFlow}

// ZeroCost scores arch at initialisation from one batch of training
// images, without training it: the batch is the first cfg.Batch images of
// data.Train in a shuffle seeded by cfg.Seed (the batch Train's first step
// sees) and the weights are those Train would start from with cfg.Seed.
// The network runs as it trains (batch statistics in every batch norm),
// but without dropout or drop-connect, so that the score depends on the
// weights and the batch alone. L is the mean training loss over the batch
// (cross-entropy, with cfg.LabelSmoothing). kind is one of:
//
//   - "gradnorm": Σ_p ‖∂L/∂θ_p‖₂, the L2 norm of the gradient of each
//     parameter tensor p (convolution, dense, batch-norm scale and shift),
//     summed over the tensors (Abdelfattah et al., "Zero-cost proxies for
//     lightweight NAS", 2021).
//   - "synflow": Σ_i |θ_i·∂L/∂θ_i| over every parameter, computed after
//     every parameter (batch-norm scales and shifts included) is replaced
//     by its absolute value, on the same real batch and loss. This is not
//     Tanaka et al.'s SynFlow, whose loss is the sum of the network's
//     outputs on an all-ones input with batch norm turned off: with batch
//     norm in every block and a cross-entropy loss, an all-ones input
//     makes every batch statistic degenerate. It is a hybrid: SNIP's
//     saliency |θ·∂L/∂θ| on real data (Lee et al. 2019), taken at
//     SynFlow's all-positive weights. The residual blocks' last batch norm
//     starts with scale 0 (Train's initialisation), which stays 0.
//
// Both are larger for a network with more, or more sensitive, weights;
// neither uses labels beyond the one batch. Several ZeroCosts may run at
// once in goroutines.
func ZeroCost(ctx context.Context, kind string, arch space.Arch, data *dataset.Data, cfg Config) (float64, error) {
	if !slices.Contains(ZeroCostKinds, kind) {
		return 0, fmt.Errorf("zero-cost score %q is unknown; use one of %s", kind, strings.Join(ZeroCostKinds, ", "))
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return 0, fmt.Errorf("training config: %w", err)
	}
	if data == nil {
		return 0, errors.New("no dataset")
	}
	if err := checkArch(arch, data); err != nil {
		return 0, err
	}
	if data.Train.N < cfg.Batch {
		return 0, fmt.Errorf("training set has %d images, fewer than one batch of %d; lower the batch size or load more images", data.Train.N, cfg.Batch)
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("zero-cost score: %w", err)
	}
	arch.Dropout, arch.DropConnect = 0, 0
	s, err := newSession(arch, cfg.Batch, cfg.Threads, cfg.Seed, cfg.LabelSmoothing)
	if err != nil {
		return 0, err
	}
	defer s.close()
	train := &dataSet{x: data.Train.X, y: data.Train.Y, n: data.Train.N}
	return s.zeroCost(kind, train, firstBatch(train.n, cfg.Batch, cfg.Seed))
}

// firstBatch returns the images of the first step of Train seeded with
// seed over n images: the first batch of its first shuffle.
func firstBatch(n, batch int, seed uint64) []int {
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	shuffle := rand.New(rand.NewPCG(seed, 2))
	shuffle.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	return order[:batch]
}

// zeroCost runs one forward and backward pass of the session's network on
// the images idx of set and returns the score kind of its gradient (see
// ZeroCost). For synflow it replaces the weights by their absolute values
// first.
func (s *session) zeroCost(kind string, set *dataSet, idx []int) (float64, error) {
	if kind == SynFlow {
		for _, p := range s.net.params {
			for i, v := range p.data {
				p.data[i] = float32(math.Abs(float64(v)))
			}
		}
	}
	s.net.rt.training = true
	s.net.setBatch(set, idx)
	if err := s.run(); err != nil {
		return 0, err
	}
	if loss := s.net.xent.lossSum; math.IsNaN(loss) || math.IsInf(loss, 0) {
		return 0, fmt.Errorf("%s: the loss at initialisation is %v: %w", kind, loss/float64(len(idx)), ErrDiverged)
	}
	var score float64
	for _, p := range s.net.params {
		var sum float64
		for i, g := range p.grad {
			switch kind {
			case GradNorm:
				sum += float64(g) * float64(g)
			case SynFlow:
				sum += math.Abs(float64(p.data[i]) * float64(g))
			}
		}
		if kind == GradNorm {
			sum = math.Sqrt(sum)
		}
		score += sum
	}
	if math.IsNaN(score) || math.IsInf(score, 0) {
		return 0, fmt.Errorf("%s score is %v: %w", kind, score, ErrDiverged)
	}
	return score, nil
}
