package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/effnas/effnas/export"
	"github.com/effnas/effnas/space"
	"github.com/effnas/effnas/trainer"
)

func init() {
	register("bench", "benchmarks: bench proxy (how far a proxy can be trusted on your data), bench train (training speed), bench nb201 (a controller on NAS-Bench-201), bench store (how many workers a database can feed)", runBench)
	registerBench("train", "time training steps of a network on random data", runBenchTrain)
}

// benchCommand is one sub-benchmark of `effnas bench`.
type benchCommand struct {
	summary string
	run     func(ctx context.Context, env *Env, args []string) error
}

// benchCommands holds the sub-benchmarks; each file adds its own with
// registerBench from an init function.
var benchCommands = map[string]benchCommand{}

func registerBench(name, summary string, run func(ctx context.Context, env *Env, args []string) error) {
	if _, dup := benchCommands[name]; dup {
		panic("effnas: bench registered twice: " + name)
	}
	benchCommands[name] = benchCommand{summary: summary, run: run}
}

func benchNames() []string {
	names := make([]string, 0, len(benchCommands))
	for n := range benchCommands {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func runBench(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(env.Stdout, "Usage: effnas bench <benchmark> [flags]   (effnas bench <benchmark> -h for its flags)")
		for _, n := range benchNames() {
			fmt.Fprintf(env.Stdout, "  %-8s %s\n", n, benchCommands[n].summary)
		}
		if len(args) == 0 {
			return usagef("bench needs a benchmark: one of %s", strings.Join(benchNames(), ", "))
		}
		return nil
	}
	c, ok := benchCommands[args[0]]
	if !ok {
		return usagef("unknown benchmark %q; use one of %s", args[0], strings.Join(benchNames(), ", "))
	}
	return c.run(ctx, env, args[1:])
}

// b0BlockString is EfficientNet-B0's stages as one --blocks value.
func b0BlockString() string {
	return strings.Join(space.FormatBlocks(space.B0().Blocks), " ")
}

// networkJSON describes the network a train or bench train report is of.
type networkJSON struct {
	Blocks     []string `json:"blocks"`
	Width      float64  `json:"width"`
	Depth      float64  `json:"depth"`
	Resolution int      `json:"resolution"`
	InChannels int      `json:"in_channels"`
	Classes    int      `json:"classes"`
}

func newNetworkJSON(arch space.Arch, width, depth float64) networkJSON {
	return networkJSON{Blocks: space.FormatBlocks(arch.Blocks), Width: width, Depth: depth,
		Resolution: arch.Resolution, InChannels: arch.InChannels, Classes: arch.Classes}
}

type benchTrainReport struct {
	trainer.BenchResult
	networkJSON
	PeakRSSBytes int64  `json:"peak_rss_bytes"`
	GoVersion    string `json:"go_version"`
	GOARCH       string `json:"goarch"`
}

func runBenchTrain(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet("bench train", env.Stderr)
	blocks := fs.String("blocks", b0BlockString(), "stages as TF block strings separated by spaces or commas (default: EfficientNet-B0's)")
	model := fs.String("model", "", "a named model (efficientnet-b0..b7) instead of --blocks")
	width := fs.Float64("width", 0.5, "width multiplier applied to the filters")
	depth := fs.Float64("depth", 1, "depth multiplier applied to the repeats")
	res := fs.Int("res", 32, "input resolution")
	inCh := fs.Int("in-ch", 1, "input channels")
	classes := fs.Int("classes", 10, "classifier outputs")
	batch := fs.Int("batch", 64, "images per step")
	steps := fs.Int("steps", 30, "timed steps (after 2 warm-up steps)")
	threads := fs.Int("threads", 2, "goroutines the kernels may use")
	seed := new(uint64)
	*seed = 1
	fs.Var((*seedValue)(seed), "seed", "seed of the weights and the random data")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	profile := fs.Bool("profile", false, "also print where the step time goes, by kind of layer")
	supernet := fs.Bool("supernet", false, "train the network as a path of the built-in space's supernet at the same width and resolution (its weights gathered from shared tensors and scattered back every step), with drop-connect off")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	arch, err := proxyArchFromFlags(set, *blocks, *model, *width, *depth, *res, *inCh, *classes)
	if err != nil {
		return err
	}
	switch {
	case *batch < 1 || *batch > 4096:
		return usagef("--batch %d: must be 1 to 4096 images", *batch)
	case *steps < 1 || *steps > 100000:
		return usagef("--steps %d: must be 1 to 100000", *steps)
	case *threads < 1 || *threads > 256:
		return usagef("--threads %d: must be 1 to 256", *threads)
	}
	bc := trainer.BenchConfig{Batch: *batch, Steps: *steps, Threads: *threads, Seed: *seed, Profile: *profile}
	if *supernet {
		if *profile {
			return usagef("--supernet and --profile: a supernet's steps are not profiled; give one of them")
		}
		b := space.DefaultSpace().Bound().Scale(*width, 1, *res)
		b.InChannels, b.Classes, b.DropConnect = arch.InChannels, arch.Classes, 0
		arch.DropConnect = 0
		bc.Supernet = &b
	}
	r, err := trainer.Bench(ctx, arch, bc)
	if err != nil {
		return err
	}
	rep := benchTrainReport{BenchResult: r, networkJSON: newNetworkJSON(arch, *width, *depth),
		PeakRSSBytes: peakRSS(), GoVersion: runtime.Version(), GOARCH: runtime.GOARCH}
	if *asJSON {
		enc := json.NewEncoder(env.Stdout)
		return enc.Encode(rep)
	}
	fmt.Fprintf(env.Stdout, "training: %.1f images/s (%.4f s per step of %d images, %d threads)\n", r.ImagesPerSecond, r.StepSeconds, r.Batch, r.Threads)
	fmt.Fprintf(env.Stdout, "network:  %s parameters, %s multiply-adds per image at %dx%dx%d\n", export.Commas(r.Params), export.Commas(r.FLOPs), arch.InChannels, arch.Resolution, arch.Resolution)
	fmt.Fprintf(env.Stdout, "compute:  %.2f GFLOP/s (multiply-adds x 2 x 3 per image), %.1f%% of the %.1f GFLOP/s peak (%s, %d threads)\n",
		r.GFLOPs, 100*r.PeakFraction, r.PeakGFLOPs, r.PeakISA, r.Threads)
	fmt.Fprintf(env.Stdout, "memory:   %.1f MiB peak resident\n", float64(rep.PeakRSSBytes)/(1<<20))
	if len(r.Profile) > 0 {
		printProfile(env.Stdout, r)
	}
	return nil
}

// printProfile prints where a step's time goes as a table.
func printProfile(w io.Writer, r trainer.BenchResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	kind := func(s string) string { return fmt.Sprintf("%-20s", s) }
	fmt.Fprintln(tw, kind("kind")+"\tms/step\tshare\tGFLOP/s\tGB/s\t")
	num := func(v float64) string {
		if v == 0 {
			return "-"
		}
		return fmt.Sprintf("%.1f", v)
	}
	var total float64
	for _, e := range r.Profile {
		total += e.StepSeconds
		fmt.Fprintf(tw, "%s\t%.2f\t%.1f%%\t%s\t%s\t\n", kind(e.Kind), 1e3*e.StepSeconds, 100*e.Share, num(e.GFLOPs), num(e.GBps))
	}
	fmt.Fprintf(tw, "%s\t%.2f\t100.0%%\t%s\t\t\n", kind("step"), 1e3*total, num(r.GFLOPs))
	tw.Flush()
}

// proxyArchFromFlags builds the network of --blocks or --model, scaled by
// width and depth, at resolution res with inCh channels and classes outputs.
func proxyArchFromFlags(set map[string]bool, blocks, model string, width, depth float64, res, inCh, classes int) (space.Arch, error) {
	var a space.Arch
	if set["blocks"] && set["model"] {
		return a, usagef("--blocks and --model are alternatives: give only one")
	}
	switch {
	case width <= 0 || width > 10 || width != width:
		return a, usagef("--width %g: must be a multiplier in (0, 10], e.g. 0.5", width)
	case depth <= 0 || depth > 10 || depth != depth:
		return a, usagef("--depth %g: must be a multiplier in (0, 10], e.g. 1", depth)
	case res < 8 || res > 1024:
		return a, usagef("--res %d: must be 8 to 1024 pixels", res)
	case inCh < 1 || inCh > 64:
		return a, usagef("--in-ch %d: must be 1 to 64 channels", inCh)
	case classes < 2 || classes > 100000:
		return a, usagef("--classes %d: must be 2 to 100000", classes)
	}
	if model != "" {
		p, err := space.Preset(model)
		if err != nil {
			return a, usagef("--model: %v", err)
		}
		a = p
	} else {
		bs, err := space.ParseBlocks(blocks)
		if err != nil {
			return a, usagef("--blocks: %v", err)
		}
		a = space.B0()
		a.Blocks = bs
	}
	a = a.Scale(width, depth, res)
	a.InChannels, a.Classes = inCh, classes
	if err := a.Validate(); err != nil {
		return a, usagef("the network scaled by --width %g --depth %g: %v", width, depth, err)
	}
	return a, nil
}

// peakRSS returns the process's peak resident memory: VmHWM from
// /proc/self/status where there is one, else the memory the Go runtime has
// obtained from the system.
func peakRSS() int64 {
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				f := strings.Fields(rest)
				if len(f) == 2 && f[1] == "kB" {
					if kb, err := strconv.ParseInt(f[0], 10, 64); err == nil {
						return kb << 10
					}
				}
			}
		}
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.Sys)
}
