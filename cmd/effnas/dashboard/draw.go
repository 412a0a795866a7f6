package dashboard

import (
	"fmt"
	"math"
	"slices"
	"strconv"
)

// Figure sizes in SVG pixels; the pages scale them to their width.
const (
	figW = 640
	figH = 360
)

// drawBest draws best-so-far curves over time: one study's runs as dots
// and its best as a step line, or several studies' best lines to compare.
func drawBest(curves []BestCurve, withRuns bool) Plot {
	span, lo, hi := 0.0, math.Inf(1), math.Inf(-1)
	for _, c := range curves {
		for _, r := range c.Runs {
			if withRuns {
				span, lo, hi = max(span, r.Seconds), min(lo, r.Reward), max(hi, r.Reward)
			}
		}
		for _, b := range c.Best {
			span, lo, hi = max(span, b.Seconds), min(lo, b.Reward), max(hi, b.Reward)
		}
		span = max(span, c.End)
	}
	if math.IsInf(lo, 0) {
		return Plot{Empty: "no run has finished yet"}
	}
	div, unit := timeUnit(span)
	x := newAxis(0, span/div*1.03, false, 0, 0)
	y := newAxis(lo, hi, false, 0, 0)
	pad := (y.hi - y.lo) * 0.05
	y = newAxis(y.lo-pad, y.hi+pad, false, 0, 0)
	f := newFrame(figW, figH, "best reward over time", x, y)
	f.axes(unit+" since the study started", "reward", fmtTick, fmtTick)
	var legend []legendEntry
	for i, c := range curves {
		color := studyColors[i%len(studyColors)]
		if withRuns {
			byRung := map[int]*pathData{}
			var rungs []int
			for _, r := range c.Runs {
				d, ok := byRung[r.Rung]
				if !ok {
					d = &pathData{}
					byRung[r.Rung] = d
					rungs = append(rungs, r.Rung)
				}
				d.dot(f.x.px(r.Seconds/div), f.y.px(r.Reward))
			}
			slices.Sort(rungs)
			for _, k := range rungs {
				f.p.Paths = append(f.p.Paths, Path{D: byRung[k].String(), Class: "dots", Stroke: rungColor(k, c.TopRung)})
				if c.TopRung > 0 {
					legend = append(legend, legendEntry{fmt.Sprintf("run at rung %d", k), rungColor(k, c.TopRung)})
				}
			}
			color = "#d62728"
		}
		if len(c.Best) > 0 {
			var d pathData
			for j, b := range c.Best {
				px, py := f.x.px(b.Seconds/div), f.y.px(b.Reward)
				if j == 0 {
					d.move(px, py)
				} else {
					d.line(px, f.y.px(c.Best[j-1].Reward))
					d.line(px, py)
				}
			}
			last := c.Best[len(c.Best)-1]
			d.line(f.x.px(c.End/div), f.y.px(last.Reward))
			f.p.Paths = append(f.p.Paths, Path{D: d.String(), Class: "line", Stroke: color})
			for _, b := range c.Best {
				f.p.Dots = append(f.p.Dots, Dot{X: f.x.px(b.Seconds / div), Y: f.y.px(b.Reward), R: 3.5, Fill: color, Class: "mark",
					Title: fmt.Sprintf("study %d: best %s (trial %d) after %s", c.Study, fmtAcc(b.Reward), b.Trial, since(secs(b.Seconds)))})
			}
		}
		label := "best candidate at the top rung"
		if !withRuns {
			label = studyLabel(c.Study, c.Name)
		}
		legend = append(legend, legendEntry{label, color})
	}
	f.legendBottom(legend)
	return *f.p
}

// legendBottom writes the legend in the bottom right corner, upwards.
func (f *frame) legendBottom(entries []legendEntry) {
	x, y := f.x.p1-8, f.y.p0-8-15*float64(len(entries)-1)
	for _, e := range entries {
		f.p.Dots = append(f.p.Dots, Dot{X: x, Y: y - 4, R: 4, Fill: e.color, Class: "key"})
		f.p.Texts = append(f.p.Texts, Text{X: x - 8, Y: y, S: e.label, Class: "legend", Anchor: "end"})
		y += 15
	}
}

func studyLabel(id int64, name string) string {
	if name == "" {
		return "study " + strconv.FormatInt(id, 10)
	}
	return fmt.Sprintf("study %d %s", id, name)
}

// drawPareto draws accuracy against full-size multiply-adds.
func drawPareto(p ParetoFigure) Plot {
	if len(p.Runs) == 0 {
		return Plot{Empty: "no run has finished yet"}
	}
	flo, fhi := p.Runs[0].FLOPs, p.Runs[0].FLOPs
	alo, ahi := 1.0, 0.0
	for _, r := range p.Runs {
		flo, fhi = min(flo, r.FLOPs), max(fhi, r.FLOPs)
		alo, ahi = min(alo, r.Accuracy), max(ahi, r.Accuracy)
	}
	pad := math.Max((ahi-alo)*0.06, 0.002)
	logX := float64(fhi)/float64(max(flo, 1)) > 3
	x := newAxis(float64(flo)*0.95, float64(fhi)*1.05, logX, 0, 0)
	y := newAxis(alo-pad, ahi+pad, false, 0, 0)
	f := newFrame(figW, figH, "accuracy against full-size multiply-adds, with the Pareto front", x, y)
	f.axes("multiply-adds (full size)", "validation accuracy", fmtFLOPsTick, fmtTick)
	for i, l := range p.Iso {
		var d pathData
		var lx, ly float64
		for _, pt := range l.Points {
			if !f.in(pt[0], pt[1]) {
				continue
			}
			px, py := f.x.px(pt[0]), f.y.px(pt[1])
			if d.empty() {
				d.move(px, py)
			} else {
				d.line(px, py)
			}
			lx, ly = px, py
		}
		if d.empty() {
			continue
		}
		cls := "iso"
		if i == len(p.Iso)-1 && len(p.Front) > 0 {
			cls = "iso best"
		}
		f.p.Paths = append(f.p.Paths, Path{D: d.String(), Class: cls, Title: "reward " + fmtAcc(l.Reward)})
		f.p.Texts = append(f.p.Texts, Text{X: lx - 2, Y: ly - 4, S: "R=" + strconv.FormatFloat(l.Reward, 'f', 3, 64), Class: "iso-label", Anchor: "end"})
	}
	byRung := map[int]*pathData{}
	for _, r := range p.Runs {
		if r.Rung == p.TopRung && p.TopRung > 0 {
			continue // drawn as candidates
		}
		d, ok := byRung[r.Rung]
		if !ok {
			d = &pathData{}
			byRung[r.Rung] = d
		}
		d.dot(f.x.px(float64(r.FLOPs)), f.y.px(r.Accuracy))
	}
	var legend []legendEntry
	for k := range p.TopRung + 1 {
		if d, ok := byRung[k]; ok {
			f.p.Paths = append(f.p.Paths, Path{D: d.String(), Class: "dots", Stroke: rungColor(k, p.TopRung)})
			if p.TopRung > 0 {
				legend = append(legend, legendEntry{fmt.Sprintf("run at rung %d", k), rungColor(k, p.TopRung)})
			} else {
				legend = append(legend, legendEntry{"trial", rungColor(k, p.TopRung)})
			}
		}
	}
	if p.TopRung > 0 {
		var d pathData
		for _, c := range p.Candidates {
			d.dot(f.x.px(float64(c.FLOPs)), f.y.px(c.Accuracy))
		}
		if !d.empty() {
			f.p.Paths = append(f.p.Paths, Path{D: d.String(), Class: "dots big", Stroke: rungColor(p.TopRung, p.TopRung)})
			legend = append(legend, legendEntry{fmt.Sprintf("candidate: mean at rung %d", p.TopRung), rungColor(p.TopRung, p.TopRung)})
		}
	}
	if len(p.Front) > 0 {
		var d pathData
		for i, c := range p.Front {
			px, py := f.x.px(float64(c.FLOPs)), f.y.px(c.Accuracy)
			if i == 0 {
				d.move(px, py)
			} else {
				d.line(px, py)
			}
		}
		f.p.Paths = append(f.p.Paths, Path{D: d.String(), Class: "line front", Stroke: "#d62728"})
		for _, c := range p.Front {
			f.p.Dots = append(f.p.Dots, Dot{X: f.x.px(float64(c.FLOPs)), Y: f.y.px(c.Accuracy), R: 4, Fill: "#d62728", Class: "mark",
				Title: fmt.Sprintf("trial %d: accuracy %s, reward %s, %s multiply-adds", c.Trial, fmtAcc(c.Accuracy), fmtAcc(c.Reward), fmtCount(c.FLOPs))})
		}
		legend = append(legend, legendEntry{"Pareto front", "#d62728"})
	}
	if len(p.Iso) > 0 {
		legend = append(legend, legendEntry{fmt.Sprintf("reward iso-lines, T=%s, w=%g", fmtFLOPsTick(p.Target), p.W), "#999999"})
	}
	f.legendBottom(legend)
	return *f.p
}

// drawParallel draws parallel coordinates: an axis per dimension and the
// reward, a line per candidate coloured by reward, the best on top.
func drawParallel(p ParallelFigure) Plot {
	if len(p.Lines) == 0 {
		return Plot{Empty: "no candidate has finished rung 0 yet"}
	}
	n := len(p.Axes) + 1
	const step, left, top, bottom = 30.0, 30.0, 18.0, 96.0
	w := int(left + step*float64(n-1) + 60)
	h := 360
	p0, p1 := float64(h)-bottom, top
	pl := Plot{W: w, H: h, Label: "parallel coordinates of the candidates' choices, coloured by reward"}
	ax := func(i int) float64 { return left + step*float64(i) }
	opt := func(i, o int) float64 {
		k := len(p.Axes[i].Options)
		if k < 2 {
			return (p0 + p1) / 2
		}
		return p0 + (p1-p0)*float64(o)/float64(k-1)
	}
	rew := newAxis(p.Low, p.High, false, p0, p1)
	for i, a := range p.Axes {
		x := ax(i)
		pl.Segs = append(pl.Segs, Seg{X1: x, Y1: p1, X2: x, Y2: p0, Class: "axis"})
		pl.Texts = append(pl.Texts, Text{X: x + 3, Y: p0 + 8, S: a.Name, Class: "tick", Anchor: "end", Rotate: -60})
		for o, name := range a.Options {
			pl.Texts = append(pl.Texts, Text{X: x + 3, Y: opt(i, o) - 2, S: shortOption(name), Class: "opt", Anchor: "start"})
		}
	}
	xr := ax(n - 1)
	pl.Segs = append(pl.Segs, Seg{X1: xr, Y1: p1, X2: xr, Y2: p0, Class: "axis"})
	pl.Texts = append(pl.Texts, Text{X: xr + 3, Y: p0 + 8, S: "reward", Class: "tick", Anchor: "end", Rotate: -60})
	for _, v := range rew.ticks(5) {
		pl.Texts = append(pl.Texts, Text{X: xr + 5, Y: rew.px(v) + 3, S: fmtTick(v), Class: "tick", Anchor: "start"})
		pl.Segs = append(pl.Segs, Seg{X1: xr - 3, Y1: rew.px(v), X2: xr + 3, Y2: rew.px(v), Class: "axis"})
	}
	span := p.High - p.Low
	for i := len(p.Lines) - 1; i >= 0; i-- { // worst first: the best is drawn last, on top
		l := p.Lines[i]
		var d pathData
		for a, o := range l.Choices {
			// A little spread by trial, so lines through one option part.
			jit := (float64((l.Trial*7919+a*104729)%11) - 5) * 0.6
			if a == 0 {
				d.move(ax(a), opt(a, o)+jit)
			} else {
				d.line(ax(a), opt(a, o)+jit)
			}
		}
		d.line(xr, rew.px(l.Reward))
		t := 0.5
		if span > 0 {
			t = (l.Reward - p.Low) / span
		}
		cls := "pc"
		if i < max(5, len(p.Lines)/20) {
			cls = "pc top"
		}
		pl.Paths = append(pl.Paths, Path{D: d.String(), Class: cls, Stroke: rampColor(t),
			Title: fmt.Sprintf("trial %d: reward %s", l.Trial, fmtAcc(l.Reward))})
	}
	return pl
}

// shortOption abbreviates a choice's name to fit between two axes.
func shortOption(s string) string {
	switch s {
	case "sepconv":
		return "sep"
	case "mbconv3":
		return "mb3"
	case "mbconv6":
		return "mb6"
	case "noskip":
		return "no"
	}
	if len(s) > 5 {
		return s[:5]
	}
	return s
}

// drawRungs draws successive halving's learning curves: accuracy by rung.
func drawRungs(r RungFigure) Plot {
	if len(r.Candidates) == 0 || len(r.Rungs) < 2 {
		return Plot{Empty: "no candidate has finished rung 0 yet"}
	}
	lo, hi := 1.0, 0.0
	for _, c := range r.Candidates {
		for _, a := range c.Accuracy {
			lo, hi = min(lo, a), max(hi, a)
		}
	}
	pad := math.Max((hi-lo)*0.06, 0.002)
	x := newAxis(-0.2, float64(len(r.Rungs)-1)+0.2, false, 0, 0)
	f := newFrame(figW, figH, "accuracy of each candidate at each rung it reached", x, newAxis(lo-pad, hi+pad, false, 0, 0))
	labels := map[float64]string{}
	for _, g := range r.Rungs {
		labels[float64(g.Rung)] = fmt.Sprintf("rung %d: %s images", g.Rung, fmtFLOPsTick(float64(g.Images)))
	}
	for _, g := range r.Rungs {
		f.xticks = append(f.xticks, float64(g.Rung))
	}
	f.axes("rung (training images x epochs)", "validation accuracy", func(v float64) string { return labels[v] }, fmtTick)
	top := len(r.Rungs) - 1
	var stopped, single pathData
	climbed := map[int]*pathData{}
	for _, c := range r.Candidates {
		if len(c.Accuracy) == 1 {
			single.dot(f.x.px(0), f.y.px(c.Accuracy[0]))
			continue
		}
		d := &stopped
		if !c.Stopped {
			reach := len(c.Accuracy) - 1
			if climbed[reach] == nil {
				climbed[reach] = &pathData{}
			}
			d = climbed[reach]
		}
		for k, a := range c.Accuracy {
			if k == 0 {
				d.move(f.x.px(float64(k)), f.y.px(a))
			} else {
				d.line(f.x.px(float64(k)), f.y.px(a))
			}
		}
	}
	f.p.Paths = append(f.p.Paths, Path{D: single.String(), Class: "dots", Stroke: rungColor(0, top)})
	f.p.Paths = append(f.p.Paths, Path{D: stopped.String(), Class: "line thin", Stroke: "#b9c2cf"})
	legend := []legendEntry{{"stopped at rung 0", rungColor(0, top)}, {"stopped higher", "#b9c2cf"}}
	for k := 1; k <= top; k++ {
		if d := climbed[k]; d != nil {
			f.p.Paths = append(f.p.Paths, Path{D: d.String(), Class: "line", Stroke: rungColor(k, top)})
			what := fmt.Sprintf("reached rung %d", k)
			if k == top {
				what = "reached the top rung"
			}
			legend = append(legend, legendEntry{what, rungColor(k, top)})
		}
	}
	f.legendBottom(legend)
	return *f.p
}

// drawGrid draws a grid's points and the series beside them: accuracy
// against full-size multiply-adds, rung 0 as open dots and lines, the top
// rung as means with bars of ± 2 standard errors.
func drawGrid(g GridFigure) Plot {
	type pts struct {
		label string
		color string
		ps    []GridPoint
		line  bool
	}
	sets := []pts{{label: "this grid", color: "#1f5fbf", ps: g.Points, line: g.Dimension != ""}}
	if g.Dimension == "" {
		sets[0].label = "compound points"
	} else {
		sets[0].label = g.Dimension + " only (this study)"
	}
	for i, s := range g.Series {
		label := s.Dimension + " only"
		if s.Dimension == "" {
			label = "compound"
		}
		sets = append(sets, pts{label: fmt.Sprintf("%s (study %d)", label, s.Study), color: studyColors[(i+1)%len(studyColors)], ps: s.Points, line: s.Dimension != ""})
	}
	flo, fhi, alo, ahi := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, s := range sets {
		for _, p := range s.ps {
			if p.Accuracy == nil && p.Seeds == 0 {
				continue
			}
			flo, fhi = min(flo, float64(p.FLOPs)), max(fhi, float64(p.FLOPs))
			if p.Accuracy != nil {
				alo, ahi = min(alo, *p.Accuracy), max(ahi, *p.Accuracy)
			}
			if p.Seeds > 0 {
				alo, ahi = min(alo, p.Low), max(ahi, p.High)
			}
		}
	}
	if math.IsInf(flo, 0) {
		return Plot{Empty: "no point has finished yet"}
	}
	pad := math.Max((ahi-alo)*0.08, 0.002)
	f := newFrame(figW, figH, "grid points: accuracy against full-size multiply-adds", newAxis(flo*0.95, fhi*1.05, fhi/flo > 3, 0, 0), newAxis(alo-pad, ahi+pad, false, 0, 0))
	f.axes("multiply-adds (full size)", "validation accuracy", fmtFLOPsTick, fmtTick)
	var legend []legendEntry
	for _, s := range sets {
		var line pathData
		for _, p := range s.ps {
			if p.Accuracy == nil {
				continue
			}
			x, y := f.x.px(float64(p.FLOPs)), f.y.px(*p.Accuracy)
			if s.line {
				if line.empty() {
					line.move(x, y)
				} else {
					line.line(x, y)
				}
			}
			f.p.Dots = append(f.p.Dots, Dot{X: x, Y: y, R: 3, Class: "open", Fill: s.color,
				Title: fmt.Sprintf("trial %d: alpha %.2f, beta %.2f, gamma %.2f: accuracy %s at rung 0, %s multiply-adds", p.Trial, p.Alpha, p.Beta, p.Gamma, fmtAcc(*p.Accuracy), fmtCount(p.FLOPs))})
		}
		if !line.empty() {
			f.p.Paths = append(f.p.Paths, Path{D: line.String(), Class: "line thin", Stroke: s.color})
		}
		for _, p := range s.ps {
			if p.Seeds == 0 || g.TopRung == 0 && p.Seeds < 2 {
				continue
			}
			x := f.x.px(float64(p.FLOPs))
			f.p.Segs = append(f.p.Segs, Seg{X1: x, Y1: f.y.px(p.Low), X2: x, Y2: f.y.px(p.High), Class: "bar", Stroke: s.color})
			f.p.Dots = append(f.p.Dots, Dot{X: x, Y: f.y.px(p.Mean), R: 4, Class: "mark", Fill: s.color,
				Title: fmt.Sprintf("trial %d: alpha %.2f, beta %.2f, gamma %.2f: %s ± %s over %d seeds at rung %d", p.Trial, p.Alpha, p.Beta, p.Gamma, fmtAcc(p.Mean), fmtAcc(p.Std), p.Seeds, g.TopRung)})
		}
		legend = append(legend, legendEntry{s.label, s.color})
	}
	if w := g.Winner; w != nil {
		y := w.Mean
		if w.Seeds == 0 && w.Accuracy != nil {
			y = *w.Accuracy
		}
		x := f.x.px(float64(w.FLOPs))
		f.p.Dots = append(f.p.Dots, Dot{X: x, Y: f.y.px(y), R: 7, Class: "ring"})
		label := Text{X: x + 9, Y: f.y.px(y) - 8, S: fmt.Sprintf("winner (%.2f, %.2f, %.2f)", w.Alpha, w.Beta, w.Gamma), Class: "legend", Anchor: "start"}
		if x > (f.x.p0+f.x.p1)/2 {
			label.X, label.Anchor = x-9, "end"
		}
		f.p.Texts = append(f.p.Texts, label)
	}
	f.legendBottom(legend)
	return *f.p
}

// drawFronts draws several studies' Pareto fronts on one plane.
func drawFronts(fronts []Front) Plot {
	flo, fhi, alo, ahi := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, fr := range fronts {
		for _, p := range fr.Points {
			flo, fhi = min(flo, float64(p.FLOPs)), max(fhi, float64(p.FLOPs))
			alo, ahi = min(alo, p.Accuracy), max(ahi, p.Accuracy)
		}
	}
	if math.IsInf(flo, 0) {
		return Plot{Empty: "no candidate has finished the top rung yet"}
	}
	pad := math.Max((ahi-alo)*0.08, 0.002)
	f := newFrame(figW, figH, "Pareto fronts of the studies", newAxis(flo*0.95, fhi*1.05, fhi/flo > 3, 0, 0), newAxis(alo-pad, ahi+pad, false, 0, 0))
	f.axes("multiply-adds (full size)", "mean validation accuracy at the top rung", fmtFLOPsTick, fmtTick)
	var legend []legendEntry
	for i, fr := range fronts {
		color := studyColors[i%len(studyColors)]
		var d pathData
		for j, p := range fr.Points {
			x, y := f.x.px(float64(p.FLOPs)), f.y.px(p.Accuracy)
			if j == 0 {
				d.move(x, y)
			} else {
				d.line(x, y)
			}
			f.p.Dots = append(f.p.Dots, Dot{X: x, Y: y, R: 3.5, Fill: color, Class: "mark",
				Title: fmt.Sprintf("study %d trial %d: accuracy %s, %s multiply-adds", fr.Study, p.Trial, fmtAcc(p.Accuracy), fmtCount(p.FLOPs))})
		}
		if !d.empty() {
			f.p.Paths = append(f.p.Paths, Path{D: d.String(), Class: "line", Stroke: color})
		}
		legend = append(legend, legendEntry{studyLabel(fr.Study, fr.Name), color})
	}
	f.legendBottom(legend)
	return *f.p
}
