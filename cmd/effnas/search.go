package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/effnas/effnas/controller"
	"github.com/effnas/effnas/export"
	"github.com/effnas/effnas/search"
	"github.com/effnas/effnas/space"
	"github.com/effnas/effnas/store"
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
		db          = fs.String("db", "effnas.db", "SQLite file that keeps the study (created if missing)")
		spaceFile   = fs.String("space", "", "search-space JSON file (default: the built-in MnasNet space)")
		ctl         = fs.String("controller", search.DefaultController, "search strategy: "+strings.Join(controller.Names, ", "))
		trials      = fs.Int("trials", search.DefaultTrials, "trials to train (the budget)")
		targetFLOPs = fs.String("target-flops", "400M", "reward's target T in multiply-adds (400M, 4e8...)")
		w           = fs.Float64("w", controller.DefaultW, "reward's exponent w in ACC*(FLOPS/T)^w (at most 0)")
		maxFLOPs    = fs.String("max-flops", "0", "hard bound: candidates with more multiply-adds are rejected before training (0: none)")
		name        = fs.String("name", "", "a name for the study")
		asJSON      = fs.Bool("json", false, "print the result as JSON")
	)
	var pf proxyFlags
	pf.register(fs)
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
		return usagef("--trials %d: must be 1 to 1000000", *trials)
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
	cfg := search.Config{
		Controller: *ctl, Trials: *trials, Seed: pf.seed, Proxy: pf.proxy(),
		Reward: controller.RewardConfig{Target: target, W: w, MaxFLOPs: int64(bound)},
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

	st, err := openForWriting(ctx, *db)
	if err != nil {
		return err
	}
	defer st.Close()
	study, err := search.Create(ctx, st, *name, cfg)
	if err != nil {
		return err
	}
	if !*asJSON {
		fmt.Fprintf(env.Stderr, "study %d in %s: %s search, %d trials, %d workers, proxy %s at %dx%d, width %v\n",
			study.ID, *db, cfg.Controller, cfg.Trials, pf.workers, cfg.Proxy.Dataset, cfg.Proxy.Res, cfg.Proxy.Res, cfg.Proxy.Width)
	}
	return runStudy(ctx, env, st, *db, study, pf.options(), *asJSON)
}

// runStudy runs (or resumes) a search study and reports it.
func runStudy(ctx context.Context, env *Env, st store.Store, db string, study store.Study, opts search.Options, asJSON bool) error {
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
			return newSearchReport(src, study, sum, trials)
		})
}

// report is what search and grid print when a run ends.
type report interface{ print(w io.Writer, db string) }

// runAndReport runs a study's source with a progress display, then prints
// the report that build makes of it (JSON with asJSON). After Ctrl-C it
// still reports, says how to resume and returns errSilentInterrupted.
func runAndReport(ctx context.Context, env *Env, st store.Store, db string, study store.Study, src search.Source,
	opts search.Options, asJSON bool, what string, build func(search.Summary, []store.Trial) (report, error)) error {
	prog := newProgress(env.Stderr, env.Terminal, what)
	opts.Events = prog
	sum, runErr := search.Run(ctx, st, study, src, opts)
	prog.Close()
	if runErr != nil && !errors.Is(runErr, search.ErrInterrupted) {
		return runErr
	}
	trials, err := st.Trials(context.WithoutCancel(ctx), study.ID)
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
		fmt.Fprintf(env.Stderr, "interrupted: %s study %d is saved; continue it with\n  effnas resume --db %s --study %d\n", study.Kind, study.ID, db, study.ID)
		return errSilentInterrupted
	}
	return nil
}

// errSilentInterrupted: the message was printed; exit with status 130.
var errSilentInterrupted = fmt.Errorf("%w%w", errSilent, errInterrupted)

// foundJSON is the best network of a search.
type foundJSON struct {
	Trial    int      `json:"trial"`
	Key      string   `json:"key"`
	Blocks   []string `json:"blocks"`
	Timm     []string `json:"timm"`
	Stem     int      `json:"stem"`
	Head     int      `json:"head"`
	Params   int64    `json:"params"`
	FLOPs    int64    `json:"flops"`
	Accuracy float64  `json:"accuracy"`
	Reward   float64  `json:"reward"`
}

type paretoJSON struct {
	Trial    int     `json:"trial"`
	Accuracy float64 `json:"accuracy"`
	FLOPs    int64   `json:"flops"`
	Params   int64   `json:"params"`
	Key      string  `json:"key"`
}

type searchReport struct {
	Study    int64          `json:"study"`
	Status   string         `json:"status"`
	Complete bool           `json:"complete"`
	Counts   store.Counts   `json:"counts"`
	Trained  int            `json:"trained"`
	Seconds  float64        `json:"seconds"`
	Best     *foundJSON     `json:"best"`
	Pareto   []paretoJSON   `json:"pareto"`
	Summary  search.Summary `json:"-"`
}

func newSearchReport(src *search.Searcher, study store.Study, sum search.Summary, trials []store.Trial) (*searchReport, error) {
	rep := &searchReport{Study: study.ID, Complete: sum.Complete, Counts: sum.Counts, Trained: sum.Trained, Seconds: sum.Seconds, Summary: sum}
	rep.Status = "stopped"
	if sum.Complete {
		rep.Status = "complete"
	}
	if b := search.Best(trials); b != nil {
		full, err := src.FullArch(*b)
		if err != nil {
			return nil, err
		}
		rep.Best = &foundJSON{
			Trial: b.Number, Key: b.Key, Blocks: space.FormatBlocks(full.Blocks), Timm: space.FormatTimmBlocks(full.Blocks),
			Stem: full.Stem, Head: full.Head, Params: full.Params(), FLOPs: full.FLOPs(), Accuracy: b.Accuracy, Reward: b.Reward,
		}
	}
	for _, p := range search.Pareto(trials) {
		rep.Pareto = append(rep.Pareto, paretoJSON{Trial: p.Number, Accuracy: p.Accuracy, FLOPs: p.FLOPs, Params: p.Params, Key: p.Key})
	}
	return rep, nil
}

func (r *searchReport) print(w io.Writer, db string) {
	c := r.Counts
	fmt.Fprintf(w, "study %d: %s; %d trials complete, %d failed, %d trained now in %.0fs\n", r.Study, r.Status, c.Complete, c.Failed, r.Trained, r.Seconds)
	if r.Best == nil {
		fmt.Fprintln(w, "no trial has completed yet")
	} else {
		b := r.Best
		fmt.Fprintf(w, "\nfound B0 (trial %d): proxy validation accuracy %.4f, reward %.4f\n", b.Trial, b.Accuracy, b.Reward)
		fmt.Fprintf(w, "  %s parameters, %s multiply-adds at 224x224 with 1000 classes; stem %d, head %d\n",
			export.Commas(b.Params), export.Commas(b.FLOPs), b.Stem, b.Head)
		fmt.Fprintln(w, "  blocks (TF):")
		for _, s := range b.Blocks {
			fmt.Fprintf(w, "    %s\n", s)
		}
		fmt.Fprintf(w, "  timm arch_def: %s\n", strings.Join(b.Timm, ", "))
	}
	if len(r.Pareto) > 1 {
		fmt.Fprintln(w, "\nPareto front (accuracy vs multiply-adds):")
		for _, p := range r.Pareto {
			fmt.Fprintf(w, "  trial %-4d accuracy %.4f  %9s multiply-adds\n", p.Trial, p.Accuracy, fmtCount(p.FLOPs))
		}
	}
	fmt.Fprintln(w)
	if !r.Complete {
		fmt.Fprintf(w, "resume:  effnas resume --db %s --study %d\n", db, r.Study)
	}
	fmt.Fprintf(w, "inspect: effnas show --db %s --study %d\n", db, r.Study)
	if r.Best != nil {
		fmt.Fprintf(w, "next:    effnas grid --db %s --from %d     (alpha, beta, gamma at phi = 1)\n", db, r.Study)
		fmt.Fprintf(w, "then:    effnas export --db %s --format md --out report.md\n", db)
	}
}
