package controller

import (
	"fmt"
	"math"
	"slices"
)

// Reinforce is REINFORCE (Williams, 1992) as used by NAS and MnasNet, with
// a factorised policy: an independent softmax over the options of each
// dimension. Each completed trial moves the logits along
// lr * A * grad log p(choices), where the advantage A is the reward minus a
// moving-average baseline, divided by a moving standard deviation. Failed
// trials are not learned from. Its state is the RNG, the logits, the two
// moving averages and the IDs of the trials already learned from.
type Reinforce struct {
	base
	logits   [][]float64
	baseline float64
	variance float64
	updates  int64
	learned  map[int64]bool
}

func newReinforce(b base) *Reinforce {
	r := &Reinforce{base: b, learned: map[int64]bool{}}
	r.logits = make([][]float64, len(b.dims))
	for i, d := range b.dims {
		r.logits[i] = make([]float64, d.Options)
	}
	return r
}

// Propose implements Controller.
func (r *Reinforce) Propose(history []Observation, pending [][]int, n int) ([][]int, error) {
	seen, err := r.seenSet(history, pending, n)
	if err != nil {
		return nil, fmt.Errorf("reinforce: %w", err)
	}
	for _, o := range history {
		r.learn(o)
	}
	out := make([][]int, 0, n)
	for range n {
		c := r.samplePolicy(seen)
		if c == nil {
			if c, err = r.unseen(seen); err != nil {
				return nil, fmt.Errorf("reinforce: %w", err)
			}
			if c == nil {
				break
			}
		}
		seen[key(c)] = true
		out = append(out, c)
	}
	return out, nil
}

// samplePolicy draws from the policy until the candidate is unseen, at most
// MaxRetries times; nil means the caller falls back to a uniformly random
// unseen candidate. (Sampling retries at rising temperatures instead did no
// better on NAS-Bench-201.)
func (r *Reinforce) samplePolicy(seen map[string]bool) []int {
	probs := make([][]float64, len(r.logits))
	for i, l := range r.logits {
		probs[i] = softmax(l)
	}
	for range r.cfg.MaxRetries {
		c := make([]int, len(probs))
		for i, p := range probs {
			u := r.rng.Float64()
			k := 0
			for ; k < len(p)-1; k++ {
				u -= p[k]
				if u < 0 {
					break
				}
			}
			c[i] = k
		}
		if !seen[key(c)] {
			return c
		}
	}
	return nil
}

// Observe implements Controller.
func (r *Reinforce) Observe(o Observation) error {
	if err := r.check(o.Choices); err != nil {
		return fmt.Errorf("reinforce: observe trial %d: %w", o.ID, err)
	}
	r.learn(o)
	return nil
}

// learn applies one policy-gradient step for o unless o was learned from
// already or failed.
func (r *Reinforce) learn(o Observation) {
	if r.learned[o.ID] {
		return
	}
	r.learned[o.ID] = true
	if o.Failed || math.IsNaN(o.Reward) || math.IsInf(o.Reward, 0) {
		return
	}
	cfg := r.cfg.Reinforce
	if r.updates == 0 {
		r.baseline = o.Reward
	}
	r.updates++
	adv := o.Reward - r.baseline
	// Updating the variance before normalising bounds |adv| by
	// 1/sqrt(1-decay), even on the second observation.
	r.variance = cfg.BaselineDecay*r.variance + (1-cfg.BaselineDecay)*adv*adv
	if r.variance > 0 {
		adv /= math.Sqrt(r.variance)
	} else {
		adv = 0
	}
	r.baseline = cfg.BaselineDecay*r.baseline + (1-cfg.BaselineDecay)*o.Reward
	for i, l := range r.logits {
		p := softmax(l)
		h := 0.0
		for _, pk := range p {
			if pk > 0 {
				h -= pk * math.Log(pk)
			}
		}
		for k := range l {
			g := -p[k]
			if k == o.Choices[i] {
				g++
			}
			step := cfg.LearningRate * adv * g
			if cfg.Entropy > 0 && p[k] > 0 {
				step += cfg.LearningRate * cfg.Entropy * -p[k] * (math.Log(p[k]) + h)
			}
			l[k] += step
		}
	}
}

func softmax(l []float64) []float64 {
	m := slices.Max(l)
	p := make([]float64, len(l))
	sum := 0.0
	for k, v := range l {
		p[k] = math.Exp(v - m)
		sum += p[k]
	}
	for k := range p {
		p[k] /= sum
	}
	return p
}

// Probabilities returns the policy's current probabilities per dimension.
func (r *Reinforce) Probabilities() [][]float64 {
	out := make([][]float64, len(r.logits))
	for i, l := range r.logits {
		out[i] = softmax(l)
	}
	return out
}

// MarshalState implements Controller.
func (r *Reinforce) MarshalState() ([]byte, error) {
	learned := make([]int64, 0, len(r.learned))
	for id := range r.learned {
		learned = append(learned, id)
	}
	slices.Sort(learned)
	return r.marshal(state{
		Logits:   r.logits,
		Baseline: r.baseline,
		Variance: r.variance,
		Updates:  r.updates,
		Learned:  learned,
	})
}

// UnmarshalState implements Controller.
func (r *Reinforce) UnmarshalState(data []byte) error {
	s, err := r.unmarshal(data)
	if err != nil {
		return err
	}
	if len(s.Logits) != len(r.dims) {
		return fmt.Errorf("reinforce state has logits for %d dimensions; the space has %d", len(s.Logits), len(r.dims))
	}
	for i, l := range s.Logits {
		if len(l) != r.dims[i].Options {
			return fmt.Errorf("reinforce state has %d logits for dimension %d (%q); it has %d options", len(l), i, r.dims[i].Name, r.dims[i].Options)
		}
	}
	r.logits = s.Logits
	r.baseline, r.variance, r.updates = s.Baseline, s.Variance, s.Updates
	r.learned = make(map[int64]bool, len(s.Learned))
	for _, id := range s.Learned {
		r.learned[id] = true
	}
	return nil
}
