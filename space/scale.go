package space

import (
	"fmt"
	"math"
	"strings"
)

// RoundFilters scales filters f by width and rounds to a multiple of 8 the
// way the EfficientNet code does: f *= width; new = max(8, int(f+4)/8*8);
// if new < 0.9*f, add 8. A width of 0 returns f unchanged (as the reference
// code does for a missing multiplier). Note that width 1 can change a count
// that is not a multiple of 8 (12 becomes 16).
func RoundFilters(f int, width float64) int {
	if width == 0 {
		return f
	}
	x := float64(f) * width
	n := max(8, int(x+4)/8*8)
	if float64(n) < 0.9*x {
		n += 8
	}
	return n
}

// RoundRepeats scales repeats r by depth and rounds up: ceil(depth*r).
// A depth of 0 returns r unchanged.
func RoundRepeats(r int, depth float64) int {
	if depth == 0 {
		return r
	}
	return int(math.Ceil(depth * float64(r)))
}

// Scale returns a copy of a with every filter count (stem, each block's input
// and output filters, head) scaled by width with RoundFilters, every block's
// repeats scaled by depth with RoundRepeats, and the input resolution set to
// resolution (0 keeps a's). Scale does not validate: negative or NaN
// multipliers give an Arch that fails Validate.
func (a Arch) Scale(width, depth float64, resolution int) Arch {
	s := a.Clone()
	s.Stem = RoundFilters(a.Stem, width)
	s.Head = RoundFilters(a.Head, width)
	for i := range s.Blocks {
		b := &s.Blocks[i]
		b.In = RoundFilters(b.In, width)
		b.Out = RoundFilters(b.Out, width)
		b.Repeats = RoundRepeats(b.Repeats, depth)
	}
	if resolution != 0 {
		s.Resolution = resolution
	}
	return s
}

// b0Blocks are EfficientNet-B0's stages as the authors' code writes them.
var b0Blocks = [...]string{
	"r1_k3_s11_e1_i32_o16_se0.25",
	"r2_k3_s22_e6_i16_o24_se0.25",
	"r2_k5_s22_e6_i24_o40_se0.25",
	"r3_k3_s22_e6_i40_o80_se0.25",
	"r3_k5_s11_e6_i80_o112_se0.25",
	"r4_k5_s22_e6_i112_o192_se0.25",
	"r1_k3_s11_e6_i192_o320_se0.25",
}

// B0 returns EfficientNet-B0: 224x224 RGB input, 1000 classes, stem 32,
// the seven stages above, head 1280, swish, dropout 0.2, drop-connect 0.2.
func B0() Arch {
	a := Arch{
		InChannels: 3, Resolution: 224, Classes: 1000, Stem: 32, Head: 1280,
		Activation: "swish", Dropout: 0.2, DropConnect: 0.2,
		Blocks: make([]Block, len(b0Blocks)),
	}
	for i, s := range b0Blocks {
		b, err := ParseBlock(s)
		if err != nil {
			panic("space: B0: " + err.Error())
		}
		a.Blocks[i] = b
	}
	return a
}

// PresetParams are the released multipliers of one EfficientNet model.
type PresetParams struct {
	Name       string  `json:"name"`
	Width      float64 `json:"width"`
	Depth      float64 `json:"depth"`
	Resolution int     `json:"resolution"`
	Dropout    float64 `json:"dropout"`
}

// presets are the authors' hand-rounded B0..B7 multipliers.
var presets = [...]PresetParams{
	{"efficientnet-b0", 1.0, 1.0, 224, 0.2},
	{"efficientnet-b1", 1.0, 1.1, 240, 0.2},
	{"efficientnet-b2", 1.1, 1.2, 260, 0.3},
	{"efficientnet-b3", 1.2, 1.4, 300, 0.3},
	{"efficientnet-b4", 1.4, 1.8, 380, 0.4},
	{"efficientnet-b5", 1.6, 2.2, 456, 0.4},
	{"efficientnet-b6", 1.8, 2.6, 528, 0.5},
	{"efficientnet-b7", 2.0, 3.1, 600, 0.5},
}

// Presets returns the released multipliers of efficientnet-b0 to -b7.
func Presets() []PresetParams { return append([]PresetParams(nil), presets[:]...) }

// PresetNames returns "efficientnet-b0" to "efficientnet-b7".
func PresetNames() []string {
	names := make([]string, len(presets))
	for i, p := range presets {
		names[i] = p.Name
	}
	return names
}

// Preset returns a released EfficientNet: B0 scaled by the model's width and
// depth, at its resolution, with its dropout.
func Preset(name string) (Arch, error) {
	for _, p := range presets {
		if p.Name == name {
			a := B0().Scale(p.Width, p.Depth, p.Resolution)
			a.Dropout = p.Dropout
			return a, nil
		}
	}
	return Arch{}, fmt.Errorf("unknown model %q: want one of %s", name, strings.Join(PresetNames(), ", "))
}
