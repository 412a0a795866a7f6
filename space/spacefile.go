package space

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// This file reads the MnasNet factorized hierarchical search space: a fixed
// skeleton of stages (base filters, base repeats, stride), and for each
// stage independently a choice of op, kernel, squeeze-excite ratio, skip,
// output filters (base filters times a multiplier, rounded with
// RoundFilters) and layers (base repeats plus a delta, at least 1).
//
// A space is described by a JSON file (see default_space.json):
//
//	{
//	  "name": "mnasnet-b0",
//	  "in_channels": 3, "resolution": 224, "classes": 1000,
//	  "stem": 32, "head": 1280,
//	  "activation": "swish", "dropout": 0.2, "drop_connect": 0.2,
//	  "choices": {                      // every stage's, unless it gives its own
//	    "ops": ["conv", "sepconv", "mbconv3", "mbconv6"],
//	    "kernels": [3, 5],
//	    "se": [0, 0.25],
//	    "skip": [true, false],
//	    "filter_multipliers": [0.75, 1.0, 1.25],
//	    "layer_deltas": [-1, 0, 1]
//	  },
//	  "stages": [
//	    {"filters": 16, "repeats": 1, "stride": 1, "choices": {"ops": ["sepconv", "mbconv6"]}},
//	    ...
//	  ]
//	}
//
// Ops are "conv" (a regular conv), "sepconv" (a depthwise-separable conv;
// "mbconv1" is accepted as another name for it) and "mbconv<e>" for an
// expansion e of 2 to 32. Multipliers that round to the same filter count,
// and deltas that clamp to the same layer count, are one option. A stage may
// instead list its options outright in its own choices, as "filters":
// [144, 160, 192] and "layers": [2, 3]; then its base filters or repeats are
// not needed. The canonical form (JSON, Hash) is this explicit one.

//go:embed default_space.json
var defaultSpaceJSON []byte

// DefaultSpace returns the MnasNet space around EfficientNet-B0's skeleton
// (default_space.json): 7 stages with ops conv, sepconv, mbconv3, mbconv6;
// kernels 3, 5; SE 0, 0.25; skip on, off; filters x0.75, x1, x1.25; layers
// -1, 0, +1. B0 and a MnasNet-A1-like network are members.
func DefaultSpace() *Space {
	s, err := ParseSpace(defaultSpaceJSON)
	if err != nil {
		panic("space: default_space.json: " + err.Error())
	}
	return s
}

// spaceFile is the JSON form of a space.
type spaceFile struct {
	Name        string       `json:"name"`
	InChannels  int          `json:"in_channels"`
	Resolution  int          `json:"resolution"`
	Classes     int          `json:"classes"`
	Stem        int          `json:"stem"`
	Head        int          `json:"head"`
	Activation  string       `json:"activation"`
	Dropout     float64      `json:"dropout"`
	DropConnect float64      `json:"drop_connect"`
	Choices     *choicesFile `json:"choices,omitempty"`
	Stages      []stageFile  `json:"stages"`
}

type choicesFile struct {
	Ops               []string  `json:"ops,omitempty"`
	Kernels           []int     `json:"kernels,omitempty"`
	SE                []float64 `json:"se,omitempty"`
	Skip              []bool    `json:"skip,omitempty"`
	FilterMultipliers []float64 `json:"filter_multipliers,omitempty"`
	LayerDeltas       []int     `json:"layer_deltas,omitempty"`
	// Filters and Layers list a stage's options outright, instead of
	// multipliers of its base filters and deltas of its base repeats; only
	// in a stage's own choices.
	Filters []int `json:"filters,omitempty"`
	Layers  []int `json:"layers,omitempty"`
}

type stageFile struct {
	Filters int          `json:"filters,omitempty"` // base filters, for filter_multipliers
	Repeats int          `json:"repeats,omitempty"` // base repeats, for layer_deltas
	Stride  int          `json:"stride"`
	Choices *choicesFile `json:"choices,omitempty"`
}

// opChoice is one op option of a stage.
type opChoice struct {
	op     Op
	expand int
}

func (o opChoice) String() string {
	if o.op == OpMBConv {
		return "mbconv" + strconv.Itoa(o.expand)
	}
	return o.op.String()
}

// ParseSpace parses and validates a search space's JSON. Errors name the
// field, e.g. `stage 2: ops: unknown op "mbconv"`. Unknown fields are errors.
func ParseSpace(data []byte) (*Space, error) {
	var f spaceFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("search space: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("search space: data after the JSON object")
	}
	s, err := newSpace(f)
	if err != nil {
		return nil, fmt.Errorf("search space: %w", err)
	}
	return s, nil
}

func newSpace(f spaceFile) (*Space, error) {
	if len(f.Stages) == 0 {
		return nil, invalidf("stages: none given: want a list of {\"filters\", \"repeats\", \"stride\"}")
	}
	if len(f.Stages) > MaxBlocks {
		return nil, invalidf("stages: %d given, at most %d are supported", len(f.Stages), MaxBlocks)
	}
	top := choicesFile{}
	if f.Choices != nil {
		top = *f.Choices
	}
	if top.Filters != nil || top.Layers != nil {
		return nil, invalidf("choices: filters and layers list one stage's options: give them in a stage's choices, or use filter_multipliers and layer_deltas here")
	}
	s := &Space{}
	resolved := f
	resolved.Choices = nil
	resolved.Stages = make([]stageFile, len(f.Stages))
	for i, sf := range f.Stages {
		st, rc, err := resolveStage(sf, top)
		if err != nil {
			return nil, fmt.Errorf("stage %d: %w", i, err)
		}
		resolved.Stages[i] = stageFile{Stride: sf.Stride, Choices: &rc}
		s.stages = append(s.stages, st)
	}
	s.file = resolved
	if err := s.arch(func(stage) Block { return Block{} }).validateSettings(); err != nil {
		return nil, err
	}
	// Check the largest member, which bounds the counts of all others (Decode
	// validates every network it returns too).
	if err := s.largest().Validate(); err != nil {
		return nil, fmt.Errorf("largest network of the space: %w", err)
	}
	for i, st := range s.stages {
		name := fmt.Sprintf("stage%d.", i)
		s.dims = append(s.dims,
			Dim{name + "op", mapStrings(st.ops, opChoice.String)},
			Dim{name + "kernel", mapStrings(st.kernels, strconv.Itoa)},
			Dim{name + "se", mapStrings(st.se, formatRatio)},
			Dim{name + "skip", mapStrings(st.skip, func(b bool) string {
				if b {
					return "skip"
				}
				return "noskip"
			})},
			Dim{name + "filters", mapStrings(st.filters, strconv.Itoa)},
			Dim{name + "layers", mapStrings(st.layers, strconv.Itoa)},
		)
	}
	js, err := json.Marshal(s.file)
	if err != nil {
		return nil, fmt.Errorf("encode canonical JSON: %w", err)
	}
	s.json = js
	return s, nil
}

func mapStrings[T any](xs []T, f func(T) string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return out
}

// resolveStage fills a stage's missing choices from top and checks them. The
// returned choices are canonical: ops by their canonical names, and filters
// and layers as explicit sorted lists.
func resolveStage(sf stageFile, top choicesFile) (stage, choicesFile, error) {
	c := top
	var own choicesFile
	if sf.Choices != nil {
		own = *sf.Choices
		c.Ops = cmpOrSlice(own.Ops, c.Ops)
		c.Kernels = cmpOrSlice(own.Kernels, c.Kernels)
		c.SE = cmpOrSlice(own.SE, c.SE)
		c.Skip = cmpOrSlice(own.Skip, c.Skip)
		c.FilterMultipliers = cmpOrSlice(own.FilterMultipliers, c.FilterMultipliers)
		c.LayerDeltas = cmpOrSlice(own.LayerDeltas, c.LayerDeltas)
		c.Filters, c.Layers = own.Filters, own.Layers
	}
	st := stage{stride: sf.Stride}
	if sf.Stride != 1 && sf.Stride != 2 {
		return st, c, invalidf("stride %d: must be 1 or 2", sf.Stride)
	}
	if own.Filters != nil && own.FilterMultipliers != nil {
		return st, c, invalidf("choices: give filters or filter_multipliers, not both")
	}
	if own.Layers != nil && own.LayerDeltas != nil {
		return st, c, invalidf("choices: give layers or layer_deltas, not both")
	}
	for _, l := range []struct {
		name string
		n    int
	}{{"ops", len(c.Ops)}, {"kernels", len(c.Kernels)}, {"se", len(c.SE)}, {"skip", len(c.Skip)}} {
		if l.n == 0 {
			return st, c, invalidf("%s: empty choice list: give at least one option here or in the top-level choices", l.name)
		}
	}
	norm := make([]string, 0, len(c.Ops))
	for _, name := range c.Ops {
		o, err := parseOpChoice(name)
		if err != nil {
			return st, c, fmt.Errorf("ops: %w", err)
		}
		if slices.Contains(st.ops, o) {
			return st, c, invalidf("ops: %q: %s given twice (mbconv1 is sepconv)", name, o)
		}
		st.ops = append(st.ops, o)
		norm = append(norm, o.String())
	}
	c.Ops = norm
	for _, k := range c.Kernels {
		if k < 1 || k > MaxKernel || k%2 == 0 {
			return st, c, invalidf("kernels: %d: must be odd, 1 to %d (usually 3 or 5)", k, MaxKernel)
		}
		if slices.Contains(st.kernels, k) {
			return st, c, invalidf("kernels: %d given twice", k)
		}
		st.kernels = append(st.kernels, k)
	}
	for _, r := range c.SE {
		if math.IsNaN(r) || r < 0 || r > 1 {
			return st, c, invalidf("se: %v: must be 0 (no SE) to 1", r)
		}
		if slices.Contains(st.se, r) {
			return st, c, invalidf("se: %v given twice", r)
		}
		st.se = append(st.se, r)
	}
	for _, b := range c.Skip {
		if slices.Contains(st.skip, b) {
			return st, c, invalidf("skip: %v given twice", b)
		}
		st.skip = append(st.skip, b)
	}
	var err error
	if st.filters, err = stageFilters(sf, c); err != nil {
		return st, c, err
	}
	if st.layers, err = stageLayers(sf, c); err != nil {
		return st, c, err
	}
	c.Filters, c.Layers = st.filters, st.layers
	c.FilterMultipliers, c.LayerDeltas = nil, nil
	return st, c, nil
}

// stageFilters returns a stage's filter options, ascending: its explicit
// list, or its base filters times each multiplier through RoundFilters.
func stageFilters(sf stageFile, c choicesFile) ([]int, error) {
	var out []int
	if c.Filters != nil {
		for _, n := range c.Filters {
			if n < 1 || n > MaxFilters {
				return nil, invalidf("filters: %d: must be 1 to %d", n, MaxFilters)
			}
			if slices.Contains(out, n) {
				return nil, invalidf("filters: %d given twice", n)
			}
			out = append(out, n)
		}
	} else {
		if len(c.FilterMultipliers) == 0 {
			return nil, invalidf("filter_multipliers: empty choice list: give multipliers of the stage's filters here or in the top-level choices, or the stage's own list of filters")
		}
		if sf.Filters < 1 || sf.Filters > MaxFilters {
			return nil, invalidf("filters %d: must be 1 to %d (the stage's base filters, which filter_multipliers scale)", sf.Filters, MaxFilters)
		}
		for _, m := range c.FilterMultipliers {
			if math.IsNaN(m) || m <= 0 || m > 16 {
				return nil, invalidf("filter_multipliers: %v: must be above 0 and at most 16", m)
			}
			n := RoundFilters(sf.Filters, m)
			if n > MaxFilters {
				return nil, invalidf("filter_multipliers: %v: %d x %v gives %d filters, more than %d", m, sf.Filters, m, n, MaxFilters)
			}
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	if len(out) == 0 {
		return nil, invalidf("filters: empty choice list: give at least one filter count")
	}
	slices.Sort(out)
	return out, nil
}

// stageLayers returns a stage's layer options, ascending: its explicit
// list, or its base repeats plus each delta (at least 1).
func stageLayers(sf stageFile, c choicesFile) ([]int, error) {
	var out []int
	if c.Layers != nil {
		for _, n := range c.Layers {
			if n < 1 || n > MaxRepeats {
				return nil, invalidf("layers: %d: must be 1 to %d", n, MaxRepeats)
			}
			if slices.Contains(out, n) {
				return nil, invalidf("layers: %d given twice", n)
			}
			out = append(out, n)
		}
	} else {
		if len(c.LayerDeltas) == 0 {
			return nil, invalidf("layer_deltas: empty choice list: give deltas of the stage's repeats here or in the top-level choices, or the stage's own list of layers")
		}
		if sf.Repeats < 1 || sf.Repeats > MaxRepeats {
			return nil, invalidf("repeats %d: must be 1 to %d (the stage's base repeats, to which layer_deltas add)", sf.Repeats, MaxRepeats)
		}
		for _, d := range c.LayerDeltas {
			if d < -MaxRepeats || d > MaxRepeats {
				return nil, invalidf("layer_deltas: %d: must be -%d to %d", d, MaxRepeats, MaxRepeats)
			}
			n := max(1, sf.Repeats+d)
			if n > MaxRepeats {
				return nil, invalidf("layer_deltas: %d: %d + %d layers is more than %d", d, sf.Repeats, d, MaxRepeats)
			}
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	if len(out) == 0 {
		return nil, invalidf("layers: empty choice list: give at least one layer count")
	}
	slices.Sort(out)
	return out, nil
}

// cmpOrSlice returns a unless it is nil (absent from the JSON; an explicit
// [] is kept and reported as an empty choice list).
func cmpOrSlice[T any](a, b []T) []T {
	if a != nil {
		return a
	}
	return b
}

func parseOpChoice(name string) (opChoice, error) {
	switch name {
	case "conv":
		return opChoice{OpConv, 1}, nil
	case "sepconv", "mbconv1":
		return opChoice{OpSepConv, 1}, nil
	}
	if rest, ok := strings.CutPrefix(name, "mbconv"); ok {
		if e, err := strconv.Atoi(rest); err == nil && e >= 2 && e <= MaxExpand && strconv.Itoa(e) == rest {
			return opChoice{OpMBConv, e}, nil
		}
	}
	return opChoice{}, invalidf("unknown op %q: want conv, sepconv or mbconv<e> with e from 1 to %d (e.g. mbconv6)", name, MaxExpand)
}
