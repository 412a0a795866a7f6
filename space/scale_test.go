package space

import (
	"math"
	"strings"
	"testing"
)

func TestRoundFilters(t *testing.T) {
	tests := []struct {
		f     int
		width float64
		want  int
	}{
		{32, 1.0, 32}, {32, 1.2, 40}, {1280, 1.2, 1536}, {16, 1.2, 24}, // 19.2 -> 16 < 17.28 -> 24
		{24, 1.2, 32}, {40, 1.2, 48}, {80, 1.2, 96}, {112, 1.2, 136}, {192, 1.2, 232}, {320, 1.2, 384},
		{16, 0.75, 16}, {24, 0.75, 24}, {40, 0.75, 32}, {12, 1.0, 16}, {1, 1.0, 8}, {32, 2.0, 64},
		{1280, 2.0, 2560}, {32, 1.1, 32}, {16, 1.1, 16}, {7, 0, 7},
	}
	for _, tt := range tests {
		if got := RoundFilters(tt.f, tt.width); got != tt.want {
			t.Errorf("RoundFilters(%d, %v) = %d, want %d", tt.f, tt.width, got, tt.want)
		}
	}
}

func TestRoundRepeats(t *testing.T) {
	tests := []struct {
		r     int
		depth float64
		want  int
	}{{1, 1.4, 2}, {2, 1.4, 3}, {3, 1.4, 5}, {4, 1.4, 6}, {1, 1.0, 1}, {4, 3.1, 13}, {5, 1.2, 6}, {3, 0, 3}}
	for _, tt := range tests {
		if got := RoundRepeats(tt.r, tt.depth); got != tt.want {
			t.Errorf("RoundRepeats(%d, %v) = %d, want %d", tt.r, tt.depth, got, tt.want)
		}
	}
}

func TestPresetB3Golden(t *testing.T) {
	a, err := Preset("efficientnet-b3")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	wantOut := []int{24, 32, 48, 96, 136, 232, 384}
	wantRep := []int{2, 3, 3, 5, 5, 6, 2}
	if a.Stem != 40 || a.Head != 1536 || a.Resolution != 300 || a.Dropout != 0.3 {
		t.Errorf("B3 stem %d head %d resolution %d dropout %v, want 40, 1536, 300, 0.3", a.Stem, a.Head, a.Resolution, a.Dropout)
	}
	for i, b := range a.Blocks {
		if b.Out != wantOut[i] || b.Repeats != wantRep[i] {
			t.Errorf("B3 block %d: out %d repeats %d, want %d and %d", i, b.Out, b.Repeats, wantOut[i], wantRep[i])
		}
	}
}

func TestPresets(t *testing.T) {
	names := PresetNames()
	if len(names) != 8 || names[0] != "efficientnet-b0" || names[7] != "efficientnet-b7" {
		t.Fatalf("PresetNames() = %v", names)
	}
	var prev int64
	for i, n := range names {
		a, err := Preset(n)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Validate(); err != nil {
			t.Errorf("%s: %v", n, err)
		}
		p := Presets()[i]
		if a.Resolution != p.Resolution || a.Dropout != p.Dropout || a.DropConnect != 0.2 {
			t.Errorf("%s: resolution %d dropout %v drop-connect %v", n, a.Resolution, a.Dropout, a.DropConnect)
		}
		if f := a.FLOPs(); f <= prev {
			t.Errorf("%s: %d multiply-adds, not more than the previous model's %d", n, f, prev)
		}
		prev = a.FLOPs()
	}
	if b0, _ := Preset("efficientnet-b0"); !b0.Equal(B0()) {
		t.Error("Preset(efficientnet-b0) != B0()")
	}
	_, err := Preset("efficientnet-b8")
	if err == nil || !strings.Contains(err.Error(), `unknown model "efficientnet-b8": want one of efficientnet-b0, `) {
		t.Errorf("Preset(b8) = %v", err)
	}
}

func TestScaleDoesNotAlias(t *testing.T) {
	a := B0()
	s := a.Scale(2, 2, 0)
	if s.Resolution != 224 {
		t.Errorf("Scale with resolution 0 changed it to %d", s.Resolution)
	}
	if a.Blocks[0].Out != 16 || s.Blocks[0].Out != 32 {
		t.Errorf("Scale(2): B0 block 0 out %d, scaled %d", a.Blocks[0].Out, s.Blocks[0].Out)
	}
	if err := s.Validate(); err != nil {
		t.Errorf("B0 scaled by 2: %v", err)
	}
}

func TestScaling(t *testing.T) {
	s := PaperScaling
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := s.Constraint(); math.Abs(got-1.92027) > 1e-12 {
		t.Errorf("Constraint() = %v, want 1.92027", got)
	}
	if got := s.FLOPsFactor(2); math.Abs(got-1.92027*1.92027) > 1e-12 {
		t.Errorf("FLOPsFactor(2) = %v", got)
	}
	d, w, r := s.Multipliers(2)
	if math.Abs(d-1.44) > 1e-12 || math.Abs(w-1.21) > 1e-12 || math.Abs(r-1.3225) > 1e-12 {
		t.Errorf("Multipliers(2) = %v, %v, %v; want 1.44, 1.21, 1.3225", d, w, r)
	}
	for _, bad := range []Scaling{{0.9, 1, 1}, {1, math.NaN(), 1}, {1, 1, math.Inf(1)}, {}} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v.Validate() = nil", bad)
		}
	}
	if err := (Scaling{1, 1, 0.5}).Validate(); err == nil || !strings.Contains(err.Error(), "scaling gamma 0.5: must be") {
		t.Errorf("gamma 0.5: %v", err)
	}
}

func TestCompound(t *testing.T) {
	b0 := B0()
	if a := Compound(b0, PaperScaling, 0); !a.Equal(b0) {
		t.Errorf("Compound at phi 0 = %v, want B0", a)
	}
	a := Compound(b0, PaperScaling, 1)
	want := b0.Scale(1.1, 1.2, 258) // 224*1.15 = 257.6
	if !a.Equal(want) {
		t.Errorf("Compound at phi 1 = %v, want %v", a, want)
	}
	// The nominal FLOPs factor (1.92) is only approximate: rounding the
	// repeats up turns every one-layer stage into two.
	ratio := float64(a.FLOPs()) / float64(b0.FLOPs())
	if ratio < 1.5 || ratio > 3 {
		t.Errorf("FLOPs ratio at phi 1 = %v, want about %v", ratio, PaperScaling.FLOPsFactor(1))
	}
}
