package trainer

import (
	"context"
	"errors"

	"github.com/effnas/effnas/space"
	"github.com/effnas/effnas/trainer/dataset"
)

// Defaults of SupernetConfig.
const (
	DefaultSupernetSteps = 3000
	DefaultScoreCalib    = 4   // K: batches whose batch-norm statistics a candidate is scored with
	DefaultScoreImages   = 500 // V: validation images a candidate is scored on
)

// SupernetConfig says how a supernet trains and scores.
type SupernetConfig struct {
	// Train is the recipe: optimizer, learning rate, batch, warm-up (in
	// epochs of the training set), weight decay, seed and threads. Its
	// Epochs is not used: Steps is the budget.
	Train Config `json:"train"`
	// Steps is the number of training steps, one sampled path each;
	// default 3000.
	Steps int `json:"steps"`
	// Calib is K, the training batches whose batch statistics a
	// candidate's batch norms are recalibrated over before it is scored;
	// default 4.
	Calib int `json:"calib"`
	// ScoreImages is V, the first validation images every candidate is
	// scored on; default 500 (all of them when fewer).
	ScoreImages int `json:"score_images"`
}

// Supernet is one network holding every member of a search space at the
// proxy's width and resolution, with shared weights. Not safe for
// concurrent use.
type Supernet struct{}

// NewSupernet builds the supernet whose every stage may hold up to
// bound's repeats, output filters, kernel, expansion and squeeze-excite
// ratio (bound is the proxy-scaled maximum of the space, one block per
// stage; its stem, head, resolution, channels and classes are every
// member's). data is what it trains and scores on.
func NewSupernet(bound space.Arch, data *dataset.Data, cfg SupernetConfig) (*Supernet, error) {
	return nil, errors.New("supernet: not built yet")
}

// Fits reports why arch is not a member of the supernet, or nil.
func (s *Supernet) Fits(arch space.Arch) error { return errors.New("supernet: not built yet") }

// Step trains one step on arch's path and returns the step's loss.
func (s *Supernet) Step(ctx context.Context, arch space.Arch) (float64, error) {
	return 0, errors.New("supernet: not built yet")
}

// Steps returns the number of steps trained so far.
func (s *Supernet) Steps() int { return 0 }

// Score returns arch's validation accuracy on the shared weights, after
// recalibrating its batch norms over Calib training batches.
func (s *Supernet) Score(ctx context.Context, arch space.Arch) (float64, error) {
	return 0, errors.New("supernet: not built yet")
}

// MarshalBinary returns a checkpoint: the shared weights, the optimizer's
// state and the step.
func (s *Supernet) MarshalBinary() ([]byte, error) { return nil, errors.New("supernet: not built yet") }

// UnmarshalBinary restores a checkpoint of a supernet with the same bound
// and config.
func (s *Supernet) UnmarshalBinary(b []byte) error { return errors.New("supernet: not built yet") }
