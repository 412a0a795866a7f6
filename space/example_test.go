package space_test

import (
	"fmt"

	"github.com/effnas/effnas/space"
)

func ExampleB0() {
	a := space.B0()
	fmt.Println(a.Params(), a.FLOPs())
	a.Resolution = 32
	fmt.Println(a.FLOPs())
	// Output:
	// 5288548 385814752
	// 9742048
}

func ExampleParseBlock() {
	b, err := space.ParseBlock("r2_k3_s22_e6_i16_o24_se0.25")
	fmt.Println(b.Op, b.Repeats, b.Kernel, b.Stride, b.Expand, b.In, b.Out, b.SE, b.Skip, err)
	fmt.Println(b.Timm())
	_, err = space.ParseBlock("r2_k3_s33_e6_i16_o24")
	fmt.Println(err)
	// Output:
	// mbconv 2 3 2 6 16 24 0.25 true <nil>
	// ir_r2_k3_s2_e6_c24_se0.25
	// block "r2_k3_s33_e6_i16_o24": stride "s33": must be s11 or s22 (square strides 1 or 2)
}

func ExamplePreset() {
	a, _ := space.Preset("efficientnet-b3")
	fmt.Println(a.Resolution, a.Stem, a.Head, a.Dropout)
	for _, b := range a.Blocks {
		fmt.Print(b.Out, "x", b.Repeats, " ")
	}
	fmt.Println()
	// Output:
	// 300 40 1536 0.3
	// 24x2 32x3 48x3 96x5 136x5 232x6 384x2
}

func ExampleCompound() {
	a := space.Compound(space.B0(), space.PaperScaling, 1)
	d, w, r := space.PaperScaling.Multipliers(1)
	fmt.Printf("depth %.2f width %.2f resolution x%.2f -> %d\n", d, w, r, a.Resolution)
	// Output:
	// depth 1.20 width 1.10 resolution x1.15 -> 258
}

func ExampleSpace() {
	s := space.DefaultSpace()
	fmt.Println(len(s.Dims()), "dimensions,", s.Size(), "candidates")
	fmt.Println(s.Dims()[4].Name, s.Dims()[4].Options)
	c, err := s.Encode(space.B0())
	fmt.Println(c, err)
	a, _ := s.Decode(c)
	fmt.Println(a.FLOPs())
	// Output:
	// 42 dimensions, 32462531054272512 candidates
	// stage0.filters [16 24]
	// 1,0,1,0,0,0,3,0,1,0,0,1,3,1,1,0,1,1,3,0,1,0,1,1,3,1,1,0,1,1,3,1,1,0,1,1,3,0,1,0,1,0 <nil>
	// 385814752
}
