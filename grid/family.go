package grid

import (
	"fmt"
	"math"

	"github.com/effnas/effnas/space"
)

// Member is one scaled network of a family at full size.
type Member struct {
	Name       string  `json:"name"` // b1..b7
	Phi        float64 `json:"phi"`
	Width      float64 `json:"width"`
	Depth      float64 `json:"depth"`
	Resolution int     `json:"resolution"`
	Params     int64   `json:"params"`
	FLOPs      int64   `json:"flops"`
}

// Family returns B1..B7 of base by the raw compound rule, phi = 1..7:
// width beta^phi, depth alpha^phi, resolution round(base * gamma^phi).
func Family(base space.Arch, s space.Scaling) []Member {
	ms := make([]Member, 0, 7)
	for phi := 1; phi <= 7; phi++ {
		depth, width, resMult := s.Multipliers(float64(phi))
		a := space.Compound(base, s, float64(phi))
		ms = append(ms, Member{
			Name: fmt.Sprintf("b%d", phi), Phi: float64(phi),
			Width: round6(width), Depth: round6(depth), Resolution: int(math.Round(float64(base.Resolution) * resMult)),
			Params: a.Params(), FLOPs: a.FLOPs(),
		})
	}
	return ms
}

// PaperFamily returns base scaled by the authors' hand-rounded B1..B7
// multipliers (space.Presets), for comparison with Family.
func PaperFamily(base space.Arch) []Member {
	var ms []Member
	for i, p := range space.Presets() {
		if i == 0 {
			continue
		}
		a := base.Scale(p.Width, p.Depth, p.Resolution)
		ms = append(ms, Member{
			Name: fmt.Sprintf("b%d", i), Phi: float64(i), Width: p.Width, Depth: p.Depth, Resolution: p.Resolution,
			Params: a.Params(), FLOPs: a.FLOPs(),
		})
	}
	return ms
}
