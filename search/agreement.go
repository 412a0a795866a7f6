package search

import (
	"cmp"
	"slices"

	"github.com/effnas/effnas/store"
)

// RungAgreement is how well one rung below the top agreed with the top
// rung, measured on the candidates that reached the top: successive
// halving never trains the others at the top, so it cannot say how many
// good candidates a rung threw away, only how it ranked those it kept.
type RungAgreement struct {
	Rung      int `json:"rung"`
	TrainSize int `json:"train_size"` // the rung's fidelity
	Epochs    int `json:"epochs"`
	// Candidates have a complete seed-0 run at this rung and a complete
	// run at the top rung.
	Candidates int `json:"candidates"`
	// Tau is the Kendall tau-b between their seed-0 validation accuracy
	// at this rung and their mean validation accuracy over their complete
	// top-rung runs; 0 where it is undefined (fewer than two candidates,
	// or every value tied).
	Tau float64 `json:"tau"`
	// FinalistsInTopThird, on rung 0 only, is the share (0 to 1) of the
	// finalists that rung 0 ranked in its own top third: by the rung's
	// own ranking (reward, as promotion ranks), a finalist whose seed-0
	// run ranks within the best max(1, floor(n/3)) of the rung's n
	// complete runs, ties sharing the better rank. Pinned candidates (the grid's base point, a finalist
	// whatever its rank) are not counted. 0 without finalists.
	FinalistsInTopThird *float64 `json:"finalists_in_top_third,omitempty"`
	Finalists           int      `json:"finalists,omitempty"` // on rung 0: the finalists counted
}

// Agreement returns the agreement of every rung below the top of the
// proxy's schedule with the top rung, rung 0 first; empty with one rung.
// pinned says which candidates are finalists whatever their rank (nil:
// none).
func Agreement(trials []store.Trial, p Proxy, pinned func(key string) bool) []RungAgreement {
	if p.Halving.Top() < 1 {
		return []RungAgreement{}
	}
	return AgreementOf(trials, Standings(trials, p.Halving), p, pinned)
}

// AgreementOf is Agreement for a caller that has the study's standings
// (Standings(trials, p.Halving)) already.
func AgreementOf(trials []store.Trial, standings []Standing, p Proxy, pinned func(key string) bool) []RungAgreement {
	out := []RungAgreement{}
	h := p.Halving
	if h.Top() < 1 {
		return out
	}
	top := map[string]Standing{}
	for _, s := range standings {
		top[s.Key] = s
	}
	eff := effective(trials)
	for k := 0; k < h.Top(); k++ {
		var at, mean []float64
		for _, t := range eff {
			if s, ok := top[t.Key]; ok && t.Rung == k && t.Seed == 0 && t.State == store.TrialComplete {
				at = append(at, t.Accuracy)
				mean = append(mean, s.Accuracy)
			}
		}
		f := p.Fidelity(k)
		out = append(out, RungAgreement{Rung: k, TrainSize: f.TrainSize, Epochs: f.Epochs, Candidates: len(at), Tau: KendallTauB(at, mean)})
	}
	share, n := finalistsInTopThird(eff, standings, pinned)
	out[0].FinalistsInTopThird, out[0].Finalists = &share, n
	return out
}

// finalistsInTopThird returns the share of the finalists (pinned ones
// left out) whose rung-0 run ranked in the rung's top third, and their
// number.
func finalistsInTopThird(eff []store.Trial, standings []Standing, pinned func(string) bool) (float64, int) {
	var rewards []float64
	reward := map[string]float64{}
	for _, t := range eff {
		if t.Rung == 0 && t.Seed == 0 && t.State == store.TrialComplete {
			rewards = append(rewards, t.Reward)
			reward[t.Key] = t.Reward
		}
	}
	slices.SortFunc(rewards, func(a, b float64) int { return cmp.Compare(b, a) })
	third := max(1, len(rewards)/3)
	in, n := 0, 0
	for _, s := range standings {
		if !s.Finalist || (pinned != nil && pinned(s.Key)) {
			continue
		}
		r, ok := reward[s.Key]
		if !ok {
			continue // no rung-0 run of its own (cannot happen in a study)
		}
		n++
		above := slices.IndexFunc(rewards, func(x float64) bool { return x <= r }) // rewards strictly above r
		if above < third {
			in++
		}
	}
	if n == 0 {
		return 0, 0
	}
	return float64(in) / float64(n), n
}
