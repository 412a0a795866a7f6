// Command peakmem trains one network on the built-in MNIST and reports how
// far the training raised the process's resident memory.
// TestEstimateMemory builds it without the race detector (whose shadow
// memory would multiply the process's) and runs it once per network.
//
// Usage:
//
//	peakmem -arch '<space.Arch as JSON>' -batch 64 -threads 2 -train 256
//
// It turns transparent huge pages off (where they are always on, a page
// the training touched would count 2 MiB), loads the data the training
// reads (MNIST at the arch's resolution) and trains a tiny network on two
// of its images, so that the code a training runs is paged in and the
// runtime's threads are started. It returns the freed memory to the
// system, reads its resident set (VmRSS) as the baseline and resets its
// high-water mark (VmHWM) to it. Then it trains the network for one epoch
// of -train images with the default recipe (batch-norm calibration and
// evaluation included) and prints one JSON line: the baseline and the
// high-water mark, in bytes.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/effnas/effnas/space"
	"github.com/effnas/effnas/trainer"
	"github.com/effnas/effnas/trainer/dataset"
	"golang.org/x/sys/unix"
)

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "peakmem:", err)
		os.Exit(1)
	}
}

// report is the line peakmem prints.
type report struct {
	Baseline int64 `json:"baseline"` // VmRSS before the training, in bytes
	Peak     int64 `json:"peak"`     // VmHWM after it
	Steps    int   `json:"steps"`    // training steps taken
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("peakmem", flag.ContinueOnError)
	archJSON := fs.String("arch", "", "the network: a space.Arch as JSON")
	batch := fs.Int("batch", 64, "images per step")
	threads := fs.Int("threads", 2, "kernel goroutines")
	train := fs.Int("train", 256, "training images (one epoch)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_THP_DISABLE, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("disable transparent huge pages: %w", err)
	}
	var arch space.Arch
	if err := json.Unmarshal([]byte(*archJSON), &arch); err != nil {
		return fmt.Errorf("-arch: %w", err)
	}
	data, err := dataset.Load(ctx, "mnist", dataset.Options{TrainSize: *train, ValSize: *batch, TestSize: *batch, Resolution: arch.Resolution, Seed: 1})
	if err != nil {
		return err
	}
	if err := warmUp(ctx, arch, data, *threads); err != nil {
		return err
	}
	debug.FreeOSMemory()
	baseline, err := status("VmRSS")
	if err != nil {
		return err
	}
	// Writing 5 to clear_refs resets the high-water mark to the resident
	// set (Linux 4.0 and later).
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return fmt.Errorf("reset the peak resident set: %w", err)
	}
	cfg := trainer.Config{Epochs: 1, Batch: *batch, Threads: *threads}.WithDefaults()
	res, err := trainer.Train(ctx, arch, data, cfg, nil)
	if err != nil {
		return err
	}
	peak, err := status("VmHWM")
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(report{Baseline: baseline, Peak: peak, Steps: res.Steps})
}

// warmUp trains B0 at width 0.1 for one step on two images of data, and
// evaluates it on two.
func warmUp(ctx context.Context, arch space.Arch, data *dataset.Data, threads int) error {
	tiny := space.B0().Scale(0.1, 1, arch.Resolution)
	tiny.InChannels, tiny.Classes = arch.InChannels, arch.Classes
	two := *data
	for _, s := range []*dataset.Set{&two.Train, &two.Val, &two.Test} {
		per := s.C * s.H * s.W
		s.X, s.Y, s.N = s.X[:2*per], s.Y[:2], 2
	}
	if _, err := trainer.Train(ctx, tiny, &two, trainer.Config{Epochs: 1, Batch: 2, Threads: threads}, nil); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	return nil
}

// status reads a field of /proc/self/status given in kB, in bytes.
func status(field string) (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		name, v, ok := strings.Cut(line, ":")
		if !ok || name != field {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s in /proc/self/status: %w", field, err)
		}
		return kb << 10, nil
	}
	return 0, errors.New(field + " is not in /proc/self/status")
}
