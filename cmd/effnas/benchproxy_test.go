package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestBenchProxyRungs: bench proxy --rungs 2 --eta 2 trains the panel at
// both rungs of the schedule search would use (--train-size and --epochs
// describe the top: 128 images x 2 epochs, so rung 0 is 128 x 1), under
// every seed, against one reference. Its JSON has one entry per rung,
// rung 0 first; the top-level figures are the top rung's; every
// architecture has each rung's mean; the text and the plot show the
// rungs; show prints the same report.
func TestBenchProxyRungs(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "p.db")
	png := filepath.Join(dir, "proxy.png")
	bench := func(db string, rungs string, png string) string {
		t.Helper()
		out, err := runCmd(t, "bench", "proxy", "--db", db, "--panel", "2", "--seeds", "2", "--ref-seeds", "2", "--ref-train-size", "384", "--ref-epochs", "1",
			"--rungs", rungs, "--eta", "2", "--train-size", "128", "--epochs", "2", "--val-size", "96", "--test-size", "64", "--proxy-width", "0.25", "--proxy-res", "16",
			"--batch", "32", "--workers", "2", "--png", png, "--json")
		if err != nil {
			t.Fatalf("bench proxy --rungs %s: %v\n%s", rungs, err, out)
		}
		return out
	}
	out := bench(db, "2", png)
	type rung struct {
		Rung              int     `json:"rung"`
		TrainSize         int     `json:"train_size"`
		Epochs            int     `json:"epochs"`
		SeedStd           float64 `json:"seed_std"`
		TauSeeds          float64 `json:"tau_seeds"`
		TauReference      float64 `json:"tau_reference"`
		SpearmanReference float64 `json:"spearman_reference"`
		Archs             int     `json:"archs"`
	}
	var rep struct {
		Proxy             string  `json:"proxy"`
		SeedStd           float64 `json:"seed_std"`
		TauSeeds          float64 `json:"tau_seeds"`
		TauReference      float64 `json:"tau_reference"`
		SpearmanReference float64 `json:"spearman_reference"`
		Rungs             []rung  `json:"rungs"`
		Archs             []struct {
			ProxyMean float64   `json:"proxy_mean"`
			Proxy     []float64 `json:"proxy"`
			Rungs     []struct {
				Rung int     `json:"rung"`
				Runs int     `json:"runs"`
				Mean float64 `json:"mean"`
			} `json:"rungs"`
		} `json:"archs"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(rep.Rungs) != 2 || rep.Rungs[0].Rung != 0 || rep.Rungs[1].Rung != 1 {
		t.Fatalf("rungs %+v; want rungs 0 and 1, rung 0 first", rep.Rungs)
	}
	if r0, r1 := rep.Rungs[0], rep.Rungs[1]; r0.TrainSize != 128 || r0.Epochs != 1 || r1.TrainSize != 128 || r1.Epochs != 2 || r0.Archs != 3 || r1.Archs != 3 {
		t.Errorf("rungs %+v; want 128 x 1 and 128 x 2, over the 3 architectures", rep.Rungs)
	}
	top := rep.Rungs[1]
	if rep.SeedStd != top.SeedStd || rep.TauSeeds != top.TauSeeds || rep.TauReference != top.TauReference || rep.SpearmanReference != top.SpearmanReference || rep.Proxy != "128 images x 2 epochs" {
		t.Errorf("top level %+v; want the top rung's figures %+v", rep, top)
	}
	if rep.Rungs[0].SeedStd == top.SeedStd && rep.Rungs[0].TauReference == top.TauReference {
		t.Errorf("rung 0's figures are the top rung's: %+v", rep.Rungs)
	}
	if len(rep.Archs) != 3 {
		t.Fatalf("%d archs; want 3", len(rep.Archs))
	}
	for i, a := range rep.Archs {
		if len(a.Rungs) != 2 || a.Rungs[0].Runs != 2 || a.Rungs[1].Runs != 2 || math.Abs(a.Rungs[1].Mean-a.ProxyMean) > 1e-12 || len(a.Proxy) != 2 {
			t.Errorf("arch %d: %+v; want 2 runs at each rung, the top rung's mean as proxy_mean", i, a)
		}
		if a.Rungs[0].Mean == a.Rungs[1].Mean {
			t.Errorf("arch %d: the same mean %v at both rungs; want the rungs trained apart", i, a.Rungs[0].Mean)
		}
	}
	if fi, err := os.Stat(png); err != nil || fi.Size() < 1000 {
		t.Errorf("plot %s: %v", png, err)
	}
	// The reference is trained alike whatever the proxy's schedule: a
	// one-rung benchmark in another database trains the same reference
	// runs, and one in this database reuses them.
	type refs struct {
		ReferenceFrom int64 `json:"reference_from"`
		Archs         []struct {
			Ref []float64 `json:"reference_runs"`
		} `json:"archs"`
	}
	var two, alone, again refs
	for _, r := range []struct {
		out string
		to  *refs
	}{{out, &two}, {bench(filepath.Join(dir, "other.db"), "1", "-"), &alone}, {bench(db, "1", "-"), &again}} {
		if err := json.Unmarshal([]byte(r.out), r.to); err != nil {
			t.Fatal(err)
		}
	}
	if again.ReferenceFrom != 1 || alone.ReferenceFrom != 0 {
		t.Errorf("reference_from %d and %d; want the one-rung benchmark to reuse study 1's reference, the other to train its own", again.ReferenceFrom, alone.ReferenceFrom)
	}
	for i := range two.Archs {
		if !slices.Equal(two.Archs[i].Ref, alone.Archs[i].Ref) || !slices.Equal(two.Archs[i].Ref, again.Archs[i].Ref) {
			t.Errorf("arch %d: reference runs %v with 2 rungs, %v trained apart with 1, %v reused; want them alike", i, two.Archs[i].Ref, alone.Archs[i].Ref, again.Archs[i].Ref)
		}
	}

	text, err := runCmd(t, "show", "--db", db, "--study", "1")
	if err != nil || !strings.Contains(text, "the fidelity curve") || !strings.Contains(text, "rung 0 val") || !strings.Contains(text, "128 images x 1 epochs") {
		t.Errorf("show of a benchmark with rungs: %v; want its fidelity curve and each rung's column\n%s", err, text)
	}
}
