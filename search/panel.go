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
// means with the reference says how well it ranks. Stored as a study of
// kind proxy, so it runs, stops and resumes like any study.
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
	// One fidelity: the proxy is rung 0, the reference rung 1.
	c.Proxy.Halving = Halving{Rungs: 1, Eta: DefaultEta, TopSeeds: 1, Finalists: 1}
	c.Proxy = c.Proxy.WithDefaults()
	return c
}

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
	case c.Reference.TrainSize < c.Proxy.TrainSize || c.Reference.Images() <= c.Proxy.Fidelity(0).Images():
		return fmt.Errorf("reference %d images x %d epochs is no larger than the proxy's %d x %d; the reference must train longer (--ref-train-size, --ref-epochs)",
			c.Reference.TrainSize, c.Reference.Epochs, c.Proxy.TrainSize, c.Proxy.Train.Epochs)
	}
	if _, err := space.ParseSpace(c.Space); err != nil {
		return fmt.Errorf("search space: %w", err)
	}
	p := c.Proxy
	p.TrainSize = c.Reference.TrainSize
	if err := p.Validate(); err != nil {
		return err
	}
	if c.Reference.TrainSize < p.Train.Batch {
		return fmt.Errorf("reference train size %d: fewer than one batch of %d", c.Reference.TrainSize, p.Train.Batch)
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
// run planned: rung 0 is the proxy (seeds 0..Seeds-1), rung 1 the
// reference (seeds 0..RefSeeds-1).
func CreatePanel(ctx context.Context, st store.Store, name string, cfg PanelConfig) (store.Study, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return store.Study{}, err
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
	for _, rung := range []struct{ rung, seeds int }{{0, cfg.Seeds}, {1, cfg.RefSeeds}} {
		for seed := range rung.seeds {
			for _, c := range members {
				full, err := sp.Decode(c)
				if err != nil {
					return store.Study{}, err
				}
				choices, err := json.Marshal(c)
				if err != nil {
					return store.Study{}, err
				}
				plans = append(plans, store.Plan{Key: sp.Key(c), Rung: rung.rung, Seed: seed, Choices: choices,
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
		if t, ok := runs[refRun{pl.Key, pl.Seed}]; ok && pl.Rung == 1 {
			plans[i].Copied = &store.Result{Accuracy: t.Accuracy, Reward: t.Reward, TestAccuracy: t.TestAccuracy, Seconds: t.Seconds}
			plans[i].Source = fmt.Sprintf("copied from study %d trial %d", from, t.Number)
		}
	}
	cfg.ReferenceFrom = from
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
// and returns its complete reference runs by candidate and seed.
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
			if t.Rung == 1 && t.State == store.TrialComplete {
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
func (p *Panel) Expected() int { return p.n * (p.cfg.Seeds + p.cfg.RefSeeds) }

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

// Fidelity implements Source: rung 0 is the proxy, rung 1 the reference.
func (p *Panel) Fidelity(t store.Trial) Fidelity {
	if t.Rung == 0 {
		return p.cfg.Proxy.Fidelity(0)
	}
	return p.cfg.Reference
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
// are fractions; standard deviations are over seeds (n-1).
type PanelArch struct {
	Key          string    `json:"key"`
	B0           bool      `json:"b0"`
	FLOPs        int64     `json:"flops"` // full-size multiply-adds
	Proxy        []float64 `json:"proxy"` // validation accuracy at the proxy, by seed
	ProxyMean    float64   `json:"proxy_mean"`
	ProxyStd     float64   `json:"proxy_std"`
	Ref          []float64 `json:"reference_runs"` // test accuracy at the reference, by seed
	Reference    float64   `json:"reference"`      // their mean
	ReferenceStd float64   `json:"reference_std"`
	Failed       int       `json:"failed"` // runs that failed (diverged...), left out
}

// PanelReport is what effnas bench proxy prints: how noisy the proxy is
// and how well it ranks architectures against the reference.
type PanelReport struct {
	Study     int64  `json:"study"`
	Complete  bool   `json:"complete"`
	Dataset   string `json:"dataset"`
	Proxy     string `json:"proxy"`     // "6000 images x 2 epochs"
	Reference string `json:"reference"` // "30000 images x 3 epochs"
	Seeds     int    `json:"seeds"`
	RefSeeds  int    `json:"ref_seeds"`
	// ReferenceFrom is the earlier benchmark whose reference runs this
	// one reused; 0 when it trained its own.
	ReferenceFrom int64 `json:"reference_from,omitempty"`
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
	// BelowChance counts proxy runs under twice chance (2/classes).
	BelowChance int `json:"below_twice_chance"`
	Diverged    int `json:"diverged"`
}

// Report analyses a proxy benchmark's trials. Architectures without every
// run complete are left out of the correlations.
func (p *Panel) Report(study store.Study, trials []store.Trial, classes int) *PanelReport {
	r := &PanelReport{Study: study.ID, Dataset: p.cfg.Proxy.Dataset, Seeds: p.cfg.Seeds, RefSeeds: p.cfg.RefSeeds, ReferenceFrom: p.cfg.ReferenceFrom,
		Proxy:     fmt.Sprintf("%d images x %d epochs", p.cfg.Proxy.TrainSize, p.cfg.Proxy.Train.Epochs),
		Reference: fmt.Sprintf("%d images x %d epochs", p.cfg.Reference.TrainSize, p.cfg.Reference.Epochs), Archs: []PanelArch{}}
	byKey := map[string]*PanelArch{}
	var order []string
	proxy := map[string][]float64{} // by seed, NaN where missing
	ref := map[string][]float64{}
	done := true
	b0 := ""
	if c, err := p.space.Encode(space.B0()); err == nil {
		b0 = p.space.Key(c)
	}
	for _, t := range trials {
		a, ok := byKey[t.Key]
		if !ok {
			a = &PanelArch{Key: t.Key, FLOPs: t.FLOPs, B0: t.Key == b0}
			byKey[t.Key] = a
			order = append(order, t.Key)
			proxy[t.Key] = nanSlice(p.cfg.Seeds)
			ref[t.Key] = nanSlice(p.cfg.RefSeeds)
		}
		switch t.State {
		case store.TrialComplete:
			if t.Rung == 0 && t.Seed < p.cfg.Seeds {
				proxy[t.Key][t.Seed] = t.Accuracy
				if classes > 0 && t.Accuracy < 2/float64(classes) {
					r.BelowChance++
				}
			} else if t.Rung == 1 && t.Seed < p.cfg.RefSeeds {
				ref[t.Key][t.Seed] = t.TestAccuracy
			}
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
	var full []string // architectures with every run complete
	var sds, rsds []float64
	for _, k := range order {
		a := byKey[k]
		a.Proxy, a.Ref = finite(proxy[k]), finite(ref[k])
		a.ProxyMean, a.ProxyStd = MeanStd(a.Proxy)
		a.Reference, a.ReferenceStd = MeanStd(a.Ref)
		r.Archs = append(r.Archs, *a)
		if len(a.Proxy) == p.cfg.Seeds && len(a.Ref) == p.cfg.RefSeeds {
			full = append(full, k)
			sds = append(sds, a.ProxyStd)
			rsds = append(rsds, a.ReferenceStd)
		}
	}
	r.SeedStd, _ = MeanStd(sds)
	r.ReferenceStd, _ = MeanStd(rsds)
	col := func(m map[string][]float64, seed int) []float64 {
		out := make([]float64, len(full))
		for i, k := range full {
			out[i] = m[k][seed]
		}
		return out
	}
	r.TauSeeds, r.SpearmanSeeds = pairwise(p.cfg.Seeds, func(s int) []float64 { return col(proxy, s) })
	r.TauReferenceSeeds, r.SpearmanReferenceSeeds = pairwise(p.cfg.RefSeeds, func(s int) []float64 { return col(ref, s) })
	pm, rm := make([]float64, len(full)), make([]float64, len(full))
	for i, k := range full {
		pm[i], rm[i] = byKey[k].ProxyMean, byKey[k].Reference
	}
	r.TauReference, r.SpearmanReference = KendallTauB(pm, rm), Spearman(pm, rm)
	r.Noise = 2 * math.Sqrt2 * r.SeedStd
	r.NoiseMean = 2 * math.Sqrt(2/float64(p.cfg.Seeds)) * r.SeedStd
	r.Verdict = r.verdict(len(full))
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
	}
	ceiling := fmt.Sprintf("the reference's %d seeds agree to %.2f", r.RefSeeds, r.TauReferenceSeeds)
	if r.RefSeeds < 2 {
		ceiling = "with one reference seed, how far the reference agrees with itself is not measured"
	}
	return fmt.Sprintf("differences under %.1f points between two single runs, or under %.1f between means over %d seeds, are noise at this proxy; "+
		"it ranks architectures %s against the reference (Kendall tau %.2f; %s)",
		100*r.Noise, 100*r.NoiseMean, r.Seeds, quality, r.TauReference, ceiling)
}
