// Package faults holds no code: its tests run real effnas processes
// through the faults a cluster meets (a database restart, a paused
// worker, a full disk, a dropped connection) and check that the sweep
// survives each with nothing lost and nothing run twice beyond what a
// lease allows.
package faults
