package search

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/effnas/effnas/space"
	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/trainer"
)

// Defaults of PanelConfig.
const (
	DefaultPanel     = 12
	DefaultSeeds     = 3
	DefaultRefSize   = 30000
	DefaultRefEpochs = 3
	DefaultRefSeeds  = 2
)

// PanelConfig is a proxy benchmark (effnas bench proxy): how far can a
// proxy's ranking of architectures be trusted on this data? A panel of
// random members of the space, plus B0, is trained at the proxy under
// several seeds and at a longer reference recipe under a few; the seeds'
// spread says how noisy the proxy is, and the rank correlation of its
// means with the reference says how well it ranks. With several rungs
// (Proxy.Halving.Rungs, Eta), every architecture is trained under every
// seed at every rung of that successive-halving schedule, as a search
// would train a candidate that climbs: the fidelity curve. The proxy's
// rungs are trials at rungs 0 to Rungs-1, the reference at rung Rungs.
// Stored as a study of kind proxy, so it runs, stops and resumes like any
// study.
//
// A proxy kind other than train (ProxyKind) ranks the panel by a score
// instead of a training: each member's score under each seed is computed
// when the benchmark is created (CreatePanelWith) and stored as its run
// at rung 0, complete, its Accuracy the score and its Seconds the time it
// took, so that the report's figures (seed sd, tau between seeds and
// against the reference) are computed as for a training; only the
// reference is left to train, or reused.
type PanelConfig struct {
	Proxy     Proxy           `json:"proxy"`     // the proxy: data, width, resolution, recipe, train size and epochs
	Panel     int             `json:"panel"`     // random members of the space, besides B0; default 12
	Seeds     int             `json:"seeds"`     // seeds of each architecture at the proxy; default 3
	Reference Fidelity        `json:"reference"` // the reference recipe's images and epochs; default 30000 x 3
	RefSeeds  int             `json:"ref_seeds"` // seeds of each architecture at the reference; default 2
	Seed      uint64          `json:"seed"`      // draws the panel and the training seeds; default 0
	Space     json.RawMessage `json:"space"`     // the space the panel is drawn from; default the built-in space
	// ReferenceFrom is the earlier benchmark whose reference runs were
	// reused (the same data, recipe, panel and reference); 0 when none.
	ReferenceFrom int64 `json:"reference_from,omitempty"`
	// ProxyKind is what ranks the panel, one of ProxyKinds; default
	// "train" (a benchmark stored before kinds is one).
	ProxyKind string `json:"proxy_kind,omitempty"`
	// Supernet is how kind supernet's supernets train and score (its
	// Train is the proxy's); nil for every other kind. Zero fields take
	// trainer's defaults (3000 steps, K = 4, V = 500).
	Supernet *trainer.SupernetConfig `json:"supernet,omitempty"`
	// SupernetWarmup is the fraction of kind supernet's steps over which
	// TuNAS's warm-ups fade out (WarmupPaths), as search --screen trains
	// it; default DefaultWarmup (0.25), negative for none.
	SupernetWarmup float64 `json:"supernet_warmup,omitempty"`
	// Scoring is what scoring the panel cost, written when a benchmark of
	// a kind other than train is created.
	Scoring *PanelScoring `json:"scoring,omitempty"`
}

// WithDefaults returns c with zero fields set to their defaults.
func (c PanelConfig) WithDefaults() PanelConfig {
	c.Panel = cmp.Or(c.Panel, DefaultPanel)
	c.Seeds = cmp.Or(c.Seeds, DefaultSeeds)
	c.Reference.TrainSize = cmp.Or(c.Reference.TrainSize, DefaultRefSize)
	c.Reference.Epochs = cmp.Or(c.Reference.Epochs, DefaultRefEpochs)
	c.RefSeeds = cmp.Or(c.RefSeeds, DefaultRefSeeds)
	if len(c.Space) == 0 {
		c.Space = space.DefaultSpace().JSON()
	}
	c.Proxy.Train.Seed = c.Seed
	// One fidelity unless asked: the proxy is rung 0, the reference rung 1.
	h := c.Proxy.Halving
	c.Proxy.Halving = Halving{Rungs: cmp.Or(h.Rungs, 1), Eta: cmp.Or(h.Eta, DefaultEta), TopSeeds: 1, Finalists: 1}
	c.Proxy = c.Proxy.WithDefaults()
	c.ProxyKind = cmp.Or(c.ProxyKind, ProxyTrain)
	if c.ProxyKind == ProxySupernet {
		sn := trainer.SupernetConfig{}
		if c.Supernet != nil {
			sn = *c.Supernet
		}
		sn.Steps = cmp.Or(sn.Steps, trainer.DefaultSupernetSteps)
		sn.Calib = cmp.Or(sn.Calib, trainer.DefaultScoreCalib)
		sn.ScoreImages = cmp.Or(sn.ScoreImages, trainer.DefaultScoreImages)
		c.Supernet = &sn
		c.SupernetWarmup = cmp.Or(c.SupernetWarmup, DefaultWarmup)
	}
	return c
}

// RefRung is the rung of the reference runs: the one above the proxy's.
func (c PanelConfig) RefRung() int { return c.Proxy.Halving.Rungs }

// Validate reports the first setting that cannot run. Call it after
// WithDefaults.
func (c PanelConfig) Validate() error {
	switch {
	case c.Panel < 1 || c.Panel > 1000:
		return fmt.Errorf("panel %d: must be 1 to 1000 random architectures (B0 is added to them)", c.Panel)
	case c.Seeds < 1 || c.Seeds > 100:
		return fmt.Errorf("seeds %d: must be 1 to 100 (a spread over seeds needs at least 2)", c.Seeds)
	case c.RefSeeds < 1 || c.RefSeeds > 100:
		return fmt.Errorf("reference seeds %d: must be 1 to 100", c.RefSeeds)
	case c.Reference.Epochs < 1:
		return fmt.Errorf("reference epochs %d: must be at least 1", c.Reference.Epochs)
	case c.Proxy.TrainSize < 1:
		return fmt.Errorf("proxy train size %d: want a number of images", c.Proxy.TrainSize)
	}
	if err := c.validateKind(); err != nil {
		return err
	}
	// The proxy's own rungs are checked as search checks them; a one-rung
	// proxy as a benchmark stored before rungs was (its data loaded at
	// the reference's size), so that it still opens.
	p := c.Proxy
	if p.Halving.Rungs == 1 {
		p.TrainSize = c.Reference.TrainSize
	}
	if err := p.Validate(); err != nil {
		return err
	}
	top := c.Proxy.Fidelity(c.Proxy.Halving.Top())
	if c.Reference.TrainSize < top.TrainSize || c.Reference.Images() <= top.Images() {
		return fmt.Errorf("reference %d images x %d epochs is no larger than the proxy's %d x %d; the reference must train longer (--ref-train-size, --ref-epochs)",
			c.Reference.TrainSize, c.Reference.Epochs, top.TrainSize, top.Epochs)
	}
	if _, err := space.ParseSpace(c.Space); err != nil {
		return fmt.Errorf("search space: %w", err)
	}
	// The data is loaded at the reference's size; the proxy's rungs
	// train on its first images.
	data := c.Proxy.data(c.Proxy.Res)
	data.TrainSize = c.Reference.TrainSize
	if err := data.Validate(); err != nil {
		return err
	}
	if c.Reference.TrainSize < c.Proxy.Train.Batch {
		return fmt.Errorf("reference train size %d: fewer than one batch of %d", c.Reference.TrainSize, c.Proxy.Train.Batch)
	}
	return nil
}

// Members returns the panel: B0 (encoded in the space, when it is a
// member) first, then Panel random members drawn with Seed, without
// repeats.
func (c PanelConfig) Members(sp *space.Space) ([]space.Candidate, error) {
	var out []space.Candidate
	seen := map[string]bool{}
	if b0, err := sp.Encode(space.B0()); err == nil {
		out = append(out, b0)
		seen[sp.Key(b0)] = true
	}
	r := rand.New(rand.NewPCG(c.Seed, 0x9a9e1))
	for tries := 0; len(out) < c.Panel+1 && tries < 100*(c.Panel+1); tries++ {
		cand := sp.Sample(r)
		if k := sp.Key(cand); !seen[k] {
			seen[k] = true
			out = append(out, cand)
		}
	}
	if len(out) < c.Panel+1 {
		return nil, fmt.Errorf("the space has fewer than %d distinct members", c.Panel+1)
	}
	return out, nil
}

// CreatePanel validates cfg and writes a proxy benchmark study with every
// run planned: rungs 0 to Rungs-1 are the proxy's (seeds 0..Seeds-1 at
// each), rung Rungs the reference (seeds 0..RefSeeds-1). A new benchmark
// needs at least 2 seeds on each side: a spread, and an agreement between
// seeds, need two. A proxy kind other than train is scored as
// CreatePanelWith does, with default options.
func CreatePanel(ctx context.Context, st store.Store, name string, cfg PanelConfig) (store.Study, error) {
	return CreatePanelWith(ctx, st, name, cfg, ScoreOptions{})
}

// CreatePanelWith is CreatePanel with the options that score a proxy
// kind other than train: the panel is scored under every seed first
// (opts.Workers at once; supernets trained), and the study written with
// the scores as its complete rung-0 runs (a member whose score failed as
// a failed run). Nothing is written when the scoring fails or ctx is
// cancelled.
func CreatePanelWith(ctx context.Context, st store.Store, name string, cfg PanelConfig, opts ScoreOptions) (store.Study, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return store.Study{}, err
	}
	switch {
	case cfg.Seeds < 2:
		return store.Study{}, fmt.Errorf("seeds %d: a proxy benchmark needs at least 2 seeds per architecture (their spread is the proxy's noise)", cfg.Seeds)
	case cfg.RefSeeds < 2:
		return store.Study{}, fmt.Errorf("reference seeds %d: a proxy benchmark needs at least 2 (how far the reference agrees with itself is the ceiling of any proxy)", cfg.RefSeeds)
	}
	sp, err := space.ParseSpace(cfg.Space)
	if err != nil {
		return store.Study{}, err
	}
	cfg.Space = sp.JSON()
	members, err := cfg.Members(sp)
	if err != nil {
		return store.Study{}, err
	}
	var plans []store.Plan
	for rung := range cfg.RefRung() + 1 {
		seeds := cfg.Seeds
		if rung == cfg.RefRung() {
			seeds = cfg.RefSeeds
		}
		for seed := range seeds {
			for _, c := range members {
				full, err := sp.Decode(c)
				if err != nil {
					return store.Study{}, err
				}
				choices, err := json.Marshal(c)
				if err != nil {
					return store.Study{}, err
				}
				plans = append(plans, store.Plan{Key: sp.Key(c), Rung: rung, Seed: seed, Choices: choices,
					Blocks: space.FormatBlocks(full.Blocks), Params: full.Params(), FLOPs: full.FLOPs()})
			}
		}
	}
	p := &Panel{cfg: cfg, space: sp, n: len(members)}
	Annotate(p, plans, 3, 1000)
	// The reference runs are most of the cost. An earlier benchmark of
	// the same data, recipe, panel and reference trained them already:
	// they are reused, so several proxies can be tried against one
	// reference.
	from, runs, err := reusableReference(ctx, st, cfg, sp.Hash())
	if err != nil {
		return store.Study{}, err
	}
	for i, pl := range plans {
		if t, ok := runs[refRun{pl.Key, pl.Seed}]; ok && pl.Rung == cfg.RefRung() {
			plans[i].Copied = &store.Result{Accuracy: t.Accuracy, Reward: t.Reward, TestAccuracy: t.TestAccuracy, Seconds: t.Seconds}
			plans[i].Source = fmt.Sprintf("copied from study %d trial %d", from, t.Number)
		}
	}
	cfg.ReferenceFrom = from
	if scored(cfg.ProxyKind) {
		// A score that builds the candidate (at initialisation) needs
		// the memory a training does: one over the study's budget is
		// left rejected.
		skip := map[refRun]bool{}
		for _, pl := range plans {
			if pl.Rung == 0 && pl.Rejected != "" && (cfg.ProxyKind == ProxyGradNorm || cfg.ProxyKind == ProxySynFlow) {
				skip[refRun{pl.Key, pl.Seed}] = true
			}
		}
		scores, scoring, err := scorePanel(ctx, cfg, sp, members, skip, opts)
		if err != nil {
			return store.Study{}, fmt.Errorf("score the panel with %s (nothing was written): %w", cfg.ProxyKind, err)
		}
		if err := applyScores(cfg, plans, scores); err != nil {
			return store.Study{}, err
		}
		cfg.Scoring = scoring
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return store.Study{}, fmt.Errorf("encode proxy benchmark config: %w", err)
	}
	return st.CreateStudy(ctx, store.Study{Name: name, Kind: store.KindProxy, Config: raw, Seed: cfg.Seed, SpaceHash: sp.Hash()}, plans)
}

type refRun struct {
	key  string
	seed int
}

// reusableReference finds the newest earlier proxy benchmark in st whose
// reference runs are the ones cfg would train (same data and split, same
// width and resolution, same recipe, panel seed, space and reference),
// and returns its complete reference runs by candidate and seed. The
// proxy's own settings (its images, epochs and rungs) may differ.
func reusableReference(ctx context.Context, st store.Store, cfg PanelConfig, spaceHash string) (int64, map[refRun]store.Trial, error) {
	studies, err := st.Studies(ctx)
	if err != nil {
		return 0, nil, err
	}
	same := func(o PanelConfig) bool {
		a, b := o.Proxy, cfg.Proxy
		a.Train.Epochs, b.Train.Epochs = 0, 0
		a.Train.Threads, b.Train.Threads = 0, 0
		return a.Dataset == b.Dataset && a.Width == b.Width && a.Res == b.Res && a.ValSize == b.ValSize && a.TestSize == b.TestSize &&
			a.Train == b.Train && a.SeedScheme == b.SeedScheme && o.Reference == cfg.Reference && o.Seed == cfg.Seed
	}
	for i := len(studies) - 1; i >= 0; i-- {
		s := studies[i]
		// The space is compared by its hash: PostgreSQL keeps the config
		// as JSONB, which does not keep the bytes.
		if s.Kind != store.KindProxy || s.SpaceHash != spaceHash {
			continue
		}
		old, err := OpenPanel(s)
		if err != nil || !same(old.cfg) {
			continue
		}
		trials, err := st.Trials(ctx, s.ID)
		if err != nil {
			return 0, nil, err
		}
		runs := map[refRun]store.Trial{}
		for _, t := range trials {
			if t.Rung == old.cfg.RefRung() && t.State == store.TrialComplete {
				runs[refRun{t.Key, t.Seed}] = t
			}
		}
		if len(runs) > 0 {
			return s.ID, runs, nil
		}
	}
	return 0, nil, nil
}

// Panel is the Source of a proxy benchmark study: every run is planned up
// front; the runner trains them.
type Panel struct {
	cfg   PanelConfig
	space *space.Space
	n     int
}

// OpenPanel returns the Panel of a stored proxy benchmark study.
func OpenPanel(study store.Study) (*Panel, error) {
	if study.Kind != store.KindProxy {
		return nil, fmt.Errorf("study %d is a %s study, not a proxy benchmark", study.ID, study.Kind)
	}
	// A benchmark stored before seed schemes keeps its own.
	cfg := PanelConfig{Proxy: Proxy{SeedScheme: SeedsSharedAcrossRungs}}
	if err := json.Unmarshal(study.Config, &cfg); err != nil {
		return nil, fmt.Errorf("study %d: decode its config: %w", study.ID, err)
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("study %d: stored config: %w", study.ID, err)
	}
	sp, err := space.ParseSpace(cfg.Space)
	if err != nil {
		return nil, err
	}
	return &Panel{cfg: cfg, space: sp, n: cfg.Panel + 1}, nil
}

// Config returns the benchmark's configuration.
func (p *Panel) Config() PanelConfig { return p.cfg }

// Expected implements Source.
func (p *Panel) Expected() int { return p.n * (p.cfg.Seeds*p.cfg.Proxy.Halving.Rungs + p.cfg.RefSeeds) }

// Plan implements Source: everything is planned when the study is created.
func (p *Panel) Plan(context.Context, []store.Trial, int) ([]store.Plan, []byte, error) {
	return nil, nil, nil
}

// Arch implements Source.
func (p *Panel) Arch(t store.Trial) (space.Arch, error) {
	c, err := Choices(t)
	if err != nil {
		return space.Arch{}, err
	}
	full, err := p.space.Decode(c)
	if err != nil {
		return space.Arch{}, err
	}
	return p.cfg.Proxy.Arch(full), nil
}

// Fidelity implements Source: the proxy's rungs, then the reference.
func (p *Panel) Fidelity(t store.Trial) Fidelity {
	if t.Rung < p.cfg.RefRung() {
		return p.cfg.Proxy.Fidelity(t.Rung)
	}
	return p.cfg.Reference
}

// refSeedRung is the rung the reference runs' training seeds are derived
// from, whatever rung they are stored at (one above the proxy's top): so
// benchmarks of the same reference and different schedules train the
// same reference runs, and reuse them.
const refSeedRung = -1

// SeedRung tells the runner the rung a trial's training seed is derived
// from: the proxy's rungs their own, the reference refSeedRung.
func (p *Panel) SeedRung(t store.Trial) int {
	if t.Rung >= p.cfg.RefRung() {
		return refSeedRung
	}
	return t.Rung
}

// Reward implements Source: accuracy alone.
func (p *Panel) Reward(_ store.Trial, acc float64) float64 { return acc }

// Proxy implements Source: the proxy, with the reference's training set
// loaded (a proxy run trains on its first images).
func (p *Panel) Proxy() Proxy {
	px := p.cfg.Proxy
	px.TrainSize = p.cfg.Reference.TrainSize
	return px
}

// PanelArch is one architecture of a proxy benchmark report. Accuracies
// are fractions; standard deviations are over seeds (n-1). Proxy, its
// mean and sd are at the top rung; Rungs has every rung's.
type PanelArch struct {
	Key    string `json:"key"`
	B0     bool   `json:"b0"`
	FLOPs  int64  `json:"flops"`  // full-size multiply-adds
	Params int64  `json:"params"` // full-size parameters
	// Proxy is the validation accuracy at the proxy's top rung by seed,
	// or for a scored kind the score (PanelReport.ScoreUnit).
	Proxy        []float64      `json:"proxy"`
	ProxyMean    float64        `json:"proxy_mean"`
	ProxyStd     float64        `json:"proxy_std"`
	Rungs        []PanelArchRun `json:"rungs"`          // the proxy at each rung, rung 0 first
	Ref          []float64      `json:"reference_runs"` // test accuracy at the reference, by seed
	Reference    float64        `json:"reference"`      // their mean
	ReferenceStd float64        `json:"reference_std"`
	Failed       int            `json:"failed"` // runs that failed (diverged...), left out
}

// PanelArchRun is one architecture's validation accuracy at one rung (a
// scored kind's score at rung 0).
type PanelArchRun struct {
	Rung int     `json:"rung"`
	Runs int     `json:"runs"` // complete runs (seeds)
	Mean float64 `json:"mean"` // 0 without runs
	Std  float64 `json:"std"`
}

// PanelRung is how one rung of the proxy's schedule ranks the panel: its
// noise, its agreement with itself and with the reference.
type PanelRung struct {
	Rung      int `json:"rung"`
	TrainSize int `json:"train_size"` // 0 for a scored kind: nothing is trained at the rung
	Epochs    int `json:"epochs"`
	// Archs counts the architectures with every run at this rung and at
	// the reference: the ones the figures are over.
	Archs             int     `json:"archs"`
	SeedStd           float64 `json:"seed_std"`
	TauSeeds          float64 `json:"tau_seeds"`
	SpearmanSeeds     float64 `json:"spearman_seeds"`
	TauReference      float64 `json:"tau_reference"`
	SpearmanReference float64 `json:"spearman_reference"`
	BelowChance       int     `json:"below_twice_chance"`
}

// PanelReport is what effnas bench proxy prints: how noisy the proxy is
// and how well it ranks architectures against the reference. The
// top-level figures describe the proxy's top rung; Rungs has every rung's.
type PanelReport struct {
	Study    int64  `json:"study"`
	Complete bool   `json:"complete"`
	Dataset  string `json:"dataset"`
	// ProxyKind is what ranks the panel (ProxyKinds): "train", or a
	// score whose unit is ScoreUnit. The report's proxy figures (proxy
	// values, seed_std, noise) are in that unit; its taus are rank
	// correlations, whatever the unit.
	ProxyKind string `json:"proxy_kind"`
	ScoreUnit string `json:"score_unit"`
	// Proxy says what the proxy is: the top rung ("6000 images x 2
	// epochs"), or a score ("gradnorm at initialisation on one batch of
	// 64 images").
	Proxy     string  `json:"proxy"`
	Reference string  `json:"reference"` // "30000 images x 3 epochs"
	Seeds     int     `json:"seeds"`
	RefSeeds  int     `json:"ref_seeds"`
	Eta       float64 `json:"eta"`
	// ReferenceFrom is the earlier benchmark whose reference runs this
	// one reused; 0 when it trained its own.
	ReferenceFrom int64 `json:"reference_from,omitempty"`
	// Rungs is the fidelity curve: every rung of the proxy's schedule,
	// rung 0 first (one entry with one rung).
	Rungs []PanelRung `json:"rungs"`
	// SeedStd is the mean over the architectures of the proxy's standard
	// deviation over seeds; ReferenceStd the same at the reference.
	SeedStd      float64 `json:"seed_std"`
	ReferenceStd float64 `json:"reference_std"`
	// TauSeeds is the mean pairwise Kendall tau-b between the proxy's
	// seeds (how well the proxy agrees with itself); SpearmanSeeds the
	// same with Spearman's rho. TauReferenceSeeds is that between the
	// reference's seeds: the ceiling any proxy can reach.
	TauSeeds               float64 `json:"tau_seeds"`
	SpearmanSeeds          float64 `json:"spearman_seeds"`
	TauReferenceSeeds      float64 `json:"tau_reference_seeds"`
	SpearmanReferenceSeeds float64 `json:"spearman_reference_seeds"`
	// TauReference and SpearmanReference rank the proxy means against the
	// reference means.
	TauReference      float64 `json:"tau_reference"`
	SpearmanReference float64 `json:"spearman_reference"`
	// Noise is the difference, in accuracy, under which two single proxy
	// runs cannot be told apart (2 standard deviations of a difference,
	// 2·√2·SeedStd); NoiseMean the same for means over Seeds seeds.
	Noise     float64     `json:"noise"`
	NoiseMean float64     `json:"noise_mean"`
	Verdict   string      `json:"verdict"`
	Archs     []PanelArch `json:"archs"`
	// BelowChance counts the top rung's proxy runs under twice chance
	// (2/classes); 0 for a scored kind.
	BelowChance int `json:"below_twice_chance"`
	Diverged    int `json:"diverged"`
	// Scoring is what a scored kind's scores cost, and the supernet's
	// K, V and binomial sd; nil for train.
	Scoring *ScoringReport `json:"scoring,omitempty"`
}

// Report analyses a proxy benchmark's trials. At each rung, architectures
// without every run complete there and at the reference are left out of
// that rung's figures.
func (p *Panel) Report(study store.Study, trials []store.Trial, classes int) *PanelReport {
	cfg := p.cfg
	nr := cfg.RefRung()
	r := &PanelReport{Study: study.ID, Dataset: cfg.Proxy.Dataset, Seeds: cfg.Seeds, RefSeeds: cfg.RefSeeds, ReferenceFrom: cfg.ReferenceFrom,
		Eta: cfg.Proxy.Halving.Eta, ProxyKind: cfg.ProxyKind, ScoreUnit: ScoreUnit(cfg.ProxyKind),
		Proxy:     cfg.describe(),
		Reference: fmt.Sprintf("%d images x %d epochs", cfg.Reference.TrainSize, cfg.Reference.Epochs), Archs: []PanelArch{}, Rungs: []PanelRung{}}
	b0 := ""
	if c, err := p.space.Encode(space.B0()); err == nil {
		b0 = p.space.Key(c)
	}
	// acc[key][rung][seed]: validation accuracy at the proxy's rungs,
	// test accuracy at the reference; NaN where missing.
	acc := map[string][][]float64{}
	byKey := map[string]*PanelArch{}
	var order []string
	done := true
	below := make([]int, nr)
	for _, t := range effective(trials) {
		a, ok := byKey[t.Key]
		if !ok {
			a = &PanelArch{Key: t.Key, FLOPs: t.FLOPs, Params: t.Params, B0: t.Key == b0}
			byKey[t.Key] = a
			order = append(order, t.Key)
			acc[t.Key] = make([][]float64, nr+1)
			for k := range nr + 1 {
				n := cfg.Seeds
				if k == nr {
					n = cfg.RefSeeds
				}
				acc[t.Key][k] = nanSlice(n)
			}
		}
		switch t.State {
		case store.TrialComplete:
			if t.Rung > nr || t.Seed >= len(acc[t.Key][t.Rung]) {
				continue
			}
			v := t.Accuracy
			if t.Rung == nr {
				v = t.TestAccuracy
			} else if classes > 0 && t.Accuracy < 2/float64(classes) && !scored(cfg.ProxyKind) {
				below[t.Rung]++
			}
			acc[t.Key][t.Rung][t.Seed] = v
		case store.TrialFailed:
			a.Failed++
			if diverged(t) {
				r.Diverged++
			}
		default:
			done = false
		}
	}
	r.Complete = done
	for _, k := range order {
		a := byKey[k]
		for rung := range nr {
			runs := finite(acc[k][rung])
			m, sd := MeanStd(runs)
			a.Rungs = append(a.Rungs, PanelArchRun{Rung: rung, Runs: len(runs), Mean: m, Std: sd})
		}
		a.Proxy, a.Ref = finite(acc[k][nr-1]), finite(acc[k][nr])
		a.ProxyMean, a.ProxyStd = MeanStd(a.Proxy)
		a.Reference, a.ReferenceStd = MeanStd(a.Ref)
		r.Archs = append(r.Archs, *a)
	}
	col := func(keys []string, rung, seed int) []float64 {
		out := make([]float64, len(keys))
		for i, k := range keys {
			out[i] = acc[k][rung][seed]
		}
		return out
	}
	for rung := range nr {
		var full []string // every run at this rung and at the reference
		var sds, rsds []float64
		for _, k := range order {
			if a := byKey[k]; a.Rungs[rung].Runs == cfg.Seeds && len(a.Ref) == cfg.RefSeeds {
				full = append(full, k)
				sds = append(sds, a.Rungs[rung].Std)
				rsds = append(rsds, a.ReferenceStd)
			}
		}
		f := cfg.Proxy.Fidelity(rung)
		if scored(cfg.ProxyKind) {
			f = Fidelity{}
		}
		pr := PanelRung{Rung: rung, TrainSize: f.TrainSize, Epochs: f.Epochs, Archs: len(full), BelowChance: below[rung]}
		pr.SeedStd, _ = MeanStd(sds)
		pr.TauSeeds, pr.SpearmanSeeds = pairwise(cfg.Seeds, func(s int) []float64 { return col(full, rung, s) })
		pm, rm := make([]float64, len(full)), make([]float64, len(full))
		for i, k := range full {
			pm[i], rm[i] = byKey[k].Rungs[rung].Mean, byKey[k].Reference
		}
		pr.TauReference, pr.SpearmanReference = KendallTauB(pm, rm), Spearman(pm, rm)
		r.Rungs = append(r.Rungs, pr)
		if rung == nr-1 {
			// The reference's own figures, over the architectures the
			// top rung's are: its spread and how far its seeds agree,
			// the ceiling of any proxy.
			r.ReferenceStd, _ = MeanStd(rsds)
			r.TauReferenceSeeds, r.SpearmanReferenceSeeds = pairwise(cfg.RefSeeds, func(s int) []float64 { return col(full, nr, s) })
		}
	}
	t := r.Rungs[nr-1]
	r.SeedStd, r.TauSeeds, r.SpearmanSeeds, r.TauReference, r.SpearmanReference, r.BelowChance =
		t.SeedStd, t.TauSeeds, t.SpearmanSeeds, t.TauReference, t.SpearmanReference, t.BelowChance
	r.Noise = 2 * math.Sqrt2 * r.SeedStd
	r.NoiseMean = 2 * math.Sqrt(2/float64(cfg.Seeds)) * r.SeedStd
	var scores []float64
	for _, a := range r.Archs {
		scores = append(scores, a.Proxy...)
	}
	r.Scoring = cfg.scoringReport(scores)
	r.Verdict = r.verdict(t.Archs)
	return r
}

func (r *PanelReport) verdict(n int) string {
	if n < 3 {
		return fmt.Sprintf("too few architectures have every run (%d): nothing can be said yet", n)
	}
	quality := "poorly"
	switch ceiling := max(r.TauReferenceSeeds, 0.01); {
	case r.TauReference >= 0.9*ceiling && r.TauReference >= 0.6:
		quality = "well"
	case r.TauReference >= 0.4:
		quality = "fairly"
	case r.TauReference <= -0.4:
		quality = "in reverse"
	}
	ceiling := fmt.Sprintf("the reference's %d seeds agree to %.2f", r.RefSeeds, r.TauReferenceSeeds)
	if r.RefSeeds < 2 {
		ceiling = "with one reference seed, how far the reference agrees with itself is not measured"
	}
	if scored(r.ProxyKind) {
		seeds := fmt.Sprintf("its %d seeds agree to %.2f", r.Seeds, r.TauSeeds)
		if deterministic(r.ProxyKind) {
			seeds = "it is the same under every seed"
		}
		return fmt.Sprintf("the %s score ranks architectures %s against the reference (Kendall tau %.2f; %s); %s",
			r.ProxyKind, quality, r.TauReference, ceiling, seeds)
	}
	return fmt.Sprintf("differences under %.1f points between two single runs, or under %.1f between means over %d seeds, are noise at this proxy; "+
		"it ranks architectures %s against the reference (Kendall tau %.2f; %s)",
		100*r.Noise, 100*r.NoiseMean, r.Seeds, quality, r.TauReference, ceiling)
}
