package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"slices"
	"strings"

	"github.com/effnas/effnas/controller"
	"github.com/effnas/effnas/controller/nb201"
)

func init() {
	registerBench("nb201", "run a search strategy on the NAS-Bench-201 lookup table", runBenchNB201)
}

// runBenchNB201 runs a controller on the NAS-Bench-201 lookup table (the
// built-in one, or --table): Runs seeded searches of Samples proposals each,
// reporting the mean and standard deviation of the returned cells' 200-epoch
// test accuracy. With --agreement it runs no controller but reports how far
// the table's 12-epoch ranking agrees with its 200-epoch one.
func runBenchNB201(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet("bench nb201", env.Stderr)
	table := fs.String("table", "", "use the NAS-Bench-201 table in `file.csv` (the built-in table's columns) instead of the built-in one")
	dataset := fs.String("dataset", "cifar10", "dataset: "+strings.Join(nb201.DatasetNames, ", "))
	name := fs.String("controller", "evolution", "controller: "+strings.Join(controller.Names, ", "))
	samples := fs.Int("samples", 100, "proposals per run (distinct cells)")
	runs := fs.Int("runs", 100, "independent seeded runs")
	seed := new(uint64)
	fs.Var((*seedValue)(seed), "seed", "seed of the first run; run r uses seed+r (with --agreement: the seed of the panels)")
	workers := fs.Int("workers", 0, "runs in parallel (default: the number of CPUs)")
	population := fs.Int("population", controller.DefaultPopulation, "evolution: population size")
	tournament := fs.Int("tournament", controller.DefaultSample, "evolution: tournament sample size")
	lr := fs.Float64("lr", controller.DefaultLearningRate, "reinforce: learning rate")
	decay := fs.Float64("baseline-decay", controller.DefaultBaselineDecay, "reinforce: decay of the moving-average baseline, in (0, 1)")
	entropy := fs.Float64("entropy", controller.DefaultEntropy, "reinforce: entropy bonus weight, positive")
	agree := fs.Bool("agreement", false, "run no controller: report the Kendall tau-b between the table's 12-epoch validation and 200-epoch test accuracies, on every dataset unless --dataset is given")
	panelSize := fs.Int("panel-size", defaultAgreementPanel, "with --agreement: distinct cells per random panel (bench proxy's panel: B0 and 12 members)")
	panels := fs.Int("panels", defaultAgreementPanels, "with --agreement: random panels per figure")
	top := fs.Int("top", defaultAgreementTop, "with --agreement: also over the `n` cells of best 200-epoch test accuracy")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}

	ds, err := nb201.ParseDataset(*dataset)
	if err != nil {
		return usagef("--dataset: %v", err)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *agree {
		cfg := agreementConfig{PanelSize: *panelSize, Panels: *panels, Top: *top, Seed: *seed}
		if set["dataset"] {
			cfg.Datasets = []nb201.Dataset{ds}
		}
		return runNB201Agreement(ctx, env, set, cfg, *table, *asJSON)
	}
	for _, name := range []string{"panel-size", "panels", "top"} {
		if set[name] {
			return usagef("--%s is for --agreement: give --agreement too, or leave --%s out", name, name)
		}
	}
	if !slices.Contains(controller.Names, *name) {
		return usagef("--controller %q is unknown: valid controllers are %s", *name, strings.Join(controller.Names, ", "))
	}
	if *samples < 1 || *samples > nb201.Cells {
		return usagef("--samples %d is out of range: give 1 to %d (the cells in the space)", *samples, nb201.Cells)
	}
	if *runs < 1 {
		return usagef("--runs %d is out of range: give at least 1", *runs)
	}
	if *workers < 0 {
		return usagef("--workers %d is negative: give at least 1, or 0 for the number of CPUs", *workers)
	}
	if *population < 1 {
		return usagef("--population %d is out of range: give at least 1", *population)
	}
	if *tournament < 1 || *tournament > *population {
		return usagef("--tournament %d is out of range: give 1 to the population (%d)", *tournament, *population)
	}
	if !(*lr > 0) {
		return usagef("--lr %g is out of range: give a positive learning rate such as %g", *lr, controller.DefaultLearningRate)
	}
	if !(*decay > 0 && *decay < 1) {
		return usagef("--baseline-decay %g is out of range: give a number strictly between 0 and 1", *decay)
	}
	if !(*entropy > 0) {
		return usagef("--entropy %g is out of range: give a positive weight such as %g", *entropy, controller.DefaultEntropy)
	}

	cfg := nb201.Config{
		Dataset:    ds,
		Controller: *name,
		Samples:    *samples,
		Runs:       *runs,
		Seed:       *seed,
		Workers:    *workers,
		Params: controller.Config{
			Evolution: controller.EvolutionConfig{Population: *population, Sample: *tournament},
			Reinforce: controller.ReinforceConfig{LearningRate: *lr, BaselineDecay: *decay, Entropy: *entropy},
		},
	}
	tab, err := loadNB201Table(*table)
	if err != nil {
		return err
	}
	res, err := nb201.Bench(ctx, tab, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	_, err = fmt.Fprintf(env.Stdout, "%s on NAS-Bench-201 %s, %d proposals x %d runs (seeds %d..%d):\n"+
		"  test  %.2f ± %.2f  (best cell in the space %.2f)\n  valid %.2f ± %.2f\n",
		res.Controller, res.Dataset, res.Samples, res.Runs, res.Seed, res.Seed+uint64(res.Runs)-1,
		res.MeanTest, res.StdTest, res.BestPossible, res.MeanValid, res.StdValid)
	return err
}

// loadNB201Table returns the table in the file at path, or the built-in one
// when path is empty.
func loadNB201Table(path string) (*nb201.Table, error) {
	if path == "" {
		return nb201.Embedded()
	}
	return nb201.Load(path)
}
