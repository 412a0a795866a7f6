package search

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/effnas/effnas/store"
)

// Defaults of Halving.
const (
	DefaultRungs     = 3
	DefaultEta       = 3.0
	DefaultTopSeeds  = 3
	DefaultFinalists = 3
)

// DefaultHalving is search's schedule: three rungs, the best third climb,
// at least three finalists under three seeds each.
var DefaultHalving = Halving{Rungs: DefaultRungs, Eta: DefaultEta, TopSeeds: DefaultTopSeeds, Finalists: DefaultFinalists}

// Halving is asynchronous successive halving (ASHA, Li et al. 2020) with a
// finalist stage. Every candidate is first trained at the lowest fidelity,
// rung 0. As soon as a candidate ranks in the best 1/Eta of the trials
// finished at its rung, it is promoted: trained again at the next rung,
// with Eta times the images. When no more candidates can climb, the best
// 1/Eta of the top rung (at least Finalists) become the finalists and are
// trained under TopSeeds seeds in all; the found network is the finalist
// with the best mean over its seeds.
//
// Every decision is a trial written to the store before anything acts on
// it and is never revisited, and each is a function of the finished
// trials alone: with one worker, a resumed study decides exactly what an
// uninterrupted one would. With several, the order in which trials finish
// depends on timing, and so may an asynchronous promotion.
type Halving struct {
	Rungs     int     `json:"rungs"`     // fidelities; 1 trains every candidate once at the top fidelity; default 3
	Eta       float64 `json:"eta"`       // the best 1/Eta of a rung climb; default 3
	TopSeeds  int     `json:"top_seeds"` // seeds each finalist is trained under at the top rung; default 3
	Finalists int     `json:"finalists"` // the fewest finalists; default 3
	// MaxFinalists bounds the finalists (pinned candidates aside): the
	// best 1/Eta of a top rung that every candidate reaches (one rung)
	// can be many; default 0, no bound.
	MaxFinalists int `json:"max_finalists"`
}

// WithDefaults returns h with zero fields set to their defaults.
func (h Halving) WithDefaults() Halving {
	h.Rungs = cmp.Or(h.Rungs, DefaultRungs)
	h.Eta = cmp.Or(h.Eta, DefaultEta)
	h.TopSeeds = cmp.Or(h.TopSeeds, DefaultTopSeeds)
	h.Finalists = cmp.Or(h.Finalists, DefaultFinalists)
	return h
}

// Validate reports a setting that cannot run. Call it after WithDefaults.
func (h Halving) Validate() error {
	switch {
	case h.Rungs < 1 || h.Rungs > 8:
		return fmt.Errorf("rungs %d: must be 1 (one fidelity) to 8", h.Rungs)
	case math.IsNaN(h.Eta) || h.Eta < 2 || h.Eta > 100:
		return fmt.Errorf("eta %v: must be 2 to 100 (the best 1/eta of each rung is promoted), e.g. 3", h.Eta)
	case h.TopSeeds < 1 || h.TopSeeds > 100:
		return fmt.Errorf("top seeds %d: must be 1 to 100 seeds per finalist", h.TopSeeds)
	case h.Finalists < 1 || h.Finalists > 1000:
		return fmt.Errorf("finalists %d: must be 1 to 1000", h.Finalists)
	case h.MaxFinalists != 0 && (h.MaxFinalists < h.Finalists || h.MaxFinalists > 1000):
		return fmt.Errorf("max finalists %d: must be 0 (no bound) or %d (the fewest finalists) to 1000", h.MaxFinalists, h.Finalists)
	}
	return nil
}

// Top is the top rung.
func (h Halving) Top() int { return h.Rungs - 1 }

// RetrySeed is added to a seed index for the one retry of a failed run
// (a diverged grid point, a finalist's failed seed); the retry stands in
// for the run it repeats.
const RetrySeed = 1000

// diverged reports whether a failed trial failed because its loss diverged.
func diverged(t store.Trial) bool {
	return t.State == store.TrialFailed && strings.Contains(t.Error, "diverged")
}

// rejectedBeforeTraining is the prefix of the reason of a trial failed
// without training (over the memory budget or the reward's bound): it
// would fail again, so it is not retried.
const rejectedBeforeTraining = "rejected before training"

// effective returns the trials that count: a failed run's retry (seed
// RetrySeed+s) stands in for the run (seed s) once planned.
func effective(trials []store.Trial) []store.Trial {
	type id struct {
		key        string
		rung, seed int
	}
	retried := map[id]bool{}
	for _, t := range trials {
		if t.Seed >= RetrySeed {
			retried[id{t.Key, t.Rung, t.Seed - RetrySeed}] = true
		}
	}
	out := make([]store.Trial, 0, len(trials))
	for _, t := range trials {
		if t.Seed < RetrySeed && retried[id{t.Key, t.Rung, t.Seed}] {
			continue
		}
		if t.Seed >= RetrySeed {
			t.Seed -= RetrySeed
		}
		out = append(out, t)
	}
	return out
}

// retries plans the one retry, with a derived seed and outside the
// budget, of every finalist seed that failed (a seed above 0 at the top
// rung: only finalists have them), and with retryDiverged of every run
// that diverged at any rung.
func (h Halving) retries(trials []store.Trial, retryDiverged bool) []store.Plan {
	planned := map[[3]any]bool{}
	for _, t := range trials {
		planned[[3]any{t.Key, t.Rung, t.Seed}] = true
	}
	var plans []store.Plan
	for _, t := range trials {
		if t.State != store.TrialFailed || t.Seed >= RetrySeed || strings.HasPrefix(t.Error, rejectedBeforeTraining) {
			continue
		}
		finalistSeed := t.Rung == h.Top() && t.Seed > 0
		if (finalistSeed || retryDiverged && diverged(t)) && !planned[[3]any{t.Key, t.Rung, t.Seed + RetrySeed}] {
			plans = append(plans, promote(t, t.Rung, t.Seed+RetrySeed))
		}
	}
	return plans
}

func finished(t store.Trial) bool {
	return t.State == store.TrialComplete || t.State == store.TrialFailed
}

// better orders complete trials best first: higher reward, then the lower
// trial number.
func better(a, b store.Trial) int {
	if c := cmp.Compare(b.Reward, a.Reward); c != 0 {
		return c
	}
	return cmp.Compare(a.Number, b.Number)
}

// promote returns a trial's plan at another rung and seed.
func promote(t store.Trial, rung, seed int) store.Plan {
	return store.Plan{Key: t.Key, Rung: rung, Seed: seed, Choices: t.Choices, Blocks: t.Blocks,
		Params: t.Params, FLOPs: t.FLOPs, Grid: t.Grid, Memory: t.Memory}
}

// Next returns what successive halving plans now, given every trial of the
// study: promotions (highest rung first, best first), then, when rung 0
// can take no more candidates (its budget of candidates is planned) and
// every trial below the top is finished, the finalists' seeds. pinned
// candidates (the grid's base point) climb every rung and are finalists
// whatever their rank. A finalist's seed that fails is tried once more
// with a derived seed, and with retryDiverged so is every run that
// diverged. open says whether rung 0 may still grow.
func (h Halving) Next(trials []store.Trial, open bool, pinned func(key string) bool, retryDiverged bool) []store.Plan {
	plans := h.retries(trials, retryDiverged)
	eff := effective(trials)
	at := func(rung, seed int) map[string]store.Trial {
		m := map[string]store.Trial{}
		for _, t := range eff {
			if t.Rung == rung && t.Seed == seed {
				m[t.Key] = t
			}
		}
		return m
	}
	rungs := make([]map[string]store.Trial, h.Rungs)
	for k := range rungs {
		rungs[k] = at(k, 0)
	}
	// A rung is closed when nothing more can arrive at it: rung 0 once it
	// may not grow, a higher rung once the rung below is closed and has
	// promoted all it will. A closed rung whose best 1/Eta rounds down to
	// no one still promotes its best, so that a small study (5 candidates
	// at eta 3, a grid of a few points) ends with a winner at the top.
	// Pinned candidates climb outside the quota.
	var up [][]store.Plan
	closed := !open
	for k := 0; k < h.Top(); k++ {
		var done, ranked []store.Trial
		for _, t := range rungs[k] {
			if finished(t) {
				done = append(done, t)
				if t.State == store.TrialComplete {
					ranked = append(ranked, t)
				}
			} else {
				closed = false
			}
		}
		slices.SortFunc(ranked, better)
		quota := int(float64(len(done)) / h.Eta)
		if closed {
			quota = max(quota, 1)
		}
		var rungPlans []store.Plan
		i := 0
		for _, t := range ranked {
			pin := pinned(t.Key)
			if !pin {
				i++
			}
			if _, in := rungs[k+1][t.Key]; in || (i > quota && !pin) {
				continue
			}
			rungPlans = append(rungPlans, promote(t, k+1, 0))
		}
		if len(rungPlans) > 0 {
			closed = false
		}
		up = append(up, rungPlans)
	}
	for k := len(up) - 1; k >= 0; k-- {
		plans = append(plans, up[k]...)
	}
	if len(plans) > 0 || open {
		return plans
	}
	// The finalist stage waits until no candidate can climb any more.
	for _, t := range eff {
		if t.Seed == 0 && !finished(t) {
			return nil
		}
	}
	return append(plans, h.finalistSeeds(rungs[h.Top()], eff, pinned)...)
}

// finalists is how many of the top rung's n finished candidates are
// finalists, pinned ones aside: the best 1/Eta, at least Finalists and at
// most MaxFinalists (when set).
func (h Halving) finalists(n int) int {
	f := max(h.Finalists, int(math.Ceil(float64(n)/h.Eta)))
	if h.MaxFinalists > 0 {
		f = min(f, h.MaxFinalists)
	}
	return f
}

// finalistSeeds plans the missing seeds of the finalists (Halving.finalists
// of the top rung's finished candidates that are not pinned, the best
// first), plus the pinned ones.
func (h Halving) finalistSeeds(top map[string]store.Trial, eff []store.Trial, pinned func(string) bool) []store.Plan {
	if h.TopSeeds < 2 {
		return nil
	}
	var done, ranked []store.Trial
	for _, t := range top {
		if finished(t) {
			done = append(done, t)
			if t.State == store.TrialComplete {
				ranked = append(ranked, t)
			}
		}
	}
	slices.SortFunc(ranked, better)
	n := h.finalists(len(done))
	planned := map[[2]any]bool{}
	for _, t := range eff {
		if t.Rung == h.Top() {
			planned[[2]any{t.Key, t.Seed}] = true
		}
	}
	var plans []store.Plan
	i := 0
	for _, t := range ranked {
		// Pinned candidates are finalists outside the quota, as they
		// climb outside it.
		pin := pinned(t.Key)
		if !pin {
			i++
		}
		if i > n && !pin {
			continue
		}
		for s := 1; s < h.TopSeeds; s++ {
			if !planned[[2]any{t.Key, s}] {
				plans = append(plans, promote(t, h.Top(), s))
			}
		}
	}
	return plans
}

// Expected is about how many trials a study of n candidates trains in all:
// n at rung 0, n/Eta at rung 1..., and the finalists' extra seeds.
func (h Halving) Expected(n int) int {
	total, k := 0, n
	for r := 0; r < h.Rungs; r++ {
		total += k
		if r < h.Top() {
			k = int(float64(k) / h.Eta)
		}
	}
	if h.TopSeeds > 1 {
		f := min(k, h.finalists(k))
		total += f * (h.TopSeeds - 1)
	}
	return total
}
