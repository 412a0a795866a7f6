package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeShow writes a grid study as effnas show --json prints it: one
// complete rung-0 run per point (and a later run that must not count),
// with best naming winner.
func writeShow(t *testing.T, dir, name, dimension string, pts []point, winner string) string {
	t.Helper()
	var trials []map[string]any
	for i, p := range pts {
		a, b, g, acc := p.alpha, p.beta, p.gamma, p.acc
		trials = append(trials, map[string]any{"number": i, "state": "complete", "key": p.key, "rung": 0, "seed": 0,
			"accuracy": acc, "alpha": a, "beta": b, "gamma": g, "seconds": 10.0})
		trials = append(trials, map[string]any{"number": 100 + i, "state": "complete", "key": p.key, "rung": 1, "seed": 0,
			"accuracy": 0.1, "alpha": a, "beta": b, "gamma": g, "seconds": 1.0})
	}
	cfg, _ := json.Marshal(map[string]any{"dimension": dimension})
	doc := map[string]any{"study": map[string]any{"id": 1, "kind": "grid", "config": json.RawMessage(cfg)},
		"trials": trials, "best": map[string]any{"key": winner}}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestGridBias checks the measure against a hand calculation. Default
// grid: alpha = 1 points 0.80 and 0.90 (mean 0.85), alpha 1.1 (between:
// in neither mean) 0.50, alpha >= 1.2 points 0.60 and 0.70 (mean 0.65):
// gap 0.20. Flat grid: 0.95, 0.97 (0.96), 0.99, 0.96, 0.98 (0.97): gap
// -0.01. Bias 0.21. The default's winner, a1.20 (0.98 in the flat grid),
// has only a1.10 (0.99) above it, the base left out: rank 2 of 4, in the
// top ceil(4/3) = 2.
func TestGridBias(t *testing.T) {
	dir := t.TempDir()
	keys := []string{"base", "a1.00_b1.10", "a1.10", "a1.20", "a1.30"}
	scal := [][3]float64{{1, 1, 1}, {1, 1.1, 1.2}, {1.1, 1.1, 1.1}, {1.2, 1, 1.2}, {1.3, 1.1, 1}}
	mk := func(accs ...float64) []point {
		var ps []point
		for i, a := range accs {
			ps = append(ps, point{keys[i], scal[i][0], scal[i][1], scal[i][2], a})
		}
		return ps
	}
	def := writeShow(t, dir, "def.json", "", mk(0.80, 0.90, 0.50, 0.70, 0.60), "a1.20")
	flat := writeShow(t, dir, "flat.json", "", mk(0.95, 0.97, 0.99, 0.98, 0.96), "base")
	var out bytes.Buffer
	if err := run([]string{"-json", def, flat}, &out); err != nil {
		t.Fatal(err)
	}
	var r Result
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	near := func(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }
	if !near(r.GapDefault, 0.20) || !near(r.GapFlat, -0.01) || !near(r.Bias, 0.21) || r.WinnerRank != 2 || r.Candidates != 4 || !r.TopThird {
		t.Errorf("result %+v; want gaps 0.20 and -0.01, bias 0.21, the winner second of 4", r)
	}
	if r.BiasThirds != nil {
		t.Errorf("compound grid: a thirds' bias %v; want none (it is a series' measure)", *r.BiasThirds)
	}
	// A depth series: the smallest multiplier's accuracy minus the
	// largest's: default 0.80 - 0.60 = 0.20, flat 0.95 - 0.96 = -0.01.
	def = writeShow(t, dir, "ddef.json", "depth", mk(0.80, 0.90, 0.50, 0.70, 0.60)[2:], "a1.10")
	flat = writeShow(t, dir, "dflat.json", "depth", mk(0.95, 0.97, 0.99, 0.98, 0.96)[2:], "a1.10")
	out.Reset()
	if err := run([]string{"-json", def, flat}, &out); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	if !near(r.GapDefault, -0.10) || !near(r.GapFlat, 0.03) || !near(r.Bias, -0.13) || r.WinnerRank != 1 {
		t.Errorf("depth series %+v; want gaps 0.50-0.60 = -0.10 and 0.99-0.96 = 0.03, the winner a1.10 first of 3", r)
	}
	// Three points: a third is one point, so the thirds' gap is the ends'.
	if r.BiasThirds == nil || !near(*r.ThirdsDefault, -0.10) || !near(*r.BiasThirds, -0.13) {
		t.Errorf("depth series of 3: thirds' gaps %v, %v; want the ends' -0.10 and bias -0.13", r.ThirdsDefault, r.BiasThirds)
	}
	// Seven width points, listed out of order: a third is 2 points.
	// Default by beta 1.00..1.30: 0.90 0.80 0.70 0.75 0.60 0.50 0.40: thirds
	// 0.85 - 0.45 = 0.40; flat 0.90 0.90 0.80 0.85 0.90 0.80 0.90: 0.90 -
	// 0.85 = 0.05. Bias 0.35; the ends alone give 0.50 - 0.00 = 0.50.
	var wd, wf []point
	da := []float64{0.90, 0.80, 0.70, 0.75, 0.60, 0.50, 0.40}
	fa := []float64{0.90, 0.90, 0.80, 0.85, 0.90, 0.80, 0.90}
	for _, i := range []int{3, 6, 0, 5, 1, 4, 2} {
		b := 1 + 0.05*float64(i)
		wd = append(wd, point{"w" + string(rune('0'+i)), 1, b, 1, da[i]})
		wf = append(wf, point{"w" + string(rune('0'+i)), 1, b, 1, fa[i]})
	}
	// A point whose run failed in the flat series (present in the default
	// only) is left out of both: here it would be the largest beta.
	wd = append(wd, point{"w9", 1, 1.45, 1, 0.10})
	def = writeShow(t, dir, "wdef.json", "width", wd, "w0")
	flat = writeShow(t, dir, "wflat.json", "width", wf, "w0")
	out.Reset()
	if err := run([]string{"-json", def, flat}, &out); err != nil {
		t.Fatal(err)
	}
	r = Result{}
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	if r.Points != 7 || r.LeftOut != 1 {
		t.Errorf("width series: %d points compared, %d left out; want 7 and the one the flat series lacks", r.Points, r.LeftOut)
	}
	if !near(r.Bias, 0.50) || r.BiasThirds == nil || !near(*r.ThirdsDefault, 0.40) || !near(*r.ThirdsFlat, 0.05) || !near(*r.BiasThirds, 0.35) {
		t.Errorf("width series %+v (thirds %v, %v, %v); want the ends' bias 0.50, thirds' gaps 0.40 and 0.05, bias 0.35", r, r.ThirdsDefault, r.ThirdsFlat, r.BiasThirds)
	}
	if err := run([]string{writeShow(t, dir, "e1.json", "width", nil, ""), writeShow(t, dir, "e2.json", "width", nil, "")}, &out); err == nil || !strings.Contains(err.Error(), "share no point") {
		t.Errorf("two empty series: %v; want an error saying there is nothing to compare", err)
	}
	if err := run([]string{def, writeShow(t, dir, "x.json", "", nil, "")}, &out); err == nil {
		t.Error("a depth series compared with a compound grid: no error")
	}
}
