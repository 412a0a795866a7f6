package kern

import "math"

// Exp is a fast float32 exp (relative error about 2e-7 on [-87, 88]),
// several times faster than math.Exp, which dominates swish otherwise.
func Exp(x float32) float32 {
	if x > 88 {
		x = 88
	} else if x < -87 {
		x = -87
	}
	const (
		log2e = 1.44269504088896341
		ln2hi = 0.693145751953125
		ln2lo = 1.42860682030941723212e-6
	)
	k := float32(math.Floor(float64(x*log2e + 0.5)))
	r := x - k*ln2hi - k*ln2lo
	// exp(r) on |r| <= ln2/2, degree-6 Taylor/minimax.
	p := float32(1.0 / 720)
	p = p*r + 1.0/120
	p = p*r + 1.0/24
	p = p*r + 1.0/6
	p = p*r + 0.5
	p = p*r + 1
	p = p*r + 1
	return p * math.Float32frombits(uint32(int32(k)+127)<<23)
}

// Sigmoid1 is 1/(1+exp(-x)) for one value.
func Sigmoid1(x float32) float32 { return 1 / (1 + Exp(-x)) }
