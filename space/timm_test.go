package space

import (
	"strings"
	"testing"
)

// b0Timm is B0 in timm's dialect, from the reference.
const b0Timm = "ds_r1_k3_s1_e1_c16_se0.25, ir_r2_k3_s2_e6_c24_se0.25, ir_r2_k5_s2_e6_c40_se0.25, " +
	"ir_r3_k3_s2_e6_c80_se0.25, ir_r3_k5_s1_e6_c112_se0.25, ir_r4_k5_s2_e6_c192_se0.25, " +
	"ir_r1_k3_s1_e6_c320_se0.25"

func TestTimmB0(t *testing.T) {
	b0 := B0()
	if got := strings.Join(FormatTimmBlocks(b0.Blocks), ", "); got != b0Timm {
		t.Errorf("B0 in timm's dialect:\n got %s\nwant %s", got, b0Timm)
	}
	blocks, err := ParseTimmBlocks([]string{b0Timm}, 32)
	if err != nil {
		t.Fatal(err)
	}
	a := b0.Clone()
	a.Blocks = blocks
	if !a.Equal(b0) {
		t.Errorf("ParseTimmBlocks(B0) = %v, want %v", a, b0)
	}
}

func TestTimmRoundTrip(t *testing.T) {
	tests := []struct {
		s    string
		want Block
	}{
		{"cn_r1_k3_s1_c32", Block{Op: OpConv, Repeats: 1, Kernel: 3, Stride: 1, Expand: 1, Out: 32}},
		{"cn_r2_k3_s1_c32_skip", Block{Op: OpConv, Repeats: 2, Kernel: 3, Stride: 1, Expand: 1, Out: 32, Skip: true}},
		{"cn_r1_k5_s2_c32_se0.25", Block{Op: OpConv, Repeats: 1, Kernel: 5, Stride: 2, Expand: 1, Out: 32, SE: 0.25}},
		{"ds_r1_k3_s1_e1_c16_noskip", Block{Op: OpSepConv, Repeats: 1, Kernel: 3, Stride: 1, Expand: 1, Out: 16}},
		{"ir_r3_k5_s2_e3_c40_se0.25", Block{Op: OpMBConv, Repeats: 3, Kernel: 5, Stride: 2, Expand: 3, Out: 40, SE: 0.25, Skip: true}},
	}
	for _, tt := range tests {
		got, err := ParseTimmBlock(tt.s)
		if err != nil {
			t.Errorf("ParseTimmBlock(%q): %v", tt.s, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseTimmBlock(%q) = %+v, want %+v", tt.s, got, tt.want)
		}
		if s := got.Timm(); s != tt.s {
			t.Errorf("ParseTimmBlock(%q).Timm() = %q", tt.s, s)
		}
	}
	if b, err := ParseTimmBlock(" cn_r1_k3_s1_c32\t"); err != nil || b.Timm() != "cn_r1_k3_s1_c32" {
		t.Errorf("ParseTimmBlock with spaces = %v, %v", b.Timm(), err)
	}
	// timm's ds may leave out e1.
	if b, err := ParseTimmBlock("ds_r1_k3_s1_c16"); err != nil || b.Timm() != "ds_r1_k3_s1_e1_c16" {
		t.Errorf("ParseTimmBlock(ds without e) = %v, %v", b.Timm(), err)
	}
}

func TestTimmErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"xx_r1_k3_s1_c16", `block type "xx"`},
		{"ir_r1_k3_s3_e6_c16", `stride "s3": must be s1 or s2`},
		{"ir_r1_k3_s11_e6_c16", `stride "s11": must be s1 or s2`},
		{"ir_r1_k3_s1_c16", `missing expansion token e`},
		{"ir_r1_k3_s1_e1_c16", `use ds for expansion 1`},
		{"ds_r1_k3_s1_e6_c16", `a ds block has expansion e1`},
		{"cn_r1_k3_s1_e6_c16", `a cn block has expansion e1`},
		{"ir_r1_k3_s1_e6_i16_c16", `unknown token "i16"`},
		{"ir_r0_k3_s1_e6_c16", `repeats 0`},
		{"ir_r1_k3.5_s1_e6_c16", `"3.5" is not a whole number`},
		{"cn_r1_k3_s1_c16_skip_noskip", `both skip and noskip`},
		{"ir_r1_k3_s1_e6", `missing output filters token c`},
	}
	for _, tt := range tests {
		_, err := ParseTimmBlock(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseTimmBlock(%q) = %v, want an error containing %q", tt.in, err, tt.want)
		}
	}
	if _, err := ParseTimmBlocks([]string{"ds_r1_k3_s1_c16"}, 0); err == nil || !strings.Contains(err.Error(), "input filters 0") {
		t.Errorf("ParseTimmBlocks with stem 0 = %v, want an input filters error", err)
	}
	if _, err := ParseTimmBlocks(nil, 32); err == nil {
		t.Error("ParseTimmBlocks(nil) succeeded")
	}
}

func FuzzParseTimmBlock(f *testing.F) {
	for _, s := range strings.Split(b0Timm, ", ") {
		f.Add(s)
	}
	for _, s := range []string{"cn_r1_k3_s1_c32", "cn_r2_k3_s1_c32_skip", "ds_r1_k3_s1_c16_noskip", "ir_r1_k3_s2_e6_c24_se0.5_noskip", "ir", "_"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseTimmBlock(s)
		if err != nil {
			return
		}
		if b.In != 0 {
			t.Fatalf("ParseTimmBlock(%q) set input filters %d", s, b.In)
		}
		again, err := ParseTimmBlock(b.Timm())
		if err != nil || again != b {
			t.Fatalf("round trip of %q via %q: %+v, %v; want %+v", s, b.Timm(), again, err, b)
		}
		// With input filters it is a valid TF block too.
		b.In = 8
		tf, err := ParseBlock(b.String())
		if err != nil || tf != b {
			t.Fatalf("TF round trip of %q via %q: %+v, %v", s, b.String(), tf, err)
		}
	})
}
