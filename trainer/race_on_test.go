//go:build race

package trainer

// raceEnabled is true when the race detector is on: the slow full-size
// learning test skips itself then.
const raceEnabled = true
