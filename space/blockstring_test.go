package space

import (
	"errors"
	"strings"
	"testing"
)

func TestParseBlockRoundTrip(t *testing.T) {
	tests := []struct {
		s    string
		want Block
	}{
		{"r1_k3_s11_e1_i32_o16_se0.25", Block{Op: OpSepConv, Repeats: 1, Kernel: 3, Stride: 1, Expand: 1, In: 32, Out: 16, SE: 0.25, Skip: true}},
		{"r2_k3_s22_e6_i16_o24_se0.25", Block{Op: OpMBConv, Repeats: 2, Kernel: 3, Stride: 2, Expand: 6, In: 16, Out: 24, SE: 0.25, Skip: true}},
		{"r3_k5_s22_e3_i24_o40", Block{Op: OpMBConv, Repeats: 3, Kernel: 5, Stride: 2, Expand: 3, In: 24, Out: 40, Skip: true}},
		{"r1_k3_s11_e1_i32_o16_noskip", Block{Op: OpSepConv, Repeats: 1, Kernel: 3, Stride: 1, Expand: 1, In: 32, Out: 16}},
		{"r1_k3_s11_e1_i32_o16_conv", Block{Op: OpConv, Repeats: 1, Kernel: 3, Stride: 1, Expand: 1, In: 32, Out: 16, Skip: true}},
		{"r2_k5_s22_e1_i16_o24_se0.25_noskip_conv", Block{Op: OpConv, Repeats: 2, Kernel: 5, Stride: 2, Expand: 1, In: 16, Out: 24, SE: 0.25}},
		{"r1_k7_s11_e6_i8_o8_se0.125", Block{Op: OpMBConv, Repeats: 1, Kernel: 7, Stride: 1, Expand: 6, In: 8, Out: 8, SE: 0.125, Skip: true}},
	}
	for _, tt := range tests {
		got, err := ParseBlock(tt.s)
		if err != nil {
			t.Errorf("ParseBlock(%q): %v", tt.s, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseBlock(%q) = %+v, want %+v", tt.s, got, tt.want)
		}
		if s := got.String(); s != tt.s {
			t.Errorf("ParseBlock(%q).String() = %q, want the input back", tt.s, s)
		}
	}
}

func TestParseBlockLenient(t *testing.T) {
	// Inputs that parse but are not written back the same way.
	tests := []struct{ in, canonical string }{
		{"r1_k3_s11_i32_o16_conv", "r1_k3_s11_e1_i32_o16_conv"},
		{"o16_i32_e1_s11_k3_r1", "r1_k3_s11_e1_i32_o16"},
		{"r01_k3_s11_e1_i32_o16_se0.250", "r1_k3_s11_e1_i32_o16_se0.25"},
		{"r1_k3_s11_e1_i32_o16_se0", "r1_k3_s11_e1_i32_o16"},
		{" r1_k3_s11_e1_i32_o16\n", "r1_k3_s11_e1_i32_o16"},
	}
	for _, tt := range tests {
		b, err := ParseBlock(tt.in)
		if err != nil {
			t.Errorf("ParseBlock(%q): %v", tt.in, err)
			continue
		}
		if got := b.String(); got != tt.canonical {
			t.Errorf("ParseBlock(%q).String() = %q, want %q", tt.in, got, tt.canonical)
		}
	}
}

func TestParseBlockErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"r2_k3_s33_e6_i16_o24", `block "r2_k3_s33_e6_i16_o24": stride "s33": must be s11 or s22`},
		{"r2_k3_s12_e6_i16_o24", `stride "s12": must be s11 or s22`},
		{"r2_k3_s2_e6_i16_o24", `stride "s2": must be s11 or s22`},
		{"r0_k3_s11_e6_i16_o24", `repeats 0: must be at least 1`},
		{"r1_k3_s11_e6_i16_o24_x5", `unknown token "x5"`},
		{"r1_k3_s11_e6_i16_o24_noskipx", `unknown token "noskipx"`},
		{"r1_k3_s11_e6_i16_o24_conv5", `unknown token "conv5"`},
		{"r1_k3_s11_e6_i16", `missing output filters token o`},
		{"r1_k3_s11_i16_o24", `missing expansion token e`},
		{"r1_k3_s11_e6_i16_o24_conv", `expansion e6 with conv`},
		{"r1_k4_s11_e6_i16_o24", `kernel 4: must be odd`},
		{"r1_k3_s11_e0_i16_o24", `expansion 0`},
		{"r1_k3_s11_e6_i0_o24", `input filters 0`},
		{"r1_k3_s11_e6_i16_o0", `output filters 0`},
		{"r1_k3_s11_e6_i16_o24_se1.5", `squeeze-excite ratio 1.5`},
		{"r1_k3_s11_e6_i16_o24_se-1", `"-1" is not a decimal number`},
		{"r1_k3_s11_e6_i16_o24_se1e-3", `"1e-3" is not a decimal number`},
		{"r-1_k3_s11_e6_i16_o24", `"-1" is not a whole number`},
		{"r99999999999_k3_s11_e6_i16_o24", `is not a whole number`},
		{"r1_r2_k3_s11_e6_i16_o24", `r given twice`},
		{"r1__k3_s11_e6_i16_o24", `unknown token ""`},
		{"", `empty block string`},
		{"R1_k3_s11_e6_i16_o24", `unknown token "R1"`},
	}
	for _, tt := range tests {
		_, err := ParseBlock(tt.in)
		if err == nil {
			t.Errorf("ParseBlock(%q) succeeded, want an error containing %q", tt.in, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseBlock(%q) = %q, want it to contain %q", tt.in, err, tt.want)
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseBlock(%q): errors.Is(err, ErrInvalid) is false", tt.in)
		}
	}
}

func TestParseBlocks(t *testing.T) {
	want := B0().Blocks
	for _, in := range []string{
		strings.Join(FormatBlocks(want), " "),
		strings.Join(FormatBlocks(want), ",\n"),
		`["` + strings.Join(FormatBlocks(want), `", "`) + `"]`,
		`['` + strings.Join(FormatBlocks(want), `','`) + `']`,
	} {
		got, err := ParseBlocks(in)
		if err != nil {
			t.Errorf("ParseBlocks(%q): %v", in, err)
			continue
		}
		if len(got) != len(want) {
			t.Fatalf("ParseBlocks(%q) gave %d blocks, want %d", in, len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("ParseBlocks(%q)[%d] = %+v, want %+v", in, i, got[i], want[i])
			}
		}
	}
	for _, tt := range []struct{ in, want string }{
		{"", "no block strings"},
		{" [ ] ", "no block strings"},
		{"r1_k3_s11_e1_i32_o16 r2_k3_s33_e6_i16_o24", `block 1 "r2_k3_s33_e6_i16_o24": stride "s33"`},
	} {
		_, err := ParseBlocks(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseBlocks(%q) = %v, want an error containing %q", tt.in, err, tt.want)
		}
	}
}

func FuzzParseBlock(f *testing.F) {
	for _, s := range b0Blocks {
		f.Add(s)
	}
	for _, s := range []string{
		"r1_k3_s11_e1_i32_o16_conv", "r2_k5_s22_e3_i16_o24_noskip", "r1_k3_s33_e6_i1_o1",
		"r1_k3_s11_e6_i16_o24_se0.0001", "r1_k3_s11_e6_i16_o24_se1", "", "_", "noskip_conv",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseBlock(s)
		if err != nil {
			return
		}
		if err := b.Validate(); err != nil {
			t.Fatalf("ParseBlock(%q) returned an invalid block %+v: %v", s, b, err)
		}
		again, err := ParseBlock(b.String())
		if err != nil {
			t.Fatalf("ParseBlock(%q).String() = %q does not parse: %v", s, b.String(), err)
		}
		if again != b {
			t.Fatalf("round trip of %q: %+v, then %+v", s, b, again)
		}
		// The timm dialect round-trips too, apart from the input filters.
		tb, err := ParseTimmBlock(b.Timm())
		if err != nil {
			t.Fatalf("ParseTimmBlock(%q): %v", b.Timm(), err)
		}
		tb.In = b.In
		if tb != b {
			t.Fatalf("timm round trip of %q via %q: %+v, want %+v", s, b.Timm(), tb, b)
		}
	})
}
