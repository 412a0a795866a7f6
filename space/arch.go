package space

import (
	"errors"
	"fmt"
)

// Op is the convolution operation of a block.
type Op int

const (
	// OpMBConv is the mobile inverted bottleneck: 1x1 expand (when the
	// expansion ratio is not 1), kxk depthwise, optional squeeze-excite,
	// 1x1 project.
	OpMBConv Op = iota
	// OpSepConv is the depthwise-separable convolution: kxk depthwise,
	// optional squeeze-excite, 1x1 project. It is an MBConv with expansion 1;
	// block strings write it with e1 (timm: ds).
	OpSepConv
	// OpConv is a regular kxk convolution followed by batch norm and the
	// activation (timm: cn). Its expansion ratio is always 1.
	OpConv
)

// String returns the op's name as used in JSON and the search-space file.
func (o Op) String() string {
	switch o {
	case OpMBConv:
		return "mbconv"
	case OpSepConv:
		return "sepconv"
	case OpConv:
		return "conv"
	}
	return fmt.Sprintf("Op(%d)", int(o))
}

// MarshalText writes the op's name, so an Arch's JSON reads "op": "mbconv".
func (o Op) MarshalText() ([]byte, error) {
	switch o {
	case OpMBConv, OpSepConv, OpConv:
		return []byte(o.String()), nil
	}
	return nil, fmt.Errorf("marshal %v: not an op", o)
}

// UnmarshalText reads an op's name: mbconv, sepconv or conv.
func (o *Op) UnmarshalText(text []byte) error {
	for _, op := range []Op{OpMBConv, OpSepConv, OpConv} {
		if string(text) == op.String() {
			*o = op
			return nil
		}
	}
	return fmt.Errorf("op %q: must be mbconv, sepconv or conv", text)
}

// Block is one stage of a network: a block spec repeated Repeats times. The
// first repeat has the stage's stride and input filters; the others have
// stride 1 and input filters equal to the output filters.
type Block struct {
	Op      Op      `json:"op"`
	Repeats int     `json:"repeats"`
	Kernel  int     `json:"kernel"`
	Stride  int     `json:"stride"`
	Expand  int     `json:"expand"` // expansion ratio; 1 for OpSepConv and OpConv
	In      int     `json:"in"`     // input filters
	Out     int     `json:"out"`    // output filters
	SE      float64 `json:"se"`     // squeeze-excite ratio of the input filters; 0 disables SE
	Skip    bool    `json:"skip"`   // identity skip when stride is 1 and In == Out
}

// Arch is a whole network: stem conv, stages of blocks, head 1x1 conv, global
// average pool, dropout and a fully connected classifier. It is a plain value.
type Arch struct {
	InChannels  int     `json:"in_channels"`  // input image channels, 3 for RGB
	Resolution  int     `json:"resolution"`   // input height and width
	Classes     int     `json:"classes"`      // classifier outputs
	Stem        int     `json:"stem"`         // stem conv filters (3x3, stride 2)
	Head        int     `json:"head"`         // head 1x1 conv filters
	Activation  string  `json:"activation"`   // "swish" (also "relu")
	Dropout     float64 `json:"dropout"`      // dropout rate before the classifier
	DropConnect float64 `json:"drop_connect"` // drop-connect rate at the last block
	Blocks      []Block `json:"blocks"`
}

// Errors returned by validation; wrapped with the offending field.
var ErrInvalid = errors.New("invalid architecture")
