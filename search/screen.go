package search

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/effnas/effnas/controller"
	"github.com/effnas/effnas/space"
	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/trainer"
	"github.com/effnas/effnas/trainer/dataset"
	"golang.org/x/sync/errgroup"
)

// Defaults of Screen.
const (
	DefaultCheckpointEvery = 500
	// screenChunk is how many candidates the controller proposes, and
	// the store records, at a time.
	screenChunk = 32
)

// Screen is a search's one-shot screening: before successive halving, a
// weight-sharing supernet over the space (trainer.Supernet) is trained at
// the proxy's width and resolution on the proxy's training set, and the
// controller searches on N candidates' scores on it (accuracy on the
// same validation images, turned into the search's reward); the best
// Trials of them are rung 0 of successive halving. Stored in the study's
// config.
type Screen struct {
	// N is the number of candidates scored on the supernet.
	N int `json:"n"`
	// Supernet is the supernet's budget (Steps), K (Calib) and V
	// (ScoreImages); its recipe is the proxy's (Train is not read).
	Supernet trainer.SupernetConfig `json:"supernet"`
	// CheckpointEvery is how many supernet steps go between checkpoints
	// in the store; default 500. A process killed loses at most that.
	CheckpointEvery int `json:"checkpoint_every"`
	// Warmup is the fraction of the supernet's steps over which TuNAS's
	// filter and op warm-ups fade out (WarmupPaths); default 0.25,
	// negative for none.
	Warmup float64 `json:"warmup"`
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Screen) WithDefaults() Screen {
	c.Supernet = c.Supernet.WithDefaults()
	c.Supernet.Train = trainer.Config{} // the proxy's recipe trains it
	c.CheckpointEvery = cmp.Or(c.CheckpointEvery, DefaultCheckpointEvery)
	c.Warmup = cmp.Or(c.Warmup, DefaultWarmup)
	return c
}

// Validate reports the first setting that cannot run, given the search's
// trials.
func (c Screen) Validate(trials int) error {
	switch {
	case c.N < 0:
		return fmt.Errorf("screen %d: must be 0 (no screening) or a number of candidates", c.N)
	case c.N < trials:
		return fmt.Errorf("screen %d is smaller than trials %d: screening sends its best %d candidates to rung 0, so it must score at least as many; raise --screen or lower --trials", c.N, trials, trials)
	case c.N > 1_000_000:
		return fmt.Errorf("screen %d: at most 1000000 candidates", c.N)
	case c.CheckpointEvery < 1:
		return fmt.Errorf("supernet checkpoint interval %d: must be at least 1 step", c.CheckpointEvery)
	case math.IsNaN(c.Warmup) || c.Warmup > 1:
		return fmt.Errorf("supernet warm-up %v: must be a fraction of its steps up to 1 (e.g. 0.25), or negative for none", c.Warmup)
	}
	s := c.Supernet
	s.Train = trainer.Config{}.WithDefaults()
	return s.Validate()
}

// supernetMeta is what a study's supernet checkpoint says it was trained
// on; a checkpoint whose meta differs from the study's is refused.
type supernetMeta struct {
	SpaceHash string                 `json:"space_hash"`
	Proxy     json.RawMessage        `json:"proxy"`
	Supernet  trainer.SupernetConfig `json:"supernet"`
	Warmup    float64                `json:"warmup"`
	Seed      uint64                 `json:"seed"`
	// ScoreSeconds is the wall time spent scoring candidates, summed over
	// resumes; ScoreCores the cores it used (workers x threads, the last
	// run's).
	ScoreSeconds float64 `json:"score_seconds"`
	ScoreCores   int     `json:"score_cores,omitempty"`
}

// supernetSeed is the seed of a study's supernet.
func supernetSeed(study uint64) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "supernet/%d", study)
	return h.Sum64()
}

// meta returns the study's supernet meta.
func (s *Searcher) meta() supernetMeta {
	p, _ := json.Marshal(s.cfg.Proxy)
	return supernetMeta{SpaceHash: s.space.Hash(), Proxy: p, Supernet: s.cfg.Screen.Supernet, Warmup: s.cfg.Screen.Warmup, Seed: supernetSeed(s.cfg.Seed)}
}

// checkMeta refuses a checkpoint of another space, proxy or supernet.
func (s *Searcher) checkMeta(study int64, raw []byte) (supernetMeta, error) {
	want := s.meta()
	if len(raw) == 0 {
		return want, nil
	}
	var got supernetMeta
	if err := json.Unmarshal(raw, &got); err != nil {
		return want, fmt.Errorf("study %d: its supernet checkpoint's description is unreadable: %w", study, err)
	}
	gs, _ := json.Marshal(got.Supernet)
	ws, _ := json.Marshal(want.Supernet)
	switch {
	case got.SpaceHash != want.SpaceHash:
		return want, fmt.Errorf("study %d: its supernet checkpoint was trained on another search space (%.12s, the study's is %.12s); it cannot be resumed from", study, got.SpaceHash, want.SpaceHash)
	case !jsonEqual(got.Proxy, want.Proxy):
		return want, fmt.Errorf("study %d: its supernet checkpoint was trained at another proxy (%s; the study's is %s); it cannot be resumed from", study, got.Proxy, want.Proxy)
	case !bytes.Equal(gs, ws) || got.Seed != want.Seed || got.Warmup != want.Warmup:
		return want, fmt.Errorf("study %d: its supernet checkpoint was trained with other supernet settings (%s, seed %d; the study's are %s, seed %d)", study, gs, got.Seed, ws, want.Seed)
	}
	want.ScoreSeconds = got.ScoreSeconds
	return want, nil
}

// jsonEqual compares two JSON documents by value (PostgreSQL does not keep
// a document's bytes).
func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}

// ScreenEvents, when the run's Events implement it, hears the screening.
type ScreenEvents interface {
	// SupernetStart is called when a process starts training the
	// supernet, from step from (0, or a checkpoint's) of total.
	SupernetStart(from, total int)
	// SupernetStep is called after supernet steps (every 50th, and the
	// last) with the steps done and the budget.
	SupernetStep(done, total int)
	// ScreenProgress is called after every chunk of candidates scored,
	// with the count scored and the best score so far.
	ScreenProgress(done, total int, best float64)
}

// screen runs the study's screening, the parts not yet done: the
// supernet's training (from its last checkpoint), the scoring of N
// candidates (after those already recorded) and their promotion. It
// leaves s.promoted, the plans of rung 0.
func (s *Searcher) screen(ctx context.Context, r *runner, data *dataset.Data) error {
	sc := *s.cfg.Screen
	var n int
	if err := r.call(ctx, "count screened candidates", func(ctx context.Context) (err error) {
		n, err = r.st.CountScreened(ctx, r.study.ID)
		return err
	}); err != nil {
		return err
	}
	ev, _ := r.opts.Events.(ScreenEvents)
	if n < sc.N {
		sn, meta, ck, err := s.trainSupernet(ctx, r, data, ev, true)
		if err != nil {
			return err
		}
		// Keep the claim while scoring too, so that the scoring time can
		// be saved with the checkpoint (when another process trained
		// the supernet, this one holds no claim and the time is not
		// saved).
		_, stop := s.keepClaim(ctx, r)
		t0 := time.Now()
		err = s.scoreCandidates(ctx, r, data, sn, ck.Weights, ck.Step, ev)
		meta.ScoreSeconds += time.Since(t0).Seconds()
		meta.ScoreCores = r.opts.Workers * r.opts.Threads
		stop()
		raw, _ := json.Marshal(meta)
		ck.Meta = raw
		// Save the scoring time even when interrupted; a resumed run
		// claims the trained supernet first (nobody holds it after a
		// recovery).
		sctx := context.WithoutCancel(ctx)
		serr := r.call(sctx, "save the supernet's scoring time", func(ctx context.Context) error {
			got, _, err := r.st.ClaimSupernet(ctx, r.study.ID, r.opts.Worker, r.opts.Lease)
			if err != nil {
				return err
			}
			if got.Holder != r.opts.Worker {
				return nil // another process holds it: its time is not saved
			}
			return r.st.SaveSupernet(ctx, r.opts.Worker, ck, r.opts.Lease)
		})
		if serr != nil && err == nil && !errors.Is(serr, store.ErrLeaseLost) {
			err = serr
		}
		if err != nil {
			return err
		}
	}
	return s.promote(ctx, r)
}

// errClaimLost: another process took the supernet's training over.
var errClaimLost = errors.New("the supernet's claim was lost: another process took its training over")

// trainSupernet claims the study's supernet and trains it to its budget
// from its last checkpoint, saving a checkpoint every CheckpointEvery
// steps. With wait it waits while another live process holds the claim
// (and when it loses the claim to one), until the training is done;
// without, it returns a nil supernet at once when another holds it. It
// returns the trained supernet and its last checkpoint (Weights
// included).
func (s *Searcher) trainSupernet(ctx context.Context, r *runner, data *dataset.Data, ev ScreenEvents, wait bool) (*trainer.Supernet, supernetMeta, store.SupernetCheckpoint, error) {
	for {
		sn, meta, ck, err := s.trainSupernetOnce(ctx, r, data, ev, wait)
		if errors.Is(err, errClaimLost) {
			if wait {
				continue
			}
			return nil, meta, ck, nil
		}
		return sn, meta, ck, err
	}
}

func (s *Searcher) trainSupernetOnce(ctx context.Context, r *runner, data *dataset.Data, ev ScreenEvents, wait bool) (*trainer.Supernet, supernetMeta, store.SupernetCheckpoint, error) {
	sc := *s.cfg.Screen
	var ck store.SupernetCheckpoint
	var meta supernetMeta
	for {
		var claimed bool
		if err := r.call(ctx, "claim the supernet", func(ctx context.Context) (err error) {
			ck, claimed, err = r.st.ClaimSupernet(ctx, r.study.ID, r.opts.Worker, r.opts.Lease)
			return err
		}); err != nil {
			return nil, meta, ck, err
		}
		if claimed {
			break
		}
		if !wait {
			return nil, meta, ck, nil
		}
		select {
		case <-ctx.Done():
			return nil, meta, ck, fmt.Errorf("waiting for %s to train the supernet: %w", ck.Holder, ErrInterrupted)
		case <-time.After(r.opts.Poll):
		}
	}
	meta, err := s.checkMeta(r.study.ID, ck.Meta)
	if err != nil {
		return nil, meta, ck, err
	}
	cfg := sc.Supernet
	cfg.Train = s.cfg.Proxy.Train
	cfg.Train.Threads = r.opts.Workers * r.opts.Threads
	sn, err := NewSupernet(s.space, s.cfg.Proxy, data, cfg, meta.Seed)
	if err != nil {
		return nil, meta, ck, err
	}
	if len(ck.Weights) > 0 {
		if err := sn.UnmarshalBinary(ck.Weights); err != nil {
			return nil, meta, ck, fmt.Errorf("study %d: %w", r.study.ID, err)
		}
	}
	ck.Study = r.study.ID
	if ck.Done {
		return sn, meta, ck, nil
	}
	total := sn.Config().Steps
	if ev != nil {
		ev.SupernetStart(ck.Step, total)
	}

	// Keep the claim while training; a lost claim stops the training.
	tctx, stop := s.keepClaim(ctx, r)
	defer stop()

	base, t0 := ck.Seconds, time.Now()
	rawMeta, _ := json.Marshal(meta)
	err = TrainSupernet(tctx, sn, s.space, s.cfg.Proxy, meta.Seed, sc.Warmup, func(steps int) error {
		if steps%sc.CheckpointEvery != 0 && steps != total {
			if ev != nil && steps%50 == 0 {
				ev.SupernetStep(steps, total)
			}
			return nil
		}
		defer func() {
			if ev != nil {
				ev.SupernetStep(steps, total) // once the checkpoint is saved
			}
		}()
		w, err := sn.MarshalBinary()
		if err != nil {
			return err
		}
		next := store.SupernetCheckpoint{Study: r.study.ID, Step: steps, Checkpoints: ck.Checkpoints + 1,
			Seconds: base + time.Since(t0).Seconds(), Done: steps == total, Meta: rawMeta, Weights: w}
		// A checkpoint can be tens of MB: its save gets at least a
		// minute's patience, whatever the lease (the heartbeat keeps the
		// claim meanwhile).
		if err := Retry(tctx, max(r.opts.Patience(), time.Minute), "save a supernet checkpoint", func(ctx context.Context) error {
			return r.st.SaveSupernet(ctx, r.opts.Worker, next, r.opts.Lease)
		}); err != nil {
			if errors.Is(err, store.ErrLeaseLost) {
				return fmt.Errorf("%w: %w", errClaimLost, err)
			}
			return err
		}
		ck = next
		return nil
	})
	if err != nil {
		if cause := context.Cause(tctx); cause != nil && ctx.Err() == nil && errors.Is(cause, errClaimLost) {
			err = cause
		}
		if ctx.Err() != nil {
			err = fmt.Errorf("supernet training stopped at step %d of %d (the last checkpoint is at step %d): %w", sn.Steps(), total, ck.Step, ErrInterrupted)
			// Hand the claim back, so that another process may go on at
			// once rather than after the lease.
			_ = r.call(context.WithoutCancel(ctx), "release the supernet", func(ctx context.Context) error {
				return r.st.ReleaseSupernet(ctx, r.study.ID, r.opts.Worker)
			})
		}
		return nil, meta, ck, err
	}
	return sn, meta, ck, nil
}

// keepClaim heartbeats the study's supernet claim every third of a lease
// until stop is called; the context it returns is cancelled, with a cause
// wrapping errClaimLost, when the claim is lost.
func (s *Searcher) keepClaim(ctx context.Context, r *runner) (context.Context, func()) {
	tctx, cancel := context.WithCancelCause(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(max(r.opts.Lease/3, 10*time.Millisecond))
		defer tick.Stop()
		for {
			select {
			case <-tctx.Done():
				return
			case <-tick.C:
				err := Retry(tctx, r.opts.Lease/2, "heartbeat the supernet", func(ctx context.Context) error {
					return r.st.HeartbeatSupernet(ctx, r.study.ID, r.opts.Worker, r.opts.Lease)
				})
				if err != nil && tctx.Err() == nil {
					cancel(fmt.Errorf("%w: %w", errClaimLost, err))
					return
				}
			}
		}
	}()
	return tctx, func() {
		cancel(nil)
		wg.Wait()
	}
}

// takeOver is a worker's part in a screening study: when the study's
// supernet is being trained but no live process holds its claim (its
// trainer died), the worker claims it and trains it to the end, so that
// the coordinator finds it trained.
func (s *Searcher) takeOver(ctx context.Context, r *runner) error {
	var ck store.SupernetCheckpoint
	err := r.call(ctx, "look at the supernet", func(ctx context.Context) (err error) {
		ck, err = r.st.SupernetInfo(ctx, r.study.ID)
		return err
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil // the coordinator has not started it
	case err != nil:
		return err
	case ck.Done:
		return nil
	}
	data, err := r.dataset(ctx, s.cfg.Proxy.Res)
	if err != nil {
		return err
	}
	ev, _ := r.opts.Events.(ScreenEvents)
	_, _, _, err = s.trainSupernet(ctx, r, data, ev, false)
	return err
}

// scoreCandidates scores candidates on sn (its weights those of
// checkpoint step) until N are recorded, the controller proposing them
// from the scores so far; Workers supernets score at once.
func (s *Searcher) scoreCandidates(ctx context.Context, r *runner, data *dataset.Data, sn *trainer.Supernet, weights []byte, step int, ev ScreenEvents) error {
	sc := *s.cfg.Screen
	var done []store.Screened
	if err := r.call(ctx, "read the screened candidates", func(ctx context.Context) (err error) {
		done, err = r.st.Screened(ctx, r.study.ID)
		return err
	}); err != nil {
		return err
	}
	if len(done) >= sc.N {
		return nil
	}
	// One scoring supernet per worker, each with the trained weights
	// (sn's last checkpoint).
	scorers := make([]*trainer.Supernet, r.opts.Workers)
	for i := range scorers {
		var err error
		cfg := sn.Config()
		cfg.Train.Threads = r.opts.Threads
		if scorers[i], err = trainer.NewSupernet(sn.Bound(), data, cfg); err != nil {
			return err
		}
		if err := scorers[i].UnmarshalBinary(weights); err != nil {
			return err
		}
	}

	var history []controller.Observation
	keys := map[string]bool{}
	best := 0.0
	for _, d := range done {
		var c []int
		if err := json.Unmarshal(d.Choices, &c); err != nil {
			return fmt.Errorf("screened candidate %d: decode its choices: %w", d.Number, err)
		}
		history = append(history, controller.Observation{ID: int64(d.Number), Choices: c, Reward: d.Reward})
		keys[d.Key] = true
		best = max(best, d.Score)
	}
	next := len(done)
	for next < sc.N {
		want := min(screenChunk, sc.N-next)
		var cands []space.Candidate
		var candKeys []string
		var pending [][]int
		for round := 0; len(cands) < want && round < 50; round++ {
			props, err := s.ctl.Propose(history, pending, want-len(cands))
			if err != nil {
				return fmt.Errorf("%s controller: %w", s.cfg.Controller, err)
			}
			if len(props) == 0 {
				break
			}
			for _, c := range props {
				pending = append(pending, c)
				key := s.space.Key(c)
				if keys[key] {
					continue
				}
				keys[key] = true
				cands, candKeys = append(cands, c), append(candKeys, key)
			}
		}
		if len(cands) == 0 {
			break // the space is exhausted
		}
		rows := make([]store.Screened, len(cands))
		g, gctx := errgroup.WithContext(ctx)
		jobs := make(chan int)
		for w := range scorers {
			g.Go(func() error {
				for i := range jobs {
					c := cands[i]
					full, err := s.space.Decode(c)
					if err != nil {
						return err
					}
					score, err := scorers[w].Score(gctx, supernetArch(s.cfg.Proxy, full, data.Channels, data.Classes))
					if err != nil {
						return fmt.Errorf("score %s: %w", candKeys[i], err)
					}
					choices, _ := json.Marshal(c)
					flops := full.FLOPs()
					rows[i] = store.Screened{Study: r.study.ID, Number: next + i, Key: candKeys[i], Choices: choices,
						Blocks: space.FormatBlocks(full.Blocks), Params: full.Params(), FLOPs: flops,
						Score: score, Reward: s.cfg.Reward.Reward(score, flops), Step: step}
				}
				return nil
			})
		}
	feed:
		for i := range cands {
			select {
			case jobs <- i:
			case <-gctx.Done():
				break feed
			}
		}
		close(jobs)
		err := g.Wait()
		if ctx.Err() != nil {
			// A scorer may have stopped between candidates: the chunk
			// is not whole.
			return fmt.Errorf("screening stopped after %d of %d candidates: %w", next, sc.N, ErrInterrupted)
		}
		if err != nil {
			return err
		}
		state, err := s.ctl.MarshalState()
		if err != nil {
			return fmt.Errorf("save the %s controller's state: %w", s.cfg.Controller, err)
		}
		first := true
		if err := r.call(ctx, "record screened candidates", func(ctx context.Context) error {
			err := r.st.AddScreened(ctx, r.study.ID, rows)
			if !first && errors.Is(err, store.ErrDuplicateScreened) {
				return nil // the first call was written after all; its reply was lost
			}
			first = false
			return err
		}); err != nil {
			return err
		}
		// The controller's state goes with the chunk it proposed, so that
		// a resumed screening proposes what an uninterrupted one would.
		if err := r.call(ctx, "save the controller's state", func(ctx context.Context) error {
			_, err := r.st.PlanTrials(ctx, r.study.ID, nil, state)
			return err
		}); err != nil {
			return err
		}
		for i, row := range rows {
			history = append(history, controller.Observation{ID: int64(row.Number), Choices: cands[i], Reward: row.Reward})
			best = max(best, row.Score)
		}
		next += len(rows)
		if ev != nil {
			ev.ScreenProgress(next, sc.N, best)
		}
	}
	return nil
}

// promote marks the best Trials screened candidates by reward (ties:
// the first scored) as promoted and keeps their plans for rung 0.
func (s *Searcher) promote(ctx context.Context, r *runner) error {
	var rows []store.Screened
	if err := r.call(ctx, "read the screened candidates", func(ctx context.Context) (err error) {
		rows, err = r.st.Screened(ctx, r.study.ID)
		return err
	}); err != nil {
		return err
	}
	slices.SortStableFunc(rows, func(a, b store.Screened) int {
		if c := cmp.Compare(b.Reward, a.Reward); c != 0 {
			return c
		}
		return cmp.Compare(a.Number, b.Number)
	})
	rows = rows[:min(len(rows), s.cfg.Trials)]
	var numbers []int
	var plans []store.Plan
	for _, row := range rows {
		numbers = append(numbers, row.Number)
		plans = append(plans, store.Plan{Key: row.Key, Choices: row.Choices, Blocks: row.Blocks, Params: row.Params, FLOPs: row.FLOPs})
	}
	if err := r.call(ctx, "promote screened candidates", func(ctx context.Context) error {
		return r.st.PromoteScreened(ctx, r.study.ID, numbers)
	}); err != nil {
		return err
	}
	s.promoted = plans
	return nil
}
