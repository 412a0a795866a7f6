package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"text/tabwriter"

	"golang.org/x/sync/errgroup"

	"github.com/effnas/effnas/controller/nb201"
	"github.com/effnas/effnas/search"
)

// Defaults of effnas bench nb201 --agreement.
const (
	defaultAgreementPanel  = search.DefaultPanel + 1 // bench proxy's panel: B0 and 12 random members
	defaultAgreementPanels = 1000
	defaultAgreementTop    = 1000
)

// runNB201Agreement is effnas bench nb201 --agreement: set holds the flags
// given, table the --table file ("" for the built-in table).
func runNB201Agreement(ctx context.Context, env *Env, set map[string]bool, cfg agreementConfig, table string, asJSON bool) error {
	for _, name := range []string{"controller", "samples", "runs", "workers", "population", "tournament", "lr", "baseline-decay", "entropy"} {
		if set[name] {
			return usagef("--%s is for a controller's search: --agreement runs none, so leave --%s out", name, name)
		}
	}
	if len(cfg.Datasets) == 0 {
		cfg.Datasets = []nb201.Dataset{nb201.CIFAR10, nb201.CIFAR100, nb201.ImageNet16}
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	tab, err := loadNB201Table(table)
	if err != nil {
		return err
	}
	as, err := nb201Agreements(ctx, tab, cfg)
	if err != nil {
		return err
	}
	return printAgreements(env.Stdout, as, asJSON)
}

// agreementConfig is one run of effnas bench nb201 --agreement.
type agreementConfig struct {
	Datasets  []nb201.Dataset // default: all three
	PanelSize int             // cells per panel, distinct; default 13
	Panels    int             // panels per figure; default 1000
	Top       int             // the best cells by 200-epoch test accuracy; default 1000
	Seed      uint64          // seeds the panels' PCG
}

// validate returns a usage error naming the flag that is out of range.
func (c agreementConfig) validate() error {
	switch {
	case c.PanelSize < 2 || c.PanelSize > 1000:
		return usagef("--panel-size %d is out of range: give 2 to 1000 cells (Kendall's tau needs two)", c.PanelSize)
	case c.Panels < 2:
		return usagef("--panels %d is out of range: give at least 2 (the sd needs two)", c.Panels)
	case c.Top < c.PanelSize || c.Top > nb201.Cells:
		return usagef("--top %d is out of range: give from the panel size (%d) to %d (the cells in the space)", c.Top, c.PanelSize, nb201.Cells)
	}
	return nil
}

// agreement is how far, on one dataset, the benchmark's 12-epoch validation
// accuracy (a short training, like a proxy) ranks cells as its 200-epoch
// test accuracy (the long reference) does: Kendall tau-b over a set of cells
// at once, and mean and sd (n-1) over random panels of distinct cells.
type agreement struct {
	Dataset      string `json:"dataset"`
	Short        string `json:"short"` // the table's column of the short training
	Long         string `json:"long"`  // the table's column of the long one
	Cells        int    `json:"cells"`
	Disconnected int    `json:"disconnected"` // cells with no path from input to output, at chance accuracy
	PanelSize    int    `json:"panel_size"`
	Panels       int    `json:"panels"`
	Seed         uint64 `json:"seed"`

	// Every cell, the disconnected ones included, as the benchmark reports.
	WholeTau          float64 `json:"whole_tau"`
	WholePanelTauMean float64 `json:"whole_panel_tau_mean"`
	WholePanelTauSD   float64 `json:"whole_panel_tau_sd"`

	// The connected cells only.
	ConnectedTau          float64 `json:"connected_tau"`
	ConnectedPanelTauMean float64 `json:"connected_panel_tau_mean"`
	ConnectedPanelTauSD   float64 `json:"connected_panel_tau_sd"`

	// The Top cells of best 200-epoch test accuracy; ties at the boundary go
	// to the lower benchmark index, and TopTiesOut counts those left out.
	Top             int     `json:"top"`
	TopMinTest      float64 `json:"top_min_test"`
	TopTiesOut      int     `json:"top_ties_out"`
	TopTau          float64 `json:"top_tau"`
	TopPanelTauMean float64 `json:"top_panel_tau_mean"`
	TopPanelTauSD   float64 `json:"top_panel_tau_sd"`
}

// PCG streams of the three kinds of panels. Each dataset starts them afresh,
// so the whole-space and connected panels are the same cells on every
// dataset.
const (
	streamWhole = iota
	streamConnected
	streamTop
)

// nb201Agreements computes the agreement on each of cfg.Datasets, one
// dataset per CPU. It lives here rather than in controller/nb201: it needs
// search.KendallTauB, and controller/nb201 importing search (which imports
// controller, trainer and store) would point the layers the wrong way.
func nb201Agreements(ctx context.Context, tab *nb201.Table, cfg agreementConfig) ([]agreement, error) {
	out := make([]agreement, len(cfg.Datasets))
	g, ctx := errgroup.WithContext(ctx)
	for i, d := range cfg.Datasets {
		g.Go(func() (err error) {
			out[i], err = nb201Agreement(ctx, tab, d, cfg)
			return err
		})
	}
	return out, g.Wait()
}

// nb201Agreement computes the agreement on d.
func nb201Agreement(ctx context.Context, tab *nb201.Table, d nb201.Dataset, cfg agreementConfig) (agreement, error) {
	all := tab.All()
	connected := slices.DeleteFunc(slices.Clone(all), func(c *nb201.Cell) bool { return !c.Connected() })
	top, tiesOut := bestByTest(all, d, cfg.Top)
	a := agreement{
		Dataset: d.String(), Short: d.ValidColumn(), Long: d.TestColumn(),
		Cells: len(all), Disconnected: len(all) - len(connected),
		PanelSize: cfg.PanelSize, Panels: cfg.Panels, Seed: cfg.Seed,
		Top: cfg.Top, TopMinTest: top[len(top)-1].Test[d], TopTiesOut: tiesOut,
	}
	sets := []struct {
		cells     []*nb201.Cell
		stream    uint64
		tau       *float64
		mean, std *float64
	}{
		{all, streamWhole, &a.WholeTau, &a.WholePanelTauMean, &a.WholePanelTauSD},
		{connected, streamConnected, &a.ConnectedTau, &a.ConnectedPanelTauMean, &a.ConnectedPanelTauSD},
		{top, streamTop, &a.TopTau, &a.TopPanelTauMean, &a.TopPanelTauSD},
	}
	for _, s := range sets {
		if err := ctx.Err(); err != nil {
			return agreement{}, err
		}
		if len(s.cells) < cfg.PanelSize {
			return agreement{}, fmt.Errorf("%s: panels of %d cells out of %d", d, cfg.PanelSize, len(s.cells))
		}
		*s.tau = shortLongTau(s.cells, d)
		taus := panelTaus(s.cells, d, cfg.PanelSize, cfg.Panels, rand.New(rand.NewPCG(cfg.Seed, s.stream)))
		*s.mean, *s.std = search.MeanStd(taus)
	}
	return a, nil
}

// bestByTest returns the n cells of best 200-epoch test accuracy on d (ties
// go to the lower benchmark index), and how many of the cells left out tie
// with the last one taken.
func bestByTest(cells []*nb201.Cell, d nb201.Dataset, n int) (best []*nb201.Cell, tiesOut int) {
	sorted := slices.Clone(cells)
	slices.SortFunc(sorted, func(a, b *nb201.Cell) int {
		return cmp.Or(cmp.Compare(b.Test[d], a.Test[d]), cmp.Compare(a.Index, b.Index))
	})
	best = sorted[:n]
	for _, c := range sorted[n:] {
		if c.Test[d] == best[n-1].Test[d] {
			tiesOut++
		}
	}
	return best, tiesOut
}

// shortLongTau is the Kendall tau-b between the cells' 12-epoch validation
// and 200-epoch test accuracies on d.
func shortLongTau(cells []*nb201.Cell, d nb201.Dataset) float64 {
	short := make([]float64, len(cells))
	long := make([]float64, len(cells))
	for i, c := range cells {
		short[i], long[i] = c.Valid[d], c.Test[d]
	}
	return search.KendallTauB(short, long)
}

// panelTaus draws n panels of size distinct cells from pool and returns
// each panel's shortLongTau.
func panelTaus(pool []*nb201.Cell, d nb201.Dataset, size, n int, r *rand.Rand) []float64 {
	pool = slices.Clone(pool)
	taus := make([]float64, n)
	for i := range taus {
		taus[i] = shortLongTau(drawPanel(pool, size, r), d)
	}
	return taus
}

// drawPanel moves a uniformly random panel of size distinct members of pool
// to its front, by a partial Fisher-Yates shuffle, and returns it. Whatever
// order pool is in, every panel is equally likely.
func drawPanel(pool []*nb201.Cell, size int, r *rand.Rand) []*nb201.Cell {
	for i := range size {
		j := i + r.IntN(len(pool)-i)
		pool[i], pool[j] = pool[j], pool[i]
	}
	return pool[:size]
}

// printAgreements writes the agreements as a table, with the notes a reader
// needs to read it.
func printAgreements(w io.Writer, as []agreement, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(as)
	}
	if len(as) == 0 {
		return nil
	}
	a0 := as[0]
	fmt.Fprintf(w, "NAS-Bench-201: Kendall tau-b between the 12-epoch validation accuracy (short training) and the 200-epoch test accuracy (long)\n")
	fmt.Fprintf(w, "panels: %d per figure, %d distinct cells each, seed %d; mean ± sd (n-1) over the panels\n\n", a0.Panels, a0.PanelSize, a0.Seed)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "dataset\tcolumns\twhole space\tpanels of %d\tconnected\tpanels of %d\ttop %d\tpanels of %d\n", a0.PanelSize, a0.PanelSize, a0.Top, a0.PanelSize)
	for _, a := range as {
		fmt.Fprintf(tw, "%s\t%s vs %s\t%.3f\t%.3f ± %.3f\t%.3f\t%.3f ± %.3f\t%.3f\t%.3f ± %.3f\n",
			a.Dataset, a.Short, a.Long, a.WholeTau, a.WholePanelTauMean, a.WholePanelTauSD,
			a.ConnectedTau, a.ConnectedPanelTauMean, a.ConnectedPanelTauSD,
			a.TopTau, a.TopPanelTauMean, a.TopPanelTauSD)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nwhole space: all %d cells, with the %d that have no path from input to output (the benchmark scores them at chance);\n", a0.Cells, a0.Disconnected)
	fmt.Fprintf(w, "connected: the %d others; top %d: the %d cells of best 200-epoch test accuracy on the dataset\n", a0.Cells-a0.Disconnected, a0.Top, a0.Top)
	for _, a := range as {
		fmt.Fprintf(w, "  %s: top %d down to test %.4f", a.Dataset, a.Top, a.TopMinTest)
		if a.TopTiesOut > 0 {
			fmt.Fprintf(w, " (%d more cells tie at it and are left out: ties go to the lower benchmark index)", a.TopTiesOut)
		}
		fmt.Fprintln(w)
	}
	return nil
}
