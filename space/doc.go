// Package space holds the MnasNet search space of MBConv blocks, architectures,
// block strings in the TF and timm dialects, exact parameter and multiply-add
// counts, and the compound-scaling rules. It is a leaf package with no I/O.
package space
