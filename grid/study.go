package grid

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"

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

// WithDefaults fills zero fields.
func (c StudyConfig) WithDefaults() StudyConfig {
	c.Grid = c.Grid.WithDefaults()
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

// Scalings returns the points the study trains: the base (1, 1, 1) first,
// as the reference every point is compared with, then the compound grid or
// the single-dimension series.
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
	return append([]space.Scaling{{Alpha: 1, Beta: 1, Gamma: 1}}, ps...), nil
}

// Key names a point: "a1.20_b1.10_g1.15".
func Key(s space.Scaling) string {
	return fmt.Sprintf("a%.2f_b%.2f_g%.2f", s.Alpha, s.Beta, s.Gamma)
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
	raw, err := json.Marshal(cfg)
	if err != nil {
		return store.Study{}, fmt.Errorf("encode grid config: %w", err)
	}
	study, err := st.CreateStudy(ctx, store.Study{Name: name, Kind: store.KindGrid, Config: raw, Seed: cfg.Seed})
	if err != nil {
		return store.Study{}, err
	}
	if _, err := st.PlanTrials(ctx, study.ID, plans, nil); err != nil {
		return store.Study{}, fmt.Errorf("plan the %d grid points of study %d: %w", len(plans), study.ID, err)
	}
	return study, nil
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
	var cfg StudyConfig
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

// Budget implements search.Source: every point.
func (g *Grid) Budget() int { return g.points }

// Proxy implements search.Source.
func (g *Grid) Proxy() search.Proxy { return g.cfg.Proxy }

// Propose implements search.Source: a grid plans everything up front.
func (g *Grid) Propose(context.Context, []store.Trial, int) ([]store.Plan, []byte, error) {
	return nil, nil, nil
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

// Best returns the most accurate complete point, preferring among equals
// the one closest to the constraint's target, or nil when none is
// complete. The base point (1, 1, 1) of a compound grid is a reference,
// not a candidate.
func (g *Grid) Best(trials []store.Trial) *store.Trial {
	var best *store.Trial
	for i := range trials {
		t := &trials[i]
		s := Scaling(*t)
		if t.State != store.TrialComplete || s == (space.Scaling{Alpha: 1, Beta: 1, Gamma: 1}) {
			continue
		}
		if best == nil || t.Accuracy > best.Accuracy ||
			t.Accuracy == best.Accuracy && math.Abs(s.Constraint()-g.cfg.Grid.Target) < math.Abs(Scaling(*best).Constraint()-g.cfg.Grid.Target) {
			best = t
		}
	}
	if best == nil {
		return nil
	}
	b := *best
	return &b
}
