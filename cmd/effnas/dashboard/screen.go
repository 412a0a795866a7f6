package dashboard

import (
	"context"
	"fmt"
	"math"

	"github.com/effnas/effnas/search"
	"github.com/effnas/effnas/store"
)

// screenCard is a search's one-shot screening as its page shows it: the
// supernet's training, the screened candidates' scores as a histogram and
// the best five by reward, never a row for each candidate.
type screenCard struct {
	Supernet search.SupernetReport
	Training string               // the supernet's training, in words
	Report   *search.ScreenReport // nil before a candidate is scored
	Trials   int                  // how many go on to rung 0
	Hist     Plot
	Top      []screenTop
}

// screenTop is one of the best screened candidates by reward.
type screenTop struct {
	store.Screened
	Short string // the key, abbreviated to fit the card
}

// screening reads a search study's screening (search.ScreenOf) for its
// page; trials is how many candidates go on to rung 0. It is nil when the
// study does not screen.
func screening(ctx context.Context, st store.Store, s store.Study, trials int) (*screenCard, error) {
	_, sn, sr, err := search.ScreenOf(ctx, st, s)
	if err != nil || sn == nil {
		return nil, err
	}
	c := &screenCard{Supernet: *sn, Training: trainingState(*sn), Report: sr, Trials: trials}
	if sr != nil {
		c.Hist = drawScreening(*sr)
		for _, r := range sr.Top {
			c.Top = append(c.Top, screenTop{Screened: r, Short: shortKey(r.Key)})
		}
	}
	return c, nil
}

// trainingState says where the supernet's training is.
func trainingState(sn search.SupernetReport) string {
	switch {
	case sn.Done:
		return "trained"
	case sn.Holder != "":
		return "training"
	case sn.Steps == 0 && sn.Checkpoints == 0:
		return "not started"
	}
	return "stopped: nobody trains it"
}

// shortKey abbreviates a candidate's key for a table cell; the cell's
// title holds the whole key.
func shortKey(k string) string {
	const n = 20
	if r := []rune(k); len(r) > n {
		return string(r[:n]) + "…"
	}
	return k
}

// Size of the histogram of screening scores, in SVG pixels.
const (
	histW = 440
	histH = 210
)

// drawScreening draws the histogram of a screening's scores: a bar for
// each of the report's ten bins, the part of it promoted to rung 0 in the
// accent colour, and a dashed line at the lowest promoted score.
func drawScreening(sr search.ScreenReport) Plot {
	if sr.Screened == 0 || len(sr.Histogram) == 0 {
		return Plot{Empty: "no candidate has been scored yet"}
	}
	lo, hi := sr.ScoreMin, sr.ScoreMax
	if !(hi > lo) {
		// Every score alike: all are in the first bin, drawn a tenth wide.
		hi = lo + 0.01
	}
	bins := len(sr.Histogram)
	most := 1
	for _, n := range sr.Histogram {
		most = max(most, n)
	}
	f := newFrame(histW, histH, "histogram of the candidates' scores on the supernet, the promoted part of each bar highlighted",
		newAxis(lo, hi, false, 0, 0), newAxis(0, float64(most)*1.08, false, 0, 0))
	for _, v := range niceTicks(0, float64(most), 4) {
		if v == math.Trunc(v) {
			f.yticks = append(f.yticks, v)
		}
	}
	f.axes("score: accuracy on the supernet", "candidates", fmtTick, fmtTick)
	w := (hi - lo) / float64(bins)
	for b, n := range sr.Histogram {
		from, to := lo+float64(b)*w, lo+float64(b+1)*w
		x0, x1 := f.x.px(from)+0.5, f.x.px(to)-0.5
		promoted := 0
		if b < len(sr.HistogramPromoted) {
			promoted = sr.HistogramPromoted[b]
		}
		title := fmt.Sprintf("scores %s to %s: %d candidates, %d promoted", fmtAcc(from), fmtAcc(to), n, promoted)
		var d pathData
		d.rect(x0, f.y.px(0), x1, f.y.px(float64(n)))
		f.p.Paths = append(f.p.Paths, Path{D: d.String(), Class: "hbar", Title: title})
		if promoted > 0 {
			var p pathData
			p.rect(x0, f.y.px(0), x1, f.y.px(float64(promoted)))
			f.p.Paths = append(f.p.Paths, Path{D: p.String(), Class: "hbar promoted", Title: title})
		}
	}
	if sr.Promoted > 0 {
		x := f.x.px(sr.PromotedScore)
		f.p.Segs = append(f.p.Segs, Seg{X1: x, Y1: f.y.p1, X2: x, Y2: f.y.p0, Class: "cut"})
		t := Text{X: x + 4, Y: f.y.p1 + 9, S: "lowest promoted " + fmtAcc(sr.PromotedScore), Class: "legend", Anchor: "start"}
		if x > (f.x.p0+f.x.p1)/2 {
			t.X, t.Anchor = x-4, "end"
		}
		f.p.Texts = append(f.p.Texts, t)
	}
	return *f.p
}
