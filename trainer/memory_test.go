package trainer

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"testing"

	"github.com/effnas/effnas/space"
)

// TestEstimateMemory: the estimate is within 10% of the resident memory a
// training really adds at its peak (within 3% when this was written; an
// estimate that forgets the optimizer's moments is 12 to 14% short), for
// networks from 6 to 210 MiB: B0 at width 0.1 (where the fixed costs
// dominate), at the canonical proxy's size and at width 1, and a member of
// the search space with regular convolutions at 8 threads (where the
// threads' private gradients and scratch are a third of it). Each trains
// on MNIST with the default recipe (AdamW) for 4 steps, batch-norm
// calibration and evaluation included, in a child process built without
// the race detector (testdata/peakmem).
//
// The child's baseline, its resident set just before the training, holds
// the Go runtime, the program's code (paged in by a tiny training first)
// and the dataset: none of them is the training's, nor in the estimate.
// The peak above it is what the training allocates and touches: its
// layers, parameters, optimizer state, scratch and graph. A long training
// goes higher by the garbage its steps leave (0.2 to 0.5 MiB a step for
// these networks; kern's TestGemmGarbage keeps the GEMMs from adding 32
// KiB a call to it, 1 to 6 MiB a step), which the estimate does not count
// (see EstimateMemory).
func TestEstimateMemory(t *testing.T) {
	if goruntime.GOOS != "linux" {
		t.Skip("the peak is read from Linux's /proc/self/status")
	}
	bin := filepath.Join(t.TempDir(), "peakmem")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "./testdata/peakmem")
	build.Env = append(os.Environ(), "GOFLAGS=") // never -race
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./testdata/peakmem: %v\n%s", err, out)
	}
	sp := space.DefaultSpace()
	full, err := sp.Decode(sp.Sample(rand.New(rand.NewPCG(3, 3))))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name           string
		arch           space.Arch
		batch, threads int
	}{
		{"b0 w0.1 8px batch 8", space.B0().Scale(0.1, 1, 8), 8, 2},
		{"member w0.5 24px batch 32 threads 8", full.Scale(0.5, 1, 24), 32, 8},
		{"b0 w0.5 32px batch 64", space.B0().Scale(0.5, 1, 32), 64, 2},
		{"b0 w1 48px batch 64", space.B0().Scale(1, 1, 48), 64, 2},
	} {
		a := c.arch
		a.InChannels, a.Classes = 1, 10 // MNIST's
		js, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.CommandContext(t.Context(), bin, "-arch", string(js),
			"-batch", fmt.Sprint(c.batch), "-threads", fmt.Sprint(c.threads), "-train", fmt.Sprint(4*c.batch))
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: peakmem: %v", c.name, err)
		}
		var rep struct {
			Baseline, Peak int64
			Steps          int
		}
		if err := json.Unmarshal(out, &rep); err != nil || rep.Steps != 4 {
			t.Fatalf("%s: peakmem printed %q (%v); want a report of 4 steps", c.name, out, err)
		}
		got := rep.Peak - rep.Baseline
		est := EstimateMemory(a, Config{Batch: c.batch, Threads: c.threads})
		ratio := float64(est) / float64(got)
		t.Logf("%s: estimate %.1f MiB, peak %.1f MiB above a baseline of %.1f MiB (%.2f)",
			c.name, mib(est), mib(got), mib(rep.Baseline), ratio)
		if ratio < 0.9 || ratio > 1.1 {
			t.Errorf("%s: the estimate, %.1f MiB, is %.2f times the %.1f MiB the training added; want within 10%%",
				c.name, mib(est), ratio, mib(got))
		}
	}
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }
