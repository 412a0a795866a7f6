package grid

import (
	"testing"

	"github.com/effnas/effnas/space"
)

func TestPaperFamilyMatchesPresets(t *testing.T) {
	fam := PaperFamily(space.B0())
	if len(fam) != 7 {
		t.Fatalf("%d members, want b1..b7", len(fam))
	}
	for i, m := range fam {
		want, err := space.Preset(space.PresetNames()[i+1])
		if err != nil {
			t.Fatal(err)
		}
		if m.Params != want.Params() || m.FLOPs != want.FLOPs() || m.Resolution != want.Resolution {
			t.Errorf("%s: params %d flops %d res %d; the preset has %d, %d, %d",
				m.Name, m.Params, m.FLOPs, m.Resolution, want.Params(), want.FLOPs(), want.Resolution)
		}
	}
}

func TestFamilyRawRule(t *testing.T) {
	fam := Family(space.B0(), space.PaperScaling)
	// phi = 1: width 1.1, depth 1.2, resolution round(224 * 1.15) = 258.
	b1 := fam[0]
	if b1.Name != "b1" || b1.Width != 1.1 || b1.Depth != 1.2 || b1.Resolution != 258 {
		t.Errorf("b1 = %+v; want width 1.1, depth 1.2, resolution 258", b1)
	}
	// FLOPs grow by roughly 1.92^phi; rounding of filters and repeats makes it approximate.
	b0 := space.B0().FLOPs()
	for _, m := range fam {
		ratio := float64(m.FLOPs) / float64(b0)
		nominal := space.PaperScaling.FLOPsFactor(m.Phi)
		if ratio < 0.7*nominal || ratio > 1.4*nominal {
			t.Errorf("%s: FLOPs ratio %.2f, nominal %.2f", m.Name, ratio, nominal)
		}
		if m.Params <= 0 {
			t.Errorf("%s: params %d", m.Name, m.Params)
		}
	}
	for i := 1; i < len(fam); i++ {
		if fam[i].FLOPs <= fam[i-1].FLOPs {
			t.Errorf("%s has no more FLOPs than %s", fam[i].Name, fam[i-1].Name)
		}
	}
}
