package controller

import "fmt"

// Random is random search: every proposal is uniform over the unseen
// candidates. Its only state is the RNG.
type Random struct {
	base
}

// Propose implements Controller.
func (r *Random) Propose(history []Observation, pending [][]int, n int) ([][]int, error) {
	seen, err := r.seenSet(history, pending, n)
	if err != nil {
		return nil, fmt.Errorf("random: %w", err)
	}
	out := make([][]int, 0, n)
	for range n {
		c, err := r.unseen(seen)
		if err != nil {
			return nil, fmt.Errorf("random: %w", err)
		}
		if c == nil {
			break
		}
		seen[key(c)] = true
		out = append(out, c)
	}
	return out, nil
}

// Observe implements Controller; random search learns nothing.
func (r *Random) Observe(o Observation) error {
	if err := r.check(o.Choices); err != nil {
		return fmt.Errorf("random: observe trial %d: %w", o.ID, err)
	}
	return nil
}

// MarshalState implements Controller.
func (r *Random) MarshalState() ([]byte, error) { return r.marshal(state{}) }

// UnmarshalState implements Controller.
func (r *Random) UnmarshalState(data []byte) error {
	_, err := r.unmarshal(data)
	return err
}
