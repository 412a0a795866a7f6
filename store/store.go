package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// Errors a Store returns, wrapped with context; test them with errors.Is.
var (
	// ErrNotFound: the study, trial or controller state does not exist.
	ErrNotFound = errors.New("not found")
	// ErrLeaseLost: the caller no longer holds the trial it tries to finish,
	// fail, interrupt or heartbeat (another attempt claimed it, it was
	// recovered, or its lease expired on the database's clock). The caller
	// must drop its result: a newer attempt owns the trial.
	ErrLeaseLost = errors.New("lease lost")
	// ErrDuplicateKey: a planned trial's candidate key, rung and seed are
	// already in the study.
	ErrDuplicateKey = errors.New("candidate already planned at this rung and seed in this study")
	// ErrInvalidMetric: an accuracy, reward or duration is NaN or infinite.
	// Nothing is written; record the trial with FailTrial instead.
	ErrInvalidMetric = errors.New("metric is NaN or infinite")
	// ErrInvalid: an argument is malformed (empty worker, unknown kind...).
	ErrInvalid = errors.New("invalid argument")
	// ErrDuplicateScreened: a screened candidate's number is already
	// recorded in the study (or twice in one AddScreened). Nothing of the
	// batch is written.
	ErrDuplicateScreened = errors.New("screened candidate number already recorded in this study")
	// ErrDiskFull: the database's disk is full. No retry can mend it: the
	// run stops, and resumes once space is freed. Drivers' own errors for
	// it are recognised by IsDiskFull too.
	ErrDiskFull = errors.New("disk is full")
)

// IsDiskFull reports whether err says the database could not write
// because its disk is full: ErrDiskFull, the operating system's ENOSPC
// (or EFBIG, a file-size limit reached), SQLite's SQLITE_FULL ("database
// or disk is full", or an I/O error "no space left on device" or "file
// too large") or PostgreSQL's disk_full (SQLSTATE 53100). A retry cannot
// help; freeing space can.
func IsDiskFull(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrDiskFull) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EFBIG) {
		return true
	}
	var pg interface{ SQLState() string } // pgconn.PgError, without importing the driver
	if errors.As(err, &pg) && pg.SQLState() == "53100" {
		return true
	}
	msg := err.Error()
	for _, m := range []string{"database or disk is full", "no space left on device", "file too large"} {
		if strings.Contains(msg, m) {
			return true
		}
	}
	return false
}

// Passwords a database name or a driver's error might hold: a URL's user
// information and password parameters (password=, sslpassword=).
var (
	urlPassword   = regexp.MustCompile(`(://[^:/@\s]*:)[^@\s]*@`)
	passwordParam = regexp.MustCompile(`(?i)(password=)[^&\s]*`)
)

// HidePasswords replaces every password in s, a database URL, a key=value
// connection string or a message that quotes one, with xxxxx.
func HidePasswords(s string) string {
	s = urlPassword.ReplaceAllString(s, "${1}xxxxx@")
	return passwordParam.ReplaceAllString(s, "${1}xxxxx")
}

// Store keeps studies, their trials (search candidates and grid points) and
// controller state. Implementations are safe for concurrent use by many
// goroutines, and by several processes sharing one database, and must pass
// storetest.Run.
//
// Work flows through trials: the coordinator plans trials (state pending),
// workers claim them with a lease measured on the database's clock
// (running), renew the lease with Heartbeat while training, and record the
// outcome with FinishTrial, FailTrial or InterruptTrial, each accepted only
// while the caller still holds the lease. No transaction stays open while a
// model trains.
type Store interface {
	// CreateStudy inserts a study and returns it with ID, Status (running),
	// and timestamps filled in. MaxAttempts 0 means DefaultMaxAttempts.
	// plans (may be nil) are written as its first pending trials in the
	// same transaction: a study is never left without the trials it was
	// created with, and nothing is written when a plan is refused.
	CreateStudy(ctx context.Context, s Study, plans []Plan) (Study, error)
	// Study returns one study or ErrNotFound.
	Study(ctx context.Context, id int64) (Study, error)
	// LatestStudy returns the newest study of the kind ("" for any kind),
	// or ErrNotFound when there is none.
	LatestStudy(ctx context.Context, kind Kind) (Study, error)
	// Studies returns every study, oldest first.
	Studies(ctx context.Context) ([]Study, error)
	// SetStudyStatus changes a study's status.
	SetStudyStatus(ctx context.Context, id int64, status StudyStatus) error

	// PlanTrials writes plans as pending trials numbered after the study's
	// last trial, all or nothing, and returns them in order. A key, rung
	// and seed already in the study (or twice in plans) fails with
	// ErrDuplicateKey. When
	// controllerState is not nil it is saved in the same transaction, so
	// the proposals and the controller state that produced them commit
	// together.
	PlanTrials(ctx context.Context, study int64, plans []Plan, controllerState []byte) ([]Trial, error)
	// ClaimTrials claims up to c.Limit trials of the study for c.Worker,
	// lowest number first: pending ones, and running ones whose lease
	// expired (their worker is presumed dead: a crash). Each claim
	// increments the trial's Attempt and sets a lease of c.Lease. A trial
	// whose crashes reach the study's MaxAttempts is marked failed instead
	// of claimed again. Trials estimated to need more than c.MaxMemory are
	// left for other workers. A study that is not running has nothing to
	// claim. It returns an empty slice when nothing is claimable.
	ClaimTrials(ctx context.Context, study int64, c Claim) ([]Trial, error)
	// Heartbeat extends a held lease to lease from now (database clock).
	Heartbeat(ctx context.Context, l Lease, lease time.Duration) error
	// FinishTrial records a result and marks the trial complete. It fails
	// with ErrInvalidMetric for NaN or infinite values (nothing written)
	// and with ErrLeaseLost when l is no longer the trial's claimant.
	FinishTrial(ctx context.Context, l Lease, r Result) error
	// FailTrial marks a held trial failed for good with a reason.
	FailTrial(ctx context.Context, l Lease, reason string, seconds float64) error
	// InterruptTrial marks a held trial interrupted (a stop the trial did
	// not cause, such as Ctrl-C); RecoverTrials puts it back to pending.
	InterruptTrial(ctx context.Context, l Lease, reason string) error
	// ReleaseTrial hands a held trial back: it is pending again at once,
	// with the same candidate, for any worker to claim. A worker that stops
	// while others go on (SIGTERM) releases its trials this way; the
	// hand-back does not count as a failed attempt.
	ReleaseTrial(ctx context.Context, l Lease, reason string) error
	// RecoverTrials is called on resume by the only process working on the
	// study: interrupted trials and trials left running (whatever their
	// lease) go back to pending with the same candidate. A running trial
	// counts a crash, and one whose crashes reach MaxAttempts is marked
	// failed instead. Complete and failed trials are never touched. A
	// claim on the study's supernet is dropped (its checkpoint kept), so
	// the resuming process may claim it at once.
	RecoverTrials(ctx context.Context, study int64) (Recovered, error)

	// Trial returns one trial by number or ErrNotFound.
	Trial(ctx context.Context, study int64, number int) (Trial, error)
	// TrialByKey returns the study's trial of the candidate key at a rung
	// and seed, or ErrNotFound.
	TrialByKey(ctx context.Context, study int64, key string, rung, seed int) (Trial, error)
	// Trials returns all trials of the study ordered by number.
	Trials(ctx context.Context, study int64) ([]Trial, error)
	// CountTrials counts the study's trials by state.
	CountTrials(ctx context.Context, study int64) (Counts, error)

	// SaveControllerState replaces the study's controller snapshot.
	SaveControllerState(ctx context.Context, study int64, state []byte) error
	// LoadControllerState returns the last snapshot or ErrNotFound.
	LoadControllerState(ctx context.Context, study int64) ([]byte, error)

	// ClaimSupernet claims for worker the right to train the study's
	// supernet, with a lease of lease (database clock), when nobody holds
	// it, its holder's lease expired, or worker holds it already (the
	// lease is then renewed). It returns the latest checkpoint either way
	// (Step 0 and no Weights before the first save) with its Holder, and
	// claimed false when another worker holds a live lease; a refused
	// claim's checkpoint has no Weights, which the refused caller may not
	// train from (Supernet reads them). A Done training is claimed by
	// anyone, with its Weights: the caller sees it finished; its holder
	// changes, as for a training under way, only when nobody holds a live
	// lease (so that a resumed process may save the scoring's figures
	// with it). ErrNotFound when the study does not exist.
	ClaimSupernet(ctx context.Context, study int64, worker string, lease time.Duration) (ck SupernetCheckpoint, claimed bool, err error)
	// SaveSupernet replaces the study's checkpoint by ck when worker
	// holds the claim with a live lease, and extends that lease to lease
	// from now; otherwise it fails with ErrLeaseLost and writes nothing. A
	// Step lower than the stored one fails with ErrInvalid (a late save
	// of an older state), NaN or infinite Seconds with ErrInvalidMetric.
	// Checkpoints, Seconds, Done, Meta and Weights are stored as given;
	// Holder and Updated are the store's.
	SaveSupernet(ctx context.Context, worker string, ck SupernetCheckpoint, lease time.Duration) error
	// HeartbeatSupernet extends worker's claim on the study's supernet to
	// lease from now (database clock), or fails with ErrLeaseLost when
	// worker does not hold it or its lease expired.
	HeartbeatSupernet(ctx context.Context, study int64, worker string, lease time.Duration) error
	// ReleaseSupernet hands worker's claim back (a worker stopping while
	// others go on): any worker may claim it at once. ErrLeaseLost when
	// worker does not hold it. RecoverTrials drops any holder's claim,
	// as it requeues running trials.
	ReleaseSupernet(ctx context.Context, study int64, worker string) error
	// Supernet returns the study's checkpoint with its Weights, or
	// ErrNotFound when its supernet was never claimed.
	Supernet(ctx context.Context, study int64) (SupernetCheckpoint, error)
	// SupernetInfo is Supernet without the Weights (nil), for reports.
	SupernetInfo(ctx context.Context, study int64) (SupernetCheckpoint, error)

	// AddScreened records candidates scored on the study's supernet,
	// apart from its trials (they never appear in Trials or CountTrials),
	// all or nothing. A Number already recorded in the study, or twice in
	// s, fails with ErrDuplicateScreened; a NaN or infinite Score or Reward
	// with ErrInvalidMetric.
	AddScreened(ctx context.Context, study int64, s []Screened) error
	// PromoteScreened marks the screened candidates numbered numbers as
	// sent on to rung 0 of successive halving, all or nothing: a number
	// not recorded fails with ErrNotFound.
	PromoteScreened(ctx context.Context, study int64, numbers []int) error
	// Screened returns the study's screened candidates ordered by Number.
	Screened(ctx context.Context, study int64) ([]Screened, error)
	// CountScreened counts the study's screened candidates.
	CountScreened(ctx context.Context, study int64) (int, error)

	// Close releases the database.
	Close() error
}

// DefaultMaxAttempts is a study's crash limit when Study.MaxAttempts is 0.
const DefaultMaxAttempts = 3

// Claim is a request for work.
type Claim struct {
	Worker string        // the claimant's name, recorded in the lease
	Limit  int           // how many trials at most, 1 or more
	Lease  time.Duration // how long the claim holds without a heartbeat, 1ms or more
	// MaxMemory leaves trials whose estimated training memory is larger
	// to other workers; 0 claims any.
	MaxMemory int64
	// Skip lists trial numbers this claimant will not take (it handed
	// them back: too big for it).
	Skip []int
}

// Validate checks a claim before it reaches the database.
func (c Claim) Validate() error {
	if c.Worker == "" || c.Limit < 1 || c.Lease < time.Millisecond || c.MaxMemory < 0 {
		return fmt.Errorf("%w: want a worker name, a limit of 1 or more, a lease of 1ms or more and a memory bound of 0 or more (got %q, %d, %v, %d)",
			ErrInvalid, c.Worker, c.Limit, c.Lease, c.MaxMemory)
	}
	return nil
}

// Kind says what a study does.
type Kind string

// Study kinds.
const (
	KindSearch Kind = "search" // architecture search for the baseline
	KindGrid   Kind = "grid"   // alpha/beta/gamma grid at phi = 1
	KindProxy  Kind = "proxy"  // effnas bench proxy: how far a proxy's ranking can be trusted
)

// Validate reports whether k is a known kind.
func (k Kind) Validate() error {
	if k != KindSearch && k != KindGrid && k != KindProxy {
		return fmt.Errorf("study kind %q: %w: want %q, %q or %q", string(k), ErrInvalid, KindSearch, KindGrid, KindProxy)
	}
	return nil
}

// StudyStatus is where a study is in its life.
type StudyStatus string

// Study statuses.
const (
	StudyRunning  StudyStatus = "running"  // created or resumed, work remains
	StudyStopped  StudyStatus = "stopped"  // stopped by the user; resumable
	StudyComplete StudyStatus = "complete" // every trial finished
	StudyFailed   StudyStatus = "failed"   // stopped by an error; resumable
)

// Validate reports whether s is a known status.
func (s StudyStatus) Validate() error {
	switch s {
	case StudyRunning, StudyStopped, StudyComplete, StudyFailed:
		return nil
	}
	return fmt.Errorf("study status %q: %w: want running, stopped, complete or failed", string(s), ErrInvalid)
}

// Study is one search or grid run with everything needed to resume it.
type Study struct {
	ID          int64           `json:"id"`
	Name        string          `json:"name"`
	Kind        Kind            `json:"kind"`
	Config      json.RawMessage `json:"config"`       // the full job config as JSON ({} when empty)
	Seed        uint64          `json:"seed"`         // the study's root seed
	SpaceHash   string          `json:"space_hash"`   // hash of the search space the study samples from
	MaxAttempts int             `json:"max_attempts"` // crashes a trial may have before it is failed; default DefaultMaxAttempts
	Status      StudyStatus     `json:"status"`
	Created     time.Time       `json:"created"`
	Updated     time.Time       `json:"updated"`
}

// TrialState is where a trial is in its life.
type TrialState string

// Trial states.
const (
	TrialPending     TrialState = "pending"     // planned, waiting for a worker
	TrialRunning     TrialState = "running"     // claimed; the lease says until when
	TrialComplete    TrialState = "complete"    // finished with a result
	TrialFailed      TrialState = "failed"      // failed for good; Error says why
	TrialInterrupted TrialState = "interrupted" // stopped from outside; will be re-run
)

// TrialStates lists every state in a fixed order.
var TrialStates = []TrialState{TrialPending, TrialRunning, TrialComplete, TrialFailed, TrialInterrupted}

// GridPoint is the compound-scaling coefficients a grid trial evaluates.
type GridPoint struct {
	Alpha float64 `json:"alpha"` // depth multiplier
	Beta  float64 `json:"beta"`  // width multiplier
	Gamma float64 `json:"gamma"` // resolution multiplier
}

// Plan is a trial to be written as pending.
type Plan struct {
	Key     string          // stable candidate key; with Rung and Seed unique within the study
	Rung    int             // fidelity, 0 the lowest (successive halving)
	Seed    int             // seed index, 0 unless a candidate is trained under several seeds
	Choices json.RawMessage // the candidate's decisions as JSON (null when empty)
	Blocks  []string        // the architecture as block strings
	Params  int64           // parameter count
	FLOPs   int64           // multiply-adds
	Grid    *GridPoint      // set for grid studies, nil for search
	Memory  int64           // bytes its training is estimated to need; 0: unknown
	// Rejected, when set, writes the trial as failed with this reason: a
	// candidate refused before training (too large for the study's
	// memory budget), so that it is recorded but never claimed.
	Rejected string
	// Copied, when set, writes the trial as complete with this result: a
	// run reused from another study of the same data and recipe (effnas
	// bench proxy reuses an earlier benchmark's reference runs). Source
	// says where it came from; it is kept as the trial's worker.
	Copied *Result
	Source string
}

// Trial is one candidate (or grid point) of a study. Accuracy and Reward
// are meaningful only when State is complete.
type Trial struct {
	Study        int64           `json:"study"`
	Number       int             `json:"number"` // 0, 1, 2... within the study, never reused
	Key          string          `json:"key"`
	Rung         int             `json:"rung"` // fidelity, 0 the lowest
	Seed         int             `json:"seed"` // seed index
	Choices      json.RawMessage `json:"choices"`
	Blocks       []string        `json:"blocks"`
	Params       int64           `json:"params"`
	FLOPs        int64           `json:"flops"`
	Grid         *GridPoint      `json:"grid,omitempty"`
	State        TrialState      `json:"state"`
	Accuracy     float64         `json:"accuracy"`      // validation accuracy, the search signal
	Reward       float64         `json:"reward"`        // the objective at this trial's rung
	TestAccuracy float64         `json:"test_accuracy"` // reported only, never searched on
	Seconds      float64         `json:"seconds"`       // training time of the recorded attempt
	Error        string          `json:"error"`
	Attempt      int             `json:"attempt"` // how many times the trial was claimed: the claim's fencing token
	Crashes      int             `json:"crashes"` // attempts that ended in a lapsed lease or a recovery, not an interrupt or release
	Memory       int64           `json:"memory"`  // bytes its training is estimated to need; 0: unknown
	Worker       string          `json:"worker"`  // the last claimant
	LeaseExpires time.Time       `json:"lease_expires"`
	Created      time.Time       `json:"created"`
	Updated      time.Time       `json:"updated"`
}

// Lease returns the token that proves the claimant still holds the trial.
func (t Trial) Lease() Lease {
	return Lease{Study: t.Study, Number: t.Number, Worker: t.Worker, Attempt: t.Attempt}
}

// Lease identifies one claim of one trial: the trial plus the worker and
// attempt that claimed it. A later claim has a higher attempt, so an old
// lease can never finish a trial claimed again.
type Lease struct {
	Study   int64
	Number  int
	Worker  string
	Attempt int
}

func (l Lease) String() string {
	return fmt.Sprintf("trial %d of study %d (worker %q, attempt %d)", l.Number, l.Study, l.Worker, l.Attempt)
}

// Result is what a finished trial reports.
type Result struct {
	Accuracy     float64 // validation accuracy in [0, 1]
	Reward       float64 // the search objective, e.g. ACC * (FLOPS/T)^w
	TestAccuracy float64 // test accuracy in [0, 1], reported only
	Seconds      float64 // wall time of the training
}

// Validate rejects NaN and infinite values with ErrInvalidMetric.
func (r Result) Validate() error {
	for _, m := range []struct {
		name string
		v    float64
	}{{"accuracy", r.Accuracy}, {"reward", r.Reward}, {"test accuracy", r.TestAccuracy}, {"seconds", r.Seconds}} {
		if math.IsNaN(m.v) || math.IsInf(m.v, 0) {
			return fmt.Errorf("%s is %v: %w; want a finite number (record a diverged trial with FailTrial)", m.name, m.v, ErrInvalidMetric)
		}
	}
	return nil
}

// Counts is the number of a study's trials in each state.
type Counts struct {
	Pending     int `json:"pending"`
	Running     int `json:"running"`
	Complete    int `json:"complete"`
	Failed      int `json:"failed"`
	Interrupted int `json:"interrupted"`
}

// Total is the number of trials.
func (c Counts) Total() int { return c.Pending + c.Running + c.Complete + c.Failed + c.Interrupted }

// Add counts n trials in state s.
func (c *Counts) Add(s TrialState, n int) {
	switch s {
	case TrialPending:
		c.Pending += n
	case TrialRunning:
		c.Running += n
	case TrialComplete:
		c.Complete += n
	case TrialFailed:
		c.Failed += n
	case TrialInterrupted:
		c.Interrupted += n
	}
}

// Recovered says what RecoverTrials did.
type Recovered struct {
	Requeued int // back to pending
	Failed   int // out of attempts, now failed
}

// ValidateStudy checks a study before it is created and fills defaults.
func ValidateStudy(s Study) (Study, error) {
	if err := s.Kind.Validate(); err != nil {
		return s, err
	}
	if len(s.Config) == 0 {
		s.Config = json.RawMessage("{}")
	}
	if !json.Valid(s.Config) {
		return s, fmt.Errorf("study config: %w: not valid JSON", ErrInvalid)
	}
	if s.MaxAttempts < 0 {
		return s, fmt.Errorf("study max attempts %d: %w: want 0 (default %d) or more", s.MaxAttempts, ErrInvalid, DefaultMaxAttempts)
	}
	if s.MaxAttempts == 0 {
		s.MaxAttempts = DefaultMaxAttempts
	}
	return s, nil
}

// ValidatePlans checks plans before they are written: keys present and
// distinct, choices valid JSON, grid coefficients finite and positive.
func ValidatePlans(plans []Plan) error {
	type id struct {
		key        string
		rung, seed int
	}
	seen := make(map[id]bool, len(plans))
	for i, p := range plans {
		if p.Key == "" {
			return fmt.Errorf("plan %d: %w: empty candidate key", i, ErrInvalid)
		}
		if p.Rung < 0 || p.Seed < 0 {
			return fmt.Errorf("plan %d (key %q): rung %d, seed %d: %w: want 0 or more", i, p.Key, p.Rung, p.Seed, ErrInvalid)
		}
		k := id{p.Key, p.Rung, p.Seed}
		if seen[k] {
			return fmt.Errorf("plan %d: key %q at rung %d, seed %d: %w", i, p.Key, p.Rung, p.Seed, ErrDuplicateKey)
		}
		seen[k] = true
		if p.Memory < 0 {
			return fmt.Errorf("plan %d (key %q): memory %d: %w: want 0 (unknown) or more bytes", i, p.Key, p.Memory, ErrInvalid)
		}
		if len(p.Choices) > 0 && !json.Valid(p.Choices) {
			return fmt.Errorf("plan %d (key %q): choices: %w: not valid JSON", i, p.Key, ErrInvalid)
		}
		if p.Copied != nil {
			if p.Rejected != "" {
				return fmt.Errorf("plan %d (key %q): %w: rejected and copied at once", i, p.Key, ErrInvalid)
			}
			if err := p.Copied.Validate(); err != nil {
				return fmt.Errorf("plan %d (key %q): copied result: %w", i, p.Key, err)
			}
		}
		if g := p.Grid; g != nil {
			for _, v := range []float64{g.Alpha, g.Beta, g.Gamma} {
				if !(v > 0) || math.IsInf(v, 0) {
					return fmt.Errorf("plan %d (key %q): grid point %+v: %w: coefficients must be finite and positive", i, p.Key, *g, ErrInvalid)
				}
			}
		}
	}
	return nil
}

// ValidateLease checks the parts of a lease a caller supplies.
func ValidateLease(l Lease) error {
	if l.Worker == "" || l.Attempt < 1 {
		return fmt.Errorf("%v: %w: a lease needs the worker and attempt returned by ClaimTrials", l, ErrInvalid)
	}
	return nil
}

// SupernetCheckpoint is the latest saved state of a study's supernet
// training: one per study, each save replacing the previous one.
type SupernetCheckpoint struct {
	Study       int64
	Step        int       // training steps done
	Checkpoints int       // how many checkpoints were saved so far, this one included
	Seconds     float64   // wall clock of the training, summed over resumes
	Done        bool      // the training reached its budget
	Meta        []byte    // JSON describing what was trained (space hash, proxy); opaque to the store
	Weights     []byte    // the trainer's binary checkpoint (tens of MB); nil before the first save
	Holder      string    // the worker training it ("" when released)
	Updated     time.Time // when the checkpoint was saved (before any save: first claimed)
}

// Validate checks a checkpoint before it is saved: a study, counts of 0 or
// more, Seconds finite (ErrInvalidMetric) and 0 or more.
func (c SupernetCheckpoint) Validate() error {
	if math.IsNaN(c.Seconds) || math.IsInf(c.Seconds, 0) {
		return fmt.Errorf("supernet checkpoint of study %d: seconds is %v: %w; want a finite number", c.Study, c.Seconds, ErrInvalidMetric)
	}
	if c.Study == 0 || c.Step < 0 || c.Checkpoints < 0 || c.Seconds < 0 {
		return fmt.Errorf("supernet checkpoint of study %d: step %d, checkpoints %d, seconds %v: %w: want a study id and counts and seconds of 0 or more",
			c.Study, c.Step, c.Checkpoints, c.Seconds, ErrInvalid)
	}
	return nil
}

// Screened is a candidate scored on a study's supernet: the lowest rung of
// a one-shot search, stored apart from the trials.
type Screened struct {
	Study    int64           `json:"study"`
	Number   int             `json:"number"` // 0-based order of scoring, unique within the study
	Key      string          `json:"key"`    // stable candidate key
	Choices  json.RawMessage `json:"choices"`
	Blocks   []string        `json:"blocks"`
	Params   int64           `json:"params"`
	FLOPs    int64           `json:"flops"`
	Score    float64         `json:"score"`    // accuracy on the supernet
	Reward   float64         `json:"reward"`   // the search objective of that score
	Step     int             `json:"step"`     // the step of the supernet checkpoint it was scored on
	Promoted bool            `json:"promoted"` // sent on to rung 0 of successive halving
}

// ValidateScreened checks screened candidates of study before they are
// written: each of the study (Study 0 or study), a number of 0 or more not
// twice in s (ErrDuplicateScreened), a key, choices valid JSON, a step of 0
// or more, and a finite Score and Reward (ErrInvalidMetric).
func ValidateScreened(study int64, s []Screened) error {
	seen := make(map[int]bool, len(s))
	for i, c := range s {
		if c.Study != 0 && c.Study != study {
			return fmt.Errorf("screened %d (number %d): study %d: %w: want %d (or 0)", i, c.Number, c.Study, ErrInvalid, study)
		}
		if c.Number < 0 || c.Step < 0 {
			return fmt.Errorf("screened %d: number %d, step %d: %w: want 0 or more", i, c.Number, c.Step, ErrInvalid)
		}
		if seen[c.Number] {
			return fmt.Errorf("screened %d: number %d twice: %w", i, c.Number, ErrDuplicateScreened)
		}
		seen[c.Number] = true
		if c.Key == "" {
			return fmt.Errorf("screened %d (number %d): %w: empty candidate key", i, c.Number, ErrInvalid)
		}
		if len(c.Choices) > 0 && !json.Valid(c.Choices) {
			return fmt.Errorf("screened %d (number %d, key %q): choices: %w: not valid JSON", i, c.Number, c.Key, ErrInvalid)
		}
		for _, m := range []struct {
			name string
			v    float64
		}{{"score", c.Score}, {"reward", c.Reward}} {
			if math.IsNaN(m.v) || math.IsInf(m.v, 0) {
				return fmt.Errorf("screened %d (number %d, key %q): %s is %v: %w; want a finite number", i, c.Number, c.Key, m.name, m.v, ErrInvalidMetric)
			}
		}
	}
	return nil
}
