package space

import (
	"strings"
	"testing"
)

func TestCountB0(t *testing.T) {
	// Golden figures from the reference (EfficientNet convention).
	tests := []struct {
		res          int
		params, macs int64
	}{
		{224, 5_288_548, 385_814_752},
		{32, 5_288_548, 9_742_048},
	}
	for _, tt := range tests {
		a := B0()
		a.Resolution = tt.res
		if got := a.Params(); got != tt.params {
			t.Errorf("B0 at %d: params %d, want %d", tt.res, got, tt.params)
		}
		if got := a.FLOPs(); got != tt.macs {
			t.Errorf("B0 at %d: multiply-adds %d, want %d", tt.res, got, tt.macs)
		}
	}
}

func TestLayersB0(t *testing.T) {
	layers := B0().Layers()
	byName := map[string]Layer{}
	for _, l := range layers {
		if _, dup := byName[l.Name]; dup {
			t.Errorf("layer name %q twice", l.Name)
		}
		byName[l.Name] = l
	}
	// 16 block repeats: 1 sepconv (dw, se, project) + 15 mbconv (4 rows).
	if want := 1 + 3 + 15*4 + 2; len(layers) != want {
		t.Errorf("%d layers, want %d", len(layers), want)
	}
	// Hand-computed rows.
	tests := []Layer{
		// 3x3 conv 3->32 at 112x112: 864 weights + 64 BN.
		{"stem", [3]int{32, 112, 112}, 864 + 64, 112 * 112 * 864},
		// depthwise 3x3 on 32 channels: 288 + 64.
		{"blocks.0.0.dw", [3]int{32, 112, 112}, 288 + 64, 112 * 112 * 288},
		// SE on 32 channels reduced to int(32*0.25)=8: 32*8+8 + 8*32+32.
		{"blocks.0.0.se", [3]int{32, 112, 112}, 256 + 8 + 256 + 32, 512},
		{"blocks.0.0.project", [3]int{16, 112, 112}, 512 + 32, 112 * 112 * 512},
		// The first repeat expands at the input resolution, 16 -> 96.
		{"blocks.1.0.expand", [3]int{96, 112, 112}, 16*96 + 192, 112 * 112 * 16 * 96},
		{"blocks.1.0.dw", [3]int{96, 56, 56}, 9*96 + 192, 56 * 56 * 9 * 96},
		// SE reduces from the block's input filters (16*0.25 = 4), not the expanded 96.
		{"blocks.1.0.se", [3]int{96, 56, 56}, 96*4 + 4 + 4*96 + 96, 2 * 96 * 4},
		// The second repeat's input is the output filters, 24 -> 144; SE 24*0.25=6.
		{"blocks.1.1.expand", [3]int{144, 56, 56}, 24*144 + 288, 56 * 56 * 24 * 144},
		{"blocks.1.1.se", [3]int{144, 56, 56}, 144*6 + 6 + 6*144 + 144, 2 * 144 * 6},
		{"head", [3]int{1280, 7, 7}, 320*1280 + 2560, 7 * 7 * 320 * 1280},
		{"classifier", [3]int{1000, 1, 1}, 1280*1000 + 1000, 1280 * 1000},
	}
	for _, want := range tests {
		got, ok := byName[want.Name]
		if !ok {
			t.Errorf("no layer %q", want.Name)
			continue
		}
		if got != want {
			t.Errorf("layer %q = %+v, want %+v", want.Name, got, want)
		}
	}
}

func TestCountConvAndSepConv(t *testing.T) {
	a := Arch{InChannels: 3, Resolution: 32, Classes: 10, Stem: 8, Head: 16, Activation: "relu",
		Blocks: []Block{
			{Op: OpConv, Repeats: 2, Kernel: 3, Stride: 2, Expand: 1, In: 8, Out: 16, SE: 0.5, Skip: true},
			{Op: OpSepConv, Repeats: 1, Kernel: 5, Stride: 1, Expand: 1, In: 16, Out: 16},
		}}
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	want := []Layer{
		{"stem", [3]int{8, 16, 16}, 27*8 + 16, 16 * 16 * 27 * 8},
		{"blocks.0.0.conv", [3]int{16, 8, 8}, 9*8*16 + 32, 8 * 8 * 9 * 8 * 16},
		// SE on the conv's 16 output channels, reduced to int(8*0.5)=4.
		{"blocks.0.0.se", [3]int{16, 8, 8}, 16*4 + 4 + 4*16 + 16, 2 * 16 * 4},
		{"blocks.0.1.conv", [3]int{16, 8, 8}, 9*16*16 + 32, 8 * 8 * 9 * 16 * 16},
		{"blocks.0.1.se", [3]int{16, 8, 8}, 16*8 + 8 + 8*16 + 16, 2 * 16 * 8},
		{"blocks.1.0.dw", [3]int{16, 8, 8}, 25*16 + 32, 8 * 8 * 25 * 16},
		{"blocks.1.0.project", [3]int{16, 8, 8}, 16*16 + 32, 8 * 8 * 16 * 16},
		{"head", [3]int{16, 8, 8}, 16*16 + 32, 8 * 8 * 16 * 16},
		{"classifier", [3]int{10, 1, 1}, 16*10 + 10, 16 * 10},
	}
	got := a.Layers()
	if len(got) != len(want) {
		t.Fatalf("%d layers, want %d: %+v", len(got), len(want), got)
	}
	var params, macs int64
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("layer %d = %+v, want %+v", i, got[i], want[i])
		}
		params += want[i].Params
		macs += want[i].MACs
	}
	if a.Params() != params || a.FLOPs() != macs {
		t.Errorf("totals %d params %d macs, want %d and %d", a.Params(), a.FLOPs(), params, macs)
	}
}

func TestSameOutOddSizes(t *testing.T) {
	// Same padding rounds up: 33 -> 17 -> 9 -> 5 -> 3 -> 2 through B0's strides.
	a := B0()
	a.Resolution = 33
	layers := a.Layers()
	if got := layers[len(layers)-2].OutShape; got != [3]int{1280, 2, 2} {
		t.Errorf("head shape at 33x33 = %v, want [1280 2 2]", got)
	}
}

func TestArchValidate(t *testing.T) {
	b0 := B0()
	if err := b0.Validate(); err != nil {
		t.Fatalf("B0: %v", err)
	}
	tests := []struct {
		name string
		edit func(a *Arch)
		want string
	}{
		{"zero repeats", func(a *Arch) { a.Blocks[3].Repeats = 0 }, `block 3 ("r0_k3_s22_e6_i40_o80_se0.25"): repeats 0: must be at least 1`},
		{"stride 3", func(a *Arch) { a.Blocks[1].Stride = 3 }, `block 1 ("r2_k3_s33_e6_i16_o24_se0.25"): stride 3: must be 1 or 2`},
		{"chain", func(a *Arch) { a.Blocks[2].In = 32 }, `block 2 ("r2_k5_s22_e6_i32_o40_se0.25"): input filters 32: must equal block 1's output filters 24`},
		{"chain stem", func(a *Arch) { a.Stem = 40 }, `input filters 32: must equal the stem's output filters 40`},
		{"mbconv e1", func(a *Arch) { a.Blocks[1].Expand = 1 }, `an MBConv with expansion 1 is a sepconv`},
		{"sepconv e6", func(a *Arch) { a.Blocks[0].Expand = 6 }, `expansion 6: a sepconv has expansion 1`},
		{"bad op", func(a *Arch) { a.Blocks[0].Op = 7 }, `op 7: must be mbconv`},
		{"se", func(a *Arch) { a.Blocks[0].SE = -0.5 }, `squeeze-excite ratio -0.5`},
		{"resolution", func(a *Arch) { a.Resolution = 0 }, `resolution 0: must be 1 to 4096`},
		{"classes", func(a *Arch) { a.Classes = 0 }, `classes 0`},
		{"channels", func(a *Arch) { a.InChannels = 0 }, `input channels 0`},
		{"head", func(a *Arch) { a.Head = -1 }, `head filters -1`},
		{"activation", func(a *Arch) { a.Activation = "gelu" }, `activation "gelu": must be swish or relu`},
		{"dropout", func(a *Arch) { a.Dropout = 1 }, `dropout 1`},
		{"drop-connect", func(a *Arch) { a.DropConnect = -0.1 }, `drop-connect -0.1`},
		{"no blocks", func(a *Arch) { a.Blocks = nil }, `no blocks`},
		{"too big", func(a *Arch) {
			a.Resolution = 4096
			a.Blocks = []Block{{Op: OpConv, Repeats: 64, Kernel: 15, Stride: 1, Expand: 1, In: 32, Out: 16384}}
		}, `too large to count`},
	}
	for _, tt := range tests {
		a := B0()
		tt.edit(&a)
		err := a.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Validate() = %v, want an error containing %q", tt.name, err, tt.want)
		}
	}
}

func TestEqualClone(t *testing.T) {
	a := B0()
	b := a.Clone()
	if !a.Equal(b) {
		t.Fatal("B0 != its clone")
	}
	b.Blocks[0].Kernel = 5
	if a.Blocks[0].Kernel != 3 {
		t.Fatal("Clone shares blocks")
	}
	if a.Equal(b) {
		t.Error("Equal ignores blocks")
	}
	b = a.Clone()
	b.Dropout = 0.3
	if a.Equal(b) {
		t.Error("Equal ignores dropout")
	}
}

func TestPresetParamsMatchKeras(t *testing.T) {
	// keras.applications.EfficientNetB0..B7 report these total parameter
	// counts, which also hold batch norm's running mean and variance (2 per
	// channel, not parameters here) and the input Normalization layer's
	// mean, variance and count (3 + 3 + 1).
	keras := []int64{5_330_571, 7_856_239, 9_177_569, 12_320_535, 19_466_823, 30_562_527, 43_265_143, 66_658_687}
	for i, name := range PresetNames() {
		a, err := Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		var bnChannels int64
		a.walk(func(l layerSpec) {
			for _, c := range l.convs[:l.n] {
				if c.bn {
					bnChannels += int64(c.cout)
				}
			}
		})
		if got := a.Params() + 2*bnChannels + 7; got != keras[i] {
			t.Errorf("%s: %d params + %d running statistics + 7 = %d, Keras says %d", name, a.Params(), 2*bnChannels, got, keras[i])
		}
	}
}
