package export

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"strconv"
	"strings"

	"github.com/effnas/effnas/search"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Plot size: wide enough for a legend beside the points, small enough to
// sit in a Markdown page.
const (
	plotWidth  = 7 * vg.Inch
	plotHeight = 4.5 * vg.Inch
)

// Colours, picked to be told apart by people with the common kinds of
// colour blindness (Okabe-Ito).
var (
	grey      = color.RGBA{R: 150, G: 150, B: 150, A: 255}
	vermilion = color.RGBA{R: 213, G: 94, B: 0, A: 255}
	blue      = color.RGBA{R: 0, G: 114, B: 178, A: 255}
	black     = color.RGBA{A: 255}
	seriesCol = map[string]color.RGBA{
		"width":      {R: 0, G: 158, B: 115, A: 255}, // bluish green
		"depth":      {R: 230, G: 159, B: 0, A: 255}, // orange
		"resolution": {R: 204, G: 121, B: 167, A: 255},
	}
)

// millions is the x coordinate of a multiply-add count.
func millions(n int64) float64 { return float64(n) / 1e6 }

// chart is a plot that counts its legend's entries.
type chart struct {
	*plot.Plot
	entries int
}

func (c *chart) legend(name string, thumbs ...plot.Thumbnailer) {
	c.Legend.Add(name, thumbs...)
	c.entries++
}

func newPlot(title string) *chart {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "multiply-adds of the full-size network (millions)"
	p.Y.Label.Text = "proxy validation accuracy"
	p.Legend.Top = true
	p.Legend.Left = false
	p.Legend.XOffs = -vg.Points(6)
	p.Legend.YOffs = -vg.Points(4)
	p.X.Tick.Marker = plainTicks{}
	p.Y.Tick.Marker = plainTicks{}
	p.Add(plotter.NewGrid())
	return &chart{Plot: p}
}

// plainTicks are gonum's default ticks labelled without padding zeros:
// 500 rather than 500.00.
type plainTicks struct{}

func (plainTicks) Ticks(min, max float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(min, max)
	for i, t := range ticks {
		if t.Label != "" {
			ticks[i].Label = strconv.FormatFloat(math.Round(t.Value*1e6)/1e6, 'f', -1, 64)
		}
	}
	return ticks
}

// frame pads the axes so that no glyph sits on an edge, and leaves room
// at the top for the legend's entries so that it hides no point.
func frame(p *chart) {
	pad := func(a *plot.Axis, below, above float64) {
		span := a.Max - a.Min
		if span <= 0 {
			span = math.Max(math.Abs(a.Max)*0.1, 0.01)
		}
		a.Min -= below * span
		a.Max += above * span
	}
	pad(&p.X, 0.05, 0.05)
	pad(&p.Y, 0.08, 0.08+0.11*float64(p.entries))
	if p.Y.Min < 0 && p.Y.Min > -0.1 {
		p.Y.Min = 0 // accuracies: do not show a meaningless negative band
	}
	if p.Y.Max > 1 {
		// No accuracy is above 1: keep the axis there and put the legend
		// at the bottom, away from the best points.
		p.Y.Max = 1
		p.Legend.Top = false
	}
}

func scatter(xys plotter.XYs, shape draw.GlyphDrawer, c color.Color, radius vg.Length) (*plotter.Scatter, error) {
	s, err := plotter.NewScatter(xys)
	if err != nil {
		return nil, err
	}
	s.GlyphStyle = draw.GlyphStyle{Color: c, Radius: radius, Shape: shape}
	return s, nil
}

// SearchPlot draws every complete search trial's proxy accuracy against its
// full-size multiply-adds, the Pareto front as a line, and B0 ringed.
// It returns nil when there is no search trial to draw.
func (r *Report) SearchPlot() ([]byte, error) {
	if len(r.SearchTrials) == 0 {
		return nil, nil
	}
	title := "Search: accuracy vs multiply-adds"
	if r.B0.Study != nil {
		title = fmt.Sprintf("Search study %d: accuracy vs multiply-adds", *r.B0.Study)
	}
	p := newPlot(title)
	all := make(plotter.XYs, len(r.SearchTrials))
	for i, t := range r.SearchTrials {
		all[i] = plotter.XY{X: millions(t.FLOPs), Y: t.Accuracy}
	}
	s, err := scatter(all, draw.CircleGlyph{}, grey, 2.5)
	if err != nil {
		return nil, fmt.Errorf("search plot: %w", err)
	}
	p.Add(s)
	p.legend(fmt.Sprintf("trials (%d)", len(all)), s)
	if len(r.Pareto) > 0 {
		front := make(plotter.XYs, len(r.Pareto))
		for i, t := range r.Pareto {
			front[i] = plotter.XY{X: millions(t.FLOPs), Y: t.Accuracy}
		}
		l, pts, err := plotter.NewLinePoints(front)
		if err != nil {
			return nil, fmt.Errorf("search plot: %w", err)
		}
		l.Color, l.Width = vermilion, vg.Points(1.5)
		pts.GlyphStyle = draw.GlyphStyle{Color: vermilion, Radius: 3.5, Shape: draw.CircleGlyph{}}
		p.Add(l, pts)
		p.legend(fmt.Sprintf("Pareto front (%d)", len(front)), l, pts)
	}
	if r.B0.Accuracy != nil {
		b0, err := scatter(plotter.XYs{{X: millions(r.B0.FLOPs), Y: *r.B0.Accuracy}}, draw.RingGlyph{}, black, 7)
		if err != nil {
			return nil, fmt.Errorf("search plot: %w", err)
		}
		p.Add(b0)
		p.legend("B0", b0)
	}
	frame(p)
	return png(p.Plot)
}

// GridPlot draws the compound grid's points (accuracy against full-size
// multiply-adds at the grid's phi) with the chosen point marked, and beside
// them each single-dimension series of the same base as a line: the paper's
// Figure 3 on the user's data. It returns nil when there is no grid point.
func (r *Report) GridPlot() ([]byte, error) {
	if len(r.GridPoints) == 0 && len(r.Series) == 0 {
		return nil, nil
	}
	title := "Compound scaling vs one dimension"
	if r.Coefficients.Source == SourceGrid {
		title = fmt.Sprintf("Grid study %d: compound scaling vs one dimension", r.Coefficients.Study)
	}
	p := newPlot(title)
	for _, s := range r.Series {
		xys := make(plotter.XYs, len(s.Points))
		for i, pt := range s.Points {
			xys[i] = plotter.XY{X: millions(pt.FLOPs), Y: pt.Accuracy}
		}
		l, pts, err := plotter.NewLinePoints(xys)
		if err != nil {
			return nil, fmt.Errorf("grid plot: %w", err)
		}
		c, ok := seriesCol[s.Dimension]
		if !ok {
			c = grey
		}
		l.Color, l.Width = c, vg.Points(1.5)
		pts.GlyphStyle = draw.GlyphStyle{Color: c, Radius: 3, Shape: draw.BoxGlyph{}}
		p.Add(l, pts)
		p.legend(fmt.Sprintf("%s only (study %d)", s.Dimension, s.Study), l, pts)
	}
	var compound, base plotter.XYs
	for _, pt := range r.GridPoints {
		xy := plotter.XY{X: millions(pt.FLOPs), Y: pt.Accuracy}
		if pt.Alpha == 1 && pt.Beta == 1 && pt.Gamma == 1 {
			base = append(base, xy)
		} else {
			compound = append(compound, xy)
		}
	}
	if len(compound) > 0 {
		s, err := scatter(compound, draw.CircleGlyph{}, blue, 3)
		if err != nil {
			return nil, fmt.Errorf("grid plot: %w", err)
		}
		p.Add(s)
		p.legend(fmt.Sprintf("compound points (%d)", len(compound)), s)
	}
	if len(base) > 0 {
		s, err := scatter(base, draw.PyramidGlyph{}, black, 5)
		if err != nil {
			return nil, fmt.Errorf("grid plot: %w", err)
		}
		p.Add(s)
		p.legend("B0 (1, 1, 1)", s)
	}
	if c := r.Coefficients; c.Source == SourceGrid && c.Trial != nil {
		for _, pt := range r.GridPoints {
			if pt.Alpha == c.Alpha && pt.Beta == c.Beta && pt.Gamma == c.Gamma {
				s, err := scatter(plotter.XYs{{X: millions(pt.FLOPs), Y: pt.Accuracy}}, draw.RingGlyph{}, vermilion, 7)
				if err != nil {
					return nil, fmt.Errorf("grid plot: %w", err)
				}
				p.Add(s)
				p.legend(fmt.Sprintf("chosen: alpha %g, beta %g, gamma %g", c.Alpha, c.Beta, c.Gamma), s)
			}
		}
	}
	frame(p)
	return png(p.Plot)
}

func png(p *plot.Plot) ([]byte, error) {
	w, err := p.WriterTo(plotWidth, plotHeight, "png")
	if err != nil {
		return nil, fmt.Errorf("render plot: %w", err)
	}
	var b bytes.Buffer
	if _, err := w.WriteTo(&b); err != nil {
		return nil, fmt.Errorf("render plot: %w", err)
	}
	return b.Bytes(), nil
}

// rungColors tell a proxy benchmark's rungs apart, rung 0 first (the
// Okabe-Ito colours the other plots use); the top rung is always blue.
var rungColors = []color.RGBA{
	{R: 230, G: 159, B: 0, A: 255},   // orange
	{R: 0, G: 158, B: 115, A: 255},   // bluish green
	{R: 204, G: 121, B: 167, A: 255}, // reddish purple
	{R: 86, G: 180, B: 233, A: 255},  // sky blue
	{R: 240, G: 228, B: 66, A: 255},  // yellow
	{R: 213, G: 94, B: 0, A: 255},    // vermilion
	{R: 100, G: 100, B: 100, A: 255}, // dark grey
}

// PanelPlot draws a proxy benchmark: each architecture's mean proxy
// validation accuracy against its mean reference test accuracy, with one
// standard deviation over seeds as error bars, B0 ringed. Points on a
// rising line are a proxy that ranks like the reference. With several
// rungs, each rung's means are drawn in a colour of its own, the top
// rung's with error bars, and the legend gives each rung's Kendall tau.
func PanelPlot(r *search.PanelReport) ([]byte, error) {
	// A dataset's path is named by its last element, so that the title fits.
	data := strings.TrimRight(r.Dataset, "/")
	if i := strings.LastIndexAny(data, "/:"); i >= 0 {
		data = data[i+1:]
	}
	title := fmt.Sprintf("Proxy %s vs reference %s on %s", r.Proxy, r.Reference, data)
	if len(r.Rungs) > 1 {
		title = fmt.Sprintf("%d proxy rungs vs reference %s on %s", len(r.Rungs), r.Reference, data)
	}
	p := newPlot(title)
	p.X.Label.Text = fmt.Sprintf("proxy validation accuracy (mean of %d seeds)", r.Seeds)
	if r.ProxyKind != "" && r.ProxyKind != "train" {
		p.X.Label.Text = fmt.Sprintf("%s (mean of %d seeds)", r.ScoreUnit, r.Seeds)
	}
	p.Y.Label.Text = fmt.Sprintf("reference test accuracy (mean of %d seeds)", r.RefSeeds)
	p.X.Tick.Marker = plainTicks{}
	top := len(r.Rungs) - 1
	drawn := 0
	for k := 0; k <= top; k++ {
		var pts plotter.XYs
		var xerr plotter.XErrors
		var yerr plotter.YErrors
		for _, a := range r.Archs {
			if k >= len(a.Rungs) || a.Rungs[k].Runs == 0 || len(a.Ref) == 0 {
				continue
			}
			pts = append(pts, plotter.XY{X: a.Rungs[k].Mean, Y: a.Reference})
			xerr = append(xerr, struct{ Low, High float64 }{a.Rungs[k].Std, a.Rungs[k].Std})
			yerr = append(yerr, struct{ Low, High float64 }{a.ReferenceStd, a.ReferenceStd})
		}
		if len(pts) == 0 {
			continue
		}
		drawn += len(pts)
		col := blue
		if k < top {
			col = rungColors[k%len(rungColors)]
		}
		s, err := scatter(pts, draw.CircleGlyph{}, col, 3)
		if err != nil {
			return nil, fmt.Errorf("proxy plot: %w", err)
		}
		if k == top {
			xe, err := plotter.NewXErrorBars(struct {
				plotter.XYer
				plotter.XErrorer
			}{pts, xerr})
			if err != nil {
				return nil, fmt.Errorf("proxy plot: %w", err)
			}
			ye, err := plotter.NewYErrorBars(struct {
				plotter.XYer
				plotter.YErrorer
			}{pts, yerr})
			if err != nil {
				return nil, fmt.Errorf("proxy plot: %w", err)
			}
			xe.Color, ye.Color = grey, grey
			p.Add(xe, ye)
		}
		p.Add(s)
		g := r.Rungs[k]
		switch {
		case top == 0:
			p.legend(fmt.Sprintf("architectures (%d), ±1 sd", len(pts)), s)
		case k == top:
			p.legend(fmt.Sprintf("top rung, %d x %d (±1 sd): tau %.2f", g.TrainSize, g.Epochs, g.TauReference), s)
		default:
			p.legend(fmt.Sprintf("rung %d, %d x %d: tau %.2f", k, g.TrainSize, g.Epochs, g.TauReference), s)
		}
	}
	if drawn == 0 {
		return nil, nil
	}
	var b0 plotter.XYs
	for _, a := range r.Archs {
		if a.B0 && len(a.Proxy) > 0 && len(a.Ref) > 0 {
			b0 = append(b0, plotter.XY{X: a.ProxyMean, Y: a.Reference})
		}
	}
	if len(b0) > 0 {
		ring, err := scatter(b0, draw.RingGlyph{}, black, 7)
		if err != nil {
			return nil, fmt.Errorf("proxy plot: %w", err)
		}
		p.Add(ring)
		p.legend("B0", ring)
	}
	if top == 0 {
		p.legend(fmt.Sprintf("Kendall tau %.2f (reference seeds %.2f)", r.TauReference, r.TauReferenceSeeds))
	} else {
		p.legend(fmt.Sprintf("reference seeds agree to tau %.2f", r.TauReferenceSeeds))
	}
	frame(p)
	return png(p.Plot)
}
