package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"

	"github.com/effnas/effnas/export"
	"github.com/effnas/effnas/search"
	"github.com/effnas/effnas/store"
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
	)
	var pf proxyFlags
	pf.register(fs, nil)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := pf.check(); err != nil {
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
	case *refSize < pf.trainSize || *refSize**refEp <= pf.trainSize*pf.epochs:
		return usagef("--ref-train-size %d x --ref-epochs %d is no larger than the proxy's %d x %d: the reference must train longer than the proxy",
			*refSize, *refEp, pf.trainSize, pf.epochs)
	}
	px := pf.proxy()
	px.Halving = search.Halving{Rungs: *rungs, Eta: *eta}
	cfg := search.PanelConfig{Proxy: px, Panel: *panel, Seeds: *seeds, RefSeeds: *refSeeds, Seed: pf.seed,
		Reference: search.Fidelity{TrainSize: *refSize, Epochs: *refEp}}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return usagef("%v", err)
	}
	st, err := openForWriting(ctx, db)
	if err != nil {
		return err
	}
	defer st.Close()
	study, err := search.CreatePanel(ctx, st, *name, cfg)
	if err != nil {
		return err
	}
	if !*asJSON {
		proxy := fmt.Sprintf("proxy %d images x %d epochs", cfg.Proxy.TrainSize, cfg.Proxy.Train.Epochs)
		if cfg.Proxy.Halving.Rungs > 1 {
			proxy = "proxy " + cfg.Proxy.Schedule()
		}
		fmt.Fprintf(env.Stderr, "proxy benchmark study %d in %s: %d architectures on %s at %dx%d, width %v; %s, under %d seeds, reference %d x %d under %d seeds\n",
			study.ID, db, cfg.Panel+1, cfg.Proxy.Dataset, cfg.Proxy.Res, cfg.Proxy.Res, cfg.Proxy.Width,
			proxy, cfg.Seeds, cfg.Reference.TrainSize, cfg.Reference.Epochs, cfg.RefSeeds)
	}
	proxyPNG = *pngOut
	return runProxyStudy(ctx, env, st, db, study, pf.options(), *asJSON)
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
