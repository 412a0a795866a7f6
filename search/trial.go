package search

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/trainer"
)

// train trains one claimed trial and records its outcome. A training error
// or panic fails the trial; a cancelled context interrupts it; only a store
// fault is returned as outcome.err.
func (r *runner) train(ctx context.Context, t store.Trial) (o outcome) {
	lease := t.Lease()
	wctx := context.WithoutCancel(ctx) // record outcomes even after Ctrl-C
	if ev := r.opts.Events; ev != nil {
		ev.TrialStarted(t)
	}

	// Renew the lease while training; stop training if it is lost.
	tctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		tick := time.NewTicker(r.opts.Lease / 3)
		defer tick.Stop()
		for {
			select {
			case <-tctx.Done():
				return
			case <-tick.C:
				if err := r.st.Heartbeat(tctx, lease, r.opts.Lease); err != nil && tctx.Err() == nil {
					cancel(fmt.Errorf("renew lease of %v: %w", lease, err))
					return
				}
			}
		}
	}()

	start := time.Now()
	res, err := r.trainSafely(tctx, t)
	seconds := time.Since(start).Seconds()
	cancel(nil)
	<-hbDone

	switch {
	case err == nil:
		reward := r.src.Reward(t, res.ValAccuracy)
		rec := store.Result{Accuracy: res.ValAccuracy, Reward: reward, Seconds: seconds}
		if verr := rec.Validate(); verr != nil {
			return r.fail(wctx, t, fmt.Sprintf("invalid result: %v", verr), seconds)
		}
		if err := r.st.FinishTrial(wctx, lease, rec); err != nil {
			if errors.Is(err, store.ErrLeaseLost) {
				t.State = store.TrialInterrupted // another attempt owns it now
				return outcome{trial: t}
			}
			return outcome{trial: t, err: err}
		}
		t.State, t.Accuracy, t.Reward, t.Seconds = store.TrialComplete, res.ValAccuracy, reward, seconds
		return outcome{trial: t}
	case ctx.Err() != nil && r.opts.NoPropose:
		// A worker stopped: hand the trial back so that another process
		// claims it at once, without waiting for a resume.
		if err := r.st.ReleaseTrial(wctx, lease, "released: "+context.Cause(ctx).Error()); err != nil && !errors.Is(err, store.ErrLeaseLost) {
			return outcome{trial: t, err: err}
		}
		t.State = store.TrialInterrupted
		return outcome{trial: t}
	case ctx.Err() != nil:
		// Stopped from outside (Ctrl-C): the trial will be re-run on resume.
		if err := r.st.InterruptTrial(wctx, lease, "interrupted: "+context.Cause(ctx).Error()); err != nil && !errors.Is(err, store.ErrLeaseLost) {
			return outcome{trial: t, err: err}
		}
		t.State = store.TrialInterrupted
		return outcome{trial: t}
	case errors.Is(context.Cause(tctx), store.ErrLeaseLost):
		t.State = store.TrialInterrupted // another attempt owns it now
		return outcome{trial: t}
	default:
		return r.fail(wctx, t, err.Error(), seconds)
	}
}

func (r *runner) fail(ctx context.Context, t store.Trial, reason string, seconds float64) outcome {
	if err := r.st.FailTrial(ctx, t.Lease(), reason, seconds); err != nil {
		if errors.Is(err, store.ErrLeaseLost) {
			t.State = store.TrialInterrupted
			return outcome{trial: t}
		}
		return outcome{trial: t, err: err}
	}
	t.State, t.Error, t.Seconds = store.TrialFailed, reason, seconds
	return outcome{trial: t}
}

// trainSafely builds the trial's proxy and trains it, turning a panic into
// an error so that one bad candidate cannot take the sweep down.
func (r *runner) trainSafely(ctx context.Context, t store.Trial) (res trainer.Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic while training trial %d: %v\n%s", t.Number, p, debug.Stack())
		}
	}()
	arch, err := r.src.Arch(t)
	if err != nil {
		return res, err
	}
	data, err := r.dataset(ctx, arch.Resolution)
	if err != nil {
		return res, err
	}
	arch.InChannels, arch.Classes = data.Channels, data.Classes
	cfg := r.src.Proxy().Train
	cfg.Threads = r.opts.Threads
	// Each trial gets its own seed, derived from the study's, so trials are
	// independent yet reproducible.
	cfg.Seed = cfg.Seed ^ (uint64(t.Number)+1)*0x9e3779b97f4a7c15
	return trainer.Train(ctx, arch, data, cfg, nil)
}
