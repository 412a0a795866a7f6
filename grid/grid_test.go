package grid

import (
	"errors"
	"math"
	"testing"
)

func TestPointsDefault(t *testing.T) {
	ps, err := Config{}.WithDefaults().Points()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[[3]float64]bool{}
	foundPaper := false
	for _, p := range ps {
		if v := p.Alpha * p.Beta * p.Beta * p.Gamma * p.Gamma; math.Abs(v-2) > 0.1+1e-9 {
			t.Errorf("point %+v: constraint %v outside 2 ± 0.1", p, v)
		}
		for _, x := range []float64{p.Alpha, p.Beta, p.Gamma} {
			if x < 1 || x > 1.4+1e-9 {
				t.Errorf("point %+v: coefficient %v outside [1, 1.4]", p, x)
			}
		}
		k := [3]float64{p.Alpha, p.Beta, p.Gamma}
		if seen[k] {
			t.Errorf("point %+v listed twice", p)
		}
		seen[k] = true
		if p.Alpha == 1.2 && p.Beta == 1.1 && p.Gamma == 1.15 {
			foundPaper = true
		}
	}
	if !foundPaper {
		t.Errorf("the paper's point (1.2, 1.1, 1.15), constraint 1.92, is not on the default grid of %d points", len(ps))
	}
	// Count independently: 9 values per coefficient, brute force.
	n := 0
	for a := 0; a <= 8; a++ {
		for b := 0; b <= 8; b++ {
			for g := 0; g <= 8; g++ {
				A, B, G := 1+0.05*float64(a), 1+0.05*float64(b), 1+0.05*float64(g)
				if math.Abs(A*B*B*G*G-2) <= 0.1+1e-9 {
					n++
				}
			}
		}
	}
	if len(ps) != n {
		t.Errorf("got %d points, brute force counts %d", len(ps), n)
	}
}

func TestPointsErrors(t *testing.T) {
	for _, c := range []Config{
		{Max: 0.9},
		{Step: -1},
		{Tolerance: -0.1},
		{Max: 1.05, Tolerance: 0.01}, // empty: largest product is 1.05^5 = 1.28
	} {
		c = c.WithDefaults()
		if _, err := c.Points(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
	_, err := Config{Max: 1.05, Tolerance: 0.01}.WithDefaults().Points()
	if !errors.Is(err, ErrEmpty) {
		t.Errorf("empty grid: got %v, want ErrEmpty", err)
	}
}

func TestDimension(t *testing.T) {
	c := Config{}.WithDefaults()
	for _, tc := range []struct {
		dim  string
		want int // points from 1.05 up to a FLOPs factor of 2.1
	}{
		{"width", 8},      // 1.05 .. 1.40: 1.45^2 = 2.1025 > 2.1
		{"depth", 22},     // 1.05 .. 2.10
		{"resolution", 8}, // as width
	} {
		ps, err := c.Dimension(tc.dim)
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) != tc.want {
			t.Errorf("%s: %d points, want %d", tc.dim, len(ps), tc.want)
		}
		for _, p := range ps {
			moved := 0
			for _, x := range []float64{p.Alpha, p.Beta, p.Gamma} {
				if x != 1 {
					moved++
				}
			}
			if moved != 1 {
				t.Errorf("%s: point %+v moves %d coefficients, want 1", tc.dim, p, moved)
			}
		}
	}
	if _, err := c.Dimension("height"); err == nil {
		t.Error("unknown dimension accepted")
	}
}
