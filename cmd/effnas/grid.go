package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"

	"github.com/effnas/effnas/export"
	"github.com/effnas/effnas/grid"
	"github.com/effnas/effnas/search"
	"github.com/effnas/effnas/space"
	"github.com/effnas/effnas/store"
)

func init() {
	register("grid", "grid-search alpha (depth), beta (width), gamma (resolution) at phi = 1 for the found B0", runGrid)
}

func runGrid(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet("grid", env.Stderr)
	var (
		from      = fs.Int64("from", 0, "search study whose best network is the base (default: the newest complete search study)")
		blocks    = fs.String("blocks", "", "base network as TF block strings instead of a search result")
		stem      = fs.Int("stem", 32, "stem filters of a --blocks base")
		head      = fs.Int("head", 1280, "head filters of a --blocks base")
		phi       = fs.Float64("phi", grid.DefaultPhi, "compound coefficient the grid is searched at")
		step      = fs.Float64("step", grid.DefaultStep, "spacing of each coefficient's values")
		maxV      = fs.Float64("max", grid.DefaultMax, "largest value of each coefficient (at least 1)")
		tol       = fs.Float64("tolerance", grid.DefaultTolerance, "keep points with |alpha*beta^2*gamma^2 - 2| <= tolerance")
		dimension = fs.String("dimension", "", "scale only width, depth or resolution (the paper's Figure 3) instead of the compound grid")
		name      = fs.String("name", "", "a name for the study")
		asJSON    = fs.Bool("json", false, "print the result as JSON")
		db        = dbFlag(fs, "effnas.db", "database of the search study (SQLite file or postgres:// URL); the grid study is added to it")
	)
	var pf proxyFlags
	pf.register(fs, &grid.DefaultHalving)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := pf.check(); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["from"] && set["blocks"] {
		return usagef("--from and --blocks both name the base network; give one")
	}
	if *from < 0 {
		return usagef("--from %d: must be a search study id from 'effnas list%s'", *from, db.Flag())
	}
	gcfg := grid.Config{Step: *step, Max: *maxV, Tolerance: *tol, Phi: *phi}
	for _, c := range []struct {
		flag string
		v    float64
	}{{"step", *step}, {"max", *maxV}, {"tolerance", *tol}, {"phi", *phi}} {
		if math.IsNaN(c.v) || math.IsInf(c.v, 0) || c.v < 0 || (c.v == 0 && c.flag != "tolerance") {
			return usagef("--%s %v: must be a positive number", c.flag, c.v)
		}
	}
	gcfg = gcfg.WithDefaults()
	if err := gcfg.Validate(); err != nil {
		return usagef("%v", err)
	}
	cfg := grid.StudyConfig{Grid: gcfg, Dimension: *dimension, Seed: pf.seed, Proxy: pf.proxy()}
	if *dimension != "" {
		if _, err := gcfg.Dimension(*dimension); err != nil {
			return usagef("--dimension: %v", err)
		}
	} else if _, err := gcfg.Points(); err != nil {
		return usagef("%v", err)
	}
	if *blocks != "" {
		bs, err := space.ParseBlocks(*blocks)
		if err != nil {
			return usagef("--blocks: %v", err)
		}
		base := space.B0()
		base.Blocks, base.Stem, base.Head = bs, *stem, *head
		if err := base.Validate(); err != nil {
			return usagef("--blocks: %v", err)
		}
		cfg.Base = base
	}
	cfg = cfg.WithDefaults()
	if *blocks != "" {
		if err := cfg.Validate(); err != nil {
			return usagef("%v", err)
		}
	}

	var st store.Store
	var err error
	if *blocks == "" {
		// The base comes from a search: the database must exist.
		ro, err := openForReading(ctx, db)
		if err != nil {
			return err
		}
		ro.Close()
	}
	st, err = openForWriting(ctx, db)
	if err != nil {
		return err
	}
	defer st.Close()
	if *blocks == "" {
		base, sid, trial, err := searchBase(ctx, st, db, *from)
		if err != nil {
			return err
		}
		cfg.Base, cfg.From, cfg.FromTrial = base, sid, trial
	}
	study, err := grid.Create(ctx, st, *name, cfg)
	if err != nil {
		return err
	}
	if !*asJSON {
		what := "compound grid"
		if *dimension != "" {
			what = *dimension + "-only scaling"
		}
		src := "--blocks"
		if cfg.From != 0 {
			src = fmt.Sprintf("trial %d of search study %d", cfg.FromTrial, cfg.From)
		}
		fmt.Fprintf(env.Stderr, "grid study %d in %s: %s at phi %v, base from %s, proxy %s at %dx%d, width %v; %s\n",
			study.ID, db, what, cfg.Grid.Phi, src, cfg.Proxy.Dataset, cfg.Proxy.Res, cfg.Proxy.Res, cfg.Proxy.Width, cfg.Proxy.Schedule())
	}
	return runGridStudy(ctx, env, st, db, study, pf.options(), *asJSON)
}

// searchBase returns the best network of search study id, or when id is 0
// of the newest complete search study.
func searchBase(ctx context.Context, st store.Store, db *dbName, id int64) (space.Arch, int64, int, error) {
	var study store.Study
	if id != 0 {
		s, err := st.Study(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return space.Arch{}, 0, 0, usagef("--from %d: no such study in %s; %s", id, db, studyIDs(ctx, st, db))
		}
		if err != nil {
			return space.Arch{}, 0, 0, err
		}
		if s.Kind != store.KindSearch {
			return space.Arch{}, 0, 0, usagef("--from %d: study %d is a %s study; want a search study", id, id, s.Kind)
		}
		study = s
	} else {
		all, err := st.Studies(ctx)
		if err != nil {
			return space.Arch{}, 0, 0, err
		}
		for i := len(all) - 1; i >= 0; i-- {
			if all[i].Kind == store.KindSearch && all[i].Status == store.StudyComplete {
				study = all[i]
				break
			}
		}
		if study.ID == 0 {
			return space.Arch{}, 0, 0, fmt.Errorf("%s has no complete search study; run 'effnas search%s' first, or give --from STUDY or --blocks", db, db.Flag())
		}
	}
	src, err := search.Open(ctx, st, study)
	if err != nil {
		return space.Arch{}, 0, 0, err
	}
	trials, err := st.Trials(ctx, study.ID)
	if err != nil {
		return space.Arch{}, 0, 0, err
	}
	best := search.Best(trials, src.Config().Proxy.Halving)
	if best == nil {
		return space.Arch{}, 0, 0, fmt.Errorf("search study %d has no candidate at the top rung yet; resume it first (effnas resume%s --study %d)", study.ID, db.Flag(), study.ID)
	}
	full, err := src.FullArch(best.Trial)
	if err != nil {
		return space.Arch{}, 0, 0, err
	}
	return full, study.ID, best.Trial.Number, nil
}

// runGridStudy runs (or resumes) a grid study and reports it.
func runGridStudy(ctx context.Context, env *Env, st store.Store, db *dbName, study store.Study, opts search.Options, asJSON bool) error {
	g, err := grid.Open(study)
	if err != nil {
		return err
	}
	return runAndReport(ctx, env, st, db, study, g, opts, asJSON, "grid points",
		func(sum search.Summary, trials []store.Trial) (report, error) {
			return newGridReport(g, study, sum, trials), nil
		})
}

// gridPointJSON is a grid point: its rung-0 accuracy, where every point
// is measured alike, and where it reached the top rung the mean and
// spread over its seeds there.
type gridPointJSON struct {
	Trial       int     `json:"trial"`
	Key         string  `json:"key"` // as stored with its trials
	Alpha       float64 `json:"alpha"`
	Beta        float64 `json:"beta"`
	Gamma       float64 `json:"gamma"`
	Constraint  float64 `json:"constraint"`
	State       string  `json:"state"` // of its rung-0 trial
	Accuracy    float64 `json:"accuracy"`
	Rung        int     `json:"rung"` // the highest rung it finished
	Seeds       int     `json:"seeds"`
	TopAccuracy float64 `json:"top_accuracy"` // mean over its seeds at the top rung
	TopStd      float64 `json:"top_accuracy_std"`
	Finalist    bool    `json:"finalist"`
	Tied        bool    `json:"tied"` // cannot be told apart from the winner
	Params      int64   `json:"params"`
	FLOPs       int64   `json:"flops"`
}

// gridBestJSON is the winning point, as show --json's best: its accuracy
// is the mean over its complete top-rung runs (top_accuracy; their sd and
// count beside it), never one run; rung0_accuracy is its rung-0 run's.
type gridBestJSON struct {
	gridPointJSON
	Rung0Accuracy float64 `json:"rung0_accuracy"`
}

type gridReport struct {
	Study     int64           `json:"study"`
	Status    string          `json:"status"`
	Dimension string          `json:"dimension,omitempty"`
	Phi       float64         `json:"phi"`
	Counts    store.Counts    `json:"counts"`
	Seconds   float64         `json:"seconds"`
	Rungs     []rungJSON      `json:"rungs"`
	Best      *gridBestJSON   `json:"best"`
	Points    []gridPointJSON `json:"points"`
	Family    []grid.Member   `json:"family,omitempty"`
	// RungAgreement: how each rung below the top ranked the points that
	// reached the top, against their top-rung means.
	RungAgreement []search.RungAgreement `json:"rung_agreement"`
}

func newGridReport(g *grid.Grid, study store.Study, sum search.Summary, trials []store.Trial) *gridReport {
	cfg := g.Config()
	rep := &gridReport{Study: study.ID, Status: "stopped", Dimension: cfg.Dimension, Phi: cfg.Grid.Phi, Counts: sum.Counts, Seconds: sum.Seconds,
		Rungs: rungsOf(cfg.Proxy, trials), Points: []gridPointJSON{},
		RungAgreement: search.Agreement(trials, cfg.Proxy, grid.IsBase)}
	if sum.Complete {
		rep.Status = "complete"
	}
	top := map[string]search.Standing{}
	for _, s := range search.Standings(trials, cfg.Proxy.Halving) {
		top[s.Key] = s
	}
	tied := map[string]bool{}
	for _, s := range g.Tied(trials) {
		tied[s.Key] = true
	}
	rung := map[string]int{}
	for _, t := range trials {
		if t.State == store.TrialComplete && t.Rung > rung[t.Key] {
			rung[t.Key] = t.Rung
		}
	}
	point := func(t store.Trial) gridPointJSON {
		s := grid.Scaling(t)
		p := gridPointJSON{Trial: t.Number, Key: t.Key, Alpha: s.Alpha, Beta: s.Beta, Gamma: s.Gamma, Constraint: math.Round(s.Constraint()*1e4) / 1e4,
			State: string(t.State), Accuracy: t.Accuracy, Rung: rung[t.Key], Tied: tied[t.Key], Params: t.Params, FLOPs: t.FLOPs}
		if st, ok := top[t.Key]; ok {
			p.Seeds, p.TopAccuracy, p.TopStd, p.Finalist = st.Seeds, st.Accuracy, st.AccuracyStd, st.Finalist
		}
		return p
	}
	// Each point's rung-0 run, seed 0, or the retry that stands in for it
	// when that run failed (a derived seed).
	first := map[string]int{}
	for _, t := range trials {
		if t.Rung != 0 || (t.Seed != 0 && t.Seed != search.RetrySeed) {
			continue
		}
		if i, ok := first[t.Key]; !ok {
			first[t.Key] = len(rep.Points)
			rep.Points = append(rep.Points, point(t))
		} else if t.Seed == search.RetrySeed && rep.Points[i].State != string(store.TrialComplete) {
			rep.Points[i] = point(t)
		}
	}
	if b := g.Best(trials); b != nil {
		for _, p := range rep.Points {
			if p.Key == b.Key {
				rep.Best = &gridBestJSON{gridPointJSON: p, Rung0Accuracy: p.Accuracy}
				rep.Best.Accuracy = b.Accuracy
			}
		}
		if cfg.Dimension == "" {
			rep.Family = grid.Family(cfg.Base, grid.Scaling(b.Trial))
		}
	}
	return rep
}

// topAccuracy is a point's mean ± sd over its top-rung runs and their
// number, as the grid's table gives it: one run has no spread to show (an
// sd of 0 would claim it exact), and a point with none is "-".
func topAccuracy(p gridPointJSON) string {
	switch {
	case p.Seeds == 1:
		return fmt.Sprintf("%.4f (1)", p.TopAccuracy)
	case p.Seeds > 1:
		return fmt.Sprintf("%.4f±%.4f (%d)", p.TopAccuracy, p.TopStd, p.Seeds)
	}
	return "-"
}

func (r *gridReport) print(w io.Writer, db *dbName) {
	c := r.Counts
	fmt.Fprintf(w, "grid study %d: %s; %d trials complete, %d failed\n", r.Study, r.Status, c.Complete, c.Failed)
	for _, g := range r.Rungs {
		fmt.Fprintf(w, "  rung %d (%d images x %d epochs): %d trials, %d complete, %d failed\n", g.Rung, g.TrainSize, g.Epochs, g.Trials, g.Complete, g.Failed)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "alpha\tbeta\tgamma\ta*b^2*g^2\trung 0\trung\ttop rung (seeds)\tmult-adds\t\t")
	for _, p := range r.Points {
		acc := "-"
		if p.State == string(store.TrialComplete) {
			acc = fmt.Sprintf("%.4f", p.Accuracy)
		}
		topAcc := topAccuracy(p)
		mark := ""
		switch {
		case r.Best != nil && p.Trial == r.Best.Trial:
			mark = "winner"
		case p.Tied:
			mark = "tied"
		case p.Finalist:
			mark = "finalist"
		}
		fmt.Fprintf(tw, "%.2f\t%.2f\t%.2f\t%.3f\t%s\t%d\t%s\t%s\t%s\t\n", p.Alpha, p.Beta, p.Gamma, p.Constraint, acc, p.Rung, topAcc, fmtCount(p.FLOPs), mark)
	}
	tw.Flush()
	if b := r.Best; b != nil {
		fmt.Fprintf(w, "\nbest: alpha %.2f, beta %.2f, gamma %.2f (alpha*beta^2*gamma^2 = %.3f), proxy accuracy %s\n",
			b.Alpha, b.Beta, b.Gamma, b.Constraint, pm(b.TopAccuracy, b.TopStd, b.Seeds))
		var tied []string
		for _, p := range r.Points {
			if p.Tied && p.Trial != b.Trial {
				tied = append(tied, fmt.Sprintf("(%.2f, %.2f, %.2f) %s", p.Alpha, p.Beta, p.Gamma, topAccuracy(p)))
			}
		}
		if len(tied) > 0 {
			fmt.Fprintf(w, "cannot be told apart from it (mean ± 2 standard errors overlap): %s\n", strings.Join(tied, "; "))
		} else if b.Seeds > 1 {
			fmt.Fprintln(w, "no other finalist's mean ± 2 standard errors overlaps it")
		}
	}
	printAgreement(w, r.RungAgreement)
	if len(r.Family) > 0 {
		fmt.Fprintln(w, "\nfamily by the raw rule (full size, 1000 classes):")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "name\twidth\tdepth\tresolution\tparams\tmult-adds\t")
		for _, m := range r.Family {
			fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t%d\t%s\t%s\t\n", m.Name, m.Width, m.Depth, m.Resolution, export.Commas(m.Params), fmtCount(m.FLOPs))
		}
		tw.Flush()
	}
	fmt.Fprintln(w)
	if r.Status != "complete" {
		fmt.Fprintf(w, "resume:  effnas resume%s --study %d\n", db.Flag(), r.Study)
	}
	fmt.Fprintf(w, "watch:   effnas dashboard%s\n", db.Flag())
	fmt.Fprintf(w, "export:  effnas export%s --study %d --format md --out report/report.md\n", db.Flag(), r.Study)
}
