package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/effnas/effnas/export"
	"github.com/effnas/effnas/space"
)

func init() {
	register("arch", "count the parameters and multiply-adds of a network (block strings, a preset or a candidate)", runArch)
}

// archFlags are the flags of effnas arch.
type archFlags struct {
	blocks, model, spaceFile, candidate string
	timm, json                          bool
	stem, head, res, classes, inCh      int
	width, depth                        float64
}

// archReport is the --json output of effnas arch.
type archReport struct {
	Name       string        `json:"name,omitempty"`
	Params     int64         `json:"params"`
	FLOPs      int64         `json:"flops"` // multiply-adds
	Resolution int           `json:"resolution"`
	InChannels int           `json:"in_channels"`
	Classes    int           `json:"classes"`
	Stem       int           `json:"stem"`
	Head       int           `json:"head"`
	Blocks     []string      `json:"blocks"`
	Timm       []string      `json:"timm"`
	Candidate  string        `json:"candidate,omitempty"`
	Layers     []space.Layer `json:"layers"`
	Arch       space.Arch    `json:"arch"`
}

func runArch(_ context.Context, env *Env, args []string) error {
	fs := newFlagSet("arch", env.Stderr)
	var f archFlags
	fs.StringVar(&f.blocks, "blocks", "", "TF block strings separated by spaces or commas, e.g. \"r1_k3_s11_e1_i32_o16_se0.25 r2_k3_s22_e6_i16_o24_se0.25\"")
	fs.BoolVar(&f.timm, "timm", false, "--blocks are in timm's dialect (e.g. ds_r1_k3_s1_e1_c16_se0.25), input filters chained from --stem")
	fs.StringVar(&f.model, "model", "", "a released model instead of --blocks: "+strings.Join(space.PresetNames(), ", "))
	fs.StringVar(&f.spaceFile, "space", "", "search-space JSON file for --candidate (default: the built-in MnasNet space)")
	fs.StringVar(&f.candidate, "candidate", "", "a candidate of the search space instead of --blocks: option indices separated by commas")
	fs.IntVar(&f.stem, "stem", 32, "stem filters (with --blocks)")
	fs.IntVar(&f.head, "head", 1280, "head filters (with --blocks)")
	fs.Float64Var(&f.width, "width", 1.0, "width multiplier: every filter count goes through round_filters (1 leaves --blocks as written)")
	fs.Float64Var(&f.depth, "depth", 1.0, "depth multiplier: every block's repeats become ceil(depth*repeats)")
	fs.IntVar(&f.res, "res", 224, "input resolution; a --model or --candidate keeps its own unless this is given")
	fs.IntVar(&f.classes, "classes", 1000, "classifier outputs; a --model or --candidate keeps its own unless this is given")
	fs.IntVar(&f.inCh, "in-ch", 3, "input channels; a --model or --candidate keeps its own unless this is given")
	fs.BoolVar(&f.json, "json", false, "print one JSON object instead of a table")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })

	name, a, cand, err := f.arch(set)
	if err != nil {
		return err
	}
	r := archReport{
		Name: name, Params: a.Params(), FLOPs: a.FLOPs(), Resolution: a.Resolution, InChannels: a.InChannels,
		Classes: a.Classes, Stem: a.Stem, Head: a.Head, Blocks: space.FormatBlocks(a.Blocks),
		Timm: space.FormatTimmBlocks(a.Blocks), Candidate: cand, Layers: a.Layers(), Arch: a,
	}
	if f.json {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	return printArchTable(env.Stdout, r)
}

// arch builds the network the flags describe and validates it; every error
// names the flag.
func (f *archFlags) arch(set map[string]bool) (name string, a space.Arch, cand string, err error) {
	sources := 0
	for _, s := range []string{"blocks", "model", "candidate"} {
		if set[s] {
			sources++
		}
	}
	switch {
	case sources == 0:
		return "", a, "", usagef("give the network with --blocks \"<block strings>\", --model efficientnet-b0..b7 or --candidate \"<indices>\"")
	case sources > 1:
		return "", a, "", usagef("--blocks, --model and --candidate are alternatives: give only one")
	case set["space"] && !set["candidate"]:
		return "", a, "", usagef("--space is read only with --candidate")
	case set["timm"] && !set["blocks"]:
		return "", a, "", usagef("--timm describes --blocks: give --blocks too")
	case !set["blocks"] && (set["stem"] || set["head"]):
		return "", a, "", usagef("--stem and --head apply to --blocks only (a --model or --candidate has its own)")
	}
	if err := f.check(); err != nil {
		return "", a, "", err
	}
	switch {
	case set["model"]:
		name = f.model
		if a, err = space.Preset(f.model); err != nil {
			return "", a, "", usagef("--model: %v", err)
		}
	case set["candidate"]:
		sp, err := loadSpace(f.spaceFile)
		if err != nil {
			return "", a, "", err
		}
		c, err := space.ParseCandidate(f.candidate)
		if err != nil {
			return "", a, "", usagef("--candidate: %v", err)
		}
		if a, err = sp.Decode(c); err != nil {
			return "", a, "", usagef("--candidate: %v", err)
		}
		name, cand = sp.Name()+" candidate", c.String()
	default:
		var blocks []space.Block
		if f.timm {
			blocks, err = space.ParseTimmBlocks([]string{f.blocks}, f.stem)
		} else {
			blocks, err = space.ParseBlocks(f.blocks)
		}
		if err != nil {
			return "", a, "", usagef("--blocks: %v", err)
		}
		a = space.Arch{InChannels: f.inCh, Resolution: f.res, Classes: f.classes, Stem: f.stem, Head: f.head,
			Activation: "swish", Dropout: 0.2, DropConnect: 0.2, Blocks: blocks}
	}
	if set["width"] || set["depth"] {
		w, d := f.width, f.depth
		if w == 1 {
			w = 0 // leave the filters exactly as given
		}
		a = a.Scale(w, d, 0)
	}
	// A model or candidate keeps its own settings unless a flag overrides them.
	if set["res"] {
		a.Resolution = f.res
	}
	if set["classes"] {
		a.Classes = f.classes
	}
	if set["in-ch"] {
		a.InChannels = f.inCh
	}
	if err := a.Validate(); err != nil {
		what := "--blocks"
		switch {
		case set["model"]:
			what = "--model " + f.model
		case set["candidate"]:
			what = "--candidate"
		}
		if set["width"] || set["depth"] {
			what += " scaled by --width/--depth"
		}
		return "", a, "", usagef("%s: %v", what, err)
	}
	return name, a, cand, nil
}

// check validates the numeric flags, naming the flag and the right range.
func (f *archFlags) check() error {
	for _, m := range []struct {
		name string
		v    float64
	}{{"width", f.width}, {"depth", f.depth}} {
		if math.IsNaN(m.v) || m.v <= 0 || m.v > 16 {
			return usagef("--%s %v: must be above 0 and at most 16 (1 keeps the network's size)", m.name, m.v)
		}
	}
	for _, n := range []struct {
		name   string
		v, max int
		eg     string
	}{
		{"res", f.res, space.MaxResolution, "224 for B0"},
		{"classes", f.classes, space.MaxClasses, "1000 for ImageNet"},
		{"in-ch", f.inCh, space.MaxInChannels, "3 for RGB"},
		{"stem", f.stem, space.MaxFilters, "32 for B0"},
		{"head", f.head, space.MaxFilters, "1280 for B0"},
	} {
		if n.v < 1 || n.v > n.max {
			return usagef("--%s %d: must be 1 to %d (%s)", n.name, n.v, n.max, n.eg)
		}
	}
	return nil
}

// loadSpace reads a search-space file, or returns the built-in space for "".
func loadSpace(path string) (*space.Space, error) {
	if path == "" {
		return space.DefaultSpace(), nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--space: %w", err)
	}
	sp, err := space.ParseSpace(data)
	if err != nil {
		return nil, usagef("--space %s: %v", path, err)
	}
	return sp, nil
}

func printArchTable(w io.Writer, r archReport) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	title := r.Name
	if title == "" {
		title = "network"
	}
	if r.Candidate != "" {
		title += " " + r.Candidate
	}
	fmt.Fprintf(w, "%s: %dx%dx%d input, %d classes, stem %d, head %d\n", title, r.InChannels, r.Resolution, r.Resolution, r.Classes, r.Stem, r.Head)
	fmt.Fprintf(w, "blocks: %s\n", strings.Join(r.Blocks, " "))
	fmt.Fprintf(w, "timm:   %s\n\n", strings.Join(r.Timm, " "))
	// The tabwriter right-aligns every column; pad the names to one width so
	// that they read left-aligned.
	nw := len("classifier")
	for _, l := range r.Layers {
		nw = max(nw, len(l.Name))
	}
	fmt.Fprintf(tw, "%-*s\toutput (CxHxW)\tparams\tmultiply-adds\t\n", nw, "layer")
	for _, l := range r.Layers {
		fmt.Fprintf(tw, "%-*s\t%dx%dx%d\t%s\t%s\t\n", nw, l.Name, l.OutShape[0], l.OutShape[1], l.OutShape[2], export.Commas(l.Params), export.Commas(l.MACs))
	}
	fmt.Fprintf(tw, "%-*s\t\t%s\t%s\t\n", nw, "total", export.Commas(r.Params), export.Commas(r.FLOPs))
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\n%.2fM params, %.3fB multiply-adds\n", float64(r.Params)/1e6, float64(r.FLOPs)/1e9)
	return err
}
