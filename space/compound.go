package space

import (
	"math"
)

// Scaling holds the compound-scaling coefficients: depth d = Alpha^phi,
// width w = Beta^phi, resolution r = Gamma^phi, under the constraint
// Alpha * Beta^2 * Gamma^2 ≈ 2 (the paper found 1.2, 1.1, 1.15).
type Scaling struct {
	Alpha float64 `json:"alpha"` // depth coefficient, at least 1
	Beta  float64 `json:"beta"`  // width coefficient, at least 1
	Gamma float64 `json:"gamma"` // resolution coefficient, at least 1
}

// PaperScaling is the paper's grid-search result: alpha 1.2, beta 1.1, gamma 1.15.
var PaperScaling = Scaling{Alpha: 1.2, Beta: 1.1, Gamma: 1.15}

// Validate reports a coefficient that is below 1 or not finite.
func (s Scaling) Validate() error {
	for _, c := range []struct {
		name string
		v    float64
	}{{"alpha", s.Alpha}, {"beta", s.Beta}, {"gamma", s.Gamma}} {
		if math.IsNaN(c.v) || math.IsInf(c.v, 0) || c.v < 1 {
			return invalidf("scaling %s %v: must be a finite number of at least 1 (the paper's: alpha 1.2, beta 1.1, gamma 1.15)", c.name, c.v)
		}
	}
	return nil
}

// Constraint returns Alpha * Beta^2 * Gamma^2, the factor by which the
// FLOPs grow per unit of phi; the paper asks for about 2 (its values give 1.92).
func (s Scaling) Constraint() float64 {
	return s.Alpha * s.Beta * s.Beta * s.Gamma * s.Gamma
}

// FLOPsFactor returns Constraint()^phi, the nominal FLOPs growth at phi.
func (s Scaling) FLOPsFactor(phi float64) float64 {
	return math.Pow(s.Constraint(), phi)
}

// Multipliers returns the raw compound-scaling rule at phi: depth Alpha^phi,
// width Beta^phi and the resolution multiplier Gamma^phi, not hand-rounded
// (compare Presets for the released B1..B7).
func (s Scaling) Multipliers(phi float64) (depth, width, resMult float64) {
	return math.Pow(s.Alpha, phi), math.Pow(s.Beta, phi), math.Pow(s.Gamma, phi)
}

// Compound scales base by the raw rule at phi: width and depth through
// Arch.Scale, and resolution round(base.Resolution * Gamma^phi), rounded to
// the nearest integer (halves away from zero). With PaperScaling at phi 1,
// B0's 224 becomes 258 (224 * 1.15 = 257.6).
func Compound(base Arch, s Scaling, phi float64) Arch {
	depth, width, resMult := s.Multipliers(phi)
	res := int(math.Round(float64(base.Resolution) * resMult))
	return base.Scale(width, depth, res)
}
