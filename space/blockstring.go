package space

import (
	"fmt"
	"strconv"
	"strings"
)

// This file holds the block strings of the TF v1 dialect used by the
// EfficientNet authors' code, e.g. "r2_k3_s22_e6_i16_o24_se0.25":
//
//	r<n>     repeats                     (required, at least 1)
//	k<n>     kernel size                 (required, odd)
//	s11/s22  stride, both digits equal   (required)
//	e<n>     expansion ratio; e1 is a    (required, except with conv)
//	         depthwise-separable conv
//	i<n>     input filters               (required)
//	o<n>     output filters              (required)
//	se<x>    squeeze-excite ratio        (optional, 0 to 1)
//	noskip   no identity skip            (optional)
//	conv     a regular k x k conv        (optional; an effnas extension)

// ParseBlock parses one TF block string. Errors name the block and the
// token, e.g. `block "r2_k3_s33_e6_i16_o24": stride "s33": must be s11 or s22`.
func ParseBlock(s string) (Block, error) {
	b, err := parseTFBlock(s)
	if err != nil {
		return Block{}, fmt.Errorf("block %q: %w", s, err)
	}
	return b, nil
}

func parseTFBlock(s string) (Block, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Block{}, invalidf("empty block string: want e.g. r1_k3_s11_e1_i32_o16_se0.25")
	}
	b := Block{Skip: true}
	seen := map[string]bool{}
	isConv := false
	for _, tok := range strings.Split(s, "_") {
		key, val := splitToken(tok)
		if key == "" || !validKeyTF(key, val) {
			return Block{}, invalidf("unknown token %q: want r, k, s, e, i, o, se, noskip or conv (e.g. r2_k3_s22_e6_i16_o24_se0.25)", tok)
		}
		if seen[key] {
			return Block{}, invalidf("token %q: %s given twice", tok, key)
		}
		seen[key] = true
		var err error
		switch key {
		case "noskip":
			b.Skip = false
		case "conv":
			isConv = true
		case "s":
			if len(val) != 2 || val[0] != val[1] || (val[0] != '1' && val[0] != '2') {
				return Block{}, invalidf("stride %q: must be s11 or s22 (square strides 1 or 2)", tok)
			}
			b.Stride = int(val[0] - '0')
		case "se":
			b.SE, err = parseRatio(tok, val)
		default:
			var n int
			n, err = parseCount(tok, val)
			switch key {
			case "r":
				b.Repeats = n
			case "k":
				b.Kernel = n
			case "e":
				b.Expand = n
			case "i":
				b.In = n
			case "o":
				b.Out = n
			}
		}
		if err != nil {
			return Block{}, err
		}
	}
	for _, k := range []struct{ key, what, eg string }{
		{"r", "repeats", "r2"}, {"k", "kernel", "k3"}, {"s", "stride", "s22"},
		{"i", "input filters", "i16"}, {"o", "output filters", "o24"},
	} {
		if !seen[k.key] {
			return Block{}, invalidf("missing %s token %s (e.g. %s)", k.what, k.key, k.eg)
		}
	}
	switch {
	case isConv:
		if !seen["e"] {
			b.Expand = 1
		}
		if b.Expand != 1 {
			return Block{}, invalidf("expansion e%d with conv: a regular conv has expansion e1", b.Expand)
		}
		b.Op = OpConv
	case !seen["e"]:
		return Block{}, invalidf("missing expansion token e (e.g. e6, or e1 for a depthwise-separable conv)")
	case b.Expand == 1:
		b.Op = OpSepConv
	default:
		b.Op = OpMBConv
	}
	if err := b.Validate(); err != nil {
		return Block{}, err
	}
	return b, nil
}

// splitToken splits "se0.25" into "se" and "0.25": the key is the leading
// lowercase letters.
func splitToken(tok string) (key, val string) {
	i := 0
	for i < len(tok) && tok[i] >= 'a' && tok[i] <= 'z' {
		i++
	}
	return tok[:i], tok[i:]
}

func validKeyTF(key, val string) bool {
	switch key {
	case "noskip", "conv":
		return val == ""
	case "r", "k", "s", "e", "i", "o", "se":
		return val != ""
	}
	return false
}

// parseCount parses a decimal count of at most 6 digits (no sign, no spaces).
func parseCount(tok, val string) (int, error) {
	if len(val) > 6 || strings.TrimLeft(val, "0123456789") != "" {
		return 0, invalidf("token %q: %q is not a whole number below 1000000", tok, val)
	}
	n, _ := strconv.Atoi(val) // cannot fail: at most 6 digits
	return n, nil
}

// parseRatio parses a decimal fraction such as 0.25 (digits with at most one
// point; no sign, exponent or hex).
func parseRatio(tok, val string) (float64, error) {
	ip, fp, _ := strings.Cut(val, ".")
	if ip == "" || len(val) > 20 || strings.TrimLeft(ip, "0123456789") != "" || strings.TrimLeft(fp, "0123456789") != "" {
		return 0, invalidf("token %q: %q is not a decimal number such as 0.25", tok, val)
	}
	x, err := strconv.ParseFloat(val, 64)
	if err != nil {
		return 0, invalidf("token %q: %v", tok, err)
	}
	return x, nil
}

// formatRatio writes a ratio the shortest way that parses back to the same
// float64, without an exponent (0.25, 1e-05 as 0.00001).
func formatRatio(x float64) string {
	return strconv.FormatFloat(x, 'f', -1, 64)
}

// String returns b as a TF block string, e.g. "r2_k3_s22_e6_i16_o24_se0.25";
// a regular conv ends in "_conv". ParseBlock(b.String()) == b for every valid b.
func (b Block) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "r%d_k%d_s%d%d_e%d_i%d_o%d", b.Repeats, b.Kernel, b.Stride, b.Stride, b.Expand, b.In, b.Out)
	if b.SE > 0 {
		sb.WriteString("_se" + formatRatio(b.SE))
	}
	if !b.Skip {
		sb.WriteString("_noskip")
	}
	if b.Op == OpConv {
		sb.WriteString("_conv")
	}
	return sb.String()
}

// ParseBlocks parses TF block strings separated by spaces, commas or
// newlines. Brackets and quotes are ignored, so a JSON or Python list such as
// ["r1_k3_s11_e1_i32_o16_se0.25", "r2_k3_s22_e6_i16_o24_se0.25"] parses too.
func ParseBlocks(s string) ([]Block, error) {
	fields := splitList(s)
	if len(fields) == 0 {
		return nil, invalidf("no block strings: want e.g. \"r1_k3_s11_e1_i32_o16_se0.25 r2_k3_s22_e6_i16_o24_se0.25\"")
	}
	blocks := make([]Block, len(fields))
	for i, f := range fields {
		b, err := parseTFBlock(f)
		if err != nil {
			return nil, fmt.Errorf("block %d %q: %w", i, f, err)
		}
		blocks[i] = b
	}
	return blocks, nil
}

func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		switch r {
		case ' ', '\t', '\n', '\r', ',', '[', ']', '"', '\'':
			return true
		}
		return false
	})
}

// FormatBlocks returns the TF block string of every block.
func FormatBlocks(blocks []Block) []string {
	out := make([]string, len(blocks))
	for i, b := range blocks {
		out[i] = b.String()
	}
	return out
}
