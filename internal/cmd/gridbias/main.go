// Command gridbias measures how far a grid's lowest rung favours the
// shallow, narrow or small points for starting fast: it compares the
// rung-0 accuracies of a grid study (successive halving) with those of a
// flat grid of the same points, each trained once at the top fidelity
// (effnas grid --rungs 1 --top-seeds 1). It reads both studies as
// effnas show --json prints them. docs/bench/grid-bias.sh runs it.
//
//	go run ./internal/cmd/gridbias DEFAULT.json FLAT.json
//
// For a compound grid, a grid's gap is the mean rung-0 accuracy of the
// points with alpha = 1 minus that of the points with alpha >= 1.2; for a
// single-dimension series, the accuracy at the smallest multiplier minus
// that at the largest. The bias is the default grid's gap minus the flat
// grid's: how much more the lowest rung favours the small end than a full
// training does. It also prints the default winner's rank in the flat
// grid (1 + the points strictly better, the base point left out).
package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"text/tabwriter"
)

type trial struct {
	Number   int      `json:"number"`
	State    string   `json:"state"`
	Key      string   `json:"key"`
	Rung     int      `json:"rung"`
	Seed     int      `json:"seed"`
	Accuracy *float64 `json:"accuracy"`
	Alpha    *float64 `json:"alpha"`
	Beta     *float64 `json:"beta"`
	Gamma    *float64 `json:"gamma"`
	Seconds  float64  `json:"seconds"`
}

type show struct {
	Study struct {
		ID      int64           `json:"id"`
		Kind    string          `json:"kind"`
		Config  json.RawMessage `json:"config"`
		Created string          `json:"created"`
		Updated string          `json:"updated"`
	} `json:"study"`
	Trials []trial `json:"trials"`
	Best   *trial  `json:"best"`
}

type point struct {
	key                string
	alpha, beta, gamma float64
	acc                float64
}

// Result is what gridbias prints with -json.
type Result struct {
	Dimension     string  `json:"dimension"` // "" for the compound grid
	Points        int     `json:"points"`    // compared: those with a complete rung-0 run in both grids
	LeftOut       int     `json:"left_out"`  // points with such a run in one grid only
	GapDefault    float64 `json:"gap_default"`
	GapFlat       float64 `json:"gap_flat"`
	Bias          float64 `json:"bias"`
	Winner        string  `json:"winner"`
	WinnerRank    int     `json:"winner_rank_in_flat"`
	Candidates    int     `json:"candidates"` // points besides the base
	TopThird      bool    `json:"winner_in_flat_top_third"`
	TrainSecsDef  float64 `json:"train_seconds_default"`
	TrainSecsFlat float64 `json:"train_seconds_flat"`
	// For a series, the same gap between its ends' thirds: the mean over
	// the third of the points with the smallest multipliers minus the mean
	// over the third with the largest (at least one point each). One run
	// at each end is as noisy as a run; a third of the series is less so.
	ThirdsDefault *float64 `json:"gap_thirds_default,omitempty"`
	ThirdsFlat    *float64 `json:"gap_thirds_flat,omitempty"`
	BiasThirds    *float64 `json:"bias_thirds,omitempty"`
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "gridbias:", err)
		os.Exit(1)
	}
}

func run(args []string, w io.Writer) error {
	asJSON := len(args) > 0 && args[0] == "-json"
	if asJSON {
		args = args[1:]
	}
	if len(args) != 2 {
		return fmt.Errorf("usage: gridbias [-json] DEFAULT.json FLAT.json (each from effnas show --json of a grid study)")
	}
	def, err := load(args[0])
	if err != nil {
		return err
	}
	flat, err := load(args[1])
	if err != nil {
		return err
	}
	dim := dimension(def)
	if d := dimension(flat); d != dim {
		return fmt.Errorf("%s is a %q grid and %s a %q grid; compare grids of the same points", args[0], dim, args[1], d)
	}
	dp, fp, left := common(points(def), points(flat))
	if len(dp) == 0 {
		return fmt.Errorf("%s and %s share no point with a complete rung-0 run (seed 0): nothing to compare", args[0], args[1])
	}
	res := Result{Dimension: dim, Points: len(dp), LeftOut: left, GapDefault: gap(dp, dim), GapFlat: gap(fp, dim)}
	res.Bias = res.GapDefault - res.GapFlat
	if dim != "" {
		d, f := thirdsGap(dp, dim), thirdsGap(fp, dim)
		b := d - f
		res.ThirdsDefault, res.ThirdsFlat, res.BiasThirds = &d, &f, &b
	}
	res.TrainSecsDef, res.TrainSecsFlat = seconds(def), seconds(flat)
	if def.Best != nil {
		res.Winner = def.Best.Key
		res.WinnerRank, res.Candidates = rank(fp, def.Best.Key)
		res.TopThird = res.WinnerRank > 0 && res.WinnerRank <= int(math.Ceil(float64(res.Candidates)/3))
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	what := "compound grid: gap = mean over alpha = 1 minus mean over alpha >= 1.2"
	if dim != "" {
		what = dim + " series: gap = accuracy at the smallest multiplier minus at the largest"
	}
	fmt.Fprintf(w, "%s (rung-0 accuracy, seed 0, %d points)\n", what, len(dp))
	if left > 0 {
		fmt.Fprintf(w, "%d points left out: their rung-0 run is complete in one grid only\n", left)
	}
	byLevel(w, dp, fp, dim)
	fmt.Fprintf(w, "gap: default %+.4f, flat %+.4f; bias %+.4f (%+.1f points)\n", res.GapDefault, res.GapFlat, res.Bias, 100*res.Bias)
	if res.BiasThirds != nil {
		fmt.Fprintf(w, "gap between the ends' thirds (%d points each): default %+.4f, flat %+.4f; bias %+.4f (%+.1f points)\n",
			max(len(dp)/3, 1), *res.ThirdsDefault, *res.ThirdsFlat, *res.BiasThirds, 100**res.BiasThirds)
	}
	if res.Winner != "" {
		fmt.Fprintf(w, "default winner %s: rank %d of %d in the flat grid (top third: %v)\n", res.Winner, res.WinnerRank, res.Candidates, res.TopThird)
	}
	fmt.Fprintf(w, "training seconds (summed over trials): default %.0f, flat %.0f\n", res.TrainSecsDef, res.TrainSecsFlat)
	return nil
}

func load(path string) (*show, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s show
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if s.Study.Kind != "grid" {
		return nil, fmt.Errorf("%s: study %d is a %q study; want a grid", path, s.Study.ID, s.Study.Kind)
	}
	return &s, nil
}

func dimension(s *show) string {
	var cfg struct {
		Dimension string `json:"dimension"`
	}
	_ = json.Unmarshal(s.Study.Config, &cfg)
	return cfg.Dimension
}

// points returns each point's complete rung-0 trial with seed 0.
func points(s *show) []point {
	var out []point
	for _, t := range s.Trials {
		if t.Rung != 0 || t.Seed != 0 || t.State != "complete" || t.Accuracy == nil || t.Alpha == nil {
			continue
		}
		out = append(out, point{t.Key, *t.Alpha, *t.Beta, *t.Gamma, *t.Accuracy})
	}
	return out
}

// common returns the points of a and b whose key both have, in their
// order, and how many of either were left out.
func common(a, b []point) ([]point, []point, int) {
	in := func(ps []point) map[string]bool {
		m := map[string]bool{}
		for _, p := range ps {
			m[p.key] = true
		}
		return m
	}
	ina, inb := in(a), in(b)
	keep := func(ps []point, other map[string]bool) []point {
		var out []point
		for _, p := range ps {
			if other[p.key] {
				out = append(out, p)
			}
		}
		return out
	}
	ca, cb := keep(a, inb), keep(b, ina)
	return ca, cb, len(a) - len(ca) + len(b) - len(cb)
}

func seconds(s *show) float64 {
	var sum float64
	for _, t := range s.Trials {
		sum += t.Seconds
	}
	return sum
}

// multiplier is the coefficient a series grows (alpha for a compound grid).
func multiplier(p point, dim string) float64 {
	switch dim {
	case "width":
		return p.beta
	case "resolution":
		return p.gamma
	}
	return p.alpha
}

func gap(ps []point, dim string) float64 {
	if dim == "" {
		var lo, hi []float64
		for _, p := range ps {
			switch {
			case p.alpha == 1:
				lo = append(lo, p.acc)
			case p.alpha >= 1.2-1e-9:
				hi = append(hi, p.acc)
			}
		}
		return mean(lo) - mean(hi)
	}
	return endsGap(ps, dim, 1)
}

// thirdsGap is a series' mean accuracy over the third of its points with
// the smallest multipliers minus that over the third with the largest.
func thirdsGap(ps []point, dim string) float64 {
	return endsGap(ps, dim, max(len(ps)/3, 1))
}

// endsGap is a series' mean accuracy over its k points with the smallest
// multipliers minus that over its k with the largest.
func endsGap(ps []point, dim string, k int) float64 {
	if len(ps) == 0 {
		return math.NaN()
	}
	s := slices.Clone(ps)
	slices.SortFunc(s, func(a, b point) int { return cmp.Compare(multiplier(a, dim), multiplier(b, dim)) })
	var lo, hi []float64
	for i := range k {
		lo, hi = append(lo, s[i].acc), append(hi, s[len(s)-1-i].acc)
	}
	return mean(lo) - mean(hi)
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// rank returns key's rank among ps by accuracy (1 + the points strictly
// better), the base point (1, 1, 1) left out, and the number ranked.
func rank(ps []point, key string) (int, int) {
	var acc float64
	found := false
	for _, p := range ps {
		if p.key == key {
			acc, found = p.acc, true
		}
	}
	if !found {
		return 0, 0
	}
	r, n := 1, 0
	for _, p := range ps {
		if p.alpha == 1 && p.beta == 1 && p.gamma == 1 {
			continue
		}
		n++
		if p.acc > acc {
			r++
		}
	}
	return r, n
}

// byLevel prints the mean rung-0 accuracy at each value of the grown
// coefficient, in both grids.
func byLevel(w io.Writer, dp, fp []point, dim string) {
	type agg struct{ d, f []float64 }
	m := map[float64]*agg{}
	var levels []float64
	add := func(ps []point, flat bool) {
		for _, p := range ps {
			v := math.Round(multiplier(p, dim)*100) / 100
			a, ok := m[v]
			if !ok {
				a = &agg{}
				m[v] = a
				levels = append(levels, v)
			}
			if flat {
				a.f = append(a.f, p.acc)
			} else {
				a.d = append(a.d, p.acc)
			}
		}
	}
	add(dp, false)
	add(fp, true)
	slices.Sort(levels)
	name := "alpha"
	switch dim {
	case "width":
		name = "beta"
	case "resolution":
		name = "gamma"
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%s\tpoints\tdefault rung 0\tflat\t\n", name)
	for _, v := range levels {
		a := m[v]
		fmt.Fprintf(tw, "%.2f\t%d\t%.4f\t%.4f\t\n", v, len(a.d), mean(a.d), mean(a.f))
	}
	tw.Flush()
}
