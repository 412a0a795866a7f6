package dashboard

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Plot is an SVG figure as primitives in pixel coordinates; the "plot"
// template draws it, so every text in it is escaped by html/template.
type Plot struct {
	W, H  int
	Label string // what the figure shows, for screen readers
	Empty string // said instead of a figure when there is nothing to draw
	Segs  []Seg
	Paths []Path
	Dots  []Dot
	Texts []Text
}

// Seg is a straight line: axes, ticks, grid lines, error bars.
type Seg struct {
	X1, Y1, X2, Y2 float64
	Class          string
	Stroke         string
}

// Path is a path's data. A "dots" path draws one round dot per "M x y h0".
type Path struct {
	D      string
	Class  string
	Stroke string
	Title  string
}

// Dot is a circle with a tooltip.
type Dot struct {
	X, Y, R float64
	Class   string
	Fill    string
	Title   string
}

// Text is a label; Anchor is start, middle or end.
type Text struct {
	X, Y   float64
	S      string
	Class  string
	Anchor string
	Rotate float64 // degrees about (X, Y)
}

// axis maps data values to pixels, linearly or logarithmically.
type axis struct {
	lo, hi float64
	log    bool
	p0, p1 float64
}

func newAxis(lo, hi float64, log bool, p0, p1 float64) axis {
	if log && !(lo > 0) {
		log = false
	}
	if math.IsInf(lo, 0) || math.IsInf(hi, 0) || math.IsNaN(lo) || math.IsNaN(hi) {
		lo, hi = 0, 1
	}
	if hi <= lo {
		d := math.Max(math.Abs(lo)*0.05, 1e-3)
		if log {
			lo, hi = lo/1.2, hi*1.2
		} else {
			lo, hi = lo-d, hi+d
		}
	}
	return axis{lo: lo, hi: hi, log: log, p0: p0, p1: p1}
}

func (a axis) px(v float64) float64 {
	var t float64
	if a.log {
		t = math.Log(v/a.lo) / math.Log(a.hi/a.lo)
	} else {
		t = (v - a.lo) / (a.hi - a.lo)
	}
	return a.p0 + t*(a.p1-a.p0)
}

func (a axis) ticks(n int) []float64 {
	if !a.log || a.hi/a.lo < 8 {
		return niceTicks(a.lo, a.hi, n)
	}
	var out []float64
	for e := math.Floor(math.Log10(a.lo)); e <= math.Ceil(math.Log10(a.hi)); e++ {
		for _, m := range []float64{1, 2, 5} {
			if v := m * math.Pow(10, e); v >= a.lo && v <= a.hi {
				out = append(out, v)
			}
		}
	}
	return out
}

// niceTicks returns about n round values between lo and hi.
func niceTicks(lo, hi float64, n int) []float64 {
	if !(hi > lo) || n < 1 {
		return []float64{lo}
	}
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var out []float64
	for v := math.Ceil(lo/step) * step; v <= hi+step*1e-9; v += step {
		out = append(out, math.Round(v/step)*step)
	}
	return out
}

// frame is a plotting area inside a figure, with its axes.
type frame struct {
	p      *Plot
	x, y   axis
	xticks []float64 // where to tick the x axis; nil: round values
	yticks []float64 // where to tick the y axis; nil: round values
}

// Margins of a frame inside its figure.
const (
	marginL = 58
	marginR = 18
	marginT = 16
	marginB = 42
)

func newFrame(w, h int, label string, x, y axis) *frame {
	p := &Plot{W: w, H: h, Label: label}
	x.p0, x.p1 = marginL, float64(w-marginR)
	y.p0, y.p1 = float64(h-marginB), marginT
	return &frame{p: p, x: x, y: y}
}

// axes draws the grid, ticks and labels.
func (f *frame) axes(xlabel, ylabel string, xfmt, yfmt func(float64) string) {
	p := f.p
	l, r, b, t := f.x.p0, f.x.p1, f.y.p0, f.y.p1
	xt := f.xticks
	if xt == nil {
		xt = f.x.ticks(6)
	}
	for _, v := range xt {
		x := f.x.px(v)
		p.Segs = append(p.Segs, Seg{X1: x, Y1: t, X2: x, Y2: b, Class: "grid"})
		p.Texts = append(p.Texts, Text{X: x, Y: b + 15, S: xfmt(v), Class: "tick", Anchor: "middle"})
	}
	yt := f.yticks
	if yt == nil {
		yt = f.y.ticks(5)
	}
	for _, v := range yt {
		y := f.y.px(v)
		p.Segs = append(p.Segs, Seg{X1: l, Y1: y, X2: r, Y2: y, Class: "grid"})
		p.Texts = append(p.Texts, Text{X: l - 6, Y: y + 4, S: yfmt(v), Class: "tick", Anchor: "end"})
	}
	p.Segs = append(p.Segs, Seg{X1: l, Y1: b, X2: r, Y2: b, Class: "axis"}, Seg{X1: l, Y1: t, X2: l, Y2: b, Class: "axis"})
	p.Texts = append(p.Texts,
		Text{X: (l + r) / 2, Y: float64(p.H) - 6, S: xlabel, Class: "label", Anchor: "middle"},
		Text{X: 14, Y: (t + b) / 2, S: ylabel, Class: "label", Anchor: "middle", Rotate: -90})
}

// in reports whether a data point lies inside the frame's ranges.
func (f *frame) in(x, y float64) bool {
	return x >= f.x.lo && x <= f.x.hi && y >= f.y.lo && y <= f.y.hi
}

type legendEntry struct{ label, color string }

// pathData builds a path's d attribute with one decimal per coordinate.
type pathData struct{ b []byte }

func (d *pathData) cmd(c byte, x, y float64) {
	if len(d.b) > 0 {
		d.b = append(d.b, ' ')
	}
	d.b = append(d.b, c)
	d.b = strconv.AppendFloat(d.b, x, 'f', 1, 64)
	d.b = append(d.b, ' ')
	d.b = strconv.AppendFloat(d.b, y, 'f', 1, 64)
}

func (d *pathData) move(x, y float64) { d.cmd('M', x, y) }
func (d *pathData) line(x, y float64) { d.cmd('L', x, y) }

// dot draws a point as a zero-length segment with round caps.
func (d *pathData) dot(x, y float64) {
	d.cmd('M', x, y)
	d.b = append(d.b, "h0"...)
}

// rect draws a closed rectangle between two corners.
func (d *pathData) rect(x0, y0, x1, y1 float64) {
	d.move(x0, y0)
	d.line(x1, y0)
	d.line(x1, y1)
	d.line(x0, y1)
	d.b = append(d.b, " Z"...)
}

func (d *pathData) String() string { return string(d.b) }
func (d *pathData) empty() bool    { return len(d.b) == 0 }

// Colours.
var (
	studyColors = []string{"#4e79a7", "#f28e2b", "#e15759", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7", "#9c755f", "#bab0ac"}
	viridis     = [][3]float64{{68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}}
)

// rungColor fades lower rungs: the top rung is strong blue.
func rungColor(rung, top int) string {
	if top <= 0 || rung >= top {
		return "#1f5fbf"
	}
	t := float64(rung) / float64(top)
	grey, blue := [3]float64{190, 197, 207}, [3]float64{31, 95, 191}
	var c [3]int
	for k := range 3 {
		c[k] = int(grey[k] + t*(blue[k]-grey[k]))
	}
	return fmt.Sprintf("#%02x%02x%02x", c[0], c[1], c[2])
}

// rampColor maps t in [0, 1] onto viridis.
func rampColor(t float64) string {
	if math.IsNaN(t) {
		t = 0
	}
	t = math.Max(0, math.Min(1, t)) * float64(len(viridis)-1)
	i := min(int(t), len(viridis)-2)
	f := t - float64(i)
	var c [3]int
	for k := range 3 {
		c[k] = int(math.Round(viridis[i][k] + f*(viridis[i+1][k]-viridis[i][k])))
	}
	return fmt.Sprintf("#%02x%02x%02x", c[0], c[1], c[2])
}

// Number formats of ticks and labels.

func fmtAcc(v float64) string { return strconv.FormatFloat(v, 'f', 4, 64) }

func fmtTick(v float64) string {
	s := strconv.FormatFloat(v, 'f', 3, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	if s == "-0" {
		return "0"
	}
	return s
}

// fmtCount writes a count of parameters or multiply-adds as effnas show
// does: 219.78M, 1.20G, 5.3K.
func fmtCount(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fG", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fK", float64(n)/1e3)
	}
	return strconv.FormatInt(n, 10)
}

func fmtFLOPsTick(v float64) string {
	switch {
	case v >= 1e9:
		return fmtTick(v/1e9) + "G"
	case v >= 1e6:
		return fmtTick(v/1e6) + "M"
	case v >= 1e3:
		return fmtTick(v/1e3) + "K"
	}
	return fmtTick(v)
}

// timeUnit picks seconds, minutes or hours for a time axis up to span
// seconds.
func timeUnit(span float64) (div float64, name string) {
	switch {
	case span < 180:
		return 1, "seconds"
	case span < 3*3600:
		return 60, "minutes"
	case span < 3*86400:
		return 3600, "hours"
	}
	return 86400, "days"
}
