package space

import (
	"fmt"
	"math"
	"strings"
)

// Limits on the fields of a Block and an Arch. They are far above anything
// EfficientNet-B7 needs and keep every count well inside an int64.
const (
	MaxRepeats    = 64
	MaxKernel     = 15
	MaxExpand     = 32
	MaxFilters    = 16384
	MaxBlocks     = 32
	MaxResolution = 4096
	MaxInChannels = 64
	MaxClasses    = 1 << 20
)

// invalidError is a validation failure; errors.Is(err, ErrInvalid) holds.
type invalidError struct{ msg string }

func (e *invalidError) Error() string        { return e.msg }
func (e *invalidError) Is(target error) bool { return target == ErrInvalid }

func invalidf(format string, args ...any) error {
	return &invalidError{msg: fmt.Sprintf(format, args...)}
}

// Validate reports the first field of b that is out of range, naming the
// field, its value and what would be right, e.g. "repeats 0: must be at least 1".
// The error satisfies errors.Is(err, ErrInvalid).
func (b Block) Validate() error {
	if err := b.validateShape(); err != nil {
		return err
	}
	if b.In < 1 || b.In > MaxFilters {
		return invalidf("input filters %d: must be 1 to %d", b.In, MaxFilters)
	}
	return nil
}

// validateShape checks every field except the input filters, which a timm
// block string does not carry.
func (b Block) validateShape() error {
	switch b.Op {
	case OpMBConv:
		if b.Expand == 1 {
			return invalidf("op mbconv with expansion 1: an MBConv with expansion 1 is a sepconv; use OpSepConv")
		}
		if b.Expand < 2 || b.Expand > MaxExpand {
			return invalidf("expansion %d: an mbconv's expansion must be 2 to %d", b.Expand, MaxExpand)
		}
	case OpSepConv, OpConv:
		if b.Expand != 1 {
			return invalidf("expansion %d: a %s has expansion 1", b.Expand, b.Op)
		}
	default:
		return invalidf("op %d: must be mbconv (%d), sepconv (%d) or conv (%d)", int(b.Op), OpMBConv, OpSepConv, OpConv)
	}
	if b.Repeats < 1 || b.Repeats > MaxRepeats {
		return invalidf("repeats %d: must be at least 1 (and at most %d)", b.Repeats, MaxRepeats)
	}
	if b.Kernel < 1 || b.Kernel > MaxKernel || b.Kernel%2 == 0 {
		return invalidf("kernel %d: must be odd, 1 to %d (usually 3 or 5)", b.Kernel, MaxKernel)
	}
	if b.Stride != 1 && b.Stride != 2 {
		return invalidf("stride %d: must be 1 or 2", b.Stride)
	}
	if b.Out < 1 || b.Out > MaxFilters {
		return invalidf("output filters %d: must be 1 to %d", b.Out, MaxFilters)
	}
	if math.IsNaN(b.SE) || b.SE < 0 || b.SE > 1 {
		return invalidf("squeeze-excite ratio %v: must be 0 (no SE) to 1", b.SE)
	}
	return nil
}

// Validate reports the first thing wrong with a: a field out of range, a bad
// block (named by index and block string, e.g.
// `block 3 ("r0_k3_s11_e6_i40_o80"): repeats 0: must be at least 1`), or
// blocks that do not chain (a block's input filters must equal the previous
// block's output filters, the first block's the stem's). The error satisfies
// errors.Is(err, ErrInvalid).
func (a Arch) Validate() error {
	if err := a.validateSettings(); err != nil {
		return err
	}
	return a.validateBlocks()
}

// validateSettings checks every field except the blocks.
func (a Arch) validateSettings() error {
	switch {
	case a.InChannels < 1 || a.InChannels > MaxInChannels:
		return invalidf("input channels %d: must be 1 to %d (3 for RGB)", a.InChannels, MaxInChannels)
	case a.Resolution < 1 || a.Resolution > MaxResolution:
		return invalidf("resolution %d: must be 1 to %d (224 for B0)", a.Resolution, MaxResolution)
	case a.Classes < 1 || a.Classes > MaxClasses:
		return invalidf("classes %d: must be 1 to %d", a.Classes, MaxClasses)
	case a.Stem < 1 || a.Stem > MaxFilters:
		return invalidf("stem filters %d: must be 1 to %d (32 for B0)", a.Stem, MaxFilters)
	case a.Head < 1 || a.Head > MaxFilters:
		return invalidf("head filters %d: must be 1 to %d (1280 for B0)", a.Head, MaxFilters)
	case a.Activation != "swish" && a.Activation != "relu":
		return invalidf("activation %q: must be swish or relu", a.Activation)
	case math.IsNaN(a.Dropout) || a.Dropout < 0 || a.Dropout >= 1:
		return invalidf("dropout %v: must be at least 0 and below 1", a.Dropout)
	case math.IsNaN(a.DropConnect) || a.DropConnect < 0 || a.DropConnect >= 1:
		return invalidf("drop-connect %v: must be at least 0 and below 1", a.DropConnect)
	}
	return nil
}

// validateBlocks checks the blocks, their chaining and the size of the counts.
func (a Arch) validateBlocks() error {
	switch {
	case len(a.Blocks) == 0:
		return invalidf("no blocks: an architecture needs at least one block")
	case len(a.Blocks) > MaxBlocks:
		return invalidf("%d blocks: at most %d are supported", len(a.Blocks), MaxBlocks)
	}
	prev, prevName := a.Stem, "the stem's"
	for i, b := range a.Blocks {
		if err := b.Validate(); err != nil {
			return invalidf("block %d (%q): %v", i, b.String(), err)
		}
		if b.In != prev {
			return invalidf("block %d (%q): input filters %d: must equal %s output filters %d", i, b.String(), b.In, prevName, prev)
		}
		prev, prevName = b.Out, fmt.Sprintf("block %d's", i)
	}
	if f := a.flopsFloat(); f > 1<<62 {
		return invalidf("%.3g multiply-adds: too large to count (at most 2^62)", f)
	}
	return nil
}

// Equal reports whether a and b describe the same network with the same
// settings (Arch holds a slice, so == does not compile).
func (a Arch) Equal(b Arch) bool {
	if len(a.Blocks) != len(b.Blocks) {
		return false
	}
	for i := range a.Blocks {
		if a.Blocks[i] != b.Blocks[i] {
			return false
		}
	}
	return a.InChannels == b.InChannels && a.Resolution == b.Resolution &&
		a.Classes == b.Classes && a.Stem == b.Stem && a.Head == b.Head &&
		a.Activation == b.Activation && a.Dropout == b.Dropout && a.DropConnect == b.DropConnect
}

// Clone returns a copy of a that shares no memory with it.
func (a Arch) Clone() Arch {
	a.Blocks = append([]Block(nil), a.Blocks...)
	return a
}

// String returns the blocks as TF block strings separated by spaces, with the
// stem, head and resolution, e.g. "stem32 r1_k3_s11_e1_i32_o16_se0.25 ... head1280 @224".
func (a Arch) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "stem%d", a.Stem)
	for _, b := range a.Blocks {
		sb.WriteByte(' ')
		sb.WriteString(b.String())
	}
	fmt.Fprintf(&sb, " head%d @%d", a.Head, a.Resolution)
	return sb.String()
}
