package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/effnas/effnas/controller"
	"github.com/effnas/effnas/export"
	"github.com/effnas/effnas/search"
	"github.com/effnas/effnas/space"
	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/trainer"
)

func init() {
	register("search", "search a baseline network (B0) in the MnasNet space, training proxies in parallel", runSearch)
}

// errInterrupted is returned after Ctrl-C, once the study is saved; the
// process exits with status 130 like any interrupted command.
var errInterrupted = errors.New("interrupted")

func runSearch(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet("search", env.Stderr)
	var (
		spaceFile   = fs.String("space", "", "search-space JSON file (default: the built-in MnasNet space)")
		ctl         = fs.String("controller", search.DefaultController, "search strategy: "+strings.Join(controller.Names, ", "))
		trials      = fs.Int("trials", search.DefaultTrials, "candidates to start at rung 0 (the budget); the best climb the rungs")
		targetFLOPs = fs.String("target-flops", "400M", "reward's target T in multiply-adds (400M, 4e8...)")
		w           = fs.Float64("w", controller.DefaultW, "reward's exponent w in ACC*(FLOPS/T)^w (at most 0)")
		maxFLOPs    = fs.String("max-flops", "0", "hard bound: candidates with more multiply-adds are rejected before training (0: none)")
		name        = fs.String("name", "", "a name for the study")
		asJSON      = fs.Bool("json", false, "print the result as JSON")
		db          = dbFlag(fs, "effnas.db", "SQLite file (created if missing) or postgres:// URL that keeps the study")
		screen      = fs.Int("screen", 0, "one-shot screening: score this many candidates on a weight-sharing supernet first and send the best --trials of them to rung 0 (0: none)")
		snSteps     = fs.Int("supernet-steps", trainer.DefaultSupernetSteps, "with --screen: the supernet's training steps (one sampled member per step)")
		ckEvery     = fs.Int("checkpoint-every", search.DefaultCheckpointEvery, "with --screen: supernet steps between checkpoints in the database (a killed run loses at most this many)")
		scoreCalib  = fs.Int("score-calib", trainer.DefaultScoreCalib, "with --screen: K, training batches a candidate's batch norms are recalibrated over before it is scored")
		scoreImages = fs.Int("score-images", trainer.DefaultScoreImages, "with --screen: V, validation images every candidate is scored on")
		snWarmup    = fs.Float64("supernet-warmup", search.DefaultWarmup, "with --screen: the fraction of the supernet's steps over which TuNAS's filter and op warm-ups fade out (negative: none)")
		lease       = fs.Duration("lease", 2*time.Minute, "claim lease of the trials this process trains (and of its supernet), renewed while training; another process takes them over when it lapses")
	)
	var pf proxyFlags
	pf.register(fs, &search.DefaultHalving)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	// Check every flag before the database is touched.
	if err := pf.check(); err != nil {
		return err
	}
	if !slices.Contains(controller.Names, *ctl) {
		return usagef("--controller %q: unknown; use one of %s", *ctl, strings.Join(controller.Names, ", "))
	}
	if *trials < 1 || *trials > 1_000_000 {
		return usagef("--trials %d: must be 1 to 1000000 candidates started at rung 0", *trials)
	}
	target, err := parseCount(*targetFLOPs)
	if err != nil || target <= 0 {
		return usagef("--target-flops %q: want a positive count of multiply-adds such as 400M", *targetFLOPs)
	}
	if math.IsNaN(*w) || math.IsInf(*w, 0) || *w > 0 {
		return usagef("--w %v: must be a finite number at most 0, e.g. -0.07 (0 ranks by accuracy alone)", *w)
	}
	bound, err := parseCount(*maxFLOPs)
	if err != nil {
		return usagef("--max-flops: %v", err)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *lease < minLease || *lease > maxLease {
		return usagef("--lease %v: must be %v to %v, e.g. 2m", *lease, minLease, maxLease)
	}
	if *screen < 0 {
		return usagef("--screen %d: must be 0 (no screening) or a number of candidates of at least --trials (%d)", *screen, *trials)
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"supernet-steps", *snSteps}, {"checkpoint-every", *ckEvery}, {"score-calib", *scoreCalib}, {"score-images", *scoreImages}} {
		if f.v < 1 || f.v > 10_000_000 {
			return usagef("--%s %d: must be 1 to 10000000", f.name, f.v)
		}
	}
	if *screen == 0 {
		for _, f := range []string{"supernet-steps", "checkpoint-every", "score-calib", "score-images", "supernet-warmup"} {
			if set[f] {
				return usagef("--%s is a setting of one-shot screening: give --screen N too", f)
			}
		}
	}
	cfg := search.Config{
		Controller: *ctl, Trials: *trials, Seed: pf.seed, Proxy: pf.proxy(),
		Reward: controller.RewardConfig{Target: target, W: w, MaxFLOPs: int64(bound)},
	}
	if *screen != 0 {
		cfg.Screen = &search.Screen{N: *screen, CheckpointEvery: *ckEvery, Warmup: *snWarmup,
			Supernet: trainer.SupernetConfig{Steps: *snSteps, Calib: *scoreCalib, ScoreImages: *scoreImages}}
		if err := cfg.Screen.WithDefaults().Validate(*trials); err != nil {
			return usagef("%v", err)
		}
	}
	if *spaceFile != "" {
		sp, err := loadSpace(*spaceFile)
		if err != nil {
			return usagef("--space: %v", err)
		}
		cfg.Space = sp.JSON()
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return usagef("%v", err)
	}

	st, err := openForWriting(ctx, db)
	if err != nil {
		return err
	}
	defer st.Close()
	study, err := search.Create(ctx, st, *name, cfg)
	if err != nil {
		return err
	}
	if !*asJSON {
		fmt.Fprintf(env.Stderr, "study %d in %s: %s search of %d candidates, %d workers, proxy %s at %dx%d, width %v; %s\n",
			study.ID, db, cfg.Controller, cfg.Trials, pf.workers, cfg.Proxy.Dataset, cfg.Proxy.Res, cfg.Proxy.Res, cfg.Proxy.Width, cfg.Proxy.Schedule())
	}
	opts := pf.options()
	opts.Lease = *lease
	return runStudy(ctx, env, st, db, study, opts, *asJSON)
}

// runStudy runs (or resumes) a search study and reports it.
func runStudy(ctx context.Context, env *Env, st store.Store, db *dbName, study store.Study, opts search.Options, asJSON bool) error {
	src, err := search.Open(ctx, st, study)
	if err != nil {
		return err
	}
	if opts.Queue == 0 {
		// Keep as many trials planned as are trained here, for any
		// effnas worker sharing the database.
		opts.Queue = opts.Workers
	}
	return runAndReport(ctx, env, st, db, study, src, opts, asJSON, "trials",
		func(sum search.Summary, trials []store.Trial) (report, error) {
			rep, err := newSearchReport(src, study, sum, trials)
			if err != nil {
				return nil, err
			}
			err = search.Retry(context.WithoutCancel(ctx), opts.Patience(), "read the screening", func(ctx context.Context) (err error) {
				rep.Screened, rep.Supernet, rep.Screening, err = search.ScreenOf(ctx, st, study)
				return err
			})
			return rep, err
		})
}

// report is what search and grid print when a run ends.
type report interface{ print(w io.Writer, db *dbName) }

// runAndReport runs a study's source with a progress display, then prints
// the report that build makes of it (JSON with asJSON). After Ctrl-C it
// still reports, says how to resume and returns errSilentInterrupted.
func runAndReport(ctx context.Context, env *Env, st store.Store, db *dbName, study store.Study, src search.Source,
	opts search.Options, asJSON bool, what string, build func(search.Summary, []store.Trial) (report, error)) error {
	prog := newProgress(env.Stderr, env.Terminal, what)
	opts.Events = prog
	sum, runErr := search.Run(ctx, st, study, src, opts)
	prog.Close()
	if runErr != nil && !errors.Is(runErr, search.ErrInterrupted) {
		return runErr
	}
	// The study is saved: a database restarting just now must not lose
	// its report.
	var trials []store.Trial
	err := search.Retry(context.WithoutCancel(ctx), opts.Patience(), "read the trials", func(ctx context.Context) error {
		var err error
		trials, err = st.Trials(ctx, study.ID)
		return err
	})
	if err != nil {
		return err
	}
	rep, err := build(sum, trials)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		rep.print(env.Stdout, db)
	}
	if errors.Is(runErr, search.ErrInterrupted) {
		fmt.Fprintf(env.Stderr, "interrupted: %s study %d is saved; continue it with\n  effnas resume%s --study %d\nwatch it with\n  effnas dashboard%s\n",
			study.Kind, study.ID, db.Flag(), study.ID, db.Flag())
		return errSilentInterrupted
	}
	return nil
}

// errSilentInterrupted: the message was printed; exit with status 130.
var errSilentInterrupted = fmt.Errorf("%w%w", errSilent, errInterrupted)

// foundJSON is the best network of a search: the finalist with the best
// mean reward over its seeds at the top rung.
type foundJSON struct {
	Trial        int      `json:"trial"`
	Key          string   `json:"key"`
	Blocks       []string `json:"blocks"`
	Timm         []string `json:"timm"`
	Stem         int      `json:"stem"`
	Head         int      `json:"head"`
	Params       int64    `json:"params"`
	FLOPs        int64    `json:"flops"`
	Seeds        int      `json:"seeds"`
	Accuracy     float64  `json:"accuracy"` // mean over the seeds
	AccuracyStd  float64  `json:"accuracy_std"`
	Reward       float64  `json:"reward"` // mean over the seeds
	TestAccuracy float64  `json:"test_accuracy"`
	Finalist     bool     `json:"finalist"`
	MissingSeeds int      `json:"missing_seeds"` // seeds without a complete run (ranked after the finalists with all)
}

type paretoJSON struct {
	Trial       int     `json:"trial"`
	Seeds       int     `json:"seeds"`
	Accuracy    float64 `json:"accuracy"`
	AccuracyStd float64 `json:"accuracy_std"`
	FLOPs       int64   `json:"flops"`
	Params      int64   `json:"params"`
	Key         string  `json:"key"`
}

type searchReport struct {
	Study     int64             `json:"study"`
	Status    string            `json:"status"`
	Complete  bool              `json:"complete"`
	Counts    store.Counts      `json:"counts"`
	Trained   int               `json:"trained"`
	Seconds   float64           `json:"seconds"`
	Rungs     []rungJSON        `json:"rungs"`
	Best      *foundJSON        `json:"best"`
	Finalists []search.Standing `json:"finalists"`
	Pareto    []paretoJSON      `json:"pareto"`
	// RungAgreement: how each rung below the top ranked the candidates
	// that reached the top, against their top-rung means.
	RungAgreement []search.RungAgreement `json:"rung_agreement"`
	// Screened, Supernet and Screening are the one-shot screening, as
	// show --json gives them.
	Screened  int                    `json:"screened"`
	Supernet  *search.SupernetReport `json:"supernet"`
	Screening *search.ScreenReport   `json:"screening,omitempty"`
	Summary   search.Summary         `json:"-"`
}

// rungJSON is one rung's progress: its fidelity and its candidates.
type rungJSON struct {
	Rung      int `json:"rung"`
	TrainSize int `json:"train_size"`
	Epochs    int `json:"epochs"`
	Trials    int `json:"trials"` // planned at this rung, every seed
	Complete  int `json:"complete"`
	Failed    int `json:"failed"`
}

// rungsOf counts a study's trials per rung.
func rungsOf(p search.Proxy, trials []store.Trial) []rungJSON {
	out := make([]rungJSON, p.Halving.Rungs)
	for k := range out {
		f := p.Fidelity(k)
		out[k] = rungJSON{Rung: k, TrainSize: f.TrainSize, Epochs: f.Epochs}
	}
	for _, t := range trials {
		if t.Rung < 0 || t.Rung >= len(out) {
			continue
		}
		r := &out[t.Rung]
		r.Trials++
		switch t.State {
		case store.TrialComplete:
			r.Complete++
		case store.TrialFailed:
			r.Failed++
		}
	}
	return out
}

func newSearchReport(src *search.Searcher, study store.Study, sum search.Summary, trials []store.Trial) (*searchReport, error) {
	p := src.Config().Proxy
	rep := &searchReport{Study: study.ID, Complete: sum.Complete, Counts: sum.Counts, Trained: sum.Trained, Seconds: sum.Seconds, Summary: sum,
		Rungs: rungsOf(p, trials), Finalists: []search.Standing{}, Pareto: []paretoJSON{}}
	rep.Status = "stopped"
	if sum.Complete {
		rep.Status = "complete"
	}
	standings := search.Standings(trials, p.Halving)
	if len(standings) > 0 {
		b := standings[0]
		full, err := src.FullArch(b.Trial)
		if err != nil {
			return nil, err
		}
		rep.Best = &foundJSON{
			Trial: b.Trial.Number, Key: b.Key, Blocks: space.FormatBlocks(full.Blocks), Timm: space.FormatTimmBlocks(full.Blocks),
			Stem: full.Stem, Head: full.Head, Params: full.Params(), FLOPs: full.FLOPs(), Seeds: b.Seeds,
			Accuracy: b.Accuracy, AccuracyStd: b.AccuracyStd, Reward: b.Reward, TestAccuracy: b.TestAccuracy, Finalist: b.Finalist,
			MissingSeeds: b.MissingSeeds,
		}
	}
	for _, s := range standings {
		if s.Finalist && p.Halving.TopSeeds > 1 {
			rep.Finalists = append(rep.Finalists, s)
		}
	}
	rep.RungAgreement = search.Agreement(trials, p, nil)
	for _, s := range search.Pareto(trials, p.Halving) {
		rep.Pareto = append(rep.Pareto, paretoJSON{Trial: s.Trial.Number, Seeds: s.Seeds, Accuracy: s.Accuracy, AccuracyStd: s.AccuracyStd,
			FLOPs: s.Trial.FLOPs, Params: s.Trial.Params, Key: s.Key})
	}
	return rep, nil
}

// pm writes a mean and its standard deviation over seeds.
func pm(mean, sd float64, seeds int) string {
	if seeds < 2 {
		return fmt.Sprintf("%.4f (1 seed)", mean)
	}
	return fmt.Sprintf("%.4f ± %.4f (%d seeds)", mean, sd, seeds)
}

func (r *searchReport) print(w io.Writer, db *dbName) {
	c := r.Counts
	fmt.Fprintf(w, "study %d: %s; %d trials complete, %d failed, %d trained now in %.0fs\n", r.Study, r.Status, c.Complete, c.Failed, r.Trained, r.Seconds)
	printScreening(w, r.Supernet, r.Screening)
	for _, g := range r.Rungs {
		fmt.Fprintf(w, "  rung %d (%d images x %d epochs): %d trials, %d complete, %d failed\n", g.Rung, g.TrainSize, g.Epochs, g.Trials, g.Complete, g.Failed)
	}
	if len(r.Finalists) > 0 {
		fmt.Fprintln(w, "\nfinalists (mean over seeds at the top rung):")
		for _, f := range r.Finalists {
			fmt.Fprintf(w, "  trial %-4d accuracy %s, reward %.4f, test accuracy %.4f, %s multiply-adds%s\n",
				f.Trial.Number, pm(f.Accuracy, f.AccuracyStd, f.Seeds), f.Reward, f.TestAccuracy, fmtCount(f.Trial.FLOPs), missing(f))
		}
	}
	if r.Best == nil {
		fmt.Fprintln(w, "no candidate has reached the top rung yet")
	} else {
		b := r.Best
		what := "found B0"
		if !b.Finalist {
			what = "best so far (not yet a finalist)"
		}
		fmt.Fprintf(w, "\n%s (trial %d): proxy validation accuracy %s, reward %.4f, test accuracy %.4f%s\n",
			what, b.Trial, pm(b.Accuracy, b.AccuracyStd, b.Seeds), b.Reward, b.TestAccuracy, missing(search.Standing{MissingSeeds: b.MissingSeeds}))
		fmt.Fprintf(w, "  %s parameters, %s multiply-adds at 224x224 with 1000 classes; stem %d, head %d\n",
			export.Commas(b.Params), export.Commas(b.FLOPs), b.Stem, b.Head)
		fmt.Fprintln(w, "  blocks (TF):")
		for _, s := range b.Blocks {
			fmt.Fprintf(w, "    %s\n", s)
		}
		fmt.Fprintf(w, "  timm arch_def: %s\n", strings.Join(b.Timm, ", "))
	}
	if len(r.Pareto) > 1 {
		fmt.Fprintln(w, "\nPareto front (mean accuracy at the top rung vs multiply-adds):")
		for _, p := range r.Pareto {
			fmt.Fprintf(w, "  trial %-4d accuracy %s  %9s multiply-adds\n", p.Trial, pm(p.Accuracy, p.AccuracyStd, p.Seeds), fmtCount(p.FLOPs))
		}
	}
	printAgreement(w, r.RungAgreement)
	fmt.Fprintln(w)
	if !r.Complete {
		fmt.Fprintf(w, "resume:  effnas resume%s --study %d\n", db.Flag(), r.Study)
	}
	fmt.Fprintf(w, "inspect: effnas show%s --study %d\n", db.Flag(), r.Study)
	fmt.Fprintf(w, "watch:   effnas dashboard%s\n", db.Flag())
	if r.Best != nil {
		fmt.Fprintf(w, "next:    effnas grid%s --from %d     (alpha, beta, gamma at phi = 1)\n", db.Flag(), r.Study)
		fmt.Fprintf(w, "then:    effnas export%s --format md --out report/report.md\n", db.Flag())
	}
}

// printScreening says what a study's one-shot screening did (nothing
// without one).
func printScreening(w io.Writer, sn *search.SupernetReport, sr *search.ScreenReport) {
	if sn == nil {
		return
	}
	fmt.Fprintf(w, "  supernet: %d of %d steps in %.0fs, %d checkpoints", sn.Steps, sn.Budget, sn.Seconds, sn.Checkpoints)
	if sn.ScoreSeconds > 0 {
		fmt.Fprintf(w, "; scoring took %.0fs", sn.ScoreSeconds)
	}
	fmt.Fprintln(w)
	if sr == nil {
		return
	}
	fmt.Fprintf(w, "  screened: %d of %d candidates scored on it (accuracy on the same %d validation images after %d batches of batch-norm recalibration; binomial sd %.4f at the median), %.1f a second\n",
		sr.Screened, sr.N, sr.V, sr.K, sr.BinomialSD, sr.PerSecond)
	fmt.Fprintf(w, "    scores %.4f to %.4f, median %.4f; the best %d went on to rung 0 (scores from %.4f)\n",
		sr.ScoreMin, sr.ScoreMax, sr.ScoreMedian, sr.Promoted, sr.PromotedScore)
}
