package search

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"math"
	"slices"

	"github.com/effnas/effnas/store"
)

// SupernetReport is what a study's supernet training did.
type SupernetReport struct {
	Steps       int     `json:"steps"`       // training steps done
	Budget      int     `json:"budget"`      // steps it trains in all
	Checkpoints int     `json:"checkpoints"` // checkpoints saved
	Seconds     float64 `json:"seconds"`     // wall clock of the training, summed over resumes
	Done        bool    `json:"done"`
	// ScoreSeconds is the wall clock of scoring candidates, summed over
	// resumes.
	ScoreSeconds float64 `json:"score_seconds"`
	ScoreCores   int     `json:"score_cores"` // cores the scoring used (workers x threads)
	Holder       string  `json:"holder"`      // the process training it ("" when none)
}

// ScreenReport summarises a study's one-shot screening: its scores and the
// candidates that went on, without a row for each.
type ScreenReport struct {
	N        int `json:"n"`        // candidates to score
	Screened int `json:"screened"` // candidates scored
	Promoted int `json:"promoted"` // sent on to rung 0
	K        int `json:"k"`        // batches each candidate's batch norms are recalibrated over
	V        int `json:"v"`        // validation images each candidate is scored on
	// BinomialSD is the standard deviation of a score that V images imply
	// at the median score: sqrt(p (1 - p) / V).
	BinomialSD float64 `json:"binomial_sd"`
	// Scores: the lowest, median and highest score, and the lowest score
	// that went on.
	ScoreMin      float64 `json:"score_min"`
	ScoreMedian   float64 `json:"score_median"`
	ScoreMax      float64 `json:"score_max"`
	PromotedScore float64 `json:"promoted_min_score"`
	// PerSecond is the candidates scored per second of scoring (all
	// workers at once), PerSecondPerCore the same per core used.
	PerSecond        float64 `json:"per_second"`
	PerSecondPerCore float64 `json:"per_second_per_core"`
	// Histogram counts scores in ten bins of [ScoreMin, ScoreMax], and
	// Promoted how many of each bin went on.
	Histogram         []int            `json:"histogram"`
	HistogramPromoted []int            `json:"histogram_promoted"`
	Top               []store.Screened `json:"top"` // the best five by reward
}

// ScreenOf reads a study's screening: the count of candidates screened,
// the supernet's report (nil when the study does not screen) and the
// summary (nil without screened candidates).
func ScreenOf(ctx context.Context, st store.Store, study store.Study) (int, *SupernetReport, *ScreenReport, error) {
	if study.Kind != store.KindSearch {
		return 0, nil, nil, nil
	}
	cfg, err := decodeConfig(study)
	if err != nil || cfg.Screen == nil {
		return 0, nil, nil, nil
	}
	sc := *cfg.Screen
	rep := &SupernetReport{Budget: sc.Supernet.Steps}
	ck, err := st.SupernetInfo(ctx, study.ID)
	switch {
	case err == nil:
		rep.Steps, rep.Checkpoints, rep.Seconds, rep.Done, rep.Holder = ck.Step, ck.Checkpoints, ck.Seconds, ck.Done, ck.Holder
		var meta supernetMeta
		if json.Unmarshal(ck.Meta, &meta) == nil {
			rep.ScoreSeconds, rep.ScoreCores = meta.ScoreSeconds, meta.ScoreCores
		}
	case !errors.Is(err, store.ErrNotFound):
		return 0, nil, nil, err
	}
	rows, err := st.Screened(ctx, study.ID)
	if err != nil {
		return 0, nil, nil, err
	}
	if len(rows) == 0 {
		return 0, rep, nil, nil
	}
	v := sc.Supernet.ScoreImages
	if cfg.Proxy.ValSize > 0 {
		v = min(v, cfg.Proxy.ValSize)
	}
	sr := &ScreenReport{N: sc.N, Screened: len(rows), K: sc.Supernet.Calib, V: v,
		Histogram: make([]int, 10), HistogramPromoted: make([]int, 10), PromotedScore: math.Inf(1)}
	scores := make([]float64, len(rows))
	for i, r := range rows {
		scores[i] = r.Score
		if r.Promoted {
			sr.Promoted++
			sr.PromotedScore = min(sr.PromotedScore, r.Score)
		}
	}
	if sr.Promoted == 0 {
		sr.PromotedScore = 0
	}
	slices.Sort(scores)
	sr.ScoreMin, sr.ScoreMax, sr.ScoreMedian = scores[0], scores[len(scores)-1], scores[len(scores)/2]
	p := sr.ScoreMedian
	sr.BinomialSD = math.Sqrt(p * (1 - p) / float64(max(sr.V, 1)))
	if rep.ScoreSeconds > 0 {
		sr.PerSecond = float64(len(rows)) / rep.ScoreSeconds
		sr.PerSecondPerCore = sr.PerSecond / float64(max(rep.ScoreCores, 1))
	}
	span := sr.ScoreMax - sr.ScoreMin
	for _, r := range rows {
		b := 0
		if span > 0 {
			b = min(int((r.Score-sr.ScoreMin)/span*10), 9)
		}
		sr.Histogram[b]++
		if r.Promoted {
			sr.HistogramPromoted[b]++
		}
	}
	slices.SortStableFunc(rows, func(a, b store.Screened) int { return cmp.Compare(b.Reward, a.Reward) })
	sr.Top = rows[:min(5, len(rows))]
	return len(rows), rep, sr, nil
}
