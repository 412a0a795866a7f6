package controller

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func ptr(f float64) *float64 { return &f }

func TestReward(t *testing.T) {
	tests := []struct {
		acc    float64
		flops  int64
		target float64
		w      float64
		want   float64
	}{
		{0.8, 400e6, 400e6, -0.07, 0.8},
		{0.8, 800e6, 400e6, -0.07, 0.8 * math.Pow(2, -0.07)},
		{0.8, 200e6, 400e6, -0.07, 0.8 * math.Pow(0.5, -0.07)},
		{0.8, 800e6, 400e6, 0, 0.8},
		{0.5, 100e6, 400e6, -1, 2},
	}
	for _, tt := range tests {
		if got := Reward(tt.acc, tt.flops, tt.target, tt.w); math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("Reward(%g, %d, %g, %g) = %.15g, want %.15g", tt.acc, tt.flops, tt.target, tt.w, got, tt.want)
		}
	}
	if got := Reward(0.8, 800e6, 400e6, -0.07); math.Abs(got-0.76211) > 1e-5 {
		t.Errorf("Reward(0.8, 800M) = %g, want 0.76211 (0.8 × 2^-0.07)", got)
	}
}

func TestRewardPanicsOnZeroFLOPs(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.HasPrefix(fmt.Sprint(r), "controller: ") {
			t.Errorf("recover() = %v, want a controller panic", r)
		}
	}()
	Reward(0.5, 0, 400e6, -0.07)
}

func TestRewardConfig(t *testing.T) {
	c := RewardConfig{}.WithDefaults()
	if c.Target != 400e6 || *c.W != -0.07 || c.MaxFLOPs != 0 {
		t.Errorf("defaults = %+v (w %g), want target 400e6, w -0.07, no bound", c, *c.W)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("defaults invalid: %v", err)
	}
	if c := (RewardConfig{W: ptr(0)}).WithDefaults(); *c.W != 0 || c.Reward(0.9, 800e6) != 0.9 {
		t.Errorf("w = 0 was not kept: %g", *c.W)
	}
	tests := []struct {
		c    RewardConfig
		want string
	}{
		{RewardConfig{Target: -1, W: ptr(-0.07)}, "target FLOPs is -1"},
		{RewardConfig{Target: 1, W: ptr(0.5)}, "reward exponent w is 0.5"},
		{RewardConfig{Target: 1, W: ptr(math.NaN())}, "reward exponent w is NaN"},
		{RewardConfig{Target: 1}, "w is unset"},
		{RewardConfig{Target: 1, W: ptr(-0.07), MaxFLOPs: -3}, "FLOPs bound is -3"},
	}
	for _, tt := range tests {
		if err := tt.c.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Validate(%+v) = %v, want %q", tt.c, err, tt.want)
		}
	}
}

func TestAdmit(t *testing.T) {
	c := RewardConfig{MaxFLOPs: 400e6}.WithDefaults()
	if err := c.Admit(400e6); err != nil {
		t.Errorf("Admit(400M) under a 400M bound = %v, want nil", err)
	}
	err := c.Admit(400e6 + 1)
	if !errors.Is(err, ErrOverBudget) || !strings.Contains(err.Error(), "400000001 multiply-adds") {
		t.Errorf("Admit(400M+1) = %v, want ErrOverBudget naming the count", err)
	}
	if err := c.Admit(0); err == nil {
		t.Error("Admit(0) = nil, want an error")
	}
	if err := (RewardConfig{}).WithDefaults().Admit(1 << 40); err != nil {
		t.Errorf("Admit without a bound = %v, want nil", err)
	}
}

func TestParetoFront(t *testing.T) {
	p := func(k string, acc float64, flops int64) Point { return Point{k, acc, flops} }
	tests := []struct {
		name string
		in   []Point
		want []Point
	}{
		{"empty", nil, nil},
		{"one", []Point{p("a", 0.5, 10)}, []Point{p("a", 0.5, 10)}},
		{"dominated",
			[]Point{p("a", 0.9, 300), p("b", 0.8, 100), p("c", 0.7, 200), p("d", 0.95, 400), p("e", 0.9, 350)},
			[]Point{p("b", 0.8, 100), p("a", 0.9, 300), p("d", 0.95, 400)}},
		{"equal points stay in input order",
			[]Point{p("x", 0.9, 100), p("y", 0.9, 100), p("z", 0.8, 100)},
			[]Point{p("x", 0.9, 100), p("y", 0.9, 100)}},
		{"same accuracy, more flops is dominated",
			[]Point{p("a", 0.9, 200), p("b", 0.9, 100)},
			[]Point{p("b", 0.9, 100)}},
		{"NaN ignored",
			[]Point{p("a", math.NaN(), 1), p("b", 0.1, 5)},
			[]Point{p("b", 0.1, 5)}},
	}
	for _, tt := range tests {
		if got := ParetoFront(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("%s: ParetoFront(%v) = %v, want %v", tt.name, tt.in, got, tt.want)
		}
	}
}

// TestParetoFrontBruteForce compares with the definition on random points
// with many ties.
func TestParetoFrontBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 200 {
		pts := make([]Point, rng.IntN(30))
		for i := range pts {
			pts[i] = Point{fmt.Sprint(i), float64(rng.IntN(6)) / 5, int64(rng.IntN(6))}
		}
		var want []Point
		for i, p := range pts {
			dom := false
			for j, q := range pts {
				if i != j && q.Accuracy >= p.Accuracy && q.FLOPs <= p.FLOPs && (q.Accuracy > p.Accuracy || q.FLOPs < p.FLOPs) {
					dom = true
				}
			}
			if !dom {
				want = append(want, p)
			}
		}
		slices.SortStableFunc(want, func(a, b Point) int { return int(a.FLOPs - b.FLOPs) })
		if got := ParetoFront(pts); !slices.Equal(got, want) {
			t.Fatalf("trial %d: ParetoFront(%v) = %v, want %v", trial, pts, got, want)
		}
	}
}

func ExampleParetoFront() {
	front := ParetoFront([]Point{
		{Key: "big", Accuracy: 0.92, FLOPs: 600e6},
		{Key: "b0", Accuracy: 0.90, FLOPs: 390e6},
		{Key: "worse", Accuracy: 0.89, FLOPs: 450e6},
		{Key: "tiny", Accuracy: 0.80, FLOPs: 100e6},
	})
	for _, p := range front {
		fmt.Println(p.Key, p.Accuracy, p.FLOPs)
	}
	// Output:
	// tiny 0.8 100000000
	// b0 0.9 390000000
	// big 0.92 600000000
}

func ExampleReward() {
	fmt.Printf("%.4f %.4f\n", Reward(0.75, 400e6, 400e6, -0.07), Reward(0.75, 800e6, 400e6, -0.07))
	// Output: 0.7500 0.7145
}
