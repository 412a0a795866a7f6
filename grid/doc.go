// Package grid searches the compound-scaling coefficients alpha (depth), beta
// (width) and gamma (resolution) at phi = 1 under alpha*beta^2*gamma^2 ≈ 2.
package grid
