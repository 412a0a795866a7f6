package export

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/effnas/effnas/grid"
	"github.com/effnas/effnas/search"
	"github.com/effnas/effnas/space"
	"github.com/effnas/effnas/store"
)

// Source values of Coefficients.
const (
	SourceGrid  = "grid"  // found by a grid study in the database
	SourcePaper = "paper" // the paper's alpha 1.2, beta 1.1, gamma 1.15: no usable grid study
)

// DefaultTop is how many of the best search trials a report lists.
const DefaultTop = 10

// ErrNothing is returned (wrapped) by Build when the database holds no
// search or grid study to export.
var ErrNothing = errors.New("nothing to export")

// Options selects what Build exports. Zero fields take the defaults in
// each comment.
type Options struct {
	// Study is a search study or a compound grid study. With a search
	// study, the coefficients come from the newest complete compound grid
	// study built on it (the paper's when there is none); with a compound
	// grid study, B0 comes from the search study it was built on (or its
	// stored base); a single-dimension series stands for the search study
	// it scales. Default 0: the newest compound grid study, or when there
	// is none the newest search study with the paper's coefficients.
	Study int64
	// Top is how many of the best search trials to list; default 10.
	Top int
}

// Report is everything an export writes. Its JSON is the contract of
// 'effnas export --format json'.
type Report struct {
	B0           B0            `json:"b0"`
	Coefficients Coefficients  `json:"coefficients"`
	Family       []grid.Member `json:"family"`       // B1..B7 by the raw rule, phi = 1..7
	PaperFamily  []grid.Member `json:"paper_family"` // B1..B7 by the paper's hand-rounded table
	Pareto       []Trial       `json:"pareto"`       // top-rung candidates on the mean accuracy / multiply-adds front, fewest multiply-adds first
	TopTrials    []Trial       `json:"top_trials"`   // the best candidates by mean reward at the top rung, finalists first
	GridPoints   []Point       `json:"grid_points"`  // the compound grid's points that finished rung 0
	Series       []Series      `json:"series"`       // single-dimension scaling studies of the same base (Figure 3)
	// SearchAgreement and GridAgreement say how each rung below the top
	// of the search and of the grid ranked the candidates that reached
	// the top, against their top-rung means ([] with one rung or none).
	SearchAgreement []search.RungAgreement `json:"search_rung_agreement"`
	GridAgreement   []search.RungAgreement `json:"grid_rung_agreement"`
	Notes           []string               `json:"notes"` // how the studies were chosen, and what is missing

	// Arch is the full-size B0.
	Arch space.Arch `json:"-"`
	// SearchTrials are the search study's candidates at the top rung, by
	// their first run's number.
	SearchTrials []Trial `json:"-"`
}

// B0 is the baseline network.
type B0 struct {
	Blocks     []string `json:"blocks"` // TF block strings
	Timm       []string `json:"timm"`   // timm arch_def strings
	Params     int64    `json:"params"`
	FLOPs      int64    `json:"flops"` // multiply-adds at Resolution
	Stem       int      `json:"stem"`
	Head       int      `json:"head"`
	Resolution int      `json:"resolution"`
	Classes    int      `json:"classes"`
	Activation string   `json:"activation"`
	Dropout    float64  `json:"dropout"`
	// Accuracy is B0's proxy validation accuracy, the mean over its seeds
	// at the top rung (AccuracyMean); null when B0 was given as block
	// strings and never trained.
	Accuracy     *float64 `json:"accuracy"`
	Seeds        int      `json:"seeds"`         // top-rung runs the means are over
	AccuracyMean *float64 `json:"accuracy_mean"` // mean validation accuracy over the seeds
	AccuracyStd  *float64 `json:"accuracy_std"`  // its standard deviation over the seeds (n-1)
	TestAccuracy *float64 `json:"test_accuracy"` // mean test accuracy over the seeds, never searched on
	// Study and Trial say which search trial B0 is; null when B0 was given
	// to the grid study as block strings.
	Study *int64 `json:"study"`
	Trial *int   `json:"trial"`
}

// Coefficients are the compound-scaling coefficients the family is built with.
type Coefficients struct {
	Alpha      float64  `json:"alpha"`      // depth
	Beta       float64  `json:"beta"`       // width
	Gamma      float64  `json:"gamma"`      // resolution
	Phi        float64  `json:"phi"`        // the compound coefficient they were searched at
	Constraint float64  `json:"constraint"` // alpha * beta^2 * gamma^2
	Source     string   `json:"source"`     // "grid" or "paper"
	Study      int64    `json:"study,omitempty"`
	Trial      *int     `json:"trial,omitempty"`    // the grid point's first top-rung trial
	Accuracy   *float64 `json:"accuracy,omitempty"` // its mean proxy validation accuracy over its seeds
	// AccuracyStd is the standard deviation of that accuracy over the seeds.
	AccuracyStd *float64 `json:"accuracy_std,omitempty"`
	// GridPoints is how many points were trained (rung 0) and Seeds how
	// many seeds the winner's mean is over: what decided the coefficients.
	GridPoints int `json:"grid_points"`
	Seeds      int `json:"seeds"`
	// Tied are the points that cannot be told apart from the winner: their
	// mean accuracy plus or minus two standard errors overlaps the
	// winner's. The winner is among them once the grid has chosen its
	// finalists (empty before).
	Tied []Point `json:"tied"`
}

// Trial is a search candidate at the top rung: means over its seeds there.
type Trial struct {
	Study        int64    `json:"study"`
	Number       int      `json:"number"` // its first top-rung trial
	Key          string   `json:"key"`
	Seeds        int      `json:"seeds"`
	Accuracy     float64  `json:"accuracy"` // mean validation accuracy
	AccuracyStd  float64  `json:"accuracy_std"`
	Reward       float64  `json:"reward"` // mean reward
	TestAccuracy float64  `json:"test_accuracy"`
	Finalist     bool     `json:"finalist"`
	Params       int64    `json:"params"`
	FLOPs        int64    `json:"flops"`
	Blocks       []string `json:"blocks"`
}

// Point is a grid point: full-size params and multiply-adds at the grid's
// phi, proxy accuracy at rung 0 (where every point is measured alike), and
// the mean over its seeds where it reached the top rung.
type Point struct {
	Number   int     `json:"number"` // its rung-0 trial
	Key      string  `json:"key"`    // as stored with its trials
	Alpha    float64 `json:"alpha"`
	Beta     float64 `json:"beta"`
	Gamma    float64 `json:"gamma"`
	Accuracy float64 `json:"accuracy"` // rung 0
	Rung     int     `json:"rung"`     // the highest rung it finished
	// Top-rung means, when it got there (Seeds > 0).
	Seeds          int     `json:"seeds"`
	TopAccuracy    float64 `json:"top_accuracy"`
	TopAccuracyStd float64 `json:"top_accuracy_std"`
	Finalist       bool    `json:"finalist"`
	Params         int64   `json:"params"`
	FLOPs          int64   `json:"flops"`
}

// Series is a single-dimension scaling study (width, depth or resolution
// alone), points ordered by multiply-adds.
type Series struct {
	Study     int64   `json:"study"`
	Dimension string  `json:"dimension"`
	Points    []Point `json:"points"`
}

// Build reads the studies Options selects and assembles the report. A
// study that does not exist is an error wrapping store.ErrNotFound; a
// database with no study to export wraps ErrNothing.
func Build(ctx context.Context, st store.Store, opts Options) (*Report, error) {
	opts.Top = cmp.Or(opts.Top, DefaultTop)
	if opts.Study < 0 || opts.Top < 0 {
		return nil, fmt.Errorf("export options %+v: study and top must not be negative", opts)
	}
	b := &builder{st: st}
	if err := b.pick(ctx, opts.Study); err != nil {
		return nil, err
	}
	return b.build(ctx, opts)
}

// builder holds the studies a report is made of.
type builder struct {
	st         store.Store
	search     *store.Study // nil when the grid's base was given as block strings
	grid       *store.Study // nil when the coefficients are the paper's
	gridCfg    grid.StudyConfig
	gridSrc    *grid.Grid
	all        []store.Study
	notes      []string
	gridTrials []store.Trial // the chosen grid study's trials
}

func (b *builder) notef(format string, args ...any) {
	b.notes = append(b.notes, fmt.Sprintf(format, args...))
}

// openGrid opens a grid study and reports whether it is a compound grid.
func (b *builder) openGrid(s store.Study) (*grid.Grid, bool, error) {
	g, err := grid.Open(s)
	if err != nil {
		return nil, false, err
	}
	return g, g.Config().Dimension == "", nil
}

func (b *builder) useGrid(s store.Study, g *grid.Grid) {
	b.grid, b.gridSrc, b.gridCfg = &s, g, g.Config()
}

// pick chooses the search and grid studies.
func (b *builder) pick(ctx context.Context, id int64) error {
	all, err := b.st.Studies(ctx)
	if err != nil {
		return fmt.Errorf("list studies: %w", err)
	}
	b.all = all
	if id == 0 {
		return b.pickDefault(ctx)
	}
	s, err := b.st.Study(ctx, id)
	if err != nil {
		return fmt.Errorf("study %d: %w", id, err)
	}
	switch s.Kind {
	case store.KindSearch:
		b.search = &s
		return b.pickGridOf(s.ID)
	case store.KindGrid:
		g, compound, err := b.openGrid(s)
		if err != nil {
			return err
		}
		if !compound {
			from := g.Config().From
			if from == 0 {
				return fmt.Errorf("study %d is a %s-only scaling series of a base given as block strings, not a compound grid; export a compound grid study instead",
					s.ID, g.Config().Dimension)
			}
			sr, err := b.st.Study(ctx, from)
			if err != nil {
				return fmt.Errorf("search study %d of grid study %d: %w", from, s.ID, err)
			}
			b.notef("study %d is a %s-only scaling series: exporting search study %d, which it scales", s.ID, g.Config().Dimension, from)
			b.search = &sr
			return b.pickGridOf(from)
		}
		b.useGrid(s, g)
		return b.pickSearchOf(ctx)
	}
	return fmt.Errorf("study %d has unknown kind %q", s.ID, s.Kind)
}

// pickDefault takes the newest compound grid study, else the newest search
// study.
func (b *builder) pickDefault(ctx context.Context) error {
	for i := len(b.all) - 1; i >= 0; i-- {
		s := b.all[i]
		if s.Kind != store.KindGrid {
			continue
		}
		g, compound, err := b.openGrid(s)
		if err != nil {
			return err
		}
		if compound {
			b.useGrid(s, g)
			b.notef("exporting grid study %d, the newest compound grid (pass --study to choose another)", s.ID)
			return b.pickSearchOf(ctx)
		}
	}
	for i := len(b.all) - 1; i >= 0; i-- {
		if s := b.all[i]; s.Kind == store.KindSearch {
			b.search = &s
			b.notef("no compound grid study in the database: B0 from search study %d, coefficients are the paper's (alpha 1.2, beta 1.1, gamma 1.15); run effnas grid for your own", s.ID)
			return nil
		}
	}
	return fmt.Errorf("%w: the database has no search or grid study; run effnas search first", ErrNothing)
}

// pickGridOf takes the newest complete compound grid study built on the
// search study, or leaves the paper's coefficients.
func (b *builder) pickGridOf(searchID int64) error {
	var unfinished []int64
	for i := len(b.all) - 1; i >= 0; i-- {
		s := b.all[i]
		if s.Kind != store.KindGrid {
			continue
		}
		g, compound, err := b.openGrid(s)
		if err != nil {
			return err
		}
		if !compound || g.Config().From != searchID {
			continue
		}
		if s.Status != store.StudyComplete {
			unfinished = append(unfinished, s.ID)
			continue
		}
		b.useGrid(s, g)
		b.notef("coefficients from grid study %d, the newest complete compound grid built on search study %d", s.ID, searchID)
		return nil
	}
	if len(unfinished) > 0 {
		b.notef("grid study %d on search study %d is not complete (effnas resume finishes it); coefficients are the paper's (alpha 1.2, beta 1.1, gamma 1.15)", unfinished[0], searchID)
		return nil
	}
	b.notef("no compound grid study is built on search study %d: coefficients are the paper's (alpha 1.2, beta 1.1, gamma 1.15); run effnas grid --from %d for your own", searchID, searchID)
	return nil
}

// pickSearchOf takes the search study the chosen grid was built on.
func (b *builder) pickSearchOf(ctx context.Context) error {
	from := b.gridCfg.From
	if from == 0 {
		b.notef("grid study %d was given its base as block strings: no search study, so no top trials or Pareto front", b.grid.ID)
		return nil
	}
	s, err := b.st.Study(ctx, from)
	if errors.Is(err, store.ErrNotFound) {
		b.notef("search study %d, which grid study %d was built on, is gone from the database: no top trials or Pareto front", from, b.grid.ID)
		return nil
	}
	if err != nil {
		return fmt.Errorf("search study %d of grid study %d: %w", from, b.grid.ID, err)
	}
	b.search = &s
	return nil
}

func (b *builder) build(ctx context.Context, opts Options) (*Report, error) {
	r := &Report{Family: []grid.Member{}, PaperFamily: []grid.Member{}, Pareto: []Trial{}, TopTrials: []Trial{},
		GridPoints: []Point{}, Series: []Series{}, SearchAgreement: []search.RungAgreement{}, GridAgreement: []search.RungAgreement{}}
	if err := b.searchPart(ctx, r, opts.Top); err != nil {
		return nil, err
	}
	if err := b.gridPart(ctx, r); err != nil {
		return nil, err
	}
	r.Family = grid.Family(r.Arch, b.scaling(r))
	r.PaperFamily = grid.PaperFamily(r.Arch)
	a := r.Arch
	r.B0.Blocks, r.B0.Timm = space.FormatBlocks(a.Blocks), space.FormatTimmBlocks(a.Blocks)
	r.B0.Params, r.B0.FLOPs = a.Params(), a.FLOPs()
	r.B0.Stem, r.B0.Head, r.B0.Resolution, r.B0.Classes = a.Stem, a.Head, a.Resolution, a.Classes
	r.B0.Activation, r.B0.Dropout = a.Activation, a.Dropout
	r.Notes = b.notes
	if r.Notes == nil {
		r.Notes = []string{}
	}
	return r, nil
}

// scaling fills r.Coefficients and returns them as a Scaling.
func (b *builder) scaling(r *Report) space.Scaling {
	s, phi := space.PaperScaling, 1.0
	c := Coefficients{Source: SourcePaper}
	c.Tied = []Point{}
	if b.grid != nil {
		if best := b.gridSrc.Best(b.gridTrials); best != nil {
			s, phi = grid.Scaling(best.Trial), b.gridCfg.Grid.Phi
			n, acc, sd := best.Trial.Number, best.Accuracy, best.AccuracyStd
			c = Coefficients{Source: SourceGrid, Study: b.grid.ID, Trial: &n, Accuracy: &acc, AccuracyStd: &sd,
				Seeds: best.Seeds, GridPoints: len(r.GridPoints), Tied: []Point{}}
			byKey := map[string]Point{}
			for _, p := range r.GridPoints {
				byKey[p.Key] = p
			}
			for _, t := range b.gridSrc.Tied(b.gridTrials) {
				if p, ok := byKey[t.Key]; ok {
					c.Tied = append(c.Tied, p)
				}
			}
		} else {
			b.notef("grid study %d has no complete point besides the base: coefficients are the paper's (alpha 1.2, beta 1.1, gamma 1.15)", b.grid.ID)
		}
	}
	c.Alpha, c.Beta, c.Gamma, c.Phi, c.Constraint = s.Alpha, s.Beta, s.Gamma, phi, round9(s.Constraint())
	r.Coefficients = c
	return s
}

func (b *builder) searchPart(ctx context.Context, r *Report, top int) error {
	if b.search == nil {
		// The grid's stored base is B0; its reference point (1, 1, 1) is
		// B0 trained as a proxy.
		r.Arch = b.gridCfg.Base
		return nil
	}
	trials, err := b.st.Trials(ctx, b.search.ID)
	if err != nil {
		return fmt.Errorf("trials of search study %d: %w", b.search.ID, err)
	}
	p := search.StudyProxy(*b.search)
	h := p.Halving
	standings := search.Standings(trials, h)
	r.SearchAgreement = search.AgreementOf(trials, standings, p, nil)
	for _, s := range standings {
		r.SearchTrials = append(r.SearchTrials, toTrial(s))
	}
	slices.SortFunc(r.SearchTrials, func(x, y Trial) int { return cmp.Compare(x.Number, y.Number) })
	for _, s := range search.Pareto(trials, h) {
		r.Pareto = append(r.Pareto, toTrial(s))
	}
	for _, s := range standings[:min(top, len(standings))] {
		r.TopTrials = append(r.TopTrials, toTrial(s))
	}

	if b.grid != nil {
		// B0 is the base the grid scaled: the search trial it names.
		r.Arch = b.gridCfg.Base
		id, n := b.search.ID, b.gridCfg.FromTrial
		r.B0.Study, r.B0.Trial = &id, &n
		var key string
		for _, t := range trials {
			if t.Number == n {
				key = t.Key
			}
		}
		for _, s := range standings {
			if s.Key == key {
				r.B0.setStanding(s)
			}
		}
		if r.B0.Accuracy == nil {
			b.notef("trial %d of search study %d, the base of grid study %d, is not complete: B0's accuracy is unknown", n, id, b.grid.ID)
		}
		return nil
	}
	if len(standings) == 0 {
		return fmt.Errorf("%w: search study %d has no candidate at the top rung yet (effnas resume --study %d continues it)", ErrNothing, b.search.ID, b.search.ID)
	}
	best := standings[0]
	if !best.Finalist {
		b.notef("search study %d has no finalist yet: B0 is the best candidate at the top rung so far, from one seed", b.search.ID)
	}
	src, err := search.Open(ctx, b.st, *b.search)
	if err != nil {
		return err
	}
	arch, err := src.FullArch(best.Trial)
	if err != nil {
		return fmt.Errorf("B0 from trial %d of search study %d: %w", best.Trial.Number, b.search.ID, err)
	}
	r.Arch = arch
	id, n := b.search.ID, best.Trial.Number
	r.B0.Study, r.B0.Trial = &id, &n
	r.B0.setStanding(best)
	return nil
}

// setStanding fills B0's accuracies from its standing at the top rung.
func (b *B0) setStanding(s search.Standing) {
	mean, sd, test := s.Accuracy, s.AccuracyStd, s.TestAccuracy
	b.Accuracy, b.AccuracyMean, b.AccuracyStd, b.TestAccuracy, b.Seeds = &mean, &mean, &sd, &test, s.Seeds
}

// gridPart collects the compound grid's points and the single-dimension
// series built on the same base.
func (b *builder) gridPart(ctx context.Context, r *Report) error {
	if b.grid != nil {
		trials, err := b.st.Trials(ctx, b.grid.ID)
		if err != nil {
			return fmt.Errorf("trials of grid study %d: %w", b.grid.ID, err)
		}
		b.gridTrials = trials
		r.GridPoints = points(trials, b.gridCfg.Proxy.Halving)
		r.GridAgreement = search.Agreement(trials, b.gridCfg.Proxy, grid.IsBase)
		if b.search == nil {
			for _, s := range search.Standings(trials, b.gridCfg.Proxy.Halving) {
				if grid.Scaling(s.Trial) == grid.Base {
					r.B0.setStanding(s)
					b.notef("B0's accuracy is that of grid study %d's base point (trial %d)", b.grid.ID, s.Trial.Number)
				}
			}
		}
	}
	for _, s := range b.all {
		if s.Kind != store.KindGrid {
			continue
		}
		g, compound, err := b.openGrid(s)
		if err != nil {
			return err
		}
		if compound || !g.Config().Base.Equal(r.Arch) {
			continue
		}
		ts, err := b.st.Trials(ctx, s.ID)
		if err != nil {
			return fmt.Errorf("trials of grid study %d: %w", s.ID, err)
		}
		if ps := points(ts, g.Config().Proxy.Halving); len(ps) > 0 {
			r.Series = append(r.Series, Series{Study: s.ID, Dimension: g.Config().Dimension, Points: ps})
		}
	}
	return nil
}

// points returns the grid points that completed rung 0, with their
// top-rung means where they got there, fewest multiply-adds first.
func points(trials []store.Trial, h search.Halving) []Point {
	top := map[string]search.Standing{}
	for _, s := range search.Standings(trials, h) {
		top[s.Key] = s
	}
	rung := map[string]int{}
	for _, t := range trials {
		if t.State == store.TrialComplete && t.Rung > rung[t.Key] {
			rung[t.Key] = t.Rung
		}
	}
	ps := []Point{}
	for _, t := range trials {
		if t.State != store.TrialComplete || t.Rung != 0 || t.Seed != 0 {
			continue
		}
		s := grid.Scaling(t)
		p := Point{Number: t.Number, Key: t.Key, Alpha: s.Alpha, Beta: s.Beta, Gamma: s.Gamma, Accuracy: t.Accuracy, Rung: rung[t.Key], Params: t.Params, FLOPs: t.FLOPs}
		if st, ok := top[t.Key]; ok {
			p.Seeds, p.TopAccuracy, p.TopAccuracyStd, p.Finalist = st.Seeds, st.Accuracy, st.AccuracyStd, st.Finalist
		}
		ps = append(ps, p)
	}
	// Fewest multiply-adds first; among equals (repeats round up, so
	// nearby depths can build the same network) the smaller coefficients.
	slices.SortStableFunc(ps, func(x, y Point) int {
		return cmp.Or(cmp.Compare(x.FLOPs, y.FLOPs), cmp.Compare(x.Alpha, y.Alpha), cmp.Compare(x.Beta, y.Beta), cmp.Compare(x.Gamma, y.Gamma))
	})
	return ps
}

func toTrial(s search.Standing) Trial {
	t := s.Trial
	blocks := t.Blocks
	if blocks == nil {
		blocks = []string{}
	}
	return Trial{Study: t.Study, Number: t.Number, Key: t.Key, Seeds: s.Seeds, Accuracy: s.Accuracy, AccuracyStd: s.AccuracyStd,
		Reward: s.Reward, TestAccuracy: s.TestAccuracy, Finalist: s.Finalist, Params: t.Params, FLOPs: t.FLOPs, Blocks: blocks}
}

// round9 drops float noise: 1.2*1.1^2*1.15^2 prints 1.92027, not 1.9202700000000003.
func round9(v float64) float64 { return math.Round(v*1e9) / 1e9 }
