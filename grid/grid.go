package grid

import (
	"cmp"
	"errors"
	"fmt"
	"math"

	"github.com/effnas/effnas/space"
)

// Defaults of Config.
const (
	DefaultStep      = 0.05
	DefaultMax       = 1.4
	DefaultTolerance = 0.1
	DefaultPhi       = 1.0
	DefaultTarget    = 2.0
)

// Config describes the grid of coefficients. Zero fields take the defaults
// given in each comment (WithDefaults).
type Config struct {
	Step      float64 `json:"step"`      // spacing of each coefficient's values; default 0.05
	Max       float64 `json:"max"`       // largest value of each coefficient; default 1.4
	Tolerance float64 `json:"tolerance"` // keep points with |alpha*beta^2*gamma^2 - Target| <= Tolerance; default 0.1
	Phi       float64 `json:"phi"`       // compound coefficient the grid is searched at; default 1
	Target    float64 `json:"target"`    // the constraint's value, the FLOPs factor per unit of phi; default 2
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	c.Step = cmp.Or(c.Step, DefaultStep)
	c.Max = cmp.Or(c.Max, DefaultMax)
	c.Tolerance = cmp.Or(c.Tolerance, DefaultTolerance)
	c.Phi = cmp.Or(c.Phi, DefaultPhi)
	c.Target = cmp.Or(c.Target, DefaultTarget)
	return c
}

// Validate reports the first setting that cannot make a grid, in words a
// user understands. Call it on a Config with defaults applied.
func (c Config) Validate() error {
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	switch {
	case !finite(c.Step) || c.Step <= 0 || c.Step > 1:
		return fmt.Errorf("step %v: must be a number in (0, 1], e.g. 0.05", c.Step)
	case !finite(c.Max) || c.Max < 1:
		return fmt.Errorf("max %v: must be at least 1 (every coefficient ranges over [1, max]), e.g. 1.4", c.Max)
	case c.Max > 4:
		return fmt.Errorf("max %v: must be at most 4; at phi = 1 larger coefficients break the constraint anyway", c.Max)
	case !finite(c.Tolerance) || c.Tolerance < 0:
		return fmt.Errorf("tolerance %v: must be a non-negative number, e.g. 0.1", c.Tolerance)
	case !finite(c.Phi) || c.Phi <= 0 || c.Phi > 10:
		return fmt.Errorf("phi %v: must be a number in (0, 10], e.g. 1", c.Phi)
	case !finite(c.Target) || c.Target < 1:
		return fmt.Errorf("target %v: must be at least 1, e.g. 2", c.Target)
	}
	if (c.Max-1)/c.Step > 400 {
		return fmt.Errorf("step %v with max %v: %d values per coefficient is too many; use a step of at least %.3g",
			c.Step, c.Max, int((c.Max-1)/c.Step)+1, (c.Max-1)/400)
	}
	return nil
}

// ErrEmpty is returned by Points when no point satisfies the constraint.
var ErrEmpty = errors.New("empty grid")

// Values returns the values one coefficient takes: 1, 1+step, ... up to max,
// rounded to 6 decimals so that 1.15 is 1.15 and not 1.1500000000000001.
func (c Config) Values() []float64 {
	var vs []float64
	for i := 0; ; i++ {
		v := round6(1 + float64(i)*c.Step)
		if v > c.Max+1e-9 {
			return vs
		}
		vs = append(vs, v)
	}
}

// Points returns every (alpha, beta, gamma) on the grid whose constraint
// alpha*beta^2*gamma^2 lies within Tolerance of Target, in a fixed order
// (alpha, then beta, then gamma ascending). It returns ErrEmpty, wrapped
// with the settings, when none does.
func (c Config) Points() ([]space.Scaling, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	vs := c.Values()
	var ps []space.Scaling
	for _, a := range vs {
		for _, b := range vs {
			for _, g := range vs {
				s := space.Scaling{Alpha: a, Beta: b, Gamma: g}
				if math.Abs(s.Constraint()-c.Target) <= c.Tolerance+1e-12 {
					ps = append(ps, s)
				}
			}
		}
	}
	if len(ps) == 0 {
		return nil, fmt.Errorf("%w: no (alpha, beta, gamma) in [1, %v] with step %v has alpha*beta^2*gamma^2 within %v of %v; raise max or tolerance",
			ErrEmpty, c.Max, c.Step, c.Tolerance, c.Target)
	}
	return ps, nil
}

func round6(v float64) float64 { return math.Round(v*1e6) / 1e6 }

// Dimensions are the names accepted by Dimension.
var Dimensions = []string{"width", "depth", "resolution"}

// Dimension returns the single-dimension scalings of the paper's Figure 3
// experiment: only one coefficient grows, from 1 in steps of Step, up to the
// point where its FLOPs factor (alpha, beta^2 or gamma^2) reaches Target plus
// Tolerance, so the largest point costs about what a compound point costs.
func (c Config) Dimension(dim string) ([]space.Scaling, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var ps []space.Scaling
	for i := 1; ; i++ {
		m := round6(1 + float64(i)*c.Step)
		s := space.Scaling{Alpha: 1, Beta: 1, Gamma: 1}
		switch dim {
		case "width":
			s.Beta = m
		case "depth":
			s.Alpha = m
		case "resolution":
			s.Gamma = m
		default:
			return nil, fmt.Errorf("dimension %q: must be one of width, depth, resolution", dim)
		}
		if s.Constraint() > c.Target+c.Tolerance+1e-12 {
			return ps, nil
		}
		ps = append(ps, s)
	}
}
