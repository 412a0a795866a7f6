package space

import (
	"bytes"
	"encoding/json"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestDefaultSpaceDims(t *testing.T) {
	s := DefaultSpace()
	dims := s.Dims()
	if len(dims) != 7*6 {
		t.Fatalf("%d dims, want 42", len(dims))
	}
	want := map[string]string{
		"stage0.op":      "conv sepconv mbconv3 mbconv6",
		"stage0.kernel":  "3 5",
		"stage0.se":      "0 0.25",
		"stage0.skip":    "skip noskip",
		"stage0.filters": "16 24", // 16 x 0.75 = 12 rounds up to 16
		"stage0.layers":  "1 2",   // 1 - 1 clamps to 1
		"stage1.filters": "24 32",
		"stage2.filters": "32 40 48",
		"stage3.filters": "64 80 104",
		"stage4.filters": "88 112 144",
		"stage5.filters": "144 192 240",
		"stage5.layers":  "3 4 5",
		"stage6.filters": "240 320 400",
	}
	seen := map[string]bool{}
	for _, d := range dims {
		seen[d.Name] = true
		if w, ok := want[d.Name]; ok && strings.Join(d.Options, " ") != w {
			t.Errorf("%s options %v, want %s", d.Name, d.Options, w)
		}
	}
	for n := range want {
		if !seen[n] {
			t.Errorf("no dim %s", n)
		}
	}
	// 4*2*2*2 per stage times filters x layers: 16 ops/kernel/se/skip combinations.
	size := big.NewInt(1)
	for _, fl := range [][2]int64{{2, 2}, {2, 3}, {3, 3}, {3, 3}, {3, 3}, {3, 3}, {3, 2}} {
		size.Mul(size, big.NewInt(32*fl[0]*fl[1]))
	}
	if s.Size().Cmp(size) != 0 {
		t.Errorf("Size() = %v, want %v", s.Size(), size)
	}
}

func TestB0IsMember(t *testing.T) {
	s := DefaultSpace()
	b0 := B0()
	c, err := s.Encode(b0)
	if err != nil {
		t.Fatalf("Encode(B0): %v", err)
	}
	if err := s.Validate(c); err != nil {
		t.Fatal(err)
	}
	got, err := s.Decode(c)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(b0) {
		t.Errorf("Decode(Encode(B0)) = %v\nwant %v", got, b0)
	}
	if k := s.Key(c); k != strings.Join(b0Blocks[:], " ") {
		t.Errorf("Key(B0) = %q", k)
	}
}

func TestMnasNetA1LikeIsMember(t *testing.T) {
	// MnasNet-A1 (timm's arch_def) has 160 filters in stage 5, between the
	// space's 144 and 192 (B0's 192 x 0.75 and x 1): it is not a member, and
	// the error says why. With 144 there it is.
	a1 := []string{
		"ds_r1_k3_s1_e1_c16_noskip", "ir_r2_k3_s2_e6_c24", "ir_r3_k5_s2_e3_c40_se0.25",
		"ir_r4_k3_s2_e6_c80", "ir_r2_k3_s1_e6_c112_se0.25", "ir_r3_k5_s2_e6_c160_se0.25", "ir_r1_k3_s1_e6_c320",
	}
	s := DefaultSpace()
	a := B0()
	var err error
	if a.Blocks, err = ParseTimmBlocks(a1, 32); err != nil {
		t.Fatal(err)
	}
	_, err = s.Encode(a)
	if err == nil || !strings.Contains(err.Error(), `block 5 ("r3_k5_s22_e6_i112_o160_se0.25"): stage5.filters 160 is not an option of the space (144, 192, 240)`) {
		t.Errorf("Encode(MnasNet-A1) = %v, want a stage5.filters error", err)
	}
	a1[5] = "ir_r3_k5_s2_e6_c144_se0.25"
	if a.Blocks, err = ParseTimmBlocks(a1, 32); err != nil {
		t.Fatal(err)
	}
	c, err := s.Encode(a)
	if err != nil {
		t.Fatalf("Encode(MnasNet-A1-like): %v", err)
	}
	got, err := s.Decode(c)
	if err != nil || !got.Equal(a) {
		t.Errorf("Decode(Encode(A1-like)) = %v, %v\nwant %v", got, err, a)
	}
	if got.Blocks[0].Op != OpSepConv || got.Blocks[2].Expand != 3 || got.Blocks[0].Skip {
		t.Errorf("A1-like decoded wrongly: %v", got)
	}
}

func TestEncodeErrors(t *testing.T) {
	s := DefaultSpace()
	tests := []struct {
		name string
		edit func(a *Arch)
		want string
	}{
		{"kernel", func(a *Arch) { a.Blocks[2].Kernel = 7 }, `block 2 ("r2_k7_s22_e6_i24_o40_se0.25"): stage2.kernel 7 is not an option of the space (3, 5)`},
		{"op", func(a *Arch) { a.Blocks[1].Expand = 4 }, `stage1.op mbconv4 is not an option of the space (conv, sepconv, mbconv3, mbconv6)`},
		{"se", func(a *Arch) { a.Blocks[1].SE = 0.5 }, `stage1.se 0.5 is not an option`},
		{"layers", func(a *Arch) { a.Blocks[5].Repeats = 6 }, `stage5.layers 6 is not an option of the space (3, 4, 5)`},
		{"stride", func(a *Arch) { a.Blocks[4].Stride = 2 }, `block 4 ("r3_k5_s22_e6_i80_o112_se0.25"): stride 2: the space's stage 4 has stride 1`},
		{"stem", func(a *Arch) { *a = a.Scale(1.2, 1, 0) }, `stem 40 is not in the space "mnasnet-b0" (its stem is 32)`},
		{"head", func(a *Arch) { a.Head = 1536 }, `head 1536 is not in the space`},
		{"blocks", func(a *Arch) { a.Blocks = a.Blocks[:6] }, `6 blocks: the space "mnasnet-b0" has 7 stages`},
		{"invalid", func(a *Arch) { a.Blocks[0].Repeats = 0 }, `repeats 0`},
	}
	for _, tt := range tests {
		a := B0()
		tt.edit(&a)
		_, err := s.Encode(a)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Encode = %v, want an error containing %q", tt.name, err, tt.want)
		}
	}
}

func TestSample(t *testing.T) {
	s := DefaultSpace()
	r1 := rand.New(rand.NewPCG(7, 1))
	r2 := rand.New(rand.NewPCG(7, 1))
	dims := s.Dims()
	hit := make([][]int, len(dims))
	for i, d := range dims {
		hit[i] = make([]int, len(d.Options))
	}
	keys := map[string]string{}
	const n = 2000
	for range n {
		c := s.Sample(r1)
		if c2 := s.Sample(r2); c.String() != c2.String() {
			t.Fatalf("same seed, different samples: %v and %v", c, c2)
		}
		if err := s.Validate(c); err != nil {
			t.Fatal(err)
		}
		a, err := s.Decode(c)
		if err != nil {
			t.Fatal(err)
		}
		back, err := s.Encode(a)
		if err != nil || back.String() != c.String() {
			t.Fatalf("Encode(Decode(%v)) = %v, %v", c, back, err)
		}
		// Keys are unique per candidate.
		k := s.Key(c)
		if prev, ok := keys[k]; ok && prev != c.String() {
			t.Fatalf("candidates %s and %s share the key %q", prev, c, k)
		}
		keys[k] = c.String()
		for i, x := range c {
			hit[i][x]++
		}
	}
	// Every option is drawn, and roughly uniformly: each of at most 4
	// options gets 1/4 to 1/2 of n in expectation; 5 standard deviations.
	for i, d := range dims {
		want := float64(n) / float64(len(d.Options))
		for j, h := range hit[i] {
			if h == 0 || float64(h) < want-5*22.4 || float64(h) > want+5*22.4 {
				t.Errorf("%s option %s drawn %d times of %d, want about %.0f", d.Name, d.Options[j], h, n, want)
			}
		}
	}
	// A different seed gives a different sequence.
	r3 := rand.New(rand.NewPCG(8, 1))
	if s.Sample(r3).String() == s.Sample(rand.New(rand.NewPCG(7, 1))).String() {
		t.Error("seeds 7 and 8 drew the same first candidate")
	}
}

func TestCandidateValidate(t *testing.T) {
	s := DefaultSpace()
	c, _ := s.Encode(B0())
	short := c[:5]
	if err := s.Validate(short); err == nil || !strings.Contains(err.Error(), "candidate has 5 indices, the space \"mnasnet-b0\" has 42 dimensions") {
		t.Errorf("short: %v", err)
	}
	bad := append(Candidate(nil), c...)
	bad[1] = 2
	if err := s.Validate(bad); err == nil || !strings.Contains(err.Error(), "candidate index 1 (stage0.kernel) is 2: must be 0 to 1 (3, 5)") {
		t.Errorf("out of range: %v", err)
	}
	if _, err := s.Decode(bad); err == nil {
		t.Error("Decode of a bad candidate succeeded")
	}
	if k := s.Key(bad); !strings.HasPrefix(k, "invalid:") {
		t.Errorf("Key(bad) = %q", k)
	}
	p, err := ParseCandidate("[" + c.String() + "]")
	if err != nil || p.String() != c.String() {
		t.Errorf("ParseCandidate(%q) = %v, %v", c.String(), p, err)
	}
	for _, in := range []string{"", "1,x", "1,-1"} {
		if _, err := ParseCandidate(in); err == nil {
			t.Errorf("ParseCandidate(%q) succeeded", in)
		}
	}
}

func TestSpaceJSONAndHash(t *testing.T) {
	s := DefaultSpace()
	again, err := ParseSpace(s.JSON())
	if err != nil {
		t.Fatalf("ParseSpace(JSON()): %v", err)
	}
	if again.Hash() != s.Hash() || !bytes.Equal(again.JSON(), s.JSON()) {
		t.Error("the canonical JSON does not parse back to the same space")
	}
	if len(s.Hash()) != 64 {
		t.Errorf("Hash() = %q, want 64 hex digits", s.Hash())
	}
	// mbconv1 is sepconv: the same space, the same hash.
	alias := bytes.Replace(defaultSpaceJSON, []byte(`"sepconv"`), []byte(`"mbconv1"`), 1)
	if sa, err := ParseSpace(alias); err != nil || sa.Hash() != s.Hash() {
		t.Errorf("mbconv1 alias: %v, hash equal %v", err, err == nil && sa.Hash() == s.Hash())
	}
	// A different space hashes differently.
	other := bytes.Replace(defaultSpaceJSON, []byte(`"kernels": [3, 5]`), []byte(`"kernels": [3, 5, 7]`), 1)
	so, err := ParseSpace(other)
	if err != nil {
		t.Fatal(err)
	}
	if so.Hash() == s.Hash() {
		t.Error("different spaces, same hash")
	}
	// The hash is pinned: changing default_space.json or the canonical form
	// changes it, and studies stored with the old hash would not resume.
	var f spaceFile
	if err := json.Unmarshal(s.JSON(), &f); err != nil || f.Choices != nil || len(f.Stages[3].Choices.Ops) != 4 {
		t.Errorf("canonical JSON does not spell out every stage's choices: %s", s.JSON())
	}
}

func TestSpaceHashCanonical(t *testing.T) {
	s := DefaultSpace()
	// Pinned: changing default_space.json or the canonical form changes the
	// hash stored with every study, so such a change must be deliberate.
	if got, want := s.Hash(), "017fd694bbfe337413a2566171ab125e69793d9878cd89c9ccd0250347eb19a5"; got != want {
		t.Errorf("DefaultSpace().Hash() = %s, want %s", got, want)
	}
	same := map[string]string{
		"multipliers reordered":      strings.Replace(string(defaultSpaceJSON), `[0.75, 1.0, 1.25]`, `[1.25, 0.75, 1]`, 1),
		"multipliers rounding alike": strings.Replace(string(defaultSpaceJSON), `[0.75, 1.0, 1.25]`, `[0.76, 1.0, 1.26]`, 1),
		"explicit stage 0": strings.Replace(string(defaultSpaceJSON), `{"filters": 16, "repeats": 1, "stride": 1}`,
			`{"stride": 1, "choices": {"filters": [24, 16], "layers": [2, 1]}}`, 1),
	}
	for name, data := range same {
		o, err := ParseSpace([]byte(data))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if o.Hash() != s.Hash() {
			t.Errorf("%s: hash differs:\n%s\n%s", name, o.JSON(), s.JSON())
		}
	}
	// Option order fixes the indices, so it changes the space.
	o, err := ParseSpace([]byte(strings.Replace(string(defaultSpaceJSON), `"kernels": [3, 5]`, `"kernels": [5, 3]`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if o.Hash() == s.Hash() {
		t.Error("kernels [5, 3] and [3, 5] hash alike")
	}
}

func TestMnasNetA1ExactWithExplicitFilters(t *testing.T) {
	data := strings.Replace(string(defaultSpaceJSON), `{"filters": 192, "repeats": 4, "stride": 2}`,
		`{"repeats": 4, "stride": 2, "choices": {"filters": [144, 160, 192, 240]}}`, 1)
	s, err := ParseSpace([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	a := B0()
	if a.Blocks, err = ParseTimmBlocks([]string{"ds_r1_k3_s1_e1_c16_noskip, ir_r2_k3_s2_e6_c24, ir_r3_k5_s2_e3_c40_se0.25, " +
		"ir_r4_k3_s2_e6_c80, ir_r2_k3_s1_e6_c112_se0.25, ir_r3_k5_s2_e6_c160_se0.25, ir_r1_k3_s1_e6_c320"}, 32); err != nil {
		t.Fatal(err)
	}
	c, err := s.Encode(a)
	if err != nil {
		t.Fatalf("Encode(MnasNet-A1): %v", err)
	}
	if got, err := s.Decode(c); err != nil || !got.Equal(a) {
		t.Errorf("Decode(Encode(MnasNet-A1)) = %v, %v", got, err)
	}
	if _, err := s.Encode(B0()); err != nil {
		t.Errorf("B0 is not a member of the widened space: %v", err)
	}
}

func TestStageOverride(t *testing.T) {
	data := []byte(`{"name": "tiny", "in_channels": 1, "resolution": 28, "classes": 10, "stem": 16, "head": 64,
		"activation": "relu", "dropout": 0, "drop_connect": 0,
		"choices": {"ops": ["mbconv6"], "kernels": [3], "se": [0], "skip": [true], "filter_multipliers": [1], "layer_deltas": [0]},
		"stages": [
			{"filters": 16, "repeats": 1, "stride": 1, "choices": {"ops": ["mbconv1", "conv"], "kernels": [3, 5]}},
			{"filters": 24, "repeats": 2, "stride": 2}
		]}`)
	s, err := ParseSpace(data)
	if err != nil {
		t.Fatal(err)
	}
	if s.Size().Int64() != 4 || s.Name() != "tiny" {
		t.Errorf("size %v name %q, want 4 and tiny", s.Size(), s.Name())
	}
	a, err := s.Decode(Candidate{1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(FormatBlocks(a.Blocks), " "); got != "r1_k5_s11_e1_i16_o16_conv r2_k3_s22_e6_i16_o24" {
		t.Errorf("decoded %s", got)
	}
	if a.InChannels != 1 || a.Resolution != 28 || a.Classes != 10 || a.Activation != "relu" {
		t.Errorf("settings not taken from the space: %+v", a)
	}
}

func TestParseSpaceErrors(t *testing.T) {
	edit := func(old, new string) string {
		if !strings.Contains(string(defaultSpaceJSON), old) {
			t.Fatalf("default_space.json has no %q", old)
		}
		return strings.Replace(string(defaultSpaceJSON), old, new, 1)
	}
	tests := []struct{ name, data, want string }{
		{"unknown op", edit(`"mbconv3"`, `"mbconv"`), `stage 0: ops: unknown op "mbconv": want conv, sepconv or mbconv<e>`},
		{"mbconv0", edit(`"mbconv3"`, `"mbconv0"`), `unknown op "mbconv0"`},
		{"mbconv03", edit(`"mbconv3"`, `"mbconv03"`), `unknown op "mbconv03"`},
		{"duplicate op", edit(`"mbconv3"`, `"mbconv1"`), `ops: "mbconv1": sepconv given twice`},
		{"empty ops", edit(`"ops": ["conv", "sepconv", "mbconv3", "mbconv6"]`, `"ops": []`), `stage 0: ops: empty choice list`},
		{"no ops", edit(`"ops": ["conv", "sepconv", "mbconv3", "mbconv6"],`, ``), `stage 0: ops: empty choice list`},
		{"even kernel", edit(`[3, 5]`, `[3, 4]`), `kernels: 4: must be odd`},
		{"dup kernel", edit(`[3, 5]`, `[3, 3]`), `kernels: 3 given twice`},
		{"se", edit(`[0, 0.25]`, `[0, 2]`), `se: 2: must be 0 (no SE) to 1`},
		{"dup skip", edit(`[true, false]`, `[true, true]`), `skip: true given twice`},
		{"multiplier", edit(`[0.75, 1.0, 1.25]`, `[0, 1]`), `filter_multipliers: 0: must be above 0`},
		{"multiplier above 16", edit(`[0.75, 1.0, 1.25]`, `[17]`), `filter_multipliers: 17: must be above 0 and at most 16`},
		{"huge network", `{"name": "huge", "in_channels": 3, "resolution": 4096, "classes": 10, "stem": 8, "head": 8, "activation": "relu",
			"choices": {"ops": ["sepconv", "conv"], "kernels": [15], "se": [0], "skip": [true], "filter_multipliers": [1], "layer_deltas": [0]},
			"stages": [{"filters": 16384, "repeats": 64, "stride": 1}]}`,
			`search space: largest network of the space: 1.6e+19 multiply-adds: too large to count`},
		{"deltas", edit(`[-1, 0, 1]`, `[64]`), `layer_deltas: 64: 1 + 64 layers is more than 64`},
		{"huge delta", edit(`[-1, 0, 1]`, `[-100]`), `layer_deltas: -100: must be -64 to 64`},
		{"empty multipliers", edit(`[0.75, 1.0, 1.25]`, `[]`), `stage 0: filter_multipliers: empty choice list`},
		{"empty deltas", edit(`[-1, 0, 1]`, `[]`), `stage 0: layer_deltas: empty choice list`},
		{"top filters", edit(`"kernels": [3, 5]`, `"kernels": [3, 5], "filters": [16]`), `choices: filters and layers list one stage's options`},
		{"both filters", edit(`"stride": 1}`, `"stride": 1, "choices": {"filters": [16], "filter_multipliers": [1]}}`), `stage 0: choices: give filters or filter_multipliers, not both`},
		{"both layers", edit(`"stride": 1}`, `"stride": 1, "choices": {"layers": [1], "layer_deltas": [0]}}`), `stage 0: choices: give layers or layer_deltas, not both`},
		{"explicit filters", edit(`"stride": 1}`, `"stride": 1, "choices": {"filters": [16, 0]}}`), `stage 0: filters: 0: must be 1 to 16384`},
		{"dup filters", edit(`"stride": 1}`, `"stride": 1, "choices": {"filters": [16, 16]}}`), `filters: 16 given twice`},
		{"empty filters", edit(`"stride": 1}`, `"stride": 1, "choices": {"filters": []}}`), `stage 0: filters: empty choice list`},
		{"explicit layers", edit(`"stride": 1}`, `"stride": 1, "choices": {"layers": [65]}}`), `stage 0: layers: 65: must be 1 to 64`},
		{"dup layers", edit(`"stride": 1}`, `"stride": 1, "choices": {"layers": [2, 2]}}`), `layers: 2 given twice`},
		{"stride", edit(`"stride": 1}`, `"stride": 3}`), `stage 0: stride 3: must be 1 or 2`},
		{"filters", edit(`"filters": 16,`, `"filters": 0,`), `stage 0: filters 0`},
		{"repeats", edit(`"repeats": 1,`, `"repeats": 0,`), `stage 0: repeats 0`},
		{"no stages", `{"name": "x", "stages": []}`, `stages: none given`},
		{"activation", edit(`"swish"`, `"gelu"`), `activation "gelu": must be swish or relu`},
		{"classes", edit(`"classes": 1000`, `"classes": 0`), `classes 0`},
		{"unknown field", edit(`"stem": 32`, `"stem": 32, "stme": 3`), `unknown field "stme"`},
		{"unknown choice", edit(`"kernels": [3, 5]`, `"kernels": [3, 5], "kernel": [3]`), `unknown field "kernel"`},
		{"type", edit(`"kernels": [3, 5]`, `"kernels": ["3"]`), `cannot unmarshal string`},
		{"trailing", string(defaultSpaceJSON) + "{}", `data after the JSON object`},
		{"not json", `stages: 7`, `search space: invalid character`},
		{"empty", ``, `search space: EOF`},
	}
	for _, tt := range tests {
		_, err := ParseSpace([]byte(tt.data))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: ParseSpace = %v, want an error containing %q", tt.name, err, tt.want)
		}
	}
}

func FuzzParseSpace(f *testing.F) {
	f.Add(defaultSpaceJSON)
	f.Add(DefaultSpace().JSON())
	f.Add([]byte(`{"name":"t","in_channels":1,"resolution":8,"classes":2,"stem":8,"head":8,"activation":"relu",
		"choices":{"ops":["conv","mbconv2"],"kernels":[1,3],"se":[0,1],"skip":[false],"filter_multipliers":[0.1,2],"layer_deltas":[-5,3]},
		"stages":[{"filters":8,"repeats":1,"stride":2},{"filters":9,"repeats":2,"stride":1,"choices":{"ops":["sepconv"]}}]}`))
	f.Add([]byte(`{"name":"e","in_channels":3,"resolution":32,"classes":10,"stem":16,"head":32,"activation":"swish",
		"stages":[{"stride":2,"choices":{"ops":["mbconv3"],"kernels":[3],"se":[0.25],"skip":[true,false],"filters":[16,24],"layers":[1,3]}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSpace(data)
		if err != nil {
			return
		}
		again, err := ParseSpace(s.JSON())
		if err != nil || again.Hash() != s.Hash() {
			t.Fatalf("canonical JSON %s does not parse back: %v", s.JSON(), err)
		}
		r := rand.New(rand.NewPCG(1, 2))
		for range 3 {
			c := s.Sample(r)
			a, err := s.Decode(c)
			if err != nil {
				t.Fatalf("Decode(%v) of a sampled candidate: %v", c, err)
			}
			back, err := s.Encode(a)
			if err != nil || back.String() != c.String() {
				t.Fatalf("Encode(Decode(%v)) = %v, %v", c, back, err)
			}
			_ = a.FLOPs()
		}
	})
}

func TestLargestIsLargest(t *testing.T) {
	// No sampled member of a mixed space has more multiply-adds than largest().
	data := []byte(`{"name": "mixed", "in_channels": 3, "resolution": 64, "classes": 10, "stem": 8, "head": 64, "activation": "relu",
		"choices": {"ops": ["sepconv", "conv", "mbconv3", "mbconv6"], "kernels": [3, 7], "se": [0, 0.5], "skip": [true],
			"filter_multipliers": [0.5, 1, 4], "layer_deltas": [0, 2]},
		"stages": [{"filters": 8, "repeats": 1, "stride": 1}, {"filters": 256, "repeats": 1, "stride": 2}, {"filters": 16, "repeats": 2, "stride": 1}]}`)
	s, err := ParseSpace(data)
	if err != nil {
		t.Fatal(err)
	}
	max := s.largest().FLOPs()
	r := rand.New(rand.NewPCG(3, 3))
	for range 3000 {
		a, err := s.Decode(s.Sample(r))
		if err != nil {
			t.Fatal(err)
		}
		if f := a.FLOPs(); f > max {
			t.Fatalf("%v has %d multiply-adds, more than largest()'s %d", a, f, max)
		}
	}
}
