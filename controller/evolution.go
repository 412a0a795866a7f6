package controller

import (
	"fmt"
	"math"
	"slices"
)

// Evolution is regularized (aging) evolution (Real et al., 2019): the
// population is the Population most recent completed trials in proposal
// order (failed trials and NaN rewards excluded), so the oldest dies as each
// new one completes; a proposal mutates one choice of the best of Sample
// members drawn from the population (the younger wins a tie). Until
// Population candidates have been proposed, proposals are random. Its only
// state is the RNG: the population is rebuilt from the history.
type Evolution struct {
	base
}

// Propose implements Controller.
func (e *Evolution) Propose(history []Observation, pending [][]int, n int) ([][]int, error) {
	seen, err := e.seenSet(history, pending, n)
	if err != nil {
		return nil, fmt.Errorf("evolution: %w", err)
	}
	var pop []Observation
	for _, o := range history {
		if !o.Failed && !math.IsNaN(o.Reward) {
			pop = append(pop, o)
		}
	}
	if p := e.cfg.Evolution.Population; len(pop) > p {
		pop = pop[len(pop)-p:]
	}
	proposed := len(history) + len(pending)
	out := make([][]int, 0, n)
	for range n {
		var c []int
		if proposed >= e.cfg.Evolution.Population && len(pop) > 0 {
			c = e.evolve(pop, seen)
		}
		if c == nil {
			if c, err = e.unseen(seen); err != nil {
				return nil, fmt.Errorf("evolution: %w", err)
			}
			if c == nil {
				break
			}
		}
		seen[key(c)] = true
		out = append(out, c)
		proposed++
	}
	return out, nil
}

// evolve runs tournaments and mutations until the child is unseen, at most
// MaxRetries times; nil means the caller falls back to a random candidate.
func (e *Evolution) evolve(pop []Observation, seen map[string]bool) []int {
	var mutable []int
	for i, d := range e.dims {
		if d.Options > 1 {
			mutable = append(mutable, i)
		}
	}
	if len(mutable) == 0 {
		return nil
	}
	s := min(e.cfg.Evolution.Sample, len(pop))
	idx := make([]int, len(pop))
	for range e.cfg.MaxRetries {
		// Partial Fisher-Yates: the first s entries of idx are the tournament.
		for i := range idx {
			idx[i] = i
		}
		best := -1
		for i := range s {
			j := i + e.rng.IntN(len(idx)-i)
			idx[i], idx[j] = idx[j], idx[i]
			if best < 0 || pop[idx[i]].Reward > pop[best].Reward ||
				(pop[idx[i]].Reward == pop[best].Reward && idx[i] > best) {
				best = idx[i]
			}
		}
		child := slices.Clone(pop[best].Choices)
		d := mutable[e.rng.IntN(len(mutable))]
		// A different option of dimension d, uniformly.
		v := e.rng.IntN(e.dims[d].Options - 1)
		if v >= child[d] {
			v++
		}
		child[d] = v
		if !seen[key(child)] {
			return child
		}
	}
	return nil
}

// Observe implements Controller; evolution rebuilds its population from the
// history, so there is nothing to learn here.
func (e *Evolution) Observe(o Observation) error {
	if err := e.check(o.Choices); err != nil {
		return fmt.Errorf("evolution: observe trial %d: %w", o.ID, err)
	}
	return nil
}

// MarshalState implements Controller.
func (e *Evolution) MarshalState() ([]byte, error) { return e.marshal(state{}) }

// UnmarshalState implements Controller.
func (e *Evolution) UnmarshalState(data []byte) error {
	_, err := e.unmarshal(data)
	return err
}
