// Package space holds the MnasNet search space of MBConv blocks, architectures,
// block strings in the TF and timm dialects, exact parameter and multiply-add
// counts, and the compound-scaling rules. It is a leaf package with no I/O.
//
// Files, by what they hold:
//
//	arch.go           Op, Block, Arch: plain values
//	validate.go       Block.Validate, Arch.Validate, Equal, Clone, limits
//	blockstring.go    TF v1 block strings: ParseBlock, ParseBlocks, Block.String
//	timm.go           timm's arch_def strings: ParseTimmBlock(s), Block.Timm
//	count.go          Layers, Params, FLOPs (multiply-adds), EfficientNet's convention
//	scale.go          RoundFilters, RoundRepeats, Arch.Scale, B0, Preset (B0..B7)
//	compound.go       Scaling{Alpha, Beta, Gamma}, Compound
//	spacefile.go      the search-space JSON: ParseSpace, DefaultSpace (default_space.json)
//	searchspace.go    Space: Dims, Candidate, Decode, Encode, Key, Sample, Size, Hash
//
// EfficientNet-B0 counts 5,288,548 parameters and 385,814,752 multiply-adds
// at 224x224 (9,742,048 at 32x32), as the reference does.
package space
