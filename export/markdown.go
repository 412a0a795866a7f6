package export

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/effnas/effnas/grid"
	"github.com/effnas/effnas/search"
	"github.com/effnas/effnas/space"
)

// JSON returns the report as indented JSON, the contract of
// 'effnas export --format json'.
func (r *Report) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode report: %w", err)
	}
	return append(b, '\n'), nil
}

// PlotPaths returns where the PNG plots of a Markdown report at path go:
// beside it, named after it ("out/report.md" gives "out/report-search.png"
// and "out/report-grid.png").
func PlotPaths(path string) (searchPNG, gridPNG string) {
	stem := strings.TrimSuffix(path, filepath.Ext(path))
	return stem + "-search.png", stem + "-grid.png"
}

// MarkdownFiles renders the report to be written at path: the PNG plots
// (see PlotPaths; a plot with nothing to draw is not made) and the
// Markdown, which links them by their base names. The Markdown is last.
func (r *Report) MarkdownFiles(path string) ([]File, error) {
	searchPath, gridPath := PlotPaths(path)
	var files []File
	var searchLink, gridLink string
	png, err := r.SearchPlot()
	if err != nil {
		return nil, err
	}
	if png != nil {
		files = append(files, File{Path: searchPath, Data: png})
		searchLink = filepath.Base(searchPath)
	}
	if png, err = r.GridPlot(); err != nil {
		return nil, err
	}
	if png != nil {
		files = append(files, File{Path: gridPath, Data: png})
		gridLink = filepath.Base(gridPath)
	}
	return append(files, File{Path: path, Data: r.Markdown(searchLink, gridLink)}), nil
}

// Markdown returns the report for people: B0 and its layer table, the
// coefficients, the family by the raw rule beside the paper's table, the
// top trials, the Pareto front, and links to the plots (an empty name
// omits a plot).
func (r *Report) Markdown(searchPNG, gridPNG string) []byte {
	var b bytes.Buffer
	w := &b
	fmt.Fprintf(w, "# EfficientNet family found by effnas\n\n")
	fmt.Fprintf(w, "- **B0**: %s.\n", r.b0Origin())
	fmt.Fprintf(w, "- **Coefficients**: %s.\n", r.coefOrigin())
	for _, n := range r.Notes {
		fmt.Fprintf(w, "- Note: %s.\n", strings.TrimSuffix(n, "."))
	}

	a := r.Arch
	fmt.Fprintf(w, "\n## B0\n\n")
	fmt.Fprintf(w, "%dx%d input, %d classes, stem %d, head %d, %s, dropout %g: **%s parameters, %s multiply-adds**.\n\n",
		a.Resolution, a.Resolution, a.Classes, a.Stem, a.Head, a.Activation, a.Dropout, Commas(r.B0.Params), Commas(r.B0.FLOPs))
	fmt.Fprintf(w, "Block strings (TF dialect):\n\n```\n%s\n```\n\n", strings.Join(r.B0.Blocks, "\n"))
	fmt.Fprintf(w, "timm arch_def:\n\n```\n%s\n```\n\n", strings.Join(r.B0.Timm, "\n"))
	writeLayers(w, a)

	c := r.Coefficients
	fmt.Fprintf(w, "\n## Coefficients\n\n")
	fmt.Fprintf(w, "| alpha (depth) | beta (width) | gamma (resolution) | phi | alpha·beta²·gamma² | source |\n|---:|---:|---:|---:|---:|---|\n")
	src := "the paper's"
	if c.Source == SourceGrid {
		src = fmt.Sprintf("grid study %d", c.Study)
		if c.Trial != nil {
			src += fmt.Sprintf(", trial %d", *c.Trial)
		}
	}
	fmt.Fprintf(w, "| %g | %g | %g | %g | %.4f | %s |\n", c.Alpha, c.Beta, c.Gamma, c.Phi, c.Constraint, src)
	if c.Source == SourceGrid && c.Accuracy != nil {
		fmt.Fprintf(w, "\nDecided by %d grid points; the winner's accuracy %s is the mean over %d seeds at the top rung.", c.GridPoints, meanSD(*c.Accuracy, c.AccuracyStd), c.Seeds)
		if len(c.Tied) > 1 {
			fmt.Fprintf(w, " %d points cannot be told apart from it (mean ± 2 standard errors overlap):", len(c.Tied))
			for _, p := range c.Tied {
				fmt.Fprintf(w, " (%g, %g, %g) %s;", p.Alpha, p.Beta, p.Gamma, meanSD(p.TopAccuracy, &p.TopAccuracyStd))
			}
		}
		fmt.Fprintln(w)
	}

	fmt.Fprintf(w, "\n## Family\n\n")
	fmt.Fprintf(w, "B1..B7 by the raw compound rule (width beta^phi, depth alpha^phi, resolution round(%d·gamma^phi)) beside the paper's hand-rounded multipliers applied to the same B0. Params and multiply-adds at full size.\n\n", a.Resolution)
	fmt.Fprintf(w, "| model | width | depth | resolution | params | multiply-adds | paper: width | depth | resolution | params | multiply-adds |\n")
	fmt.Fprintf(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	fmt.Fprintf(w, "| B0 | 1 | 1 | %d | %s | %s | 1 | 1 | %d | %s | %s |\n", a.Resolution, fmtCount(r.B0.Params), fmtCount(r.B0.FLOPs),
		a.Resolution, fmtCount(r.B0.Params), fmtCount(r.B0.FLOPs))
	for i, m := range r.Family {
		fmt.Fprintf(w, "| %s | %.3f | %.3f | %d | %s | %s |", strings.ToUpper(m.Name), m.Width, m.Depth, m.Resolution, fmtCount(m.Params), fmtCount(m.FLOPs))
		if i < len(r.PaperFamily) {
			p := r.PaperFamily[i]
			fmt.Fprintf(w, " %g | %g | %d | %s | %s |", p.Width, p.Depth, p.Resolution, fmtCount(p.Params), fmtCount(p.FLOPs))
		} else {
			fmt.Fprintf(w, " | | | | |")
		}
		fmt.Fprintln(w)
	}

	fmt.Fprintf(w, "\n## Top trials\n\n")
	if len(r.TopTrials) == 0 {
		fmt.Fprintf(w, "No complete search trials.\n")
	} else {
		fmt.Fprintf(w, "The best candidates at the top rung by mean reward (accuracy × (multiply-adds / T)^w) over their seeds, finalists first, of %d at the top rung.\n\n", len(r.SearchTrials))
		writeTrials(w, r.TopTrials)
	}
	fmt.Fprintf(w, "\n## Pareto front\n\n")
	if len(r.Pareto) == 0 {
		fmt.Fprintf(w, "No complete search trials.\n")
	} else {
		fmt.Fprintf(w, "Top-rung candidates no other beats on both mean proxy accuracy and multiply-adds, fewest multiply-adds first.\n\n")
		writeTrials(w, r.Pareto)
	}

	fmt.Fprintf(w, "\n## Grid\n\n")
	if len(r.GridPoints) == 0 {
		fmt.Fprintf(w, "No compound grid study was used; the coefficients are the paper's.\n")
	} else {
		fmt.Fprintf(w, "Points of the compound grid: proxy accuracy at rung 0 (every point alike), and the mean ± sd over the seeds of those that reached the top rung, against the full-size network's multiply-adds at phi %g.\n\n", c.Phi)
		fmt.Fprintf(w, "| # | alpha | beta | gamma | alpha·beta²·gamma² | rung 0 | rung | top rung (seeds) | params | multiply-adds |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, p := range r.GridPoints {
			mark := ""
			if c.Accuracy != nil && c.Source == SourceGrid && p.Seeds > 0 && p.TopAccuracy == *c.Accuracy && grid.Key(space.Scaling{Alpha: p.Alpha, Beta: p.Beta, Gamma: p.Gamma}) == grid.Key(space.Scaling{Alpha: c.Alpha, Beta: c.Beta, Gamma: c.Gamma}) {
				mark = " **(chosen)**"
			}
			top := "-"
			if p.Seeds > 0 {
				top = fmt.Sprintf("%s (%d)", meanSD(p.TopAccuracy, &p.TopAccuracyStd), p.Seeds)
			}
			s := space.Scaling{Alpha: p.Alpha, Beta: p.Beta, Gamma: p.Gamma}
			fmt.Fprintf(w, "| %d%s | %g | %g | %g | %.3f | %.4f | %d | %s | %s | %s |\n", p.Number, mark, p.Alpha, p.Beta, p.Gamma, s.Constraint(), p.Accuracy, p.Rung, top, fmtCount(p.Params), fmtCount(p.FLOPs))
		}
	}
	for _, s := range r.Series {
		fmt.Fprintf(w, "\nScaling %s alone (study %d):\n\n| # | alpha | beta | gamma | accuracy | multiply-adds |\n|---:|---:|---:|---:|---:|---:|\n", s.Dimension, s.Study)
		for _, p := range s.Points {
			fmt.Fprintf(w, "| %d | %g | %g | %g | %.4f | %s |\n", p.Number, p.Alpha, p.Beta, p.Gamma, p.Accuracy, fmtCount(p.FLOPs))
		}
	}

	if len(r.SearchAgreement)+len(r.GridAgreement) > 0 {
		fmt.Fprintf(w, "\n## How the rungs agreed\n\n")
		fmt.Fprintf(w, "Successive halving trains only the best of each rung longer. For each rung below the top: the Kendall tau-b between a candidate's accuracy there (seed 0) and its mean over its top-rung runs, over the candidates that reached the top, and the share of the finalists that rung 0 ranked in its own top third. This is measured on the promoted candidates only: those a rung dropped were never trained longer, so what it threw away cannot be measured here (`effnas bench proxy --rungs` measures a whole panel at every rung).\n\n")
		fmt.Fprintf(w, "| study | rung | trains on | candidates | Kendall tau-b | finalists in rung 0's top third |\n|---|---:|---|---:|---:|---:|\n")
		for _, part := range []struct {
			name string
			ags  []search.RungAgreement
		}{{"search", r.SearchAgreement}, {"grid", r.GridAgreement}} {
			for _, a := range part.ags {
				share := ""
				if a.FinalistsInTopThird != nil && a.Finalists > 0 {
					share = fmt.Sprintf("%.0f%% of %d", 100**a.FinalistsInTopThird, a.Finalists)
				}
				fmt.Fprintf(w, "| %s | %d | %d images × %d epochs | %d | %.2f | %s |\n", part.name, a.Rung, a.TrainSize, a.Epochs, a.Candidates, a.Tau, share)
			}
		}
	}

	if searchPNG != "" || gridPNG != "" {
		fmt.Fprintf(w, "\n## Plots\n\n")
	}
	if searchPNG != "" {
		fmt.Fprintf(w, "Search trials, the Pareto front in red, B0 ringed in black:\n\n![accuracy vs multiply-adds of the search trials](%s)\n\n", searchPNG)
	}
	if gridPNG != "" {
		fmt.Fprintf(w, "The compound grid beside scaling one dimension alone (the paper's Figure 3):\n\n![accuracy vs multiply-adds of the grid](%s)\n", gridPNG)
	}
	return b.Bytes()
}

func writeLayers(w io.Writer, a space.Arch) {
	fmt.Fprintf(w, "| layer | output (c × h × w) | params | multiply-adds |\n|---|---|---:|---:|\n")
	var params, macs int64
	for _, l := range a.Layers() {
		params += l.Params
		macs += l.MACs
		fmt.Fprintf(w, "| %s | %d × %d × %d | %s | %s |\n", l.Name, l.OutShape[0], l.OutShape[1], l.OutShape[2], Commas(l.Params), Commas(l.MACs))
	}
	fmt.Fprintf(w, "| **total** | | **%s** | **%s** |\n", Commas(params), Commas(macs))
}

func writeTrials(w io.Writer, ts []Trial) {
	fmt.Fprintf(w, "| # | seeds | accuracy | reward | test accuracy | params | multiply-adds | blocks |\n|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, t := range ts {
		fmt.Fprintf(w, "| %d | %d | %s | %.4f | %.4f | %s | %s | `%s` |\n", t.Number, t.Seeds, meanSD(t.Accuracy, &t.AccuracyStd), t.Reward, t.TestAccuracy,
			fmtCount(t.Params), fmtCount(t.FLOPs), strings.Join(t.Blocks, " "))
	}
}

// meanSD writes a mean with its standard deviation: "0.8512 ± 0.0040".
func meanSD(mean float64, sd *float64) string {
	if sd == nil || *sd == 0 {
		return fmt.Sprintf("%.4f", mean)
	}
	return fmt.Sprintf("%.4f ± %.4f", mean, *sd)
}
