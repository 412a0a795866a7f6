package search

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/effnas/effnas/space"
	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/trainer"
	"github.com/effnas/effnas/trainer/dataset"
	"golang.org/x/sync/errgroup"
)

// Proxy kinds of a proxy benchmark (PanelConfig.ProxyKind): what ranks
// the panel against the reference.
const (
	// ProxyTrain trains every member at the proxy under each seed.
	ProxyTrain = "train"
	// ProxySupernet trains one weight-sharing supernet per seed; a
	// member's score under seed s is its validation accuracy on supernet
	// s, its batch norms recalibrated (trainer.Supernet.Score).
	ProxySupernet = "supernet"
	// ProxySynFlow and ProxyGradNorm score a member at initialisation
	// from one batch (trainer.ZeroCost), with seed s's weights and batch.
	ProxySynFlow  = trainer.SynFlow
	ProxyGradNorm = trainer.GradNorm
	// ProxyParams and ProxyFLOPs are the full-size member's parameter
	// count and multiply-adds: the same under every seed.
	ProxyParams = "params"
	ProxyFLOPs  = "flops"
)

// ProxyKinds lists the proxy kinds a benchmark accepts, the default first.
var ProxyKinds = []string{ProxyTrain, ProxySupernet, ProxySynFlow, ProxyGradNorm, ProxyParams, ProxyFLOPs}

// ScoreUnit says what a proxy kind's values are: the unit a report gives
// them in instead of calling every score an accuracy.
func ScoreUnit(kind string) string {
	switch kind {
	case ProxySupernet:
		return "validation accuracy on the supernet"
	case ProxySynFlow:
		return "synflow at initialisation (sum of |theta x dL/dtheta| at |theta|)"
	case ProxyGradNorm:
		return "gradient norm at initialisation (sum of each tensor's L2 norm)"
	case ProxyParams:
		return "parameters (full size)"
	case ProxyFLOPs:
		return "multiply-adds (full size)"
	}
	return "validation accuracy"
}

// scored reports whether a proxy kind scores its members instead of
// training them.
func scored(kind string) bool { return kind != ProxyTrain }

// deterministic reports whether a kind's score is the same under every
// seed.
func deterministic(kind string) bool { return kind == ProxyParams || kind == ProxyFLOPs }

// validateKind checks the proxy kind and the settings that go with it.
func (c PanelConfig) validateKind() error {
	if !slices.Contains(ProxyKinds, c.ProxyKind) {
		return fmt.Errorf("proxy kind %q is unknown; use one of %s", c.ProxyKind, strings.Join(ProxyKinds, ", "))
	}
	if scored(c.ProxyKind) && c.Proxy.Halving.Rungs > 1 {
		return fmt.Errorf("proxy kind %s with %d rungs: a %s score is not trained at rungs; use one rung (rungs are for the proxy kind train)",
			c.ProxyKind, c.Proxy.Halving.Rungs, c.ProxyKind)
	}
	if c.ProxyKind != ProxySupernet {
		if c.Supernet != nil || c.SupernetWarmup != 0 {
			return fmt.Errorf("supernet settings with proxy kind %s: they apply to proxy kind supernet only", c.ProxyKind)
		}
		return nil
	}
	switch sn := c.Supernet; {
	case sn.Steps < 1 || sn.Steps > 10_000_000:
		return fmt.Errorf("supernet steps %d: must be 1 to 10,000,000 training steps", sn.Steps)
	case sn.Calib < 1 || sn.Calib > 10_000:
		return fmt.Errorf("supernet calibration batches (K) %d: must be 1 to 10,000", sn.Calib)
	case sn.ScoreImages < 1:
		return fmt.Errorf("supernet score images (V) %d: must be a positive number of validation images", sn.ScoreImages)
	case math.IsNaN(c.SupernetWarmup) || c.SupernetWarmup > 1:
		return fmt.Errorf("supernet warm-up %v: must be a fraction of its steps up to 1 (e.g. 0.25), or negative for none", c.SupernetWarmup)
	}
	return nil
}

// PanelScoring is how a scored benchmark's scores were computed (every
// proxy kind but train), stored with it when it is created.
type PanelScoring struct {
	Threads int           `json:"threads"` // kernel goroutines each score (and each supernet) ran on
	Workers int           `json:"workers"` // scores (supernets) computed at once
	Seeds   []SeedScoring `json:"seeds"`   // one per seed, seed 0 first
	// WallSeconds is the wall time of the whole scoring, the data's
	// loading included.
	WallSeconds float64 `json:"wall_seconds"`
	// ScoreImages is V as used: the validation images every candidate
	// was scored on (supernet only; at most the validation set).
	ScoreImages int `json:"score_images,omitempty"`
}

// SeedScoring is what scoring the panel under one seed cost.
type SeedScoring struct {
	Seed int `json:"seed"`
	// TrainSeconds is the wall time of the supernet's training (supernet
	// only).
	TrainSeconds float64 `json:"train_seconds,omitempty"`
	// ScoreSeconds is the wall time spent scoring the panel's members,
	// summed over them.
	ScoreSeconds float64 `json:"score_seconds"`
	Scored       int     `json:"scored"`           // members scored
	Failed       int     `json:"failed,omitempty"` // members whose score failed
}

// ScoreOptions says how a scored benchmark's scores are computed.
type ScoreOptions struct {
	// Workers is how many scores (supernets, for kind supernet) are
	// computed at once; default the number of CPUs.
	Workers int
	// Threads is the kernel goroutines each uses; default
	// max(1, CPUs/Workers).
	Threads int
	// Data keeps the datasets; pass the run's (Options.Data) so that the
	// data is loaded once. Default: a cache of its own.
	Data *DataCache
	// Log, when not nil, is told what the scoring does, a line at a time.
	Log func(format string, args ...any)
}

// panelScore is one member's score under one seed, or why it has none.
type panelScore struct {
	score   float64
	seconds float64
	err     error
}

// scorePanel computes the score of every member under every seed for a
// scored proxy kind. A member whose score fails has its error; only a
// cancelled ctx, data that cannot be loaded or a supernet that cannot be
// built or trained fail the whole scoring. skip lists the runs not to
// score (the members over the study's memory budget).
func scorePanel(ctx context.Context, cfg PanelConfig, sp *space.Space, members []space.Candidate, skip map[refRun]bool, opts ScoreOptions) (map[refRun]panelScore, *PanelScoring, error) {
	start := time.Now()
	ncpu := runtime.NumCPU()
	opts.Workers = cmp.Or(max(opts.Workers, 0), ncpu)
	opts.Threads = cmp.Or(max(opts.Threads, 0), max(1, ncpu/opts.Workers))
	if opts.Data == nil {
		opts.Data = NewDataCache()
	}
	logf := opts.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	fulls := make([]space.Arch, len(members))
	keys := make([]string, len(members))
	for i, c := range members {
		full, err := sp.Decode(c)
		if err != nil {
			return nil, nil, err
		}
		fulls[i], keys[i] = full, sp.Key(c)
	}
	scoring := &PanelScoring{Threads: opts.Threads, Workers: opts.Workers, Seeds: make([]SeedScoring, cfg.Seeds)}
	for s := range scoring.Seeds {
		scoring.Seeds[s].Seed = s
	}
	out := map[refRun]panelScore{}
	if deterministic(cfg.ProxyKind) {
		for s := range cfg.Seeds {
			for i, full := range fulls {
				t0 := time.Now()
				v := float64(full.Params())
				if cfg.ProxyKind == ProxyFLOPs {
					v = float64(full.FLOPs())
				}
				sec := time.Since(t0).Seconds()
				out[refRun{keys[i], s}] = panelScore{score: v, seconds: sec}
				scoring.Seeds[s].ScoreSeconds += sec
				scoring.Seeds[s].Scored++
			}
		}
		scoring.WallSeconds = time.Since(start).Seconds()
		return out, scoring, nil
	}
	// The proxy's data as a proxy run trains on it: the first TrainSize
	// images of the training set loaded at the reference's size.
	p := cfg.Proxy
	loadAt := p
	loadAt.TrainSize = cfg.Reference.TrainSize
	data, err := opts.Data.load(ctx, p.Dataset, loadAt.data(p.Res))
	if err != nil {
		return nil, nil, err
	}
	if p.TrainSize > 0 && p.TrainSize < data.Train.N {
		data = subset(data, p.TrainSize)
	}
	arch := func(i int) space.Arch {
		a := p.Arch(fulls[i])
		a.InChannels, a.Classes = data.Channels, data.Classes
		return a
	}
	var mu sync.Mutex
	record := func(s int, key string, r panelScore) {
		mu.Lock()
		defer mu.Unlock()
		out[refRun{key, s}] = r
		if r.err != nil {
			scoring.Seeds[s].Failed++
			return
		}
		scoring.Seeds[s].ScoreSeconds += r.seconds
		scoring.Seeds[s].Scored++
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.Workers)
	if cfg.ProxyKind == ProxySupernet {
		scoring.ScoreImages = min(cfg.Supernet.ScoreImages, data.Val.N)
		logf("training %d supernets of %d steps (%d at once), then scoring %d architectures on each", cfg.Seeds, cfg.Supernet.Steps, min(opts.Workers, cfg.Seeds), len(members))
		for s := range cfg.Seeds {
			g.Go(func() error {
				return scoreOnSupernet(gctx, cfg, sp, data, s, opts.Threads, members, skip, scoring, record, logf)
			})
		}
	} else {
		logf("scoring %d architectures under %d seeds with %s at initialisation (%d at once)", len(members), cfg.Seeds, cfg.ProxyKind, opts.Workers)
		for s := range cfg.Seeds {
			for i := range members {
				if skip[refRun{keys[i], s}] {
					continue
				}
				g.Go(func() error {
					r := zeroCost(gctx, cfg, arch(i), keys[i], s, data, opts.Threads)
					if gctx.Err() != nil {
						return gctx.Err()
					}
					record(s, keys[i], r)
					return nil
				})
			}
		}
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	scoring.WallSeconds = time.Since(start).Seconds()
	return out, scoring, nil
}

// zeroCost scores one member under seed s at initialisation: the weights
// and batch of the seed its rung-0 training would have.
func zeroCost(ctx context.Context, cfg PanelConfig, arch space.Arch, key string, s int, data *dataset.Data, threads int) (r panelScore) {
	defer func() {
		if p := recover(); p != nil {
			r = panelScore{err: fmt.Errorf("panic while scoring: %v\n%s", p, debug.Stack())}
		}
	}()
	tc := cfg.Proxy.Train
	tc.Threads = threads
	tc.Seed = cfg.Proxy.TrainSeed(cfg.Seed, key, 0, s)
	t0 := time.Now()
	v, err := trainer.ZeroCost(ctx, cfg.ProxyKind, arch, data, tc)
	return panelScore{score: v, seconds: time.Since(t0).Seconds(), err: err}
}

// supernetKey is the key a benchmark's supernets' seeds are derived from.
const supernetKey = "supernet"

// scoreOnSupernet trains supernet s and scores every member on it. A
// supernet that cannot be built or trained fails the scoring; a member
// that cannot be scored has its error.
func scoreOnSupernet(ctx context.Context, cfg PanelConfig, sp *space.Space, data *dataset.Data, s, threads int, members []space.Candidate,
	skip map[refRun]bool, scoring *PanelScoring, record func(int, string, panelScore), logf func(string, ...any)) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("supernet of seed %d: panic: %v\n%s", s, p, debug.Stack())
		}
	}()
	seed := cfg.Proxy.TrainSeed(cfg.Seed, supernetKey, 0, s)
	sc := *cfg.Supernet
	sc.Train = cfg.Proxy.Train
	sc.Train.Threads, sc.Train.Seed = threads, seed
	t0 := time.Now()
	sn, err := NewSupernet(sp, cfg.Proxy, data, sc, seed)
	if err != nil {
		return fmt.Errorf("supernet of seed %d: %w", s, err)
	}
	if err := TrainSupernet(ctx, sn, sp, cfg.Proxy, seed, cfg.SupernetWarmup, nil); err != nil {
		return fmt.Errorf("train the supernet of seed %d: %w", s, err)
	}
	train := time.Since(t0).Seconds()
	logf("supernet of seed %d: %d steps in %.0fs", s, cfg.Supernet.Steps, train)
	for _, c := range members {
		key := sp.Key(c)
		if skip[refRun{key, s}] {
			continue
		}
		t1 := time.Now()
		a, err := SupernetMember(sp, cfg.Proxy, data, c)
		v := 0.0
		if err == nil {
			v, err = sn.Score(ctx, a)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		record(s, key, panelScore{score: v, seconds: time.Since(t1).Seconds(), err: err})
	}
	// Only this goroutine writes its seed's training time.
	scoring.Seeds[s].TrainSeconds = train
	return nil
}

// ScoringReport is how a scored benchmark's scores were computed and what
// they cost (every proxy kind but train).
type ScoringReport struct {
	Threads int           `json:"threads"` // kernel goroutines per score
	Workers int           `json:"workers"` // scores (supernets) computed at once
	Seeds   []SeedScoring `json:"seeds"`
	// Seconds is the time spent scoring (supernets' training included),
	// summed over seeds; WallSeconds the whole scoring's wall time, with
	// Workers seeds or scores at once and the data's loading.
	Seconds     float64 `json:"seconds"`
	WallSeconds float64 `json:"wall_seconds"`
	// CandidatesPerCoreSecond is the candidates scored a second by one
	// core: scores / (scoring seconds x threads), supernets' training
	// left out.
	CandidatesPerCoreSecond float64 `json:"candidates_per_second_per_core"`
	// Deterministic: every seed gives the same score (params, flops).
	Deterministic bool `json:"deterministic"`
	// The supernet's: Steps trained, K (Calib) training batches each
	// candidate's batch norms are recalibrated over, V (ScoreImages)
	// validation images every candidate is scored on, and BinomialSD,
	// sqrt(p(1-p)/V) at the mean score p: the sampling noise of one score.
	Steps       int     `json:"steps,omitempty"`
	Warmup      float64 `json:"warmup,omitempty"` // the warm-ups' fraction of the steps (negative: none)
	Calib       int     `json:"calib,omitempty"`
	ScoreImages int     `json:"score_images,omitempty"`
	BinomialSD  float64 `json:"binomial_sd,omitempty"`
}

// scoringReport summarises the stored scoring; scores are every complete
// score, for the supernet's binomial sd.
func (c PanelConfig) scoringReport(scores []float64) *ScoringReport {
	sc := c.Scoring
	if !scored(c.ProxyKind) || sc == nil {
		return nil
	}
	r := &ScoringReport{Threads: sc.Threads, Workers: sc.Workers, Seeds: sc.Seeds, WallSeconds: sc.WallSeconds, Deterministic: deterministic(c.ProxyKind)}
	var scoreSec float64
	n := 0
	for _, s := range sc.Seeds {
		r.Seconds += s.TrainSeconds + s.ScoreSeconds
		scoreSec += s.ScoreSeconds
		n += s.Scored
	}
	if scoreSec > 0 && sc.Threads > 0 {
		r.CandidatesPerCoreSecond = float64(n) / (scoreSec * float64(sc.Threads))
	}
	if c.ProxyKind == ProxySupernet && c.Supernet != nil {
		r.Steps, r.Warmup, r.Calib, r.ScoreImages = c.Supernet.Steps, c.SupernetWarmup, c.Supernet.Calib, sc.ScoreImages
		if m, _ := MeanStd(scores); sc.ScoreImages > 0 && len(scores) > 0 {
			r.BinomialSD = math.Sqrt(m * (1 - m) / float64(sc.ScoreImages))
		}
	}
	return r
}

// describe says in words what a scored kind measures, for the report's
// proxy: "gradnorm at initialisation on one batch of 64 images".
func (c PanelConfig) describe() string {
	switch c.ProxyKind {
	case ProxySupernet:
		sn := c.Supernet
		if sn == nil {
			sn = &trainer.SupernetConfig{}
		}
		warm := "no warm-up"
		if c.SupernetWarmup > 0 {
			warm = fmt.Sprintf("warm-ups over the first %g of them", c.SupernetWarmup)
		}
		return fmt.Sprintf("supernet of %d steps (%s) on %d images, scored after %d calibration batches (K) on %d validation images (V)",
			sn.Steps, warm, c.Proxy.TrainSize, sn.Calib, sn.ScoreImages)
	case ProxySynFlow, ProxyGradNorm:
		return fmt.Sprintf("%s at initialisation on one batch of %d images", c.ProxyKind, c.Proxy.Train.Batch)
	case ProxyParams:
		return "params: the full-size parameter count"
	case ProxyFLOPs:
		return "flops: the full-size multiply-adds"
	}
	top := c.Proxy.Fidelity(c.Proxy.Halving.Top())
	return fmt.Sprintf("%d images x %d epochs", top.TrainSize, top.Epochs)
}

// applyScores writes the scores into the plans of the proxy's rung (0):
// a score as a complete run (its Accuracy the score, its Seconds the time
// it took), a failed score as a run rejected with its error; runs over the
// memory budget of a kind that runs no network (params, flops, supernet:
// the candidate itself is never built) are scored all the same.
func applyScores(cfg PanelConfig, plans []store.Plan, scores map[refRun]panelScore) error {
	for i, pl := range plans {
		if pl.Rung != 0 {
			continue
		}
		r, ok := scores[refRun{pl.Key, pl.Seed}]
		if !ok {
			if pl.Rejected == "" {
				return fmt.Errorf("%s: no score for %s under seed %d", cfg.ProxyKind, pl.Key, pl.Seed)
			}
			continue // over the study's memory budget: recorded as rejected
		}
		plans[i].Rejected = ""
		if r.err != nil {
			// A diverged score says so ("training diverged"), as a
			// diverged training does.
			plans[i].Rejected = fmt.Sprintf("%s score failed: %v", cfg.ProxyKind, r.err)
			continue
		}
		plans[i].Copied = &store.Result{Accuracy: r.score, Reward: r.score, Seconds: r.seconds}
		plans[i].Source = "scored: " + cfg.ProxyKind
	}
	return nil
}
