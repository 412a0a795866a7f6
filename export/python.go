package export

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/effnas/effnas/space"
)

// member is one network of the exported family with everything the Python
// snippets need.
type member struct {
	name       string // b0..b7
	width      float64
	depth      float64
	resolution int
	dropout    float64
	params     int64
	flops      int64
}

// members returns B0 and the raw-rule B1..B7. B0 keeps its own dropout;
// B1..B7 take the paper's dropout for the same name, as the released
// models grow it with size.
func (r *Report) members() []member {
	ms := []member{{name: "b0", width: 1, depth: 1, resolution: r.B0.Resolution, dropout: r.B0.Dropout, params: r.B0.Params, flops: r.B0.FLOPs}}
	presets := space.Presets()
	for i, m := range r.Family {
		d := r.B0.Dropout
		if i+1 < len(presets) {
			d = presets[i+1].Dropout
		}
		ms = append(ms, member{name: m.Name, width: m.Width, depth: m.Depth, resolution: m.Resolution, dropout: d, params: m.Params, flops: m.FLOPs})
	}
	return ms
}

// pyFloat writes v as a Python float literal: 1 as 1.0, 1.1 as 1.1.
func pyFloat(v float64) string {
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if !strings.ContainsAny(s, ".eEn") {
		s += ".0"
	}
	return s
}

// header writes the comment lines every snippet starts with: where B0 and
// the coefficients come from.
func (r *Report) header(w io.Writer) {
	fmt.Fprintf(w, "# EfficientNet family found by effnas.\n")
	fmt.Fprintf(w, "# B0: %s.\n", r.b0Origin())
	fmt.Fprintf(w, "# Coefficients: %s.\n", r.coefOrigin())
	fmt.Fprintf(w, "# B0 at %dx%d: %s params, %s multiply-adds (%d classes).\n",
		r.B0.Resolution, r.B0.Resolution, Commas(r.B0.Params), Commas(r.B0.FLOPs), r.B0.Classes)
}

// b0Origin says where B0 comes from, in words.
func (r *Report) b0Origin() string {
	var s string
	if r.B0.Study != nil && r.B0.Trial != nil {
		s = fmt.Sprintf("trial %d of search study %d", *r.B0.Trial, *r.B0.Study)
	} else {
		s = "block strings given to the grid study"
	}
	if r.B0.Accuracy != nil {
		s += fmt.Sprintf(", proxy validation accuracy %s", meanSD(*r.B0.Accuracy, r.B0.AccuracyStd))
		if r.B0.Seeds > 1 {
			s += fmt.Sprintf(" over %d seeds", r.B0.Seeds)
		}
		if r.B0.TestAccuracy != nil {
			s += fmt.Sprintf(", test accuracy %.4f", *r.B0.TestAccuracy)
		}
	}
	return s
}

// coefOrigin says what the coefficients are and where they come from.
func (r *Report) coefOrigin() string {
	c := r.Coefficients
	s := fmt.Sprintf("alpha (depth) %g, beta (width) %g, gamma (resolution) %g; alpha*beta^2*gamma^2 = %.4g", c.Alpha, c.Beta, c.Gamma, c.Constraint)
	if c.Source == SourceGrid {
		s += fmt.Sprintf(", from grid study %d", c.Study)
		if c.Trial != nil {
			s += fmt.Sprintf(" trial %d", *c.Trial)
		}
		if c.Accuracy != nil {
			s += fmt.Sprintf(" (proxy accuracy %s over %d seeds; %d points trained)", meanSD(*c.Accuracy, c.AccuracyStd), c.Seeds, c.GridPoints)
		}
		s += fmt.Sprintf(" at phi %g", c.Phi)
	} else {
		s += ", the paper's (no grid study of this B0 was used)"
	}
	return s
}

// TF returns a Python module for TF's EfficientNet builder
// (tensorflow/tpu models/official/efficientnet/efficientnet_builder.py):
// blocks_args as the builder's block strings and params_dict as its
// efficientnet_params table, (width, depth, resolution, dropout) for B0 and
// the raw-rule B1..B7. Importing the module patches the builder so that
// build_model(images, 'efficientnet-b3', training) builds this family's B3.
func (r *Report) TF() []byte {
	var b bytes.Buffer
	r.header(&b)
	b.WriteString(`#
# For TF's EfficientNet builder (tensorflow/tpu, models/official/efficientnet/
# efficientnet_builder.py). Put this file next to it and import it before
# building a model: it replaces the builder's B0 block strings and its
# efficientnet_params table, so that
#   efficientnet_builder.build_model(images, 'efficientnet-b3', training)
# builds B3 of this family.
`)
	for _, w := range r.tfWarnings() {
		fmt.Fprintf(&b, "#\n# NOTE: %s\n", w)
	}
	b.WriteString(`
import efficientnet_builder

# B0's stages: r repeats, k kernel, s stride, e expansion ratio,
# i/o input/output filters, se squeeze-excite ratio, noskip no identity skip.
blocks_args = [
`)
	for _, s := range r.B0.Blocks {
		fmt.Fprintf(&b, "    '%s',\n", s)
	}
	fmt.Fprintf(&b, `]

# (width_coefficient, depth_coefficient, resolution, dropout_rate) by the raw
# compound rule: width beta**phi, depth alpha**phi, resolution
# round(%d * gamma**phi) for B<phi>. Dropout grows as in the released models.
params_dict = {
`, r.B0.Resolution)
	for _, m := range r.members() {
		fmt.Fprintf(&b, "    'efficientnet-%s': (%s, %s, %d, %s),  # %s params, %s multiply-adds\n",
			m.name, pyFloat(m.width), pyFloat(m.depth), m.resolution, pyFloat(m.dropout), fmtCount(m.params), fmtCount(m.flops))
	}
	b.WriteString("}\n\n# The paper's hand-rounded multipliers applied to the same B0, for comparison.\npaper_params_dict = {\n")
	presets := space.Presets()
	fmt.Fprintf(&b, "    'efficientnet-b0': (1.0, 1.0, %d, %s),\n", r.B0.Resolution, pyFloat(r.B0.Dropout))
	for i, m := range r.PaperFamily {
		fmt.Fprintf(&b, "    'efficientnet-%s': (%s, %s, %d, %s),  # %s params, %s multiply-adds\n",
			m.Name, pyFloat(m.Width), pyFloat(m.Depth), m.Resolution, pyFloat(presets[i+1].Dropout), fmtCount(m.Params), fmtCount(m.FLOPs))
	}
	b.WriteString(`}


def efficientnet_params(model_name):
  """Get efficientnet params based on model name."""
  return params_dict[model_name]


# Keep the builder's own efficientnet() (once, even if this module is
# reloaded) for its GlobalParams, and swap in this family's blocks.
_builder_efficientnet = getattr(efficientnet_builder, '_effnas_builder_efficientnet',
                                efficientnet_builder.efficientnet)
efficientnet_builder._effnas_builder_efficientnet = _builder_efficientnet


def efficientnet(width_coefficient=None, depth_coefficient=None,
                 dropout_rate=0.2, *args, **kwargs):
  """The builder's efficientnet() with this family's B0 blocks."""
  _, global_params = _builder_efficientnet(
      width_coefficient, depth_coefficient, dropout_rate, *args, **kwargs)
  return efficientnet_builder.BlockDecoder().decode(blocks_args), global_params


efficientnet_builder.efficientnet_params = efficientnet_params
efficientnet_builder.efficientnet = efficientnet
`)
	return b.Bytes()
}

// tfWarnings lists what TF's builder cannot express of this B0.
func (r *Report) tfWarnings() []string {
	var ws []string
	a := r.Arch
	if a.Stem != 32 || a.Head != 1280 {
		ws = append(ws, fmt.Sprintf("this B0 has a %d-filter stem and a %d-filter head; the TF model fixes them at 32 and 1280 (round_filters(32), round_filters(1280) in efficientnet_model.py): edit those two numbers there.", a.Stem, a.Head))
	}
	for _, bl := range a.Blocks {
		if bl.Op == space.OpConv {
			ws = append(ws, "blocks ending in _conv are regular k x k convolutions (an effnas extension); TF's BlockDecoder ignores the token and builds a depthwise-separable block instead.")
			break
		}
	}
	if a.Classes != 1000 {
		ws = append(ws, fmt.Sprintf("this B0 has %d classes; pass override_params={'num_classes': %d} to build_model.", a.Classes, a.Classes))
	}
	if a.Activation != "" && a.Activation != "swish" {
		ws = append(ws, fmt.Sprintf("this B0 uses %s; the builder uses swish: override the activation (relu_fn or activation in efficientnet_model.GlobalParams, by version) through override_params.", a.Activation))
	}
	return ws
}

// Timm returns a Python module defining the family with timm: arch_def
// holds B0's stages in timm's dialect, _gen_effnas builds timm's
// EfficientNet from it the way timm's _gen_efficientnet does, and
// effnas_b0() .. effnas_b7() pass each member's channel_multiplier
// (width) and depth_multiplier (depth) by the raw rule.
func (r *Report) Timm() []byte {
	var b bytes.Buffer
	r.header(&b)
	act := r.Arch.Activation
	if act == "" {
		act = "swish"
	}
	b.WriteString(`#
# For timm (pytorch-image-models): arch_def is B0's stages in timm's block
# string dialect and _gen_effnas builds timm's EfficientNet from it as timm's
# own _gen_efficientnet does. effnas_b0() .. effnas_b7() build the family by
# the raw compound rule: channel_multiplier beta**phi, depth_multiplier
# alpha**phi; train and evaluate each at resolutions[name].
`)
	if r.Arch.Classes != 1000 {
		fmt.Fprintf(&b, "#\n# NOTE: this B0 has %d classes; num_classes defaults to that below.\n", r.Arch.Classes)
	}
	for i, bl := range r.Arch.Blocks {
		if bl.Op == space.OpConv && bl.SE > 0 {
			fmt.Fprintf(&b, "#\n# NOTE: stage %d is a regular conv with squeeze-excite; timm's cn block has no\n# squeeze-excite and ignores _se, so its model lacks the SE of that stage.\n", i)
		}
	}
	fmt.Fprintf(&b, `
from functools import partial

import torch.nn as nn

try:
    from timm.models._efficientnet_builder import decode_arch_def, resolve_act_layer, resolve_bn_args, round_channels
except ImportError:  # timm before 0.9
    from timm.models.efficientnet_builder import decode_arch_def
    from timm.models.efficientnet_blocks import resolve_act_layer, resolve_bn_args, round_channels
from timm.models.efficientnet import EfficientNet

# B0's stages: ds depthwise-separable, ir inverted residual (MBConv), cn
# regular conv; r repeats, k kernel, s stride, e expansion, c output
# channels, se squeeze-excite ratio, noskip no identity skip.
arch_def = [
`)
	for _, s := range r.B0.Timm {
		fmt.Fprintf(&b, "    ['%s'],\n", s)
	}
	b.WriteString("]\n\n# Input resolution of each member.\nresolutions = {\n")
	ms := r.members()
	for _, m := range ms {
		fmt.Fprintf(&b, "    'effnas_%s': %d,\n", m.name, m.resolution)
	}
	fmt.Fprintf(&b, `}


def _gen_effnas(channel_multiplier=1.0, depth_multiplier=1.0, channel_divisor=8, **kwargs):
    """Creates this EfficientNet the way timm's _gen_efficientnet does."""
    round_chs_fn = partial(round_channels, multiplier=channel_multiplier, divisor=channel_divisor)
    model_kwargs = dict(
        block_args=decode_arch_def(arch_def, depth_multiplier),
        num_features=round_chs_fn(%d),
        stem_size=%d,
        round_chs_fn=round_chs_fn,
        act_layer=resolve_act_layer(kwargs, '%s'),
        norm_layer=kwargs.pop('norm_layer', None) or partial(nn.BatchNorm2d, **resolve_bn_args(kwargs)),
        **kwargs,
    )
    return EfficientNet(**model_kwargs)
`, r.Arch.Head, r.Arch.Stem, act)
	for _, m := range ms {
		fmt.Fprintf(&b, `

def effnas_%s(**kwargs):
    """%s: %dx%d, %s params, %s multiply-adds."""
    kwargs.setdefault('num_classes', %d)
    kwargs.setdefault('drop_rate', %s)
    return _gen_effnas(channel_multiplier=%s, depth_multiplier=%s, **kwargs)
`, m.name, strings.ToUpper(m.name), m.resolution, m.resolution, fmtCount(m.params), fmtCount(m.flops),
			r.Arch.Classes, pyFloat(m.dropout), pyFloat(m.width), pyFloat(m.depth))
	}
	return b.Bytes()
}

// fmtCount writes a count briefly: 5.29M, 0.39B.
func fmtCount(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fK", float64(n)/1e3)
	}
	return strconv.FormatInt(n, 10)
}

// Commas writes n with thousands separators: 5288548 -> 5,288,548.
func Commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
