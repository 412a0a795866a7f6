package controller

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
)

var smallDims = []Dim{{"a", 3}, {"b", 1}, {"c", 4}, {"d", 2}} // 24 candidates

var manyDims = []Dim{{"a", 5}, {"b", 5}, {"c", 5}, {"d", 5}, {"e", 5}, {"f", 5}}

// reward is a deterministic test objective: separable with a peak at
// choice 1 in every dimension, plus a small interaction term.
func reward(c []int) float64 {
	r := 0.0
	for i, v := range c {
		if v == 1 {
			r += 1
		}
		r += 0.01 * float64((v*7+i*3)%5)
	}
	return r / float64(len(c))
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		dims []Dim
		cfg  Config
		want string
	}{
		{"bogus", smallDims, Config{}, "valid names are random, evolution, reinforce"},
		{"random", nil, Config{}, "no dimensions"},
		{"random", []Dim{{"x", 2}, {"y", 0}}, Config{}, `dimension 1 ("y") has 0 options`},
		{"evolution", smallDims, Config{Evolution: EvolutionConfig{Population: 4, Sample: 5}}, "evolution sample is 5"},
		{"reinforce", smallDims, Config{Reinforce: ReinforceConfig{LearningRate: -1}}, "learning rate is -1"},
		{"reinforce", smallDims, Config{Reinforce: ReinforceConfig{BaselineDecay: 1}}, "baseline decay is 1"},
		{"reinforce", smallDims, Config{Reinforce: ReinforceConfig{Entropy: -0.5}}, "entropy weight is -0.5"},
		{"random", smallDims, Config{MaxRetries: -1}, "max retries is -1"},
	}
	for _, tt := range tests {
		_, err := New(tt.name, tt.dims, tt.cfg, 1)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%q, %v, %+v) error = %v, want it to contain %q", tt.name, tt.dims, tt.cfg, err, tt.want)
		}
	}
	if _, err := New("bogus", smallDims, Config{}, 1); !errors.Is(err, ErrUnknown) {
		t.Errorf("New(bogus) error = %v, want ErrUnknown", err)
	}
}

func TestSize(t *testing.T) {
	if got := Size(smallDims); got != 24 {
		t.Errorf("Size(smallDims) = %d, want 24", got)
	}
	huge := make([]Dim, 100)
	for i := range huge {
		huge[i] = Dim{Options: 10}
	}
	if got := Size(huge); got != math.MaxInt64 {
		t.Errorf("Size(10^100) = %d, want saturation at MaxInt64", got)
	}
}

// drive runs a simulated asynchronous study: each round proposes batch
// candidates, completes the oldest pending ones first but holds back one,
// and records every proposal. If restore is set, the controller is
// rebuilt from its serialised state (with a different seed, which the
// state must override) before every round.
func drive(t *testing.T, name string, dims []Dim, seed uint64, rounds, batch int, restore bool) [][]int {
	t.Helper()
	ctl, err := New(name, dims, Config{Evolution: EvolutionConfig{Population: 6, Sample: 3}}, seed)
	if err != nil {
		t.Fatal(err)
	}
	var history []Observation
	var pending [][]int
	var all [][]int
	next := int64(0)
	for range rounds {
		if restore {
			data, err := ctl.MarshalState()
			if err != nil {
				t.Fatal(err)
			}
			ctl, err = New(name, dims, Config{Evolution: EvolutionConfig{Population: 6, Sample: 3}}, seed+99)
			if err != nil {
				t.Fatal(err)
			}
			if err := ctl.UnmarshalState(data); err != nil {
				t.Fatal(err)
			}
		}
		props, err := ctl.Propose(history, pending, batch)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, props...)
		pending = append(pending, props...)
		for len(pending) > 1 {
			c := pending[0]
			pending = pending[1:]
			o := Observation{ID: next, Choices: c, Reward: reward(c), Failed: next%7 == 3}
			next++
			history = append(history, o)
		}
	}
	return all
}

func TestResumeBitExact(t *testing.T) {
	for _, name := range Names {
		t.Run(name, func(t *testing.T) {
			want := drive(t, name, manyDims, 42, 30, 3, false)
			got := drive(t, name, manyDims, 42, 30, 3, true)
			if !slices.EqualFunc(got, want, slices.Equal) {
				t.Fatalf("restored controller proposed\n%v\nuninterrupted one\n%v", got, want)
			}
		})
	}
}

func TestReproducibleAndSeedMatters(t *testing.T) {
	for _, name := range Names {
		t.Run(name, func(t *testing.T) {
			a := drive(t, name, manyDims, 7, 20, 2, false)
			b := drive(t, name, manyDims, 7, 20, 2, false)
			c := drive(t, name, manyDims, 8, 20, 2, false)
			if !slices.EqualFunc(a, b, slices.Equal) {
				t.Errorf("same seed, different proposals:\n%v\n%v", a, b)
			}
			if slices.EqualFunc(a, c, slices.Equal) {
				t.Errorf("seeds 7 and 8 proposed the same %d candidates", len(a))
			}
		})
	}
}

// TestNoDuplicatesUntilExhausted drives each controller over a 24-candidate
// space until it is exhausted: every candidate is proposed exactly once, and
// then Propose returns none.
func TestNoDuplicatesUntilExhausted(t *testing.T) {
	for _, name := range Names {
		t.Run(name, func(t *testing.T) {
			all := drive(t, name, smallDims, 3, 20, 2, false)
			if len(all) != 24 {
				t.Fatalf("proposed %d candidates over 20 rounds of 2 in a space of 24, want 24", len(all))
			}
			seen := map[string]bool{}
			for _, c := range all {
				if seen[key(c)] {
					t.Fatalf("candidate %v proposed twice", c)
				}
				seen[key(c)] = true
			}
		})
	}
}

func TestProposeChecksInput(t *testing.T) {
	for _, name := range Names {
		ctl, err := New(name, smallDims, Config{}, 1)
		if err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			history []Observation
			pending [][]int
			n       int
			want    string
		}{
			{nil, nil, -1, "at least 0"},
			{[]Observation{{ID: 5, Choices: []int{0, 0, 4, 0}}}, nil, 1, `history trial 5: candidate [0 0 4 0]: choice 4 for dimension 2 ("c") is out of range 0..3`},
			{[]Observation{{ID: 6, Choices: []int{0, 0}}}, nil, 1, "has 2 choices; the space has 4"},
			{nil, [][]int{{0, 1, 0, 0}}, 1, `pending trial: candidate [0 1 0 0]: choice 1 for dimension 1 ("b")`},
		}
		for _, tt := range tests {
			_, err := ctl.Propose(tt.history, tt.pending, tt.n)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%s: Propose(%v, %v, %d) error = %v, want %q", name, tt.history, tt.pending, tt.n, err, tt.want)
			}
		}
		if err := ctl.Observe(Observation{ID: 1, Choices: []int{9, 0, 0, 0}}); err == nil {
			t.Errorf("%s: Observe accepted an out-of-range choice", name)
		}
		if got, err := ctl.Propose(nil, nil, 0); err != nil || len(got) != 0 {
			t.Errorf("%s: Propose(n=0) = %v, %v; want none", name, got, err)
		}
	}
}

func TestUnmarshalStateErrors(t *testing.T) {
	r, _ := New("reinforce", smallDims, Config{}, 1)
	e, _ := New("evolution", smallDims, Config{}, 1)
	es, _ := e.MarshalState()
	other, _ := New("reinforce", manyDims, Config{}, 1)
	os, _ := other.MarshalState()
	tests := []struct {
		data []byte
		want string
	}{
		{[]byte("{"), "decode reinforce controller state"},
		{es, `controller state is for "evolution", not "reinforce"`},
		{os, "logits for 6 dimensions; the space has 4"},
		{[]byte(`{"controller":"reinforce","rng":"AAAA"}`), "restore reinforce rng"},
	}
	for _, tt := range tests {
		if err := r.UnmarshalState(tt.data); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("UnmarshalState(%s) error = %v, want %q", tt.data, err, tt.want)
		}
	}
}

// TestObserveIsOptional checks that eager Observe calls and Propose's own
// catch-up on the history reach the same state, and that observing twice is
// a no-op.
func TestObserveIsOptional(t *testing.T) {
	a, _ := New("reinforce", manyDims, Config{}, 5)
	b, _ := New("reinforce", manyDims, Config{}, 5)
	var history []Observation
	for i := range 40 {
		pa, err := a.Propose(history, nil, 1)
		if err != nil {
			t.Fatal(err)
		}
		pb, err := b.Propose(history, nil, 1)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(pa[0], pb[0]) {
			t.Fatalf("proposal %d: eager observer proposed %v, lazy one %v", i, pa[0], pb[0])
		}
		o := Observation{ID: int64(i), Choices: pa[0], Reward: reward(pa[0])}
		history = append(history, o)
		for range 2 {
			if err := a.Observe(o); err != nil {
				t.Fatal(err)
			}
		}
	}
	sa, _ := a.MarshalState()
	b.Propose(history, nil, 0)
	sb, _ := b.MarshalState()
	if !bytes.Equal(sa, sb) {
		t.Errorf("states differ:\n%s\n%s", sa, sb)
	}
}

// TestReinforceLearns checks that the policy concentrates on the option
// the objective rewards (choice 1 in every dimension).
func TestReinforceLearns(t *testing.T) {
	ctl, _ := New("reinforce", manyDims, Config{}, 11)
	var history []Observation
	for i := range 150 {
		p, err := ctl.Propose(history, nil, 1)
		if err != nil {
			t.Fatal(err)
		}
		history = append(history, Observation{ID: int64(i), Choices: p[0], Reward: reward(p[0])})
	}
	ctl.Propose(history, nil, 0)
	for d, p := range ctl.(*Reinforce).Probabilities() {
		if slices.Index(p, slices.Max(p)) != 1 || p[1] < 0.5 {
			t.Errorf("dimension %d: probabilities %.3f, want option 1 the most likely at over 0.5", d, p)
		}
	}
}

// TestEvolutionBeatsRandom checks on the test objective that evolution's
// best after 60 proposals beats random search's on average.
func TestEvolutionBeatsRandom(t *testing.T) {
	best := func(name string) float64 {
		sum := 0.0
		for seed := range uint64(20) {
			ctl, _ := New(name, manyDims, Config{}, seed)
			var history []Observation
			b := 0.0
			for i := range 60 {
				p, err := ctl.Propose(history, nil, 1)
				if err != nil {
					t.Fatal(err)
				}
				r := reward(p[0])
				b = max(b, r)
				history = append(history, Observation{ID: int64(i), Choices: p[0], Reward: r})
			}
			sum += b
		}
		return sum / 20
	}
	rnd, evo, rl := best("random"), best("evolution"), best("reinforce")
	t.Logf("mean best reward: random %.4f, evolution %.4f, reinforce %.4f", rnd, evo, rl)
	if !(evo > rnd) || !(rl > rnd) {
		t.Errorf("mean best reward: random %.4f, evolution %.4f, reinforce %.4f; want both above random", rnd, evo, rl)
	}
}

func ExampleNew() {
	dims := []Dim{{Name: "kernel", Options: 2}, {Name: "expand", Options: 3}}
	ctl, err := New("random", dims, Config{}, 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	props, _ := ctl.Propose(nil, nil, 6)
	more, _ := ctl.Propose([]Observation{{ID: 0, Choices: props[0], Reward: 0.5}}, props[1:], 1)
	fmt.Println(len(props), len(more))
	// Output: 6 0
}

// TestLargeSpaceFullyDrawn checks the error for a space above the
// enumeration limit whose random draws find nothing unseen.
func TestLargeSpaceFullyDrawn(t *testing.T) {
	ctl, err := New("random", smallDims, Config{MaxRetries: 5, EnumerateLimit: 10}, 1)
	if err != nil {
		t.Fatal(err)
	}
	var pending [][]int
	for a := range 3 {
		for c := range 4 {
			for d := range 2 {
				pending = append(pending, []int{a, 0, c, d})
			}
		}
	}
	_, err = ctl.Propose(nil, pending, 1)
	if err == nil || !strings.Contains(err.Error(), "no unseen candidate in 5 random draws from a space of 24 candidates") {
		t.Errorf("Propose on a drawn-out space = %v, want the draws error", err)
	}
	ctl, _ = New("random", smallDims, Config{}, 1)
	if got, err := ctl.Propose(nil, pending, 1); err != nil || len(got) != 0 {
		t.Errorf("Propose on an exhausted space = %v, %v; want none and no error", got, err)
	}
}

// BenchmarkPropose measures one proposal after a 1000-trial history in a
// space shaped like the MnasNet one (42 dims of 2 to 4 options).
func BenchmarkPropose(b *testing.B) {
	dims := make([]Dim, 42)
	for i := range dims {
		dims[i] = Dim{Options: 2 + i%3}
	}
	for _, name := range Names {
		b.Run(name, func(b *testing.B) {
			ctl, _ := New(name, dims, Config{}, 1)
			var history []Observation
			for i := range 1000 {
				p, err := ctl.Propose(history, nil, 1)
				if err != nil {
					b.Fatal(err)
				}
				history = append(history, Observation{ID: int64(i), Choices: p[0], Reward: reward(p[0])})
			}
			for b.Loop() {
				if _, err := ctl.Propose(history, nil, 1); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
