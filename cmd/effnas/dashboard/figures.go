package dashboard

import (
	"cmp"
	"encoding/json"
	"math"
	"slices"
	"time"

	"github.com/effnas/effnas/search"
	"github.com/effnas/effnas/space"
	"github.com/effnas/effnas/store"
)

// The figures' data. Each is served as JSON and drawn as SVG from the
// same value, so a script reads exactly what the page shows.

// BestCurve is the best reward as a study went on: every complete run,
// and after each top-rung result the mean reward of the candidate effnas
// would have reported had it stopped then, chosen as it chooses the study's
// best (search.Best, a grid's Best): the curve ends on Summary.Best.
type BestCurve struct {
	Study   int64        `json:"study"`
	Name    string       `json:"name"`
	Start   time.Time    `json:"start"` // the study's creation; times are seconds after it
	TopRung int          `json:"top_rung"`
	Runs    []RunPoint   `json:"runs"`
	Best    []CurvePoint `json:"best"` // only where the best (its first run) or its mean changed
	End     float64      `json:"end"`  // seconds after the start of the last finished run
}

// RunPoint is one complete run.
type RunPoint struct {
	Trial   int     `json:"trial"`
	Rung    int     `json:"rung"`
	Seconds float64 `json:"seconds"` // when it finished, after the study's start
	Reward  float64 `json:"reward"`
}

// CurvePoint is the best so far from Seconds on.
type CurvePoint struct {
	Seconds float64 `json:"seconds"`
	Reward  float64 `json:"reward"`
	Trial   int     `json:"trial"` // the best candidate's first top-rung run
}

func (v *study) bestCurve() BestCurve {
	c := BestCurve{Study: v.ID, Name: v.Name, Start: v.Created, TopRung: v.halving.Top(), Runs: []RunPoint{}, Best: []CurvePoint{}}
	done := make([]store.Trial, 0, len(v.trials))
	var extra []store.Trial // top-rung runs beyond a candidate's first seed: they make it a finalist when planned
	for _, t := range v.trials {
		if t.State == store.TrialComplete {
			done = append(done, t)
		}
		if t.Rung == c.TopRung && t.Seed%search.RetrySeed > 0 {
			extra = append(extra, t)
		}
	}
	slices.SortStableFunc(done, func(a, b store.Trial) int { return a.Updated.Compare(b.Updated) })
	slices.SortStableFunc(extra, func(a, b store.Trial) int { return a.Created.Compare(b.Created) })
	rank := v.rank()
	// The top rung's standings as they stood after each result, kept up
	// to date one result at a time and ranked as the study's best is
	// (computing Standings again at every result costs too much on a big
	// study). The best is looked for among all candidates only when the
	// best's own mean or the finalists change; otherwise the candidate
	// that changed either beats it or not.
	type sums struct{ acc, reward float64 }
	standing, total := map[string]*search.Standing{}, map[string]*sums{}
	finalist := map[string]bool{}
	mark := func(s *search.Standing) {
		s.Finalist = v.halving.TopSeeds < 2 || finalist[s.Key]
		s.MissingSeeds = 0
		if s.Finalist {
			s.MissingSeeds = max(0, v.halving.TopSeeds-s.Seeds)
		}
	}
	var best *search.Standing
	rescan := func() {
		best = nil
		for _, s := range standing {
			if !v.isBase(s.Trial) && (best == nil || rank(*s, *best) < 0) {
				best = s
			}
		}
	}
	lastTrial, lastReward := -1, math.NaN()
	for _, t := range done {
		sec := t.Updated.Sub(v.Created).Seconds()
		c.End = max(c.End, sec)
		c.Runs = append(c.Runs, RunPoint{Trial: t.Number, Rung: t.Rung, Seconds: sec, Reward: t.Reward})
		if t.Rung != c.TopRung || rank == nil {
			continue
		}
		scan := false
		for len(extra) > 0 && !extra[0].Created.After(t.Updated) {
			k := extra[0].Key
			extra = extra[1:]
			if !finalist[k] {
				finalist[k] = true
				if s := standing[k]; s != nil {
					mark(s)
					scan = true
				}
			}
		}
		s, ok := standing[t.Key]
		if !ok {
			s = &search.Standing{Key: t.Key, Trial: t}
			standing[t.Key], total[t.Key] = s, &sums{}
		}
		if t.Number < s.Trial.Number {
			s.Trial = t
		}
		sum := total[t.Key]
		sum.acc += t.Accuracy
		sum.reward += t.Reward
		s.Seeds++
		s.Accuracy, s.Reward = sum.acc/float64(s.Seeds), sum.reward/float64(s.Seeds)
		mark(s)
		switch {
		case scan || s == best:
			rescan()
		case !v.isBase(s.Trial) && (best == nil || rank(*s, *best) < 0):
			best = s
		}
		if best != nil && (best.Trial.Number != lastTrial || best.Reward != lastReward) {
			lastTrial, lastReward = best.Trial.Number, best.Reward
			c.Best = append(c.Best, CurvePoint{Seconds: sec, Reward: best.Reward, Trial: best.Trial.Number})
		}
	}
	return c
}

// ParetoFigure is accuracy against full-size multiply-adds: every complete
// run at its rung, each top-rung candidate's mean over its seeds, their
// Pareto front, and iso-lines of the reward ACC * (FLOPS/T)^W.
type ParetoFigure struct {
	Target     float64        `json:"target"`
	W          float64        `json:"w"`
	TopRung    int            `json:"top_rung"`
	Runs       []ScatterPoint `json:"runs"`
	Candidates []ScatterPoint `json:"candidates"`
	Front      []ScatterPoint `json:"front"`
	Iso        []IsoLine      `json:"iso"`
}

// ScatterPoint is a run (Seeds 0) or a candidate's mean over Seeds runs.
type ScatterPoint struct {
	Trial    int     `json:"trial"`
	Key      string  `json:"key"`
	Rung     int     `json:"rung"`
	Seeds    int     `json:"seeds,omitempty"`
	Accuracy float64 `json:"accuracy"`
	Reward   float64 `json:"reward"`
	FLOPs    int64   `json:"flops"`
}

// IsoLine is where the reward equals Reward: accuracy = Reward /
// (FLOPS/T)^W, sampled as (multiply-adds, accuracy) pairs.
type IsoLine struct {
	Reward float64      `json:"reward"`
	Points [][2]float64 `json:"points"`
}

func standingPoint(s search.Standing) ScatterPoint {
	return ScatterPoint{Trial: s.Trial.Number, Key: s.Key, Rung: s.Trial.Rung, Seeds: s.Seeds, Accuracy: s.Accuracy, Reward: s.Reward, FLOPs: s.Trial.FLOPs}
}

func (v *study) paretoFigure() ParetoFigure {
	f := ParetoFigure{TopRung: v.halving.Top(), Runs: []ScatterPoint{}, Candidates: []ScatterPoint{}, Front: []ScatterPoint{}, Iso: []IsoLine{}}
	if s := v.searcher(); s != nil {
		r := s.Config().Reward
		f.Target, f.W = r.Target, *r.W
	}
	for _, t := range v.trials {
		if t.State == store.TrialComplete {
			f.Runs = append(f.Runs, ScatterPoint{Trial: t.Number, Key: t.Key, Rung: t.Rung, Accuracy: t.Accuracy, Reward: t.Reward, FLOPs: t.FLOPs})
		}
	}
	for _, s := range v.standings() {
		f.Candidates = append(f.Candidates, standingPoint(s))
	}
	for _, s := range v.pareto() {
		f.Front = append(f.Front, standingPoint(s))
	}
	if f.Target > 0 && len(f.Runs) > 0 {
		f.Iso = isoLines(f)
	}
	return f
}

// isoLines picks a few reward levels across the runs' accuracies, the
// best candidate's reward among them, and samples each across the
// multiply-adds the runs span.
func isoLines(f ParetoFigure) []IsoLine {
	lo, hi := f.Runs[0].FLOPs, f.Runs[0].FLOPs
	alo, ahi := 1.0, 0.0
	for _, p := range f.Runs {
		lo, hi = min(lo, p.FLOPs), max(hi, p.FLOPs)
		alo, ahi = min(alo, p.Accuracy), max(ahi, p.Accuracy)
	}
	flo, fhi := float64(lo)*0.9, float64(hi)*1.1
	mid := math.Sqrt(flo * fhi)
	factor := math.Pow(mid/f.Target, f.W)
	var levels []float64
	for _, r := range niceTicks(alo*factor, ahi*factor, 4) {
		if r > 0 {
			levels = append(levels, r)
		}
	}
	if len(f.Front) > 0 {
		best := slices.MaxFunc(f.Candidates, func(a, b ScatterPoint) int { return cmp.Compare(a.Reward, b.Reward) }).Reward
		levels = append(levels, best)
	}
	out := make([]IsoLine, 0, len(levels))
	const samples = 24
	for _, r := range levels {
		l := IsoLine{Reward: r}
		for i := range samples + 1 {
			x := flo * math.Pow(fhi/flo, float64(i)/samples)
			l.Points = append(l.Points, [2]float64{math.Round(x), r / math.Pow(x/f.Target, f.W)})
		}
		out = append(out, l)
	}
	return out
}

// ParallelFigure is parallel coordinates over a search's choices, one
// axis per dimension of its space and the reward as the last axis, one
// line per candidate coloured by its reward at Rung (rung 0: every
// candidate is measured alike there).
type ParallelFigure struct {
	Axes  []ParallelAxis `json:"axes"`
	Rung  int            `json:"rung"`
	Total int            `json:"total"` // candidates with a complete run at Rung
	Lines []ParallelLine `json:"lines"` // the lines drawn, best first: all, or the best and an even sample of the rest
	Low   float64        `json:"reward_low"`
	High  float64        `json:"reward_high"`
}

// ParallelAxis is one dimension of the space and its options.
type ParallelAxis struct {
	Name    string   `json:"name"`
	Options []string `json:"options"`
}

// ParallelLine is one candidate: an option index per axis but the last.
type ParallelLine struct {
	Trial   int     `json:"trial"`
	Key     string  `json:"key"`
	Choices []int   `json:"choices"`
	Reward  float64 `json:"reward"`
}

// maxLines bounds the lines a parallel-coordinates figure draws.
const maxLines = 400

func (v *study) parallelFigure() ParallelFigure {
	f := ParallelFigure{Axes: []ParallelAxis{}, Lines: []ParallelLine{}}
	var sp *space.Space
	if s := v.searcher(); s != nil {
		sp = s.Space()
	} else {
		return f
	}
	for _, d := range sp.Dims() {
		f.Axes = append(f.Axes, ParallelAxis{Name: d.Name, Options: d.Options})
	}
	var runs []store.Trial
	for _, t := range v.trials {
		if t.State == store.TrialComplete && t.Rung == f.Rung && t.Seed == 0 {
			runs = append(runs, t)
		}
	}
	f.Total = len(runs)
	slices.SortStableFunc(runs, func(a, b store.Trial) int { return cmp.Compare(b.Reward, a.Reward) })
	if len(runs) > 0 {
		f.High, f.Low = runs[0].Reward, runs[len(runs)-1].Reward
	}
	if len(runs) > maxLines {
		// The best half of the limit, and the rest evenly by rank, so the
		// colours still span every reward.
		picked := runs[: maxLines/2 : maxLines/2]
		rest := runs[maxLines/2:]
		n := maxLines - len(picked)
		for i := range n {
			picked = append(picked, rest[i*(len(rest)-1)/(n-1)])
		}
		runs = picked
	}
	for _, t := range runs {
		var c []int
		if err := json.Unmarshal(t.Choices, &c); err != nil || len(c) != len(f.Axes) {
			continue
		}
		f.Lines = append(f.Lines, ParallelLine{Trial: t.Number, Key: t.Key, Choices: c, Reward: t.Reward})
	}
	return f
}

// RungFigure is successive halving's learning curves: each candidate's
// accuracy at every rung it reached (the mean over its seeds at the top),
// by the images it trained on. A candidate that stopped below the top is
// one that was not promoted.
type RungFigure struct {
	Rungs      []RungInfo  `json:"rungs"`
	Candidates []RungCurve `json:"candidates"`
}

// RungInfo is a rung's fidelity.
type RungInfo struct {
	Rung   int `json:"rung"`
	Images int `json:"images"` // training images times epochs
}

// RungCurve is one candidate's accuracies, by rung from 0.
type RungCurve struct {
	Trial    int       `json:"trial"` // its rung-0 run
	Key      string    `json:"key"`
	Accuracy []float64 `json:"accuracy"`
	Stopped  bool      `json:"stopped"` // finished below the top rung and not promoted
}

func (v *study) rungFigure() RungFigure {
	f := RungFigure{Rungs: []RungInfo{}, Candidates: []RungCurve{}}
	for k := range v.halving.Rungs {
		fid := v.src.Fidelity(store.Trial{Rung: k})
		f.Rungs = append(f.Rungs, RungInfo{Rung: k, Images: fid.Images()})
	}
	type acc struct {
		sum  []float64
		n    []int
		up   int // highest rung planned
		zero int
	}
	byKey := map[string]*acc{}
	var order []string
	for _, t := range v.trials {
		if t.Rung >= len(f.Rungs) {
			continue
		}
		a, ok := byKey[t.Key]
		if !ok {
			a = &acc{sum: make([]float64, len(f.Rungs)), n: make([]int, len(f.Rungs)), zero: -1}
			byKey[t.Key] = a
			order = append(order, t.Key)
		}
		a.up = max(a.up, t.Rung)
		if t.State == store.TrialComplete {
			a.sum[t.Rung] += t.Accuracy
			a.n[t.Rung]++
			if t.Rung == 0 && a.zero < 0 {
				a.zero = t.Number
			}
		}
	}
	for _, k := range order {
		a := byKey[k]
		if a.zero < 0 {
			continue
		}
		c := RungCurve{Trial: a.zero, Key: k}
		for r := range len(f.Rungs) {
			if a.n[r] == 0 {
				break
			}
			c.Accuracy = append(c.Accuracy, a.sum[r]/float64(a.n[r]))
		}
		c.Stopped = a.up == len(c.Accuracy)-1 && a.up < len(f.Rungs)-1
		f.Candidates = append(f.Candidates, c)
	}
	return f
}

// B0 is a search's best candidate as a full-size network.
type B0 struct {
	Trial      int           `json:"trial"`
	Key        string        `json:"key"`
	Finalist   bool          `json:"finalist"`
	Blocks     []string      `json:"blocks"`
	Timm       []string      `json:"timm"`
	Resolution int           `json:"resolution"`
	Classes    int           `json:"classes"`
	Stem       int           `json:"stem"`
	Head       int           `json:"head"`
	Params     int64         `json:"params"`
	FLOPs      int64         `json:"flops"`
	Layers     []space.Layer `json:"layers"`
}

// b0 returns the search's current best network, or nil.
func (v *study) b0() (*B0, error) {
	s := v.searcher()
	if s == nil {
		return nil, nil
	}
	all := v.standings()
	if len(all) == 0 {
		return nil, nil
	}
	best := &all[0] // search.Best
	full, err := s.FullArch(best.Trial)
	if err != nil {
		return nil, err
	}
	return &B0{Trial: best.Trial.Number, Key: best.Key, Finalist: best.Finalist, Blocks: space.FormatBlocks(full.Blocks),
		Timm: space.FormatTimmBlocks(full.Blocks), Resolution: full.Resolution, Classes: full.Classes, Stem: full.Stem, Head: full.Head,
		Params: full.Params(), FLOPs: full.FLOPs(), Layers: full.Layers()}, nil
}
