// Package deploy holds what runs effnas on a cluster: a Containerfile for
// an image FROM scratch and the script that builds its static binary,
// Kubernetes manifests (kubernetes/) and Slurm scripts (slurm/). It has no
// code; its tests build the binary and check the manifests and scripts
// against the Kubernetes API types, against the flags effnas is given and
// against each other (cmd/effnas checks the same command lines against the
// real flag sets).
package deploy
