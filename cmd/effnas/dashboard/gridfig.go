package dashboard

import (
	"cmp"
	"context"
	"slices"

	"github.com/effnas/effnas/grid"
	"github.com/effnas/effnas/search"
	"github.com/effnas/effnas/store"
)

// GridFigure is a grid study: its points with their accuracy and interval,
// the other grid studies of the same base network beside them (the
// single-dimension series), the winner and the family B1..B7 it gives.
type GridFigure struct {
	Study     int64         `json:"study"`
	Dimension string        `json:"dimension"` // "" for the compound grid
	Phi       float64       `json:"phi"`
	Target    float64       `json:"target"` // alpha * beta^2 * gamma^2 aimed at
	From      int64         `json:"from"`   // the search study the base came from (0: given by block strings)
	FromTrial int           `json:"from_trial"`
	TopRung   int           `json:"top_rung"`
	Points    []GridPoint   `json:"points"`
	Series    []GridSeries  `json:"series"`
	Winner    *GridPoint    `json:"winner"`
	Family    []grid.Member `json:"family"`
}

// GridPoint is one point of a grid: its first run's accuracy at rung 0,
// where every point is measured alike, and where it reached the top rung
// the mean over its seeds there with mean ± 2 standard errors.
type GridPoint struct {
	Trial      int              `json:"trial"`
	Key        string           `json:"key"`
	Alpha      float64          `json:"alpha"`
	Beta       float64          `json:"beta"`
	Gamma      float64          `json:"gamma"`
	Constraint float64          `json:"constraint"` // alpha * beta^2 * gamma^2
	Params     int64            `json:"params"`
	FLOPs      int64            `json:"flops"` // full-size multiply-adds
	State      store.TrialState `json:"state"` // of its rung-0 run
	Accuracy   *float64         `json:"accuracy"`
	Rung       int              `json:"rung"` // the highest rung it finished (-1: none)
	Seeds      int              `json:"seeds"`
	Mean       float64          `json:"top_accuracy"`
	Std        float64          `json:"top_accuracy_std"`
	Low        float64          `json:"low"`
	High       float64          `json:"high"`
	Finalist   bool             `json:"finalist"`
	Tied       bool             `json:"tied"` // its interval overlaps the winner's
	Winner     bool             `json:"winner"`
	Base       bool             `json:"base"` // (1, 1, 1): the reference
}

// GridSeries is another grid study of the same base at the same phi.
type GridSeries struct {
	Study     int64             `json:"study"`
	Name      string            `json:"name"`
	Dimension string            `json:"dimension"`
	Status    store.StudyStatus `json:"status"`
	Points    []GridPoint       `json:"points"`
}

// gridPoints lists a grid study's points in trial order.
func (v *study) gridPoints() []GridPoint {
	g := v.grid()
	if g == nil {
		return nil
	}
	top := map[string]search.Standing{}
	for _, s := range v.standings() {
		top[s.Key] = s
	}
	tied := map[string]bool{}
	for _, s := range g.Tied(v.trials) {
		tied[s.Key] = true
	}
	win := ""
	if b := g.Best(v.trials); b != nil {
		win = b.Key
	}
	rung := map[string]int{}
	first := map[string]store.Trial{} // rung-0 run, or the retry that stands in for it
	var order []string
	for _, t := range v.trials {
		if _, ok := rung[t.Key]; !ok {
			rung[t.Key] = -1
		}
		if t.State == store.TrialComplete {
			rung[t.Key] = max(rung[t.Key], t.Rung)
		}
		if t.Rung != 0 || (t.Seed != 0 && t.Seed != search.RetrySeed) {
			continue
		}
		f, ok := first[t.Key]
		switch {
		case !ok:
			order = append(order, t.Key)
			first[t.Key] = t
		case t.Seed == search.RetrySeed && f.State != store.TrialComplete:
			first[t.Key] = t
		}
	}
	out := make([]GridPoint, 0, len(order))
	for _, k := range order {
		t := first[k]
		s := grid.Scaling(t)
		p := GridPoint{Trial: t.Number, Key: k, Alpha: s.Alpha, Beta: s.Beta, Gamma: s.Gamma, Constraint: s.Constraint(),
			Params: t.Params, FLOPs: t.FLOPs, State: t.State, Rung: rung[k], Tied: tied[k], Winner: k == win, Base: s == grid.Base}
		if t.State == store.TrialComplete {
			a := t.Accuracy
			p.Accuracy = &a
		}
		if st, ok := top[k]; ok {
			se := st.StdErr()
			p.Seeds, p.Mean, p.Std, p.Low, p.High, p.Finalist = st.Seeds, st.Accuracy, st.AccuracyStd, st.Accuracy-2*se, st.Accuracy+2*se, st.Finalist
		}
		out = append(out, p)
	}
	return out
}

func (v *study) gridFigure(ctx context.Context, st store.Store) (GridFigure, error) {
	g := v.grid()
	cfg := g.Config()
	f := GridFigure{Study: v.ID, Dimension: cfg.Dimension, Phi: cfg.Grid.Phi, Target: cfg.Grid.Target, From: cfg.From, FromTrial: cfg.FromTrial,
		TopRung: v.halving.Top(), Points: v.gridPoints(), Series: []GridSeries{}, Family: []grid.Member{}}
	for i := range f.Points {
		if f.Points[i].Winner {
			w := f.Points[i]
			f.Winner = &w
			if cfg.Dimension == "" {
				f.Family = grid.Family(cfg.Base, grid.Scaling(store.Trial{Grid: &store.GridPoint{Alpha: w.Alpha, Beta: w.Beta, Gamma: w.Gamma}}))
			}
		}
	}
	all, err := st.Studies(ctx)
	if err != nil {
		return f, err
	}
	for _, other := range all {
		if other.ID == v.ID || other.Kind != store.KindGrid {
			continue
		}
		og, err := grid.Open(other)
		if err != nil {
			continue // a study this effnas cannot read is not part of the picture
		}
		oc := og.Config()
		if !oc.Base.Equal(cfg.Base) || oc.Grid.Phi != cfg.Grid.Phi {
			continue
		}
		trials, err := st.Trials(ctx, other.ID)
		if err != nil {
			return f, err
		}
		ov, err := newStudy(ctx, st, other, trials)
		if err != nil {
			continue
		}
		pts := ov.gridPoints()
		slices.SortStableFunc(pts, func(a, b GridPoint) int { return cmp.Compare(a.FLOPs, b.FLOPs) })
		f.Series = append(f.Series, GridSeries{Study: other.ID, Name: other.Name, Dimension: oc.Dimension, Status: other.Status, Points: pts})
	}
	return f, nil
}

// isBase reports whether t is a grid's base point (1, 1, 1), the
// reference rather than a candidate.
func (v *study) isBase(t store.Trial) bool {
	return v.grid() != nil && t.Grid != nil && grid.Scaling(t) == grid.Base
}
