package space

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/big"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
)

// This file holds the Space type: its dimensions, candidates and the
// mapping between candidates and architectures. spacefile.go reads spaces.

// stage is a resolved stage: every option list, deduplicated, in file order
// (filters and layers ascending).
type stage struct {
	stride  int
	ops     []opChoice
	kernels []int
	se      []float64
	skip    []bool
	filters []int
	layers  []int
}

// Dimensions of a stage, in the order Dims lists them.
const (
	dimOp = iota
	dimKernel
	dimSE
	dimSkip
	dimFilters
	dimLayers
	dimsPerStage
)

// Offsets of a stage's dimensions within a Candidate (Dims's order: stage
// i's dimensions start at i x DimsPerStage), for callers that change one
// choice of a stage.
const (
	DimOp        = dimOp
	DimFilters   = dimFilters
	DimLayers    = dimLayers
	DimsPerStage = dimsPerStage
)

// Space is a parsed search space. It is immutable and safe for concurrent use.
type Space struct {
	file   spaceFile // resolved: every stage has all its choices, no top-level choices
	stages []stage
	dims   []Dim
	json   []byte // canonical JSON of file
}

// Dim is one categorical dimension of the space: a name such as
// "stage3.kernel" and its options as strings such as "3" and "5".
type Dim struct {
	Name    string   `json:"name"`
	Options []string `json:"options"`
}

// Candidate is a point of a space: one option index per dimension of Dims.
type Candidate []int

// String returns the indices joined by commas, e.g. "2,0,1,0,1,1,3,...",
// the form the effnas arch --candidate flag reads.
func (c Candidate) String() string {
	parts := make([]string, len(c))
	for i, x := range c {
		parts[i] = strconv.Itoa(x)
	}
	return strings.Join(parts, ",")
}

// ParseCandidate parses indices separated by commas or spaces (brackets
// ignored), e.g. "2,0,1,0,1,1" or "[2 0 1 0 1 1]".
func ParseCandidate(s string) (Candidate, error) {
	fields := splitList(s)
	if len(fields) == 0 {
		return nil, fmt.Errorf("candidate %q: no indices: want option indices separated by commas, e.g. 1,0,1,0,1,0", s)
	}
	c := make(Candidate, len(fields))
	for i, f := range fields {
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("candidate %q: index %d (%q): must be a whole number of at least 0", s, i, f)
		}
		c[i] = n
	}
	return c, nil
}

// arch builds the space's network with block(st) for every stage, chaining
// the input filters.
func (s *Space) arch(block func(stage) Block) Arch {
	f := s.file
	a := Arch{InChannels: f.InChannels, Resolution: f.Resolution, Classes: f.Classes, Stem: f.Stem, Head: f.Head,
		Activation: f.Activation, Dropout: f.Dropout, DropConnect: f.DropConnect, Blocks: make([]Block, len(s.stages))}
	in := f.Stem
	for i, st := range s.stages {
		b := block(st)
		b.In, in = in, b.Out
		a.Blocks[i] = b
	}
	return a
}

// largest returns the member with the most multiply-adds: the most filters
// and layers, the largest kernel and SE ratio in every stage, and in each
// stage the op that costs the most there. (Stages add independent terms to
// the count once their filters are fixed, so choosing each stage's op
// greedily finds the maximum.)
func (s *Space) largest() Arch {
	a := s.arch(func(st stage) Block {
		return Block{Op: st.ops[0].op, Expand: st.ops[0].expand, Repeats: slices.Max(st.layers), Kernel: slices.Max(st.kernels),
			Stride: st.stride, Out: slices.Max(st.filters), SE: slices.Max(st.se), Skip: true}
	})
	for i, st := range s.stages {
		b := &a.Blocks[i]
		best, bestOp := -1.0, st.ops[0]
		for _, o := range st.ops {
			b.Op, b.Expand = o.op, o.expand
			if f := a.flopsFloat(); f > best {
				best, bestOp = f, o
			}
		}
		b.Op, b.Expand = bestOp.op, bestOp.expand
	}
	return a
}

// Name returns the space's name from its file.
func (s *Space) Name() string { return s.file.Name }

// Dims returns the categorical dimensions in their fixed order: for each
// stage i, "stage<i>.op", ".kernel", ".se", ".skip", ".filters", ".layers".
// The caller must not modify the result.
func (s *Space) Dims() []Dim { return s.dims }

// Size returns the number of candidates (the product of the option counts).
func (s *Space) Size() *big.Int {
	n := big.NewInt(1)
	for _, d := range s.dims {
		n.Mul(n, big.NewInt(int64(len(d.Options))))
	}
	return n
}

// Validate reports whether c has one index per dimension, each in range.
func (s *Space) Validate(c Candidate) error {
	if len(c) != len(s.dims) {
		return fmt.Errorf("candidate has %d indices, the space %q has %d dimensions", len(c), s.file.Name, len(s.dims))
	}
	for i, x := range c {
		if x < 0 || x >= len(s.dims[i].Options) {
			return fmt.Errorf("candidate index %d (%s) is %d: must be 0 to %d (%s)", i, s.dims[i].Name, x,
				len(s.dims[i].Options)-1, strings.Join(s.dims[i].Options, ", "))
		}
	}
	return nil
}

// Sample draws a candidate uniformly at random from r.
func (s *Space) Sample(r *rand.Rand) Candidate {
	c := make(Candidate, len(s.dims))
	for i, d := range s.dims {
		c[i] = r.IntN(len(d.Options))
	}
	return c
}

// Decode returns the full-size network of c: the space's resolution, input
// channels, classes, stem, head and training settings, one block per stage.
func (s *Space) Decode(c Candidate) (Arch, error) {
	if err := s.Validate(c); err != nil {
		return Arch{}, err
	}
	i := 0
	a := s.arch(func(st stage) Block {
		d := c[i*dimsPerStage:]
		i++
		op := st.ops[d[dimOp]]
		return Block{Op: op.op, Expand: op.expand, Repeats: st.layers[d[dimLayers]], Kernel: st.kernels[d[dimKernel]],
			Stride: st.stride, Out: st.filters[d[dimFilters]], SE: st.se[d[dimSE]], Skip: st.skip[d[dimSkip]]}
	})
	if err := a.Validate(); err != nil {
		return Arch{}, fmt.Errorf("candidate %s: %w", c, err)
	}
	return a, nil
}

// Encode returns the candidate whose Decode has a's blocks, stem and head.
// The other fields of a (resolution, input channels, classes, activation,
// dropout, drop-connect) are training settings and are not checked. The
// error names the first block field that is not an option of the space.
func (s *Space) Encode(a Arch) (Candidate, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	f := s.file
	switch {
	case a.Stem != f.Stem:
		return nil, fmt.Errorf("stem %d is not in the space %q (its stem is %d)", a.Stem, f.Name, f.Stem)
	case a.Head != f.Head:
		return nil, fmt.Errorf("head %d is not in the space %q (its head is %d)", a.Head, f.Name, f.Head)
	case len(a.Blocks) != len(s.stages):
		return nil, fmt.Errorf("%d blocks: the space %q has %d stages", len(a.Blocks), f.Name, len(s.stages))
	}
	c := make(Candidate, 0, len(s.dims))
	for i, b := range a.Blocks {
		st := s.stages[i]
		if b.Stride != st.stride {
			return nil, fmt.Errorf("block %d (%q): stride %d: the space's stage %d has stride %d", i, b.String(), b.Stride, i, st.stride)
		}
		idx := []int{
			slices.Index(st.ops, opChoice{b.Op, b.Expand}),
			slices.Index(st.kernels, b.Kernel),
			slices.Index(st.se, b.SE),
			slices.Index(st.skip, b.Skip),
			slices.Index(st.filters, b.Out),
			slices.Index(st.layers, b.Repeats),
		}
		vals := []string{opChoice{b.Op, b.Expand}.String(), strconv.Itoa(b.Kernel), formatRatio(b.SE),
			map[bool]string{true: "skip", false: "noskip"}[b.Skip], strconv.Itoa(b.Out), strconv.Itoa(b.Repeats)}
		for j, x := range idx {
			if x < 0 {
				d := s.dims[i*dimsPerStage+j]
				return nil, fmt.Errorf("block %d (%q): %s %s is not an option of the space (%s)", i, b.String(), d.Name, vals[j], strings.Join(d.Options, ", "))
			}
		}
		c = append(c, idx...)
	}
	return c, nil
}

// Key returns a stable, unique, readable key for c: its blocks' TF strings
// joined by spaces. Two candidates have the same key exactly when they are
// the same network. An invalid candidate gets "invalid:" and its indices.
func (s *Space) Key(c Candidate) string {
	a, err := s.Decode(c)
	if err != nil {
		return "invalid:" + c.String()
	}
	return strings.Join(FormatBlocks(a.Blocks), " ")
}

// JSON returns the space's canonical JSON: every stage with all its choices
// spelled out, ops by their canonical names, and filters and layers as
// explicit ascending lists (no multipliers, deltas or base sizes).
// ParseSpace reads it back into the same space. The caller must not modify
// the result.
func (s *Space) JSON() []byte { return s.json }

// Hash returns the SHA-256 of JSON() in hex: two files describing the same
// space (choices given at the top or in every stage, multipliers or explicit
// filter counts, mbconv1 or sepconv) hash alike. Files that list options in
// a different order do not: the order fixes the candidates' indices.
func (s *Space) Hash() string {
	h := sha256.Sum256(s.json)
	return hex.EncodeToString(h[:])
}

// Bound returns the network every member of the space fits in: in each
// stage the most layers and filters, the largest kernel and
// squeeze-excite ratio, and the largest expansion ratio of its ops (the op
// is the one with that ratio; a supernet keeps each op's weights apart,
// so Bound's op says nothing about which ops are allowed). A supernet over
// the space is sized by it.
func (s *Space) Bound() Arch {
	return s.arch(func(st stage) Block {
		op := st.ops[0]
		for _, o := range st.ops {
			if o.expand > op.expand {
				op = o
			}
		}
		return Block{Op: op.op, Expand: op.expand, Repeats: slices.Max(st.layers), Kernel: slices.Max(st.kernels),
			Stride: st.stride, Out: slices.Max(st.filters), SE: slices.Max(st.se), Skip: true}
	})
}
