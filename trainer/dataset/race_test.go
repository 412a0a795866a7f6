//go:build race

package dataset

// raceEnabled: the race detector slows decompression about tenfold.
const raceEnabled = true
