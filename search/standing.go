package search

import (
	"cmp"
	"encoding/json"
	"math"
	"slices"

	"github.com/effnas/effnas/controller"
	"github.com/effnas/effnas/store"
)

// Standing is one candidate's record at the top rung: the mean and spread
// of its runs there, one per seed. Everything that ranks candidates after a
// search (the found B0, the Pareto front, the top trials, the grid's
// winner) ranks standings, never a single run at a lower rung.
type Standing struct {
	Key          string      `json:"key"`
	Trial        store.Trial `json:"-"`             // its first complete top-rung run: blocks, params, multiply-adds, grid point
	Seeds        int         `json:"seeds"`         // complete top-rung runs
	Accuracy     float64     `json:"accuracy"`      // mean validation accuracy over them
	AccuracyStd  float64     `json:"accuracy_std"`  // their standard deviation (n-1; 0 for one run)
	Reward       float64     `json:"reward"`        // mean reward
	RewardStd    float64     `json:"reward_std"`    // standard deviation of the reward
	TestAccuracy float64     `json:"test_accuracy"` // mean test accuracy, reported only
	Finalist     bool        `json:"finalist"`      // chosen for the finalists' seeds (every top-rung candidate when one seed is asked)
	// MissingSeeds counts a finalist's seeds that have no complete run
	// (failed twice, or not trained yet): such a finalist ranks after
	// every finalist with all its seeds. 0 for other candidates.
	MissingSeeds int   `json:"missing_seeds"`
	Runs         []int `json:"runs"` // trial numbers of the runs, by seed
}

// StdErr is the standard error of the mean accuracy (0 for one run).
func (s Standing) StdErr() float64 {
	if s.Seeds < 2 {
		return 0
	}
	return s.AccuracyStd / math.Sqrt(float64(s.Seeds))
}

// Standings returns every candidate with a complete run at the top rung of
// h: finalists first, those with every seed complete before those missing
// some, then by mean reward (ties: the older candidate). No single lucky
// run decides: a finalist whose other seeds failed does not outrank one
// measured over all its seeds.
func Standings(trials []store.Trial, h Halving) []Standing {
	top := h.Top()
	eff := effective(trials)
	byKey := map[string]*Standing{}
	var order []string
	extra := map[string]bool{} // a seed beyond the first was planned: a finalist
	var acc, rew, test = map[string][]float64{}, map[string][]float64{}, map[string][]float64{}
	for _, t := range eff {
		if t.Rung != top {
			continue
		}
		if t.Seed > 0 {
			extra[t.Key] = true
		}
		if t.State != store.TrialComplete {
			continue
		}
		s, ok := byKey[t.Key]
		if !ok {
			s = &Standing{Key: t.Key, Trial: t}
			byKey[t.Key] = s
			order = append(order, t.Key)
		}
		s.Runs = append(s.Runs, t.Number)
		acc[t.Key] = append(acc[t.Key], t.Accuracy)
		rew[t.Key] = append(rew[t.Key], t.Reward)
		test[t.Key] = append(test[t.Key], t.TestAccuracy)
	}
	out := make([]Standing, 0, len(order))
	for _, k := range order {
		s := byKey[k]
		s.Seeds = len(acc[k])
		s.Accuracy, s.AccuracyStd = MeanStd(acc[k])
		s.Reward, s.RewardStd = MeanStd(rew[k])
		s.TestAccuracy, _ = MeanStd(test[k])
		s.Finalist = h.TopSeeds < 2 || extra[k]
		if s.Finalist {
			s.MissingSeeds = max(0, h.TopSeeds-s.Seeds)
		}
		out = append(out, *s)
	}
	slices.SortStableFunc(out, Rank)
	return out
}

// Rank orders standings as Standings does, best first: Outranks, then the
// higher mean reward, then the older candidate (its first complete
// top-rung run).
func Rank(a, b Standing) int {
	if c := Outranks(a, b); c != 0 {
		return c
	}
	if c := cmp.Compare(b.Reward, a.Reward); c != 0 {
		return c
	}
	return cmp.Compare(a.Trial.Number, b.Trial.Number)
}

// Outranks orders two standings by what comes before their means: a
// finalist before a candidate that is not one, then a finalist with every
// seed complete before one missing some. It returns -1 when a comes
// first, 1 when b does, 0 when their means must decide.
func Outranks(a, b Standing) int {
	if a.Finalist != b.Finalist {
		if a.Finalist {
			return -1
		}
		return 1
	}
	missing := func(s Standing) int {
		if s.MissingSeeds > 0 {
			return 1
		}
		return 0
	}
	return cmp.Compare(missing(a), missing(b))
}

// Best returns the standing with the best mean reward among the finalists
// (candidates whose extra seeds are planned, whether or not they have
// finished; among all top-rung candidates before any is planned), those
// with every seed complete first, or nil when no candidate has finished
// at the top rung.
func Best(trials []store.Trial, h Halving) *Standing {
	s := Standings(trials, h)
	if len(s) == 0 {
		return nil
	}
	return &s[0]
}

// Pareto returns the top-rung candidates on the front of mean accuracy
// against full-size multiply-adds, fewest multiply-adds first.
func Pareto(trials []store.Trial, h Halving) []Standing {
	all := Standings(trials, h)
	byKey := map[string]Standing{}
	var pts []controller.Point
	for _, s := range all {
		byKey[s.Key] = s
		pts = append(pts, controller.Point{Key: s.Key, Accuracy: s.Accuracy, FLOPs: s.Trial.FLOPs})
	}
	var front []Standing
	for _, p := range controller.ParetoFront(pts) {
		front = append(front, byKey[p.Key])
	}
	return front
}

// StudyProxy returns the proxy settings stored in a search, grid or proxy
// benchmark study's config (its "proxy" field); settings a study was
// stored without keep what they did then (LegacyProxy).
func StudyProxy(st store.Study) Proxy {
	var cfg struct {
		Proxy Proxy `json:"proxy"`
	}
	cfg.Proxy = LegacyProxy()
	_ = json.Unmarshal(st.Config, &cfg) // a config that does not decode is refused where the study is opened
	return cfg.Proxy.WithDefaults()
}

// StudyHalving returns the successive-halving settings stored in a search
// or grid study's config; a study written before effnas had rungs trained
// every candidate once: one rung, one seed.
func StudyHalving(st store.Study) Halving { return StudyProxy(st).Halving }

// LegacyHalving is what a study stored without halving settings did.
var LegacyHalving = Halving{Rungs: 1, Eta: DefaultEta, TopSeeds: 1, Finalists: 1}
