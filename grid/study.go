package grid

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/effnas/effnas/search"
	"github.com/effnas/effnas/space"
	"github.com/effnas/effnas/store"
)

// StudyConfig is a grid study's whole configuration, stored with it as JSON.
type StudyConfig struct {
	Grid      Config       `json:"grid"`
	Dimension string       `json:"dimension"`  // "" for the compound grid, or width, depth, resolution (Figure 3)
	Base      space.Arch   `json:"base"`       // the full-size B0 being scaled
	From      int64        `json:"from"`       // search study the base came from; 0 when given by block strings
	FromTrial int          `json:"from_trial"` // its trial number
	Seed      uint64       `json:"seed"`
	Proxy     search.Proxy `json:"proxy"`
}

// DefaultHalving is the grid's schedule: every point trained once at the
// top fidelity (one rung), then the best third, at most 9 (the base point
// besides), under three seeds each. A lower rung ranks scaled networks by
// how fast they start: at search's rung 0 (1,333 images x 1 epoch) the
// points of depth alpha = 1 scored 21 points above the deeper ones where a
// full training put them level (README, "Why the grid is flat").
var DefaultHalving = search.Halving{Rungs: 1, Eta: search.DefaultEta, TopSeeds: search.DefaultTopSeeds, Finalists: search.DefaultFinalists, MaxFinalists: 9}

// WithDefaults fills zero fields; a proxy without halving settings takes
// the grid's (DefaultHalving).
func (c StudyConfig) WithDefaults() StudyConfig {
	c.Grid = c.Grid.WithDefaults()
	if c.Proxy.Halving == (search.Halving{}) {
		c.Proxy.Halving = DefaultHalving
	}
	c.Proxy.Train.Seed = c.Seed
	c.Proxy = c.Proxy.WithDefaults()
	return c
}

// Validate reports the first setting that cannot run, in words a user
// understands. Call it after WithDefaults.
func (c StudyConfig) Validate() error {
	if err := c.Grid.Validate(); err != nil {
		return err
	}
	if c.Dimension != "" && !slices.Contains(Dimensions, c.Dimension) {
		return fmt.Errorf("dimension %q: must be one of width, depth, resolution (or empty for the compound grid)", c.Dimension)
	}
	if err := c.Base.Validate(); err != nil {
		return fmt.Errorf("base network: %w", err)
	}
	return c.Proxy.Validate()
}

// Base is the point (1, 1, 1): B0 itself.
var Base = space.Scaling{Alpha: 1, Beta: 1, Gamma: 1}

// IsBase reports whether a trial's key is the base point's: it climbs
// every rung and is a finalist whatever its rank, as the reference.
func IsBase(key string) bool { return key == Key(Base) }

// Scalings returns the points the study trains: the base (1, 1, 1) first,
// as the reference every point is compared with, then the compound grid or
// the single-dimension series (without the base, should a wide tolerance
// admit it).
func (c StudyConfig) Scalings() ([]space.Scaling, error) {
	var ps []space.Scaling
	var err error
	if c.Dimension == "" {
		ps, err = c.Grid.Points()
	} else {
		ps, err = c.Grid.Dimension(c.Dimension)
	}
	if err != nil {
		return nil, err
	}
	out := []space.Scaling{Base}
	for _, p := range ps {
		if p != Base {
			out = append(out, p)
		}
	}
	if len(out) == 1 {
		return nil, fmt.Errorf("%w: the only point is the base (1, 1, 1); raise max or lower the tolerance", ErrEmpty)
	}
	return out, nil
}

// Key names a point: "a1.20_b1.10_g1.15". Coefficients are rounded to 6
// decimals (as Config.Values makes them) and written with as many decimals
// as they have, at least 2, so that every point a grid can hold has a key
// of its own.
func Key(s space.Scaling) string {
	return "a" + coef(s.Alpha) + "_b" + coef(s.Beta) + "_g" + coef(s.Gamma)
}

func coef(v float64) string {
	t := strconv.FormatFloat(round6(v), 'f', -1, 64)
	dot := strings.IndexByte(t, '.')
	if dot < 0 {
		return t + ".00"
	}
	if d := len(t) - dot - 1; d < 2 {
		t += strings.Repeat("0", 2-d)
	}
	return t
}

// Create validates cfg and writes a grid study with every point planned as
// a pending trial. Nothing is written when cfg is invalid or the grid is
// empty.
func Create(ctx context.Context, st store.Store, name string, cfg StudyConfig) (store.Study, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return store.Study{}, err
	}
	scalings, err := cfg.Scalings()
	if err != nil {
		return store.Study{}, err
	}
	g := &Grid{cfg: cfg}
	plans := make([]store.Plan, len(scalings))
	for i, s := range scalings {
		full := g.Full(s)
		plans[i] = store.Plan{
			Key: Key(s), Blocks: space.FormatBlocks(full.Blocks), Params: full.Params(), FLOPs: full.FLOPs(),
			Grid: &store.GridPoint{Alpha: s.Alpha, Beta: s.Beta, Gamma: s.Gamma},
		}
	}
	if err := store.ValidatePlans(plans); err != nil {
		return store.Study{}, fmt.Errorf("the grid's %d points: %w", len(plans), err)
	}
	// The dataset is not loaded yet: estimate for 3 channels and 1000
	// classes, a little above what any dataset needs.
	search.Annotate(g, plans, 3, 1000)
	raw, err := json.Marshal(cfg)
	if err != nil {
		return store.Study{}, fmt.Errorf("encode grid config: %w", err)
	}
	// The study and its points are written in one transaction: a study
	// without its points is never left behind.
	return st.CreateStudy(ctx, store.Study{Name: name, Kind: store.KindGrid, Config: raw, Seed: cfg.Seed}, plans)
}

// Grid is the search.Source of a grid study: every point is planned when
// the study is created, trained at proxy scale and ranked by accuracy.
type Grid struct {
	cfg    StudyConfig
	points int // number of planned points, the budget
}

// Open returns the Grid of a stored grid study.
func Open(study store.Study) (*Grid, error) {
	if study.Kind != store.KindGrid {
		return nil, fmt.Errorf("study %d is a %s study, not a grid", study.ID, study.Kind)
	}
	// Settings a study was stored without keep the behaviour they had.
	cfg := StudyConfig{Proxy: search.LegacyProxy()}
	if err := json.Unmarshal(study.Config, &cfg); err != nil {
		return nil, fmt.Errorf("study %d: decode its config: %w", study.ID, err)
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("study %d: stored config: %w", study.ID, err)
	}
	scalings, err := cfg.Scalings()
	if err != nil {
		return nil, fmt.Errorf("study %d: stored grid: %w", study.ID, err)
	}
	return &Grid{cfg: cfg, points: len(scalings)}, nil
}

// Config returns the study's configuration.
func (g *Grid) Config() StudyConfig { return g.cfg }

// Full returns the full-size network at one point: the base scaled by the
// raw rule at the study's phi.
func (g *Grid) Full(s space.Scaling) space.Arch {
	return space.Compound(g.cfg.Base, s, g.cfg.Grid.Phi)
}

// ProxyArch returns the proxy trained for one point: the base at the proxy
// width times beta^phi (one rounding), depth alpha^phi and the proxy
// resolution times gamma^phi.
func (g *Grid) ProxyArch(s space.Scaling) space.Arch {
	depth, width, resMult := s.Multipliers(g.cfg.Grid.Phi)
	res := int(math.Round(float64(g.cfg.Proxy.Res) * resMult))
	return g.cfg.Base.Scale(g.cfg.Proxy.Width*width, depth, res)
}

// Expected implements search.Source.
func (g *Grid) Expected() int {
	h := g.cfg.Proxy.Halving
	// The base point is a finalist besides the others.
	return h.Expected(g.points) + h.TopSeeds - 1
}

// Proxy implements search.Source.
func (g *Grid) Proxy() search.Proxy { return g.cfg.Proxy }

// Fidelity implements search.Source.
func (g *Grid) Fidelity(t store.Trial) search.Fidelity { return g.cfg.Proxy.Fidelity(t.Rung) }

// Plan implements search.Source: the points are planned when the study is
// created; successive halving promotes them (the base point always climbs
// and is always a finalist, as the reference), and a run that diverged,
// at any rung, is tried once more with a derived seed, which does not
// count as a point.
func (g *Grid) Plan(_ context.Context, trials []store.Trial, n int) ([]store.Plan, []byte, error) {
	plans := g.cfg.Proxy.Halving.Next(trials, false, IsBase, true)
	return plans[:min(n, len(plans))], nil, nil
}

// Arch implements search.Source.
func (g *Grid) Arch(t store.Trial) (space.Arch, error) {
	if t.Grid == nil {
		return space.Arch{}, errors.New("trial has no grid point")
	}
	return g.ProxyArch(Scaling(t)), nil
}

// Reward implements search.Source: the best point is the most accurate.
func (g *Grid) Reward(_ store.Trial, acc float64) float64 { return acc }

// Scaling returns a grid trial's coefficients.
func Scaling(t store.Trial) space.Scaling {
	if t.Grid == nil {
		return space.Scaling{Alpha: 1, Beta: 1, Gamma: 1}
	}
	return space.Scaling{Alpha: t.Grid.Alpha, Beta: t.Grid.Beta, Gamma: t.Grid.Gamma}
}

// Best returns the winning point: among the finalists, those with every
// seed complete first, the one with the best mean accuracy over its seeds
// at the top rung (while none has finished its seeds, the best top-rung
// point so far), preferring among equals the one closest to the
// constraint's target; nil when no point has reached the top rung. The
// base point (1, 1, 1) is the reference, not a candidate.
func (g *Grid) Best(trials []store.Trial) *search.Standing {
	var best *search.Standing
	for _, st := range search.Standings(trials, g.cfg.Proxy.Halving) {
		if Scaling(st.Trial) == Base || best != nil && g.Rank(st, *best) >= 0 {
			continue
		}
		b := st
		best = &b
	}
	return best
}

// Rank orders two points' standings as Best chooses between them, the
// better first: search.Outranks, then the higher mean accuracy, then the
// one nearer the constraint's target, then search.Rank.
func (g *Grid) Rank(a, b search.Standing) int {
	if c := search.Outranks(a, b); c != 0 {
		return c
	}
	if c := cmp.Compare(b.Accuracy, a.Accuracy); c != 0 {
		return c
	}
	if c := cmp.Compare(math.Abs(Scaling(a.Trial).Constraint()-g.cfg.Grid.Target), math.Abs(Scaling(b.Trial).Constraint()-g.cfg.Grid.Target)); c != 0 {
		return c
	}
	return search.Rank(a, b)
}

// Tied returns the finalists (the base point included) that cannot be told
// apart from the winner: their mean accuracy plus or minus two standard
// errors overlaps the winner's. The winner is among them once the
// finalists are chosen; before that the list is empty.
func (g *Grid) Tied(trials []store.Trial) []search.Standing {
	best := g.Best(trials)
	if best == nil {
		return nil
	}
	lo, hi := best.Accuracy-2*best.StdErr(), best.Accuracy+2*best.StdErr()
	var out []search.Standing
	for _, st := range search.Standings(trials, g.cfg.Proxy.Halving) {
		if st.Finalist && st.Accuracy+2*st.StdErr() >= lo && st.Accuracy-2*st.StdErr() <= hi {
			out = append(out, st)
		}
	}
	return out
}
