package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/effnas/effnas/export"
	"github.com/effnas/effnas/search"
	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/trainer"
)

func init() {
	registerBench("proxy", "how far a proxy's ranking can be trusted on your data: a panel under several seeds against a longer reference", runBenchProxy)
}

func runBenchProxy(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet("bench proxy", env.Stderr)
	var (
		panel    = fs.Int("panel", search.DefaultPanel, "random members of the search space in the panel (B0 is added: panel + 1 architectures)")
		seeds    = fs.Int("seeds", search.DefaultSeeds, "seeds of each architecture at each rung of the proxy (at least 2)")
		rungs    = fs.Int("rungs", 1, "rungs of the proxy's successive-halving schedule, each trained for every architecture (3: search's default schedule, its fidelity curve)")
		eta      = fs.Float64("eta", search.DefaultEta, "each rung below the top trains on 1/eta of the images of the rung above, as in search")
		refSize  = fs.Int("ref-train-size", search.DefaultRefSize, "training images of the reference recipe (same width and resolution as the proxy)")
		refEp    = fs.Int("ref-epochs", search.DefaultRefEpochs, "epochs of the reference recipe")
		refSeeds = fs.Int("ref-seeds", search.DefaultRefSeeds, "seeds of each architecture at the reference (at least 2)")
		pngOut   = fs.String("png", "", "where to write the plot of proxy vs reference (default proxy-STUDY.png; - for none)")
		name     = fs.String("name", "", "a name for the study")
		asJSON   = fs.Bool("json", false, "print the report as JSON")
		db       = dbFlag(fs, "effnas.db", "SQLite file (created if missing) or postgres:// URL that keeps the benchmark as a study")
		kind     = fs.String("proxy", search.ProxyTrain, "what ranks the panel against the reference: "+strings.Join(search.ProxyKinds, ", ")+
			" (train: a training at the proxy; the others a score: a supernet's accuracy, a score at initialisation from one batch, the full-size parameter count or multiply-adds)")
		snSteps  = fs.Int("supernet-steps", trainer.DefaultSupernetSteps, "--proxy supernet: training steps of each supernet (one per seed), one sampled path each")
		snCalib  = fs.Int("score-calib", trainer.DefaultScoreCalib, "--proxy supernet: K, training batches each candidate's batch norms are recalibrated over before it is scored")
		snImages = fs.Int("score-images", trainer.DefaultScoreImages, "--proxy supernet: V, validation images every candidate is scored on")
		snWarmup = fs.Float64("supernet-warmup", search.DefaultWarmup, "--proxy supernet: the fraction of the steps over which TuNAS's filter and op warm-ups fade out, as search --screen trains (negative: none)")
	)
	var pf proxyFlags
	pf.register(fs, nil)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := pf.check(); err != nil {
		return err
	}
	if err := checkProxyKind(fs, *kind); err != nil {
		return err
	}
	switch {
	case *panel < 1 || *panel > 1000:
		return usagef("--panel %d: must be 1 to 1000 random architectures (B0 is added to them)", *panel)
	case *seeds < 2 || *seeds > 100:
		return usagef("--seeds %d: must be 2 to 100 (the proxy's noise is the spread over seeds, which needs at least 2)", *seeds)
	case *refSeeds < 2 || *refSeeds > 100:
		return usagef("--ref-seeds %d: must be 2 to 100 (how far the reference agrees with itself, the ceiling of any proxy, needs at least 2)", *refSeeds)
	case *rungs < 1 || *rungs > 8:
		return usagef("--rungs %d: must be 1 (the proxy alone) to 8 rungs of a successive-halving schedule", *rungs)
	case math.IsNaN(*eta) || *eta < 2 || *eta > 100:
		return usagef("--eta %v: must be 2 to 100; each rung below the top trains on 1/eta of the images of the rung above, e.g. 3", *eta)
	case *refEp < 1:
		return usagef("--ref-epochs %d: must be at least 1", *refEp)
	case *refSize < 1:
		return usagef("--ref-train-size %d: must be a positive number of images", *refSize)
	case pf.trainSize < 1:
		return usagef("--train-size %d: the proxy needs a number of images", pf.trainSize)
	case *kind == search.ProxySupernet && (*snSteps < 1 || *snSteps > 10_000_000):
		return usagef("--supernet-steps %d: must be 1 to 10000000 training steps", *snSteps)
	case *kind == search.ProxySupernet && (*snCalib < 1 || *snCalib > 10_000):
		return usagef("--score-calib %d: must be 1 to 10000 batches (K)", *snCalib)
	case *kind == search.ProxySupernet && *snImages < 1:
		return usagef("--score-images %d: must be a positive number of validation images (V)", *snImages)
	case *kind == search.ProxySupernet && (math.IsNaN(*snWarmup) || *snWarmup > 1):
		return usagef("--supernet-warmup %v: must be a fraction of the steps up to 1, e.g. 0.25, or negative for none", *snWarmup)
	case *rungs > 1 && *kind != search.ProxyTrain:
		return usagef("--rungs %d with --proxy %s: a score is not trained at rungs; rungs are for --proxy train", *rungs, *kind)
	case *refSize < pf.trainSize || *refSize**refEp <= pf.trainSize*pf.epochs:
		return usagef("--ref-train-size %d x --ref-epochs %d is no larger than the proxy's %d x %d: the reference must train longer than the proxy",
			*refSize, *refEp, pf.trainSize, pf.epochs)
	}
	px := pf.proxy()
	px.Halving = search.Halving{Rungs: *rungs, Eta: *eta}
	cfg := search.PanelConfig{Proxy: px, Panel: *panel, Seeds: *seeds, RefSeeds: *refSeeds, Seed: pf.seed,
		Reference: search.Fidelity{TrainSize: *refSize, Epochs: *refEp}, ProxyKind: *kind}
	if *kind == search.ProxySupernet {
		cfg.Supernet = &trainer.SupernetConfig{Steps: *snSteps, Calib: *snCalib, ScoreImages: *snImages}
		cfg.SupernetWarmup = *snWarmup
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
	// The scores and the reference's runs load the data once.
	opts := pf.options()
	opts.Data = search.NewDataCache()
	study, err := search.CreatePanelWith(ctx, st, *name, cfg, search.ScoreOptions{Workers: opts.Workers, Threads: opts.Threads, Data: opts.Data,
		Log: func(format string, args ...any) { fmt.Fprintf(env.Stderr, format+"\n", args...) }})
	if err != nil {
		return err
	}
	if !*asJSON {
		proxy := fmt.Sprintf("proxy %d images x %d epochs", cfg.Proxy.TrainSize, cfg.Proxy.Train.Epochs)
		switch {
		case cfg.ProxyKind != search.ProxyTrain:
			proxy = "proxy " + cfg.ProxyKind + " (scored)"
		case cfg.Proxy.Halving.Rungs > 1:
			proxy = "proxy " + cfg.Proxy.Schedule()
		}
		fmt.Fprintf(env.Stderr, "proxy benchmark study %d in %s: %d architectures on %s at %dx%d, width %v; %s, under %d seeds, reference %d x %d under %d seeds\n",
			study.ID, db, cfg.Panel+1, cfg.Proxy.Dataset, cfg.Proxy.Res, cfg.Proxy.Res, cfg.Proxy.Width,
			proxy, cfg.Seeds, cfg.Reference.TrainSize, cfg.Reference.Epochs, cfg.RefSeeds)
	}
	proxyPNG = *pngOut
	return runProxyStudy(ctx, env, st, db, study, opts, *asJSON)
}

// supernetFlags are bench proxy's flags that only --proxy supernet uses.
var supernetFlags = []string{"supernet-steps", "supernet-warmup", "score-calib", "score-images"}

// checkProxyKind refuses an unknown --proxy, and the supernet's flags
// with another kind.
func checkProxyKind(fs *flag.FlagSet, kind string) error {
	if !slices.Contains(search.ProxyKinds, kind) {
		return usagef("--proxy %q: unknown; want one of %s", kind, strings.Join(search.ProxyKinds, ", "))
	}
	var given []string
	fs.Visit(func(f *flag.Flag) {
		if slices.Contains(supernetFlags, f.Name) {
			given = append(given, "--"+f.Name)
		}
	})
	if len(given) > 0 && kind != search.ProxySupernet {
		return usagef("%s with --proxy %s: they apply to --proxy supernet only", strings.Join(given, ", "), kind)
	}
	return nil
}

// proxyPNG is --png of the running bench proxy ("" for the default name);
// a resumed benchmark writes the default.
var proxyPNG string

// openProxySource opens a proxy benchmark study for a worker.
func openProxySource(s store.Study) (search.Source, error) { return search.OpenPanel(s) }

// runProxyStudy runs (or resumes) a proxy benchmark study and reports it.
func runProxyStudy(ctx context.Context, env *Env, st store.Store, db *dbName, study store.Study, opts search.Options, asJSON bool) error {
	p, err := search.OpenPanel(study)
	if err != nil {
		return err
	}
	return runAndReport(ctx, env, st, db, study, p, opts, asJSON, "proxy runs",
		func(sum search.Summary, trials []store.Trial) (report, error) {
			// The number of classes sets the chance level.
			rep := &proxyReport{PanelReport: p.Report(study, trials, sum.Classes)}
			if rep.Complete && proxyPNG != "-" {
				path := proxyPNG
				if path == "" {
					path = fmt.Sprintf("proxy-%d.png", study.ID)
				}
				img, err := export.PanelPlot(rep.PanelReport)
				if err != nil {
					return nil, err
				}
				if img != nil {
					if err := export.WriteFile(path, img); err != nil {
						return nil, err
					}
					rep.PNG = path
				}
			}
			return rep, nil
		})
}

// proxyReport is what bench proxy prints.
type proxyReport struct {
	*search.PanelReport
	PNG string `json:"png,omitempty"`
}

func (r *proxyReport) print(w io.Writer, db *dbName) {
	if r.ProxyKind != "" && r.ProxyKind != search.ProxyTrain {
		r.printScored(w, db)
		return
	}
	status := "complete"
	if !r.Complete {
		status = "not complete"
	}
	proxy := "proxy " + r.Proxy
	if len(r.Rungs) > 1 {
		var parts []string
		for _, g := range r.Rungs {
			parts = append(parts, fmt.Sprintf("%dx%d", g.TrainSize, g.Epochs))
		}
		proxy = fmt.Sprintf("proxy rungs of %s images x epochs (eta %g)", strings.Join(parts, ", "), r.Eta)
	}
	fmt.Fprintf(w, "proxy benchmark study %d (%s) on %s: %s under %d seeds, reference %s under %d seeds\n\n",
		r.Study, status, r.Dataset, proxy, r.Seeds, r.Reference, r.RefSeeds)
	if r.ReferenceFrom != 0 {
		fmt.Fprintf(w, "(the reference runs are reused from proxy benchmark study %d: same data, recipe, panel and reference)\n\n", r.ReferenceFrom)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "arch\tmult-adds\t"
	for _, g := range r.Rungs[:len(r.Rungs)-1] {
		head += fmt.Sprintf("rung %d val\t", g.Rung)
	}
	if len(r.Rungs) > 1 {
		head += "top rung val\tsd\treference test\tsd\tfailed\t"
	} else {
		head += "proxy val\tsd\treference test\tsd\tfailed\t"
	}
	fmt.Fprintln(tw, head)
	for i, a := range r.Archs {
		label := fmt.Sprintf("%d", i)
		if a.B0 {
			label = "B0"
		}
		row := fmt.Sprintf("%s\t%s\t", label, fmtCount(a.FLOPs))
		for _, g := range a.Rungs[:max(0, len(a.Rungs)-1)] {
			row += fmt.Sprintf("%.4f\t", g.Mean)
		}
		fmt.Fprintf(tw, "%s%.4f\t%.4f\t%.4f\t%.4f\t%d\t\n", row, a.ProxyMean, a.ProxyStd, a.Reference, a.ReferenceStd, a.Failed)
	}
	tw.Flush()
	if len(r.Rungs) > 1 {
		fmt.Fprintf(w, "\nthe fidelity curve (Kendall tau-b and Spearman rho of each rung's means against the reference's, over the architectures with every run):\n")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "rung\ttrains on\tarchs\tseed sd\ttau seeds\ttau reference\trho reference\t")
		for _, g := range r.Rungs {
			fmt.Fprintf(tw, "%d\t%d images x %d epochs\t%d\t%.2f pt\t%.2f\t%.2f\t%.2f\t\n", g.Rung, g.TrainSize, g.Epochs, g.Archs, 100*g.SeedStd, g.TauSeeds, g.TauReference, g.SpearmanReference)
		}
		fmt.Fprintf(tw, "reference\t%s\t\t%.2f pt\t%.2f\t(the ceiling)\t\t\n", r.Reference, 100*r.ReferenceStd, r.TauReferenceSeeds)
		tw.Flush()
		fmt.Fprintln(w, "\nthe top rung:")
	}
	fmt.Fprintf(w, "\nseed sd: proxy %.2f points, reference %.2f points (mean over the architectures)\n", 100*r.SeedStd, 100*r.ReferenceStd)
	fmt.Fprintf(w, "Kendall tau (Spearman rho): between proxy seeds %.2f (%.2f); between reference seeds %.2f (%.2f), the ceiling; proxy mean vs reference mean %.2f (%.2f)\n",
		r.TauSeeds, r.SpearmanSeeds, r.TauReferenceSeeds, r.SpearmanReferenceSeeds, r.TauReference, r.SpearmanReference)
	if r.BelowChance > 0 || r.Diverged > 0 {
		fmt.Fprintf(w, "%d proxy runs below twice chance, %d runs diverged\n", r.BelowChance, r.Diverged)
	}
	fmt.Fprintf(w, "verdict: %s\n", r.Verdict)
	if r.PNG != "" {
		fmt.Fprintf(w, "plot: %s\n", r.PNG)
	}
	if !r.Complete {
		fmt.Fprintf(w, "\nresume:  effnas resume%s --study %d\n", db.Flag(), r.Study)
	}
}

// printScored prints the report of a benchmark whose proxy is a score:
// the score in its own unit, never called an accuracy; what scoring cost.
func (r *proxyReport) printScored(w io.Writer, db *dbName) {
	status := "complete"
	if !r.Complete {
		status = "not complete"
	}
	fmt.Fprintf(w, "proxy benchmark study %d (%s) on %s: proxy %s under %d seeds, reference %s under %d seeds\n",
		r.Study, status, r.Dataset, r.Proxy, r.Seeds, r.Reference, r.RefSeeds)
	fmt.Fprintf(w, "the proxy is a score, not an accuracy: %s\n\n", r.ScoreUnit)
	if r.ReferenceFrom != 0 {
		fmt.Fprintf(w, "(the reference runs are reused from proxy benchmark study %d: same data, recipe, panel and reference)\n\n", r.ReferenceFrom)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "arch\tmult-adds\tparams\t%s\tsd\treference test\tsd\tfailed\t\n", r.ProxyKind)
	for i, a := range r.Archs {
		label := fmt.Sprintf("%d", i)
		if a.B0 {
			label = "B0"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.4f\t%.4f\t%d\t\n", label, fmtCount(a.FLOPs), fmtCount(a.Params),
			fmtScore(r.ProxyKind, a.ProxyMean), fmtScore(r.ProxyKind, a.ProxyStd), a.Reference, a.ReferenceStd, a.Failed)
	}
	tw.Flush()
	if sc := r.Scoring; sc != nil && sc.Deterministic {
		fmt.Fprintf(w, "\nseed sd: %s 0, deterministic: every seed gives the same score; reference %.2f points (mean over the architectures)\n", r.ProxyKind, 100*r.ReferenceStd)
	} else {
		fmt.Fprintf(w, "\nseed sd: %s %s (in its unit), reference %.2f points (means over the architectures)\n", r.ProxyKind, fmtScore(r.ProxyKind, r.SeedStd), 100*r.ReferenceStd)
	}
	fmt.Fprintf(w, "Kendall tau (Spearman rho): between score seeds %.2f (%.2f); between reference seeds %.2f (%.2f), the ceiling; score mean vs reference mean %.2f (%.2f)\n",
		r.TauSeeds, r.SpearmanSeeds, r.TauReferenceSeeds, r.SpearmanReferenceSeeds, r.TauReference, r.SpearmanReference)
	if sc := r.Scoring; sc != nil {
		n := 0
		for _, s := range sc.Seeds {
			n += s.Scored
		}
		fmt.Fprintf(w, "scoring: %d scores, %.1fs summed over seeds (%.1fs of wall time, %d at once on %d threads each): %.3g candidates a second per core\n",
			n, sc.Seconds, sc.WallSeconds, sc.Workers, sc.Threads, sc.CandidatesPerCoreSecond)
		if sc.Steps > 0 {
			fmt.Fprintf(w, "supernets: %d steps each, warm-up %g; K = %d calibration batches, V = %d validation images: binomial sd %.2f points at the mean score\n",
				sc.Steps, sc.Warmup, sc.Calib, sc.ScoreImages, 100*sc.BinomialSD)
			for _, s := range sc.Seeds {
				fmt.Fprintf(w, "  seed %d: trained in %.1fs, %d candidates scored in %.1fs\n", s.Seed, s.TrainSeconds, s.Scored, s.ScoreSeconds)
			}
		}
	}
	if r.Diverged > 0 {
		fmt.Fprintf(w, "%d runs diverged\n", r.Diverged)
	}
	fmt.Fprintf(w, "verdict: %s\n", r.Verdict)
	if r.PNG != "" {
		fmt.Fprintf(w, "plot: %s\n", r.PNG)
	}
	if !r.Complete {
		fmt.Fprintf(w, "\nresume:  effnas resume%s --study %d\n", db.Flag(), r.Study)
	}
}

// fmtScore formats a score of a proxy kind: counts as counts, accuracies
// to 4 places, other scores to 4 significant digits.
func fmtScore(kind string, v float64) string {
	switch kind {
	case search.ProxyParams, search.ProxyFLOPs:
		return fmtCount(int64(math.Round(v)))
	case search.ProxySupernet, search.ProxyTrain:
		return fmt.Sprintf("%.4f", v)
	}
	return fmt.Sprintf("%.4g", v)
}
