package dashboard

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/effnas/effnas/grid"
	"github.com/effnas/effnas/search"
	"github.com/effnas/effnas/store"
)

// study is one study as its pages and JSON see it, read in one go.
type study struct {
	store.Study
	trials  []store.Trial
	counts  store.Counts
	src     search.Source
	halving search.Halving
	updated time.Time // the newest change of the study or of any trial

	// Computed once per request: a page uses them several times.
	standingsMemo []search.Standing
	paretoMemo    []search.Standing
	memoized      bool
}

// loadStudy reads a study, its trials and its stored configuration. A
// missing study is store.ErrNotFound.
func loadStudy(ctx context.Context, st store.Store, id int64) (*study, error) {
	s, err := st.Study(ctx, id)
	if err != nil {
		return nil, err
	}
	trials, err := st.Trials(ctx, id)
	if err != nil {
		return nil, err
	}
	return newStudy(ctx, st, s, trials)
}

func newStudy(ctx context.Context, st store.Store, s store.Study, trials []store.Trial) (*study, error) {
	src, err := openSource(ctx, st, s)
	if err != nil {
		return nil, err
	}
	v := &study{Study: s, trials: trials, src: src, halving: src.Proxy().Halving, updated: s.Updated}
	for _, t := range trials {
		v.counts.Add(t.State, 1)
		if t.Updated.After(v.updated) {
			v.updated = t.Updated
		}
	}
	return v, nil
}

// openSource decodes a study's stored configuration.
func openSource(ctx context.Context, st store.Store, s store.Study) (search.Source, error) {
	switch s.Kind {
	case store.KindSearch:
		return search.Open(ctx, st, s)
	case store.KindGrid:
		return grid.Open(s)
	case store.KindProxy:
		return search.OpenPanel(s)
	}
	return nil, fmt.Errorf("study %d has unknown kind %q", s.ID, s.Kind)
}

func (v *study) searcher() *search.Searcher { s, _ := v.src.(*search.Searcher); return s }
func (v *study) grid() *grid.Grid           { g, _ := v.src.(*grid.Grid); return g }
func (v *study) panel() *search.Panel       { p, _ := v.src.(*search.Panel); return p }

// Summary is a study at a glance: the studies list and each study's header.
type Summary struct {
	ID       int64             `json:"id"`
	Name     string            `json:"name"`
	Kind     store.Kind        `json:"kind"`
	Status   store.StudyStatus `json:"status"`
	What     string            `json:"what"` // e.g. "evolution search of 20 candidates"
	Created  time.Time         `json:"created"`
	Updated  time.Time         `json:"updated"` // the newest change of the study or of any of its trials
	Progress Progress          `json:"progress"`
	Best     *Best             `json:"best"` // null until a candidate finished the top rung (and for proxy studies)
}

// Progress is how far a study is: trials finished of its budget, and
// under successive halving the candidates at each rung.
type Progress struct {
	Done   int          `json:"done"`   // trials finished: complete or failed
	Budget int          `json:"budget"` // about how many trials the study trains in all
	Counts store.Counts `json:"counts"`
	Rungs  []Rung       `json:"rungs"`
	// PerHour is the pace of the last finished trials; ETA the time left
	// at that pace, null when the study is not running or the pace is
	// not known yet.
	PerHour float64  `json:"trials_per_hour"`
	ETA     *float64 `json:"eta_seconds"`
}

// Percent is Done of Budget in percent.
func (p Progress) Percent() float64 {
	if p.Budget == 0 {
		return 0
	}
	return min(100, 100*float64(p.Done)/float64(p.Budget))
}

// Rung is the progress of one rung: its candidates (each counted once,
// whatever its seeds) and its runs.
type Rung struct {
	Rung      int `json:"rung"`
	TrainSize int `json:"train_size"`
	Epochs    int `json:"epochs"`
	// Candidates have a run planned at this rung; Finished have one
	// finished; Expected is how many successive halving brings here
	// (0 when a study does not say).
	Candidates int `json:"candidates"`
	Finished   int `json:"finished"`
	Expected   int `json:"expected"`
	// Runs at this rung, every seed; the top rung's finalists have
	// several. ExpectedRuns counts the finalists' seeds too.
	Runs         int `json:"runs"`
	Complete     int `json:"complete"`
	Running      int `json:"running"`
	Failed       int `json:"failed"`
	ExpectedRuns int `json:"expected_runs"`
}

// Best is the best candidate so far: its mean over its seeds at the top
// rung, with the interval mean ± 2 standard errors.
type Best struct {
	Trial        int              `json:"trial"` // its first complete top-rung run
	Key          string           `json:"key"`
	Seeds        int              `json:"seeds"`
	Accuracy     float64          `json:"accuracy"` // validation accuracy, mean over the seeds
	AccuracyStd  float64          `json:"accuracy_std"`
	Low          float64          `json:"low"`  // mean - 2 standard errors (the mean with one seed)
	High         float64          `json:"high"` // mean + 2 standard errors
	Reward       float64          `json:"reward"`
	TestAccuracy float64          `json:"test_accuracy"`
	Params       int64            `json:"params"`
	FLOPs        int64            `json:"flops"` // full-size multiply-adds
	Finalist     bool             `json:"finalist"`
	Grid         *store.GridPoint `json:"grid,omitempty"`
}

func bestOf(s search.Standing) *Best {
	se := s.StdErr()
	return &Best{Trial: s.Trial.Number, Key: s.Key, Seeds: s.Seeds, Accuracy: s.Accuracy, AccuracyStd: s.AccuracyStd,
		Low: s.Accuracy - 2*se, High: s.Accuracy + 2*se, Reward: s.Reward, TestAccuracy: s.TestAccuracy,
		Params: s.Trial.Params, FLOPs: s.Trial.FLOPs, Finalist: s.Finalist, Grid: s.Trial.Grid}
}

// best is the study's best candidate as effnas reports it: the search's
// found B0, the grid's winning point; nil for proxy benchmarks.
func (v *study) best() *Best {
	var s *search.Standing
	switch {
	case v.searcher() != nil:
		if all := v.standings(); len(all) > 0 {
			s = &all[0] // search.Best
		}
	case v.grid() != nil:
		s = v.grid().Best(v.trials)
	}
	if s == nil {
		return nil
	}
	return bestOf(*s)
}

// schedule says how the study's candidates climb, in words. A proxy
// benchmark's Proxy loads the reference's images; its rungs are the
// proxy's own.
func (v *study) schedule() string {
	if p := v.panel(); p != nil {
		return p.Config().Proxy.Schedule()
	}
	return v.src.Proxy().Schedule()
}

// agreement returns the study's rung agreement, rung 0 first; empty with
// one rung and for proxy benchmarks.
func (v *study) agreement() []search.RungAgreement {
	if v.panel() != nil {
		return []search.RungAgreement{}
	}
	var pinned func(string) bool
	if v.grid() != nil {
		pinned = grid.IsBase
	}
	return search.AgreementOf(v.trials, v.standings(), v.src.Proxy(), pinned)
}

// rank orders two top-rung standings as the study's best is chosen
// (search.Rank; a grid's Rank); nil for a proxy benchmark.
func (v *study) rank() func(a, b search.Standing) int {
	switch {
	case v.searcher() != nil:
		return search.Rank
	case v.grid() != nil:
		return v.grid().Rank
	}
	return nil
}

func (v *study) summary() Summary {
	return Summary{ID: v.ID, Name: v.Name, Kind: v.Kind, Status: v.Status, What: v.what(), Created: v.Created, Updated: v.updated,
		Progress: v.progress(), Best: v.best()}
}

// what describes a study in a few words.
func (v *study) what() string {
	switch {
	case v.searcher() != nil:
		c := v.searcher().Config()
		if c.Screen != nil {
			return fmt.Sprintf("%s search of %d candidates, the best of %d screened on a supernet", c.Controller, c.Trials, c.Screen.N)
		}
		return fmt.Sprintf("%s search of %d candidates", c.Controller, c.Trials)
	case v.grid() != nil:
		c := v.grid().Config()
		if c.Dimension != "" {
			return fmt.Sprintf("%s-only scaling at phi %g", c.Dimension, c.Grid.Phi)
		}
		return fmt.Sprintf("compound grid at phi %g", c.Grid.Phi)
	case v.panel() != nil:
		c := v.panel().Config()
		return fmt.Sprintf("proxy benchmark of %d architectures", c.Panel+1)
	}
	return string(v.Kind)
}

// progress counts finished trials and each rung's candidates, and
// estimates the time left from the pace of the last finished trials.
func (v *study) progress() Progress {
	p := Progress{Counts: v.counts, Done: v.counts.Complete + v.counts.Failed}
	p.Budget = max(v.src.Expected(), v.counts.Total())
	p.Rungs = v.rungs()

	var ends []time.Time
	for _, t := range v.trials {
		if t.State == store.TrialComplete || t.State == store.TrialFailed {
			ends = append(ends, t.Updated)
		}
	}
	slices.SortFunc(ends, time.Time.Compare)
	if n := min(len(ends), 10); n >= 2 {
		last := ends[len(ends)-n:]
		if span := last[n-1].Sub(last[0]).Seconds(); span > 0 {
			p.PerHour = float64(n-1) / span * 3600
		}
	}
	if v.Status == store.StudyRunning && p.PerHour > 0 && p.Done < p.Budget {
		eta := float64(p.Budget-p.Done) / p.PerHour * 3600
		p.ETA = &eta
	}
	return p
}

// rungs counts candidates and runs at each rung. Successive halving's
// expectations come from the study's candidates at rung 0 (a search's
// budget of candidates, a grid's points).
func (v *study) rungs() []Rung {
	n := v.halving.Rungs
	for _, t := range v.trials {
		n = max(n, t.Rung+1)
	}
	out := make([]Rung, n)
	cands := make([]map[string]bool, n)
	done := make([]map[string]bool, n)
	for k := range out {
		f := v.src.Fidelity(store.Trial{Rung: k})
		out[k] = Rung{Rung: k, TrainSize: f.TrainSize, Epochs: f.Epochs}
		cands[k], done[k] = map[string]bool{}, map[string]bool{}
	}
	for _, t := range v.trials {
		r := &out[t.Rung]
		r.Runs++
		cands[t.Rung][t.Key] = true
		switch t.State {
		case store.TrialComplete:
			r.Complete++
			done[t.Rung][t.Key] = true
		case store.TrialFailed:
			r.Failed++
			done[t.Rung][t.Key] = true
		case store.TrialRunning:
			r.Running++
		}
	}
	for k := range out {
		out[k].Candidates, out[k].Finished = len(cands[k]), len(done[k])
	}
	if v.panel() != nil {
		// A proxy benchmark plans every run up front: nothing to expect.
		for k := range out {
			out[k].Expected, out[k].ExpectedRuns = out[k].Candidates, out[k].Runs
		}
		return out
	}
	start := len(cands[0])
	if s := v.searcher(); s != nil {
		start = max(start, s.Config().Trials)
	}
	h := v.halving
	one := h
	one.TopSeeds = 1
	prev := 0
	for k := range min(h.Rungs, n) {
		one.Rungs = k + 1
		e := one.Expected(start)
		out[k].Expected, out[k].ExpectedRuns = e-prev, e-prev
		prev = e
	}
	if top := h.Top(); top < n {
		out[top].ExpectedRuns += h.Expected(start) - prev
	}
	for k := range out {
		out[k].ExpectedRuns = max(out[k].ExpectedRuns, out[k].Runs)
	}
	return out
}

// standings are the study's candidates at the top rung, best first
// (search.Standings).
func (v *study) standings() []search.Standing {
	v.memo()
	return v.standingsMemo
}

// pareto is the front of the standings (search.Pareto).
func (v *study) pareto() []search.Standing {
	v.memo()
	return v.paretoMemo
}

func (v *study) memo() {
	if !v.memoized {
		v.standingsMemo = search.Standings(v.trials, v.halving)
		v.paretoMemo = search.Pareto(v.trials, v.halving)
		v.memoized = true
	}
}

// Standing is one candidate at the top rung, as the study page lists it.
type Standing struct {
	Best
	Rank  int  `json:"rank"`
	Front bool `json:"front"` // on the Pareto front of mean accuracy vs multiply-adds
}

func (v *study) standingRows(limit int) []Standing {
	front := map[string]bool{}
	for _, s := range v.pareto() {
		front[s.Key] = true
	}
	all := v.standings()
	out := make([]Standing, 0, min(limit, len(all)))
	for i, s := range all {
		if i >= limit {
			break
		}
		out = append(out, Standing{Best: *bestOf(s), Rank: i + 1, Front: front[s.Key]})
	}
	return out
}

// since is a duration in the largest unit that keeps it readable.
func since(d time.Duration) string {
	s := d.Seconds()
	switch {
	case s < 0 || math.IsNaN(s):
		return "-"
	case s < 90:
		return fmt.Sprintf("%.0fs", s)
	case s < 90*60:
		return fmt.Sprintf("%dm %02ds", int(s)/60, int(s)%60)
	case s < 48*3600:
		return fmt.Sprintf("%dh %02dm", int(s)/3600, int(s)/60%60)
	}
	return fmt.Sprintf("%.1f days", s/86400)
}

// secs converts seconds to a duration.
func secs(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
