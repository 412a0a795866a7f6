package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/effnas/effnas/space"
)

const b0Blocks = "r1_k3_s11_e1_i32_o16_se0.25 r2_k3_s22_e6_i16_o24_se0.25 r2_k5_s22_e6_i24_o40_se0.25 " +
	"r3_k3_s22_e6_i40_o80_se0.25 r3_k5_s11_e6_i80_o112_se0.25 r4_k5_s22_e6_i112_o192_se0.25 r1_k3_s11_e6_i192_o320_se0.25"

// runArchCmd runs effnas arch in-process and returns stdout, stderr and the error.
func runArchCmd(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := Run(context.Background(), &Env{Stdout: &out, Stderr: &errb}, append([]string{"arch"}, args...))
	return out.String(), errb.String(), err
}

func TestArchJSON(t *testing.T) {
	b0Timm := strings.Join(space.FormatTimmBlocks(space.B0().Blocks), ",")
	b0Comma := strings.ReplaceAll(b0Blocks, " ", ",")
	tests := []struct {
		name          string
		args          []string
		params, flops int64
		res, stem     int
		head, blocks  int
	}{
		{"blocks", []string{"--blocks", b0Blocks}, 5_288_548, 385_814_752, 224, 32, 1280, 7},
		{"blocks comma", []string{"--blocks", b0Comma, "--stem", "32", "--head", "1280"}, 5_288_548, 385_814_752, 224, 32, 1280, 7},
		{"blocks 32x32", []string{"--blocks", b0Blocks, "--res", "32"}, 5_288_548, 9_742_048, 32, 32, 1280, 7},
		{"timm", []string{"--timm", "--blocks", b0Timm}, 5_288_548, 385_814_752, 224, 32, 1280, 7},
		{"model", []string{"--model", "efficientnet-b0"}, 5_288_548, 385_814_752, 224, 32, 1280, 7},
		{"model res", []string{"--model", "efficientnet-b0", "--res", "32"}, 5_288_548, 9_742_048, 32, 32, 1280, 7},
		{"candidate", []string{"--candidate", candidateOf(t, space.B0())}, 5_288_548, 385_814_752, 224, 32, 1280, 7},
	}
	for _, tt := range tests {
		out, stderr, err := runArchCmd(t, append(tt.args, "--json")...)
		if err != nil {
			t.Errorf("%s: %v (stderr %q)", tt.name, err, stderr)
			continue
		}
		var r struct {
			Params, FLOPs          int64
			Resolution, Stem, Head int
			Blocks, Timm           []string
			Layers                 []map[string]any
		}
		dec := json.NewDecoder(strings.NewReader(out))
		if err := dec.Decode(&r); err != nil {
			t.Errorf("%s: output is not JSON: %v\n%s", tt.name, err, out)
			continue
		}
		if dec.More() {
			t.Errorf("%s: more than one JSON value", tt.name)
		}
		if r.Params != tt.params || r.FLOPs != tt.flops || r.Resolution != tt.res || r.Stem != tt.stem || r.Head != tt.head || len(r.Blocks) != tt.blocks || len(r.Timm) != tt.blocks {
			t.Errorf("%s: params %d flops %d res %d stem %d head %d blocks %d timm %d; want %d %d %d %d %d %d",
				tt.name, r.Params, r.FLOPs, r.Resolution, r.Stem, r.Head, len(r.Blocks), len(r.Timm),
				tt.params, tt.flops, tt.res, tt.stem, tt.head, tt.blocks)
		}
		var sumP, sumF float64
		for _, l := range r.Layers {
			sumP += l["params"].(float64)
			sumF += l["flops"].(float64)
			if _, ok := l["name"].(string); !ok {
				t.Errorf("%s: layer without a name: %v", tt.name, l)
			}
		}
		if int64(sumP) != r.Params || int64(sumF) != r.FLOPs {
			t.Errorf("%s: layers sum to %v params %v flops, totals say %d and %d", tt.name, sumP, sumF, r.Params, r.FLOPs)
		}
	}
}

func candidateOf(t *testing.T, a space.Arch) string {
	t.Helper()
	c, err := space.DefaultSpace().Encode(a)
	if err != nil {
		t.Fatal(err)
	}
	return c.String()
}

func TestArchScaled(t *testing.T) {
	// B0's blocks scaled like B3 are B3, apart from dropout (not counted).
	b3, _ := space.Preset("efficientnet-b3")
	out, _, err := runArchCmd(t, "--blocks", b0Blocks, "--width", "1.2", "--depth", "1.4", "--res", "300", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var r struct{ Params, FLOPs int64 }
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if r.Params != b3.Params() || r.FLOPs != b3.FLOPs() {
		t.Errorf("B0 blocks scaled to B3: %d params %d flops, want %d and %d", r.Params, r.FLOPs, b3.Params(), b3.FLOPs())
	}
	// --model with --width on top multiplies the model's own width.
	out, _, err = runArchCmd(t, "--model", "efficientnet-b0", "--width", "1.2", "--depth", "1.4", "--res", "300", "--json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.FLOPs != b3.FLOPs() {
		t.Errorf("b0 scaled on top: %d flops, %v; want %d", r.FLOPs, err, b3.FLOPs())
	}
}

func TestArchTable(t *testing.T) {
	out, _, err := runArchCmd(t, "--model", "efficientnet-b0")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"efficientnet-b0: 3x224x224 input, 1000 classes, stem 32, head 1280",
		"blocks: " + b0Blocks,
		"timm:   ds_r1_k3_s1_e1_c16_se0.25 ir_r2_k3_s2_e6_c24_se0.25",
		"blocks.3.1.expand",
		"5,288,548    385,814,752",
		"5.29M params, 0.386B multiply-adds",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table has no %q:\n%s", want, out)
		}
	}
	// Columns line up: every layer row is as wide as the header.
	var width int
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "blocks.") && strings.Contains(line, "x") {
			if width == 0 {
				width = len(line)
			} else if len(line) != width {
				t.Errorf("ragged table row %q (want width %d)", line, width)
				break
			}
		}
	}
}

func TestArchCandidateSpaceFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "space.json")
	if err := os.WriteFile(path, space.DefaultSpace().JSON(), 0o644); err != nil {
		t.Fatal(err)
	}
	c := candidateOf(t, space.B0())
	out, _, err := runArchCmd(t, "--space", path, "--candidate", c, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		FLOPs     int64
		Candidate string
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.FLOPs != 385_814_752 || r.Candidate != c {
		t.Errorf("--space --candidate: %+v, %v", r, err)
	}
	// A space's own resolution, channels and classes hold unless overridden.
	tiny := filepath.Join(dir, "tiny.json")
	if err := os.WriteFile(tiny, []byte(`{"name": "tiny", "in_channels": 1, "resolution": 28, "classes": 10, "stem": 16, "head": 64,
		"activation": "relu", "choices": {"ops": ["mbconv6"], "kernels": [3], "se": [0], "skip": [true]},
		"stages": [{"stride": 2, "choices": {"filters": [16, 24], "layers": [1, 2]}}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	var tr struct {
		Resolution, Classes int
		InChannels          int `json:"in_channels"`
		Blocks              []string
	}
	out, _, err = runArchCmd(t, "--space", tiny, "--candidate", "0,0,0,0,1,1", "--json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(out), &tr); err != nil || tr.Resolution != 28 || tr.InChannels != 1 || tr.Classes != 10 ||
		len(tr.Blocks) != 1 || tr.Blocks[0] != "r2_k3_s22_e6_i16_o24" {
		t.Errorf("tiny space candidate: %+v, %v", tr, err)
	}
	out, _, err = runArchCmd(t, "--space", tiny, "--candidate", "0,0,0,0,1,1", "--res", "32", "--classes", "100", "--json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(out), &tr); err != nil || tr.Resolution != 32 || tr.Classes != 100 || tr.InChannels != 1 {
		t.Errorf("tiny space candidate with overrides: %+v, %v", tr, err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"stages": []}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runArchCmd(t, "--space", bad, "--candidate", c); err == nil || !strings.Contains(err.Error(), "stages: none given") {
		t.Errorf("bad space file: %v", err)
	}
	if _, _, err := runArchCmd(t, "--space", filepath.Join(dir, "missing.json"), "--candidate", c); err == nil || !strings.Contains(err.Error(), "--space") {
		t.Errorf("missing space file: %v", err)
	}
}

func TestArchErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"stride s33", []string{"--blocks", "r1_k3_s11_e1_i32_o16 r2_k3_s33_e6_i16_o24"}, `--blocks: block 1 "r2_k3_s33_e6_i16_o24": stride "s33": must be s11 or s22`},
		{"zero repeats", []string{"--blocks", "r0_k3_s11_e1_i32_o16"}, `block 0 "r0_k3_s11_e1_i32_o16": repeats 0: must be at least 1`},
		{"unknown token", []string{"--blocks", "r1_k3_s11_e1_i32_o16_x5"}, `unknown token "x5"`},
		{"chain", []string{"--blocks", "r1_k3_s11_e1_i32_o16 r1_k3_s11_e6_i24_o24"}, `--blocks: block 1 ("r1_k3_s11_e6_i24_o24"): input filters 24: must equal block 0's output filters 16`},
		{"stem chain", []string{"--blocks", "r1_k3_s11_e1_i32_o16", "--stem", "40"}, `input filters 32: must equal the stem's output filters 40`},
		{"empty blocks", []string{"--blocks", ""}, `--blocks: no block strings`},
		{"timm", []string{"--timm", "--blocks", "ir_r1_k3_s3_e6_c16"}, `stride "s3": must be s1 or s2`},
		{"negative width", []string{"--model", "efficientnet-b0", "--width", "-1"}, `--width -1: must be above 0`},
		{"zero depth", []string{"--blocks", b0Blocks, "--depth", "0"}, `--depth 0: must be above 0`},
		{"NaN width", []string{"--blocks", b0Blocks, "--width", "NaN"}, `--width NaN`},
		{"resolution 0", []string{"--blocks", b0Blocks, "--res", "0"}, `--res 0: must be 1 to 4096`},
		{"resolution 0 model", []string{"--model", "efficientnet-b2", "--res", "0"}, `--res 0: must be 1 to 4096`},
		{"classes", []string{"--blocks", b0Blocks, "--classes", "0"}, `--classes 0`},
		{"in-ch", []string{"--blocks", b0Blocks, "--in-ch", "-3"}, `--in-ch -3`},
		{"head", []string{"--blocks", b0Blocks, "--head", "0"}, `--head 0`},
		{"unknown model", []string{"--model", "efficientnet-b9"}, `--model: unknown model "efficientnet-b9": want one of efficientnet-b0,`},
		{"both", []string{"--model", "efficientnet-b0", "--blocks", b0Blocks}, `give only one`},
		{"none", []string{"--json"}, `give the network with --blocks`},
		{"stem with model", []string{"--model", "efficientnet-b0", "--stem", "40"}, `--stem and --head apply to --blocks only`},
		{"space without candidate", []string{"--model", "efficientnet-b0", "--space", "x.json"}, `--space is read only with --candidate`},
		{"timm without blocks", []string{"--model", "efficientnet-b0", "--timm"}, `--timm describes --blocks`},
		{"bad candidate", []string{"--candidate", "1,x"}, `--candidate: candidate "1,x": index 1 ("x")`},
		{"short candidate", []string{"--candidate", "0,1"}, `--candidate: candidate has 2 indices, the space "mnasnet-b0" has 42 dimensions`},
		{"bad flag value", []string{"--res", "abc"}, `invalid value "abc" for flag -res`},
		{"unknown flag", []string{"--resolution", "224"}, `flag provided but not defined: -resolution`},
		{"stray argument", []string{"--model", "efficientnet-b0", "extra"}, `unexpected argument "extra"`},
		{"too big", []string{"--model", "efficientnet-b7", "--width", "16", "--depth", "16"}, `--model efficientnet-b7 scaled by --width/--depth: `},
	}
	for _, tt := range tests {
		out, _, err := runArchCmd(t, tt.args...)
		if err == nil {
			t.Errorf("%s: succeeded, want an error containing %q; output:\n%s", tt.name, tt.want, out)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %q, want it to contain %q", tt.name, err, tt.want)
		}
		var u *usageError
		if !errors.As(err, &u) {
			t.Errorf("%s: %v is not a usage error (exit status 2)", tt.name, err)
		}
		if out != "" {
			t.Errorf("%s: printed %q on stdout despite the error", tt.name, out)
		}
	}
}

func TestArchHelp(t *testing.T) {
	_, stderr, err := runArchCmd(t, "-h")
	if !errors.Is(err, errSilent) || !strings.Contains(stderr, "-blocks") || !strings.Contains(stderr, "efficientnet-b7") {
		t.Errorf("-h: %v, %q", err, stderr)
	}
}
