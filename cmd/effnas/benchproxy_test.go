package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/effnas/effnas/internal/testenv"
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

// scoredReport is the part of bench proxy --json a scored kind's tests read.
type scoredReport struct {
	Study         int64   `json:"study"`
	ProxyKind     string  `json:"proxy_kind"`
	ScoreUnit     string  `json:"score_unit"`
	ReferenceFrom int64   `json:"reference_from"`
	SeedStd       float64 `json:"seed_std"`
	TauSeeds      float64 `json:"tau_seeds"`
	TauReference  float64 `json:"tau_reference"`
	TauRefSeeds   float64 `json:"tau_reference_seeds"`
	Archs         []struct {
		Key       string    `json:"key"`
		FLOPs     int64     `json:"flops"`
		Params    int64     `json:"params"`
		Proxy     []float64 `json:"proxy"`
		ProxyMean float64   `json:"proxy_mean"`
		Ref       []float64 `json:"reference_runs"`
		Reference float64   `json:"reference"`
	} `json:"archs"`
	Scoring *struct {
		Threads     int     `json:"threads"`
		Workers     int     `json:"workers"`
		Seconds     float64 `json:"seconds"`
		WallSeconds float64 `json:"wall_seconds"`
		PerCore     float64 `json:"candidates_per_second_per_core"`
		Determinist bool    `json:"deterministic"`
		Steps       int     `json:"steps"`
		Warmup      float64 `json:"warmup"`
		Calib       int     `json:"calib"`
		ScoreImages int     `json:"score_images"`
		BinomialSD  float64 `json:"binomial_sd"`
		Seeds       []struct {
			Seed         int     `json:"seed"`
			TrainSeconds float64 `json:"train_seconds"`
			ScoreSeconds float64 `json:"score_seconds"`
			Scored       int     `json:"scored"`
		} `json:"seeds"`
	} `json:"scoring"`
}

// tinyPanel is bench proxy on a tiny panel (B0 and 3 random members, 2
// seeds, a proxy of 64 images x 1 epoch, a reference of 256 x 1 under 2
// seeds) in db.
func tinyPanel(db string, extra ...string) []string {
	return append([]string{"bench", "proxy", "--db", db, "--panel", "3", "--seeds", "2", "--ref-seeds", "2", "--ref-train-size", "256", "--ref-epochs", "1",
		"--train-size", "64", "--epochs", "1", "--val-size", "96", "--test-size", "64", "--proxy-width", "0.25", "--proxy-res", "16",
		"--batch", "32", "--workers", "2", "--png", "-"}, extra...)
}

// handTau is Kendall's tau-b counted pair by pair: (concordant -
// discordant) / sqrt((pairs - pairs tied in x) (pairs - pairs tied in y)).
func handTau(x, y []float64) float64 {
	var c, d, tx, ty, n float64
	for i := range x {
		for j := i + 1; j < len(x); j++ {
			n++
			dx, dy := x[i]-x[j], y[i]-y[j]
			switch {
			case dx == 0 && dy == 0:
				tx++
				ty++
			case dx == 0:
				tx++
			case dy == 0:
				ty++
			case dx*dy > 0:
				c++
			default:
				d++
			}
		}
	}
	return (c - d) / math.Sqrt((n-tx)*(n-ty))
}

// TestBenchProxyScores: --proxy params, flops, gradnorm and synflow score
// the panel instead of training it, and share one reference: the first
// benchmark trains it, each later one reuses it (reference_from, the same
// runs) whatever its kind. params and flops are each member's full-size
// count under every seed (seed sd 0, the seeds agree perfectly), and rank
// the panel as the counts do: tau_reference is the hand-counted tau of the
// counts against the reference means. gradnorm is reproducible from the
// seed and differs between seeds. The report names the score's unit and
// never calls it an accuracy.
func TestBenchProxyScores(t *testing.T) {
	db := filepath.Join(t.TempDir(), "z.db")
	bench := func(kind string) scoredReport {
		t.Helper()
		out, err := runCmd(t, tinyPanel(db, "--proxy", kind, "--json")...)
		if err != nil {
			t.Fatalf("bench proxy --proxy %s: %v\n%s", kind, err, out)
		}
		var r scoredReport
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if r.ProxyKind != kind || len(r.Archs) != 4 || r.Scoring == nil {
			t.Fatalf("--proxy %s: proxy_kind %q, %d archs, scoring %v; want %s, 4, the scoring's cost", kind, r.ProxyKind, len(r.Archs), r.Scoring, kind)
		}
		return r
	}
	params := bench("params")
	if params.ReferenceFrom != 0 {
		t.Errorf("the first benchmark reuses study %d's reference; want its own", params.ReferenceFrom)
	}
	for _, c := range []struct {
		r     scoredReport
		count func(i int) int64
		unit  string
	}{
		{params, func(i int) int64 { return params.Archs[i].Params }, "parameters"},
		{bench("flops"), func(i int) int64 { return params.Archs[i].FLOPs }, "multiply-adds"},
	} {
		r := c.r
		var counts, refs []float64
		for i, a := range r.Archs {
			n := float64(c.count(i))
			if n <= 0 || len(a.Proxy) != 2 || a.Proxy[0] != n || a.Proxy[1] != n || a.ProxyMean != n {
				t.Errorf("%s: arch %d scores %v (mean %v); want its %s %v under both seeds", r.ProxyKind, i, a.Proxy, a.ProxyMean, c.unit, n)
			}
			counts, refs = append(counts, n), append(refs, a.Reference)
		}
		if want := handTau(counts, refs); math.Abs(r.TauReference-want) > 1e-12 {
			t.Errorf("%s: tau_reference %v; want %v, the counts' tau against the reference means %v", r.ProxyKind, r.TauReference, want, refs)
		}
		if r.SeedStd != 0 || r.TauSeeds != 1 || !r.Scoring.Determinist || !strings.Contains(r.ScoreUnit, c.unit) {
			t.Errorf("%s: seed_std %v, tau_seeds %v, deterministic %v, unit %q; want 0, 1, true, %s", r.ProxyKind, r.SeedStd, r.TauSeeds, r.Scoring.Determinist, r.ScoreUnit, c.unit)
		}
	}
	g1, g2, syn := bench("gradnorm"), bench("gradnorm"), bench("synflow")
	differ := false
	for i, a := range g1.Archs {
		if !slices.Equal(a.Proxy, g2.Archs[i].Proxy) {
			t.Errorf("gradnorm of arch %d: %v, then %v; want it reproducible from the seed", i, a.Proxy, g2.Archs[i].Proxy)
		}
		differ = differ || a.Proxy[0] != a.Proxy[1]
		if a.Proxy[0] <= 0 || syn.Archs[i].Proxy[0] <= 0 || a.Proxy[0] == syn.Archs[i].Proxy[0] {
			t.Errorf("arch %d: gradnorm %v, synflow %v; want two positive scores of their own", i, a.Proxy, syn.Archs[i].Proxy)
		}
	}
	if !differ {
		t.Errorf("gradnorm is the same under both seeds for every arch; want each seed's own weights and batch")
	}
	for i, r := range []scoredReport{params, g1, g2, syn} {
		if i > 0 && r.ReferenceFrom == 0 {
			t.Errorf("%s (study %d) trained its own reference; want the earlier benchmarks' reused", r.ProxyKind, r.Study)
		}
		for j, a := range r.Archs {
			if len(a.Ref) != 2 || !slices.Equal(a.Ref, params.Archs[j].Ref) {
				t.Errorf("%s arch %d: reference runs %v; want the first benchmark's %v", r.ProxyKind, j, a.Ref, params.Archs[j].Ref)
			}
		}
	}
	// A training benchmark on the same database reuses it too.
	out, err := runCmd(t, tinyPanel(db, "--json")...)
	var train scoredReport
	if err != nil || json.Unmarshal([]byte(out), &train) != nil || train.ProxyKind != "train" || train.ReferenceFrom == 0 || train.Scoring != nil {
		t.Errorf("bench proxy (train) after the scores: %v, proxy_kind %q, reference_from %d, scoring %v; want train reusing the reference, no scoring\n%s",
			err, train.ProxyKind, train.ReferenceFrom, train.Scoring, out)
	}
	text, err := runCmd(t, "show", "--db", db, "--study", strconv.FormatInt(g1.Study, 10))
	if err != nil || !strings.Contains(text, "not an accuracy") || !strings.Contains(text, "gradnorm") || strings.Contains(text, "proxy val") || strings.Contains(text, "points between two single runs") {
		t.Errorf("show of a gradnorm benchmark: %v; want the score named, not called an accuracy\n%s", err, text)
	}
}

// TestBenchProxySupernet: --proxy supernet trains one supernet per seed
// (--supernet-steps) and scores every member on it, after K
// (--score-calib) calibration batches, on V (--score-images) validation
// images: each score is a fraction of V, the JSON reports K, V, the
// binomial sd sqrt(p(1-p)/V) at the mean score p, each supernet's training
// and scoring time and the candidates scored a second per core; the
// reference is reused.
func TestBenchProxySupernet(t *testing.T) {
	db := filepath.Join(t.TempDir(), "s.db")
	if out, err := runCmd(t, tinyPanel(db, "--proxy", "params")...); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	out, err := runCmd(t, tinyPanel(db, "--proxy", "supernet", "--supernet-steps", "6", "--supernet-warmup", "0.5", "--score-calib", "1", "--score-images", "32", "--json")...)
	if err != nil {
		t.Fatalf("bench proxy --proxy supernet: %v\n%s", err, out)
	}
	var r scoredReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	sc := r.Scoring
	if r.ProxyKind != "supernet" || r.ReferenceFrom != 1 || sc == nil || len(r.Archs) != 4 {
		t.Fatalf("proxy_kind %q, reference_from %d, scoring %v, %d archs; want supernet, study 1's reference, 4 archs scored", r.ProxyKind, r.ReferenceFrom, sc, len(r.Archs))
	}
	var all []float64
	for i, a := range r.Archs {
		for _, v := range a.Proxy {
			if k := v * 32; v < 0 || v > 1 || math.Abs(k-math.Round(k)) > 1e-9 {
				t.Errorf("arch %d scores %v; want accuracies on 32 images", i, a.Proxy)
			}
		}
		if len(a.Proxy) != 2 {
			t.Errorf("arch %d: %d scores; want one on each of 2 supernets", i, len(a.Proxy))
		}
		all = append(all, a.Proxy...)
	}
	p, _ := meanOf(all)
	if want := math.Sqrt(p * (1 - p) / 32); sc.Steps != 6 || sc.Warmup != 0.5 || sc.Calib != 1 || sc.ScoreImages != 32 || math.Abs(sc.BinomialSD-want) > 1e-12 {
		t.Errorf("scoring %+v; want 6 steps, warm-up 0.5, K 1, V 32, binomial sd %v", *sc, want)
	}
	if len(sc.Seeds) != 2 || sc.PerCore <= 0 || sc.Workers != 2 || sc.WallSeconds <= 0 {
		t.Fatalf("scoring %+v; want 2 supernets, 2 at once, the wall time and a rate", *sc)
	}
	for _, s := range sc.Seeds {
		if s.TrainSeconds <= 0 || s.ScoreSeconds <= 0 || s.Scored != 4 {
			t.Errorf("supernet %+v; want its training and scoring times, 4 candidates scored", s)
		}
	}
	// The warm-up is the one asked for: without it the supernets train
	// other paths, and score otherwise.
	out, err = runCmd(t, tinyPanel(db, "--proxy", "supernet", "--supernet-steps", "6", "--supernet-warmup", "-1", "--score-calib", "1", "--score-images", "32", "--json")...)
	var cold scoredReport
	if err != nil || json.Unmarshal([]byte(out), &cold) != nil || cold.Scoring == nil || cold.Scoring.Warmup != -1 {
		t.Fatalf("bench proxy --supernet-warmup -1: %v\n%s", err, out)
	}
	same := true
	for i, a := range cold.Archs {
		same = same && slices.Equal(a.Proxy, r.Archs[i].Proxy)
	}
	if same {
		t.Errorf("the same scores with a warm-up over half the steps and without: want the warm-up applied")
	}
}

func meanOf(xs []float64) (float64, int) {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs)), len(xs)
}

// TestBenchProxyKindRefused: an unknown --proxy, the supernet's flags
// with another kind, and rungs with a score are refused as usage errors
// (exit status 2) naming what is accepted, before the database is created.
func TestBenchProxyKindRefused(t *testing.T) {
	dir := t.TempDir()
	for i, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--proxy", "snip"}, []string{`--proxy "snip"`, "train, supernet, synflow, gradnorm, params, flops"}},
		{[]string{"--proxy", "gradnorm", "--supernet-steps", "10"}, []string{"--supernet-steps", "--proxy supernet only"}},
		{[]string{"--score-images", "100"}, []string{"--score-images", "with --proxy train"}},
		{[]string{"--proxy", "flops", "--rungs", "2"}, []string{"--rungs 2 with --proxy flops"}},
		{[]string{"--proxy", "supernet", "--supernet-steps", "0"}, []string{"--supernet-steps 0"}},
		{[]string{"--proxy", "params", "--supernet-warmup", "0.1"}, []string{"--supernet-warmup with --proxy params"}},
		{[]string{"--proxy", "supernet", "--supernet-warmup", "2"}, []string{"--supernet-warmup 2"}},
	} {
		db := filepath.Join(dir, fmt.Sprintf("never%d.db", i))
		_, err := runCmd(t, tinyPanel(db, c.args...)...)
		var u *usageError
		if !errors.As(err, &u) {
			t.Errorf("%v: %v; want a usage error (exit status 2)", c.args, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: %q; want it to say %q", c.args, err, w)
			}
		}
		if _, serr := os.Stat(db); !errors.Is(serr, os.ErrNotExist) {
			t.Errorf("%v: the database was written (%v); want nothing written", c.args, serr)
		}
	}
}

// TestBenchProxyScoresPostgres: on PostgreSQL, whose JSONB config keeps
// neither the bytes nor the key order, a gradnorm benchmark reuses the
// reference of a params benchmark, and its stored kind and scoring come
// back in its report (show, which reads them from the database).
func TestBenchProxyScoresPostgres(t *testing.T) {
	db := testenv.PostgresSchema(t, testenv.PostgresURL(t))
	if out, err := runCmd(t, tinyPanel(db, "--proxy", "params")...); err != nil {
		t.Fatalf("bench proxy --proxy params: %v\n%s", err, out)
	}
	out, err := runCmd(t, tinyPanel(db, "--proxy", "gradnorm", "--json")...)
	if err != nil {
		t.Fatalf("bench proxy --proxy gradnorm: %v\n%s", err, out)
	}
	var r scoredReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if r.ProxyKind != "gradnorm" || r.ReferenceFrom != 1 || r.Scoring == nil || len(r.Scoring.Seeds) != 2 || r.Scoring.Seeds[1].Scored != 4 {
		t.Fatalf("proxy_kind %q, reference_from %d, scoring %+v; want gradnorm reusing study 1's reference, 4 scores under each of 2 seeds", r.ProxyKind, r.ReferenceFrom, r.Scoring)
	}
	text, err := runCmd(t, "show", "--db", db, "--study", strconv.FormatInt(r.Study, 10))
	if err != nil || !strings.Contains(text, "gradnorm at initialisation") || !strings.Contains(text, "scoring: 8 scores") {
		t.Errorf("show of the gradnorm benchmark: %v; want its kind and scoring as stored\n%s", err, text)
	}
}
