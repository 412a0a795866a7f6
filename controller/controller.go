package controller

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
)

// Dim is one categorical choice of a search space: Options values 0..Options-1.
type Dim struct {
	Name    string `json:"name"`
	Options int    `json:"options"`
}

// Observation is a trial the controller proposed that has completed or failed.
// Histories list observations in proposal order.
type Observation struct {
	// ID identifies the trial; unique within a study (the store's trial id
	// or the proposal index). REINFORCE remembers which IDs it learned from.
	ID      int64   `json:"id"`
	Choices []int   `json:"choices"`
	Reward  float64 `json:"reward"`
	// Failed trials are never proposed again and never learned from; a
	// caller that wants to penalise a candidate records a low Reward instead.
	Failed bool `json:"failed"`
}

// Controller is a search strategy over categorical choices.
//
// A controller keeps no hidden state beyond what MarshalState returns: a
// controller restored with UnmarshalState and given the same history and
// pending candidates proposes exactly what the uninterrupted one would.
type Controller interface {
	// Name is the name New accepts.
	Name() string
	// Propose returns up to n new candidates given every observation so far
	// (in proposal order) and the candidates proposed but not yet completed.
	// Candidates are never equal to one in history, pending or earlier in the
	// same batch; fewer than n are returned only when the space has fewer
	// unseen candidates left (zero: the space is exhausted).
	Propose(history []Observation, pending [][]int, n int) ([][]int, error)
	// Observe lets the controller learn from one completed trial now.
	// Calling it is optional: Propose learns from any observation in its
	// history it has not seen; observing the same ID twice is a no-op.
	Observe(o Observation) error
	// MarshalState and UnmarshalState save and restore the controller's
	// state (RNG and learned parameters) for the store.
	MarshalState() ([]byte, error)
	UnmarshalState(data []byte) error
}

// Names lists the controllers New accepts.
var Names = []string{"random", "evolution", "reinforce"}

// ErrUnknown is returned by New for a name not in Names.
var ErrUnknown = errors.New("unknown controller")

// New returns the controller called name over dims, seeded with seed.
func New(name string, dims []Dim, cfg Config, seed uint64) (Controller, error) {
	if err := validateDims(dims); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := newBase(name, dims, cfg, seed)
	switch name {
	case "random":
		return &Random{base: b}, nil
	case "evolution":
		return &Evolution{base: b}, nil
	case "reinforce":
		return newReinforce(b), nil
	}
	return nil, fmt.Errorf("%w %q: valid names are %s", ErrUnknown, name, strings.Join(Names, ", "))
}

func validateDims(dims []Dim) error {
	if len(dims) == 0 {
		return errors.New("search space has no dimensions; give at least one choice")
	}
	for i, d := range dims {
		if d.Options < 1 {
			return fmt.Errorf("dimension %d (%q) has %d options; it needs at least 1", i, d.Name, d.Options)
		}
	}
	return nil
}

// Size returns the number of candidates in a space of dims, saturating at
// math.MaxInt64.
func Size(dims []Dim) int64 {
	n := int64(1)
	for _, d := range dims {
		if n > (1<<63-1)/int64(d.Options) {
			return 1<<63 - 1
		}
		n *= int64(d.Options)
	}
	return n
}

// base holds what every controller shares: the space, the config, the RNG.
type base struct {
	name string
	dims []Dim
	cfg  Config
	src  *rand.PCG
	rng  *rand.Rand
}

func newBase(name string, dims []Dim, cfg Config, seed uint64) base {
	// The stream constant keeps controllers seeded alike from sharing draws
	// with other users of the same seed.
	src := rand.NewPCG(seed, 0x636f6e74726f6c) // "control"
	return base{name: name, dims: slices.Clone(dims), cfg: cfg, src: src, rng: rand.New(src)}
}

func (b *base) Name() string { return b.name }

// key is the canonical identity of a candidate within the controller.
func key(c []int) string {
	var sb strings.Builder
	for i, v := range c {
		if i > 0 {
			sb.WriteByte('-')
		}
		sb.WriteString(strconv.Itoa(v))
	}
	return sb.String()
}

func (b *base) check(c []int) error {
	if len(c) != len(b.dims) {
		return fmt.Errorf("candidate %v has %d choices; the space has %d dimensions", c, len(c), len(b.dims))
	}
	for i, v := range c {
		if v < 0 || v >= b.dims[i].Options {
			return fmt.Errorf("candidate %v: choice %d for dimension %d (%q) is out of range 0..%d", c, v, i, b.dims[i].Name, b.dims[i].Options-1)
		}
	}
	return nil
}

// seenSet validates history and pending and returns the keys of every
// candidate already proposed.
func (b *base) seenSet(history []Observation, pending [][]int, n int) (map[string]bool, error) {
	if n < 0 {
		return nil, fmt.Errorf("asked for %d proposals; the count must be at least 0", n)
	}
	seen := make(map[string]bool, len(history)+len(pending)+n)
	for _, o := range history {
		if err := b.check(o.Choices); err != nil {
			return nil, fmt.Errorf("history trial %d: %w", o.ID, err)
		}
		seen[key(o.Choices)] = true
	}
	for _, c := range pending {
		if err := b.check(c); err != nil {
			return nil, fmt.Errorf("pending trial: %w", err)
		}
		seen[key(c)] = true
	}
	return seen, nil
}

func (b *base) sample() []int {
	c := make([]int, len(b.dims))
	for i, d := range b.dims {
		c[i] = b.rng.IntN(d.Options)
	}
	return c
}

// unseen returns a uniformly random candidate not in seen, or nil when the
// space is exhausted. It draws up to cfg.MaxRetries samples; then, for a
// space of at most cfg.EnumerateLimit candidates, it enumerates the unseen
// ones and picks one uniformly; a larger space that still yields nothing
// after the draws is reported as an error (it cannot be exhausted in
// practice: the draws fail only if nearly all of it was seen).
func (b *base) unseen(seen map[string]bool) ([]int, error) {
	for range b.cfg.MaxRetries {
		c := b.sample()
		if !seen[key(c)] {
			return c, nil
		}
	}
	size := Size(b.dims)
	if size > int64(b.cfg.EnumerateLimit) {
		return nil, fmt.Errorf("no unseen candidate in %d random draws from a space of %d candidates", b.cfg.MaxRetries, size)
	}
	var free [][]int
	c := make([]int, len(b.dims))
	for {
		if !seen[key(c)] {
			free = append(free, slices.Clone(c))
		}
		// Odometer increment, last dimension fastest.
		i := len(c) - 1
		for ; i >= 0; i-- {
			c[i]++
			if c[i] < b.dims[i].Options {
				break
			}
			c[i] = 0
		}
		if i < 0 {
			break
		}
	}
	if len(free) == 0 {
		return nil, nil
	}
	return free[b.rng.IntN(len(free))], nil
}

// state is the serialised form shared by all controllers; fields a
// controller does not use stay empty.
type state struct {
	Controller string `json:"controller"`
	RNG        []byte `json:"rng"`
	// REINFORCE only.
	Logits   [][]float64 `json:"logits,omitempty"`
	Baseline float64     `json:"baseline,omitempty"`
	Variance float64     `json:"variance,omitempty"`
	Updates  int64       `json:"updates,omitempty"`
	Learned  []int64     `json:"learned,omitempty"`
}

func (b *base) marshal(s state) ([]byte, error) {
	rng, err := b.src.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("marshal %s rng: %w", b.name, err)
	}
	s.Controller = b.name
	s.RNG = rng
	return json.Marshal(s)
}

func (b *base) unmarshal(data []byte) (state, error) {
	var s state
	if err := json.Unmarshal(data, &s); err != nil {
		return s, fmt.Errorf("decode %s controller state: %w", b.name, err)
	}
	if s.Controller != b.name {
		return s, fmt.Errorf("controller state is for %q, not %q", s.Controller, b.name)
	}
	if err := b.src.UnmarshalBinary(s.RNG); err != nil {
		return s, fmt.Errorf("restore %s rng: %w", b.name, err)
	}
	return s, nil
}
