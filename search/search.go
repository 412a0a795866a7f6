package search

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/effnas/effnas/controller"
	"github.com/effnas/effnas/space"
	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/trainer"
)

// Defaults of Config.
const (
	DefaultController = "evolution"
	DefaultTrials     = 60
)

// Config is a search study's whole configuration; it is stored with the
// study as JSON, so a resumed study runs exactly as it started. Zero fields
// take the defaults in each comment (WithDefaults).
type Config struct {
	Controller       string                  `json:"controller"`        // random, evolution or reinforce; default evolution
	ControllerConfig controller.Config       `json:"controller_config"` // strategy settings
	Trials           int                     `json:"trials"`            // candidates started at rung 0; default 60
	Seed             uint64                  `json:"seed"`              // root of every random choice; default 0
	Space            json.RawMessage         `json:"space"`             // the search space's canonical JSON; default the built-in space
	Reward           controller.RewardConfig `json:"reward"`            // ACC * (FLOPS/T)^w on the full-size candidate
	Proxy            Proxy                   `json:"proxy"`             // how candidates are trained
	MaxAttempts      int                     `json:"max_attempts"`      // tries of a trial that crashes; default 3
	// Screen, when set, scores Screen.N candidates on a weight-sharing
	// supernet first; its best Trials are rung 0. Default none.
	Screen *Screen `json:"screen,omitempty"`
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	c.Controller = cmp.Or(c.Controller, DefaultController)
	c.Trials = cmp.Or(c.Trials, DefaultTrials)
	// Aging evolution starts with Population random trials; a small budget
	// gets a small population, or evolution would be random search.
	if c.ControllerConfig.Evolution.Population == 0 {
		pop := min(max(c.Trials/3, 4), controller.DefaultPopulation)
		c.ControllerConfig.Evolution.Population = pop
		if c.ControllerConfig.Evolution.Sample == 0 {
			c.ControllerConfig.Evolution.Sample = min(max(pop*3/5, 2), controller.DefaultSample)
		}
	}
	c.ControllerConfig = c.ControllerConfig.WithDefaults()
	if len(c.Space) == 0 {
		c.Space = space.DefaultSpace().JSON()
	}
	c.Reward = c.Reward.WithDefaults()
	c.Proxy.Train.Seed = c.Seed
	c.Proxy = c.Proxy.WithDefaults()
	c.MaxAttempts = cmp.Or(c.MaxAttempts, store.DefaultMaxAttempts)
	if c.Screen != nil {
		if c.Screen.N == 0 {
			c.Screen = nil
		} else {
			sc := c.Screen.WithDefaults()
			c.Screen = &sc
		}
	}
	return c
}

// Validate reports the first setting that cannot run, in words a user
// understands. Call it after WithDefaults.
func (c Config) Validate() error {
	if !slices.Contains(controller.Names, c.Controller) {
		return fmt.Errorf("controller %q: unknown; use one of random, evolution, reinforce", c.Controller)
	}
	if err := c.ControllerConfig.Validate(); err != nil {
		return fmt.Errorf("controller settings: %w", err)
	}
	if c.Trials < 1 || c.Trials > 1_000_000 {
		return fmt.Errorf("trials %d: must be 1 to 1000000", c.Trials)
	}
	if _, err := space.ParseSpace(c.Space); err != nil {
		return fmt.Errorf("search space: %w", err)
	}
	if err := c.Reward.Validate(); err != nil {
		return fmt.Errorf("reward: %w", err)
	}
	if c.Screen != nil {
		if err := c.Screen.Validate(c.Trials); err != nil {
			return err
		}
		if k, b, n := c.Screen.Supernet.Calib, c.Proxy.Train.Batch, c.Proxy.TrainSize; n > 0 && k*b > n {
			return fmt.Errorf("score calibration of %d batches of %d images needs %d training images, but the proxy has %d; lower --score-calib or --batch, or raise --train-size", k, b, k*b, n)
		}
	}
	if err := c.Proxy.Validate(); err != nil {
		return err
	}
	if c.MaxAttempts < 1 || c.MaxAttempts > 100 {
		return fmt.Errorf("max attempts %d: must be 1 to 100", c.MaxAttempts)
	}
	return nil
}

// Create validates cfg, fills its defaults and writes a new search study.
// Nothing is written when cfg is invalid.
func Create(ctx context.Context, st store.Store, name string, cfg Config) (store.Study, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return store.Study{}, err
	}
	sp, err := space.ParseSpace(cfg.Space)
	if err != nil {
		return store.Study{}, err
	}
	cfg.Space = sp.JSON()
	raw, err := json.Marshal(cfg)
	if err != nil {
		return store.Study{}, fmt.Errorf("encode search config: %w", err)
	}
	return st.CreateStudy(ctx, store.Study{
		Name: name, Kind: store.KindSearch, Config: raw, Seed: cfg.Seed,
		SpaceHash: sp.Hash(), MaxAttempts: cfg.MaxAttempts,
	}, nil)
}

// decodeConfig reads a stored config. Settings a study was stored without
// (it predates them) keep the behaviour they had then, not today's
// defaults: a resumed study keeps its recipe.
func decodeConfig(study store.Study) (Config, error) {
	cfg := Config{Proxy: LegacyProxy()}
	if err := json.Unmarshal(study.Config, &cfg); err != nil {
		return cfg, fmt.Errorf("study %d: decode its config: %w", study.ID, err)
	}
	return cfg.WithDefaults(), nil
}

// LegacyProxy holds, in the fields added since effnas first stored
// studies, what a study stored without them did; decoding a stored config
// onto it keeps an old study's recipe.
func LegacyProxy() Proxy {
	return Proxy{Halving: LegacyHalving, Train: trainer.Legacy(), SeedScheme: SeedsSharedAcrossRungs}
}

// Searcher is the Source of a search study: a controller proposes
// candidates from the space, each trained at proxy scale and rewarded by
// its validation accuracy and its full-size multiply-adds.
type Searcher struct {
	cfg   Config
	space *space.Space
	ctl   controller.Controller
	dims  []controller.Dim
	// promoted are the plans of rung 0 when the study screens: its best
	// screened candidates, best first (set by the screening).
	promoted []store.Plan
}

// Open returns the Searcher of a stored search study, with its controller's
// saved state restored.
func Open(ctx context.Context, st store.Store, study store.Study) (*Searcher, error) {
	if study.Kind != store.KindSearch {
		return nil, fmt.Errorf("study %d is a %s study, not a search", study.ID, study.Kind)
	}
	cfg, err := decodeConfig(study)
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("study %d: stored config: %w", study.ID, err)
	}
	sp, err := space.ParseSpace(cfg.Space)
	if err != nil {
		return nil, fmt.Errorf("study %d: stored search space: %w", study.ID, err)
	}
	if study.SpaceHash != "" && sp.Hash() != study.SpaceHash {
		return nil, fmt.Errorf("study %d: its search space hashes to %s but the study recorded %s; the stored config was altered", study.ID, sp.Hash(), study.SpaceHash)
	}
	var dims []controller.Dim
	for _, d := range sp.Dims() {
		dims = append(dims, controller.Dim{Name: d.Name, Options: len(d.Options)})
	}
	ctl, err := controller.New(cfg.Controller, dims, cfg.ControllerConfig, cfg.Seed)
	if err != nil {
		return nil, err
	}
	state, err := st.LoadControllerState(ctx, study.ID)
	switch {
	case err == nil:
		if err := ctl.UnmarshalState(state); err != nil {
			return nil, fmt.Errorf("study %d: restore the %s controller: %w", study.ID, cfg.Controller, err)
		}
	case !errors.Is(err, store.ErrNotFound):
		return nil, err
	}
	return &Searcher{cfg: cfg, space: sp, ctl: ctl, dims: dims}, nil
}

// Config returns the study's configuration with defaults.
func (s *Searcher) Config() Config { return s.cfg }

// Space returns the study's search space.
func (s *Searcher) Space() *space.Space { return s.space }

// Expected implements Source.
func (s *Searcher) Expected() int { return s.cfg.Proxy.Halving.Expected(s.cfg.Trials) }

// Fidelity implements Source.
func (s *Searcher) Fidelity(t store.Trial) Fidelity { return s.cfg.Proxy.Fidelity(t.Rung) }

// Proxy implements Source.
func (s *Searcher) Proxy() Proxy { return s.cfg.Proxy }

// Reward implements Source: ACC * (FLOPS/T)^w with FLOPS of the full-size
// candidate, the network that would be deployed.
func (s *Searcher) Reward(t store.Trial, acc float64) float64 {
	return s.cfg.Reward.Reward(acc, t.FLOPs)
}

// Choices decodes a trial's candidate.
func Choices(t store.Trial) (space.Candidate, error) {
	var c space.Candidate
	if err := json.Unmarshal(t.Choices, &c); err != nil {
		return nil, fmt.Errorf("trial %d: decode its choices %s: %w", t.Number, t.Choices, err)
	}
	return c, nil
}

// FullArch returns the full-size network of a search trial.
func (s *Searcher) FullArch(t store.Trial) (space.Arch, error) {
	c, err := Choices(t)
	if err != nil {
		return space.Arch{}, err
	}
	return s.space.Decode(c)
}

// Arch implements Source. A candidate over the reward's hard FLOPs bound
// is rejected here, before any training, and recorded as failed.
func (s *Searcher) Arch(t store.Trial) (space.Arch, error) {
	if err := s.cfg.Reward.Admit(t.FLOPs); err != nil {
		return space.Arch{}, fmt.Errorf("%s: %w", rejectedBeforeTraining, err)
	}
	full, err := s.FullArch(t)
	if err != nil {
		return space.Arch{}, err
	}
	return s.cfg.Proxy.Arch(full), nil
}

// Plan implements Source: successive halving's promotions and finalists
// first, then new candidates from the controller while fewer than Trials
// have been started at rung 0.
func (s *Searcher) Plan(ctx context.Context, trials []store.Trial, n int) ([]store.Plan, []byte, error) {
	started := map[string]bool{}
	for _, t := range trials {
		if t.Rung == 0 {
			started[t.Key] = true
		}
	}
	room := s.cfg.Trials - len(started)
	plans := s.cfg.Proxy.Halving.Next(trials, room > 0, noPins, false)
	if len(plans) >= n || room <= 0 {
		return plans[:min(n, len(plans))], nil, nil
	}
	if s.cfg.Screen != nil {
		// Rung 0 is the best screened candidates, in order.
		if s.promoted == nil {
			return nil, nil, errors.New("the study screens candidates, but its screening has not run in this process")
		}
		for _, p := range s.promoted {
			if len(plans) >= n || room <= 0 {
				break
			}
			if !started[p.Key] {
				started[p.Key] = true
				plans = append(plans, p)
				room--
			}
		}
		return plans, nil, nil
	}
	more, state, err := s.propose(ctx, trials, min(n-len(plans), room))
	return append(plans, more...), state, err
}

func noPins(string) bool { return false }

// propose asks the controller for n new candidates. It hands the
// controller the whole history of rung 0, where every candidate is
// measured alike, so a resumed study proposes what an uninterrupted one
// would. A candidate that decodes to a network already in the study (two
// choice vectors can build the same network) is not trained again: it is
// passed back to the controller as seen and another is asked for.
func (s *Searcher) propose(ctx context.Context, trials []store.Trial, n int) ([]store.Plan, []byte, error) {
	var history []controller.Observation
	var pending [][]int
	keys := map[string]bool{}
	for _, t := range trials {
		if t.Rung != 0 || t.Seed != 0 {
			continue
		}
		keys[t.Key] = true
		c, err := Choices(t)
		if err != nil {
			return nil, nil, err
		}
		switch t.State {
		case store.TrialComplete:
			history = append(history, controller.Observation{ID: int64(t.Number), Choices: c, Reward: t.Reward})
		case store.TrialFailed:
			history = append(history, controller.Observation{ID: int64(t.Number), Choices: c, Failed: true})
		default:
			pending = append(pending, c)
		}
	}
	var plans []store.Plan
	for round := 0; len(plans) < n && round < 50; round++ {
		cands, err := s.ctl.Propose(history, pending, n-len(plans))
		if err != nil {
			return nil, nil, fmt.Errorf("%s controller: %w", s.cfg.Controller, err)
		}
		if len(cands) == 0 {
			break // the space is exhausted
		}
		for _, c := range cands {
			pending = append(pending, c)
			arch, err := s.space.Decode(c)
			if err != nil {
				return nil, nil, fmt.Errorf("decode proposal %v: %w", c, err)
			}
			key := s.space.Key(c)
			if keys[key] {
				continue
			}
			keys[key] = true
			choices, err := json.Marshal(c)
			if err != nil {
				return nil, nil, err
			}
			plans = append(plans, store.Plan{
				Key: key, Choices: choices, Blocks: space.FormatBlocks(arch.Blocks),
				Params: arch.Params(), FLOPs: arch.FLOPs(),
			})
		}
	}
	state, err := s.ctl.MarshalState()
	if err != nil {
		return nil, nil, fmt.Errorf("save the %s controller's state: %w", s.cfg.Controller, err)
	}
	return plans, state, nil
}
