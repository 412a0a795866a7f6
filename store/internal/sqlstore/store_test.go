package sqlstore

import (
	"encoding/json"
	"slices"
	"testing"
)

func TestStringArray(t *testing.T) {
	for _, in := range []string{
		`[]`, `[ ]`, `["r1_k3_s11_e1_i32_o16_se0.25"]`, `["a","b c"]`, `[ "a" , "b" ]`,
		`["with, comma"]`, `["quote \"q\""]`, `["é\u00e9"]`, `["a\\b"]`, `[""]`, `null`,
	} {
		got, err := stringArray(in)
		if err != nil {
			t.Fatalf("stringArray(%s): %v", in, err)
		}
		var want []string
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			t.Fatal(err)
		}
		if want == nil {
			want = []string{}
		}
		if !slices.Equal(got, want) || got == nil {
			t.Errorf("stringArray(%s) = %q, want %q", in, got, want)
		}
	}
	for _, bad := range []string{`[`, `["a"`, `[1,2]`, `{"a":1}`} {
		if _, err := stringArray(bad); err == nil {
			t.Errorf("stringArray(%s): no error", bad)
		}
	}
}

func BenchmarkStringArray(b *testing.B) {
	s := `["r1_k3_s11_e1_i32_o16_se0.25","r2_k3_s22_e6_i16_o24_se0.25","r2_k5_s22_e6_i24_o40_se0.25","r3_k3_s22_e6_i40_o80_se0.25","r3_k5_s11_e6_i80_o112_se0.25","r4_k5_s22_e6_i112_o192_se0.25","r1_k3_s11_e6_i192_o320_se0.25"]`
	for range b.N {
		if _, err := stringArray(s); err != nil {
			b.Fatal(err)
		}
	}
}
