package space

import (
	"fmt"
	"strings"
)

// This file holds timm's arch_def dialect of block strings, e.g.
// "ir_r2_k3_s2_e6_c24_se0.25". It starts with the block type (ds for a
// depthwise-separable conv, ir for an MBConv, cn for a regular conv), writes
// the stride as one digit and the output filters as c, and carries no input
// filters. As in timm, ds and ir blocks have a skip unless "noskip" is given,
// and cn blocks have none unless "skip" is given.

// ParseTimmBlock parses one timm block string. The block's input filters are
// left 0: use ParseTimmBlocks to chain them from the stem.
func ParseTimmBlock(s string) (Block, error) {
	b, err := parseTimmBlock(s)
	if err != nil {
		return Block{}, fmt.Errorf("timm block %q: %w", s, err)
	}
	return b, nil
}

func parseTimmBlock(s string) (Block, error) {
	toks := strings.Split(strings.TrimSpace(s), "_")
	b := Block{}
	switch toks[0] {
	case "ds":
		b.Op, b.Expand, b.Skip = OpSepConv, 1, true
	case "ir":
		b.Op, b.Skip = OpMBConv, true
	case "cn":
		b.Op, b.Expand = OpConv, 1
	default:
		return Block{}, invalidf("block type %q: must be ds (depthwise-separable), ir (MBConv) or cn (conv)", toks[0])
	}
	seen := map[string]bool{}
	for _, tok := range toks[1:] {
		key, val := splitToken(tok)
		ok := false
		switch key {
		case "noskip", "skip":
			ok = val == ""
		case "r", "k", "s", "e", "c", "se":
			ok = val != ""
		}
		if !ok {
			return Block{}, invalidf("unknown token %q: want r, k, s, e, c, se, noskip or skip (e.g. ir_r2_k3_s2_e6_c24_se0.25)", tok)
		}
		if seen[key] {
			return Block{}, invalidf("token %q: %s given twice", tok, key)
		}
		seen[key] = true
		var err error
		var n int
		switch key {
		case "noskip":
			b.Skip = false
		case "skip":
			b.Skip = true
		case "s":
			if val != "1" && val != "2" {
				return Block{}, invalidf("stride %q: must be s1 or s2", tok)
			}
			b.Stride = int(val[0] - '0')
		case "se":
			b.SE, err = parseRatio(tok, val)
		case "e":
			n, err = parseCount(tok, val)
			switch {
			case err != nil:
			case b.Op == OpMBConv && n < 2:
				err = invalidf("expansion %q: an ir block needs e2 or more (use ds for expansion 1)", tok)
			case b.Op != OpMBConv && n != 1:
				err = invalidf("expansion %q: a %s block has expansion e1", tok, toks[0])
			}
			b.Expand = n
		default:
			n, err = parseCount(tok, val)
			switch key {
			case "r":
				b.Repeats = n
			case "k":
				b.Kernel = n
			case "c":
				b.Out = n
			}
		}
		if err != nil {
			return Block{}, err
		}
	}
	if seen["skip"] && seen["noskip"] {
		return Block{}, invalidf("both skip and noskip given")
	}
	for _, k := range []struct{ key, what, eg string }{
		{"r", "repeats", "r2"}, {"k", "kernel", "k3"}, {"s", "stride", "s2"}, {"c", "output filters", "c24"},
	} {
		if !seen[k.key] {
			return Block{}, invalidf("missing %s token %s (e.g. %s)", k.what, k.key, k.eg)
		}
	}
	if b.Op == OpMBConv && !seen["e"] {
		return Block{}, invalidf("missing expansion token e (e.g. e6)")
	}
	if err := b.validateShape(); err != nil {
		return Block{}, err
	}
	return b, nil
}

// Timm returns b in timm's dialect, e.g. "ir_r2_k3_s2_e6_c24_se0.25",
// "ds_r1_k3_s1_e1_c16_se0.25" or "cn_r1_k3_s1_c32". The input filters are
// not written.
func (b Block) Timm() string {
	var sb strings.Builder
	switch b.Op {
	case OpSepConv:
		fmt.Fprintf(&sb, "ds_r%d_k%d_s%d_e%d_c%d", b.Repeats, b.Kernel, b.Stride, b.Expand, b.Out)
	case OpConv:
		fmt.Fprintf(&sb, "cn_r%d_k%d_s%d_c%d", b.Repeats, b.Kernel, b.Stride, b.Out)
	default:
		fmt.Fprintf(&sb, "ir_r%d_k%d_s%d_e%d_c%d", b.Repeats, b.Kernel, b.Stride, b.Expand, b.Out)
	}
	if b.SE > 0 {
		sb.WriteString("_se" + formatRatio(b.SE))
	}
	switch {
	case b.Op == OpConv && b.Skip:
		sb.WriteString("_skip")
	case b.Op != OpConv && !b.Skip:
		sb.WriteString("_noskip")
	}
	return sb.String()
}

// ParseTimmBlocks parses timm block strings (each may itself hold several,
// separated by spaces or commas) and chains the input filters: the first
// block's are stem, every other block's are the previous block's output.
func ParseTimmBlocks(strs []string, stem int) ([]Block, error) {
	var fields []string
	for _, s := range strs {
		fields = append(fields, splitList(s)...)
	}
	if len(fields) == 0 {
		return nil, invalidf("no timm block strings: want e.g. ds_r1_k3_s1_e1_c16_se0.25")
	}
	blocks := make([]Block, len(fields))
	in := stem
	for i, f := range fields {
		b, err := parseTimmBlock(f)
		if err == nil {
			b.In = in
			err = b.Validate()
		}
		if err != nil {
			return nil, fmt.Errorf("block %d %q: %w", i, f, err)
		}
		blocks[i], in = b, b.Out
	}
	return blocks, nil
}

// FormatTimmBlocks returns the timm block string of every block.
func FormatTimmBlocks(blocks []Block) []string {
	out := make([]string, len(blocks))
	for i, b := range blocks {
		out[i] = b.Timm()
	}
	return out
}
