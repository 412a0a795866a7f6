package export

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/effnas/effnas/space"
)

var pngMagic = []byte("\x89PNG\r\n\x1a\n")

// fullReport builds the report of a search, a compound grid and a width
// series on its B0.
func fullReport(t *testing.T) *Report {
	t.Helper()
	ctx := t.Context()
	st, _ := openDB(t)
	sf := newSearch(ctx, t, st)
	newGrid(ctx, t, st, sf, "", true)
	newGrid(ctx, t, st, sf, "width", true)
	r, err := Build(ctx, st, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestTFSnippet(t *testing.T) {
	r := fullReport(t)
	py := string(r.TF())
	for _, b := range r.B0.Blocks {
		if !strings.Contains(py, "'"+b+"',") {
			t.Errorf("TF snippet lacks block %q", b)
		}
	}
	for _, want := range []string{
		"import efficientnet_builder",
		"blocks_args = [",
		"params_dict = {",
		"'efficientnet-b0': (1.0, 1.0, 224, 0.2),",
		// chosenPoint (1.4, 1, 1.2) at phi 1: width 1, depth 1.4, resolution round(224*1.2) = 269.
		"'efficientnet-b1': (1.0, 1.4, 269, 0.2),",
		// phi 7: depth 1.4^7 = 10.54135 (to 6 decimals), resolution round(224 * 1.2^7) = 803.
		"'efficientnet-b7': (1.0, 10.54135, 803, 0.5),",
		"def efficientnet_params(model_name):",
		"efficientnet_builder.efficientnet = efficientnet",
		"BlockDecoder().decode(blocks_args)",
	} {
		if !strings.Contains(py, want) {
			t.Errorf("TF snippet lacks %q:\n%s", want, py)
		}
	}
	if strings.Contains(py, "NOTE") {
		t.Errorf("B0 needs no warning, got:\n%s", py)
	}
}

func TestSnippetsWarnWhatTheyCannotBuild(t *testing.T) {
	a := space.B0()
	a.Blocks[1].Op, a.Blocks[1].Expand = space.OpConv, 1
	a.Stem, a.Classes, a.Activation = 24, 10, "relu"
	r := &Report{Arch: a}
	r.B0.Blocks, r.B0.Resolution = space.FormatBlocks(a.Blocks), a.Resolution
	py := string(r.TF())
	for _, want := range []string{"24-filter stem", "_conv are regular", "'num_classes': 10", "uses relu"} {
		if !strings.Contains(py, want) {
			t.Errorf("TF snippet lacks the warning %q:\n%s", want, py)
		}
	}
	r.B0.Timm = space.FormatTimmBlocks(a.Blocks)
	timm := string(r.Timm())
	for _, want := range []string{"stage 1 is a regular conv with squeeze-excite", "this B0 has 10 classes", "kwargs.setdefault('num_classes', 10)", "resolve_act_layer(kwargs, 'relu')", "stem_size=24,"} {
		if !strings.Contains(timm, want) {
			t.Errorf("timm snippet lacks %q:\n%s", want, timm)
		}
	}
}

func TestTimmSnippet(t *testing.T) {
	r := fullReport(t)
	py := string(r.Timm())
	for _, b := range r.B0.Timm {
		if !strings.Contains(py, "['"+b+"'],") {
			t.Errorf("timm snippet lacks arch_def entry %q", b)
		}
	}
	for _, want := range []string{
		"from timm.models._efficientnet_builder import decode_arch_def, resolve_act_layer, resolve_bn_args, round_channels",
		"from timm.models.efficientnet import EfficientNet",
		"block_args=decode_arch_def(arch_def, depth_multiplier),",
		"num_features=round_chs_fn(1280),",
		"stem_size=32,",
		"act_layer=resolve_act_layer(kwargs, 'swish'),",
		"return EfficientNet(**model_kwargs)",
		"def effnas_b0(**kwargs):",
		"return _gen_effnas(channel_multiplier=1.0, depth_multiplier=1.4, **kwargs)",
		"def effnas_b7(**kwargs):",
		"'effnas_b1': 269,",
	} {
		if !strings.Contains(py, want) {
			t.Errorf("timm snippet lacks %q:\n%s", want, py)
		}
	}
}

func TestMarkdownReport(t *testing.T) {
	r := fullReport(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "report.md")
	files, err := r.MarkdownFiles(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteFiles(files); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"report-search.png", "report-grid.png"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(data, pngMagic) || len(data) < 5000 {
			t.Errorf("%s: %d bytes starting %q; want a PNG with something drawn", name, len(data), data[:min(8, len(data))])
		}
	}
	md, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(md)
	for _, want := range []string{
		"## B0", "| blocks.0.0.dw | 32 × 112 × 112 |", "| **total** | | **5,288,548** | **385,814,752** |",
		"## Coefficients", "| 1.4 | 1 | 1.2 | 1 |",
		"## Family", "| B1 | 1.000 | 1.400 | 269 |", "| 1 | 1.1 | 240 |",
		"## Top trials", "## Pareto front", "## Grid", "**(chosen)**", "Scaling width alone",
		"](report-search.png)", "](report-grid.png)",
		r.B0.Blocks[6],
	} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 3 {
		t.Errorf("%d files in the directory, want the report and two plots (no temporary files)", len(entries))
	}
}

func TestMarkdownWithoutGridHasNoGridPlot(t *testing.T) {
	ctx := t.Context()
	st, _ := openDB(t)
	newSearch(ctx, t, st)
	r, err := Build(ctx, st, Options{})
	if err != nil {
		t.Fatal(err)
	}
	files, err := r.MarkdownFiles("out/r.md")
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range files {
		paths = append(paths, f.Path)
	}
	if strings.Join(paths, " ") != "out/r-search.png out/r.md" {
		t.Errorf("files %q; want the search plot and the report", paths)
	}
	if md := string(files[len(files)-1].Data); !strings.Contains(md, "the coefficients are the paper's") || strings.Contains(md, "-grid.png") {
		t.Errorf("report without a grid:\n%s", md)
	}
}

func TestWriteFiles(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.md"), filepath.Join(dir, "b.png")
	if err := os.WriteFile(a, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFiles([]File{{a, []byte("new a")}, {b, []byte("new b")}}); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{a: "new a", b: "new b"} {
		got, err := os.ReadFile(path)
		if err != nil || string(got) != want {
			t.Errorf("%s: %q, %v; want %q", path, got, err, want)
		}
		if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
			t.Errorf("%s: mode %v, want 0644", path, fi.Mode())
		}
	}
	// One file cannot be written (its directory would be inside a file):
	// none is, the old one is untouched and no temporary file is left.
	c := filepath.Join(dir, "a.md", "c.png")
	if err := WriteFiles([]File{{a, []byte("newer")}, {c, []byte("c")}}); err == nil || !strings.Contains(err.Error(), c) {
		t.Errorf("write under a file: %v, want an error naming %s", err, c)
	}
	if got, _ := os.ReadFile(a); string(got) != "new a" {
		t.Errorf("a failed write changed %s to %q", a, got)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("files left: %q, want a.md and b.png", names)
	}
}

func TestPyFloat(t *testing.T) {
	for v, want := range map[float64]string{1: "1.0", 1.1: "1.1", 1.331: "1.331", 2: "2.0", 0.25: "0.25", 10.54135: "10.54135"} {
		if got := pyFloat(v); got != want {
			t.Errorf("pyFloat(%v) = %q, want %q", v, got, want)
		}
	}
}

// TestWriteFilesMakesDirectory: export --out report/report.md on a fresh
// checkout creates report/.
func TestWriteFilesMakesDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "report", "deeper", "report.md")
	if err := WriteFile(path, []byte("# report")); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(path); err != nil || string(got) != "# report" {
		t.Fatalf("%s: %q, %v", path, got, err)
	}
}
