package search

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/trainer"
	"github.com/effnas/effnas/trainer/dataset"
)

// errLeaseLapsed stops a training whose lease could not be renewed for a
// whole lease (the store was unreachable): another process may already
// have claimed the trial, so it is left as it is for recovery.
var errLeaseLapsed = errors.New("lease lapsed: no heartbeat was accepted for a whole lease")

// errTooBig: the trial needs more memory than this machine gives one
// training, but fits the study's budget: another worker may train it.
var errTooBig = errors.New("too big for this worker")

// train trains one claimed trial and records its outcome. A training error,
// a divergence or a panic fails the trial; a cancelled context interrupts
// it (a worker hands it back); only a persistent store fault is returned
// as outcome.err.
func (r *runner) train(ctx context.Context, t store.Trial) outcome {
	lease := t.Lease()
	claimed := time.Now()              // the lease runs from about now, not from when the heartbeat starts
	wctx := context.WithoutCancel(ctx) // record outcomes even after Ctrl-C
	if ev := r.opts.Events; ev != nil {
		ev.TrialStarted(t)
	}

	// Renew the lease while training; stop training if it is lost, or if
	// the store cannot be reached until the lease lapses.
	tctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		r.heartbeat(tctx, lease, claimed, cancel)
	}()

	start := time.Now()
	res, err := r.trainSafely(tctx, t)
	seconds := time.Since(start).Seconds()
	cause := context.Cause(tctx)
	cancel(nil)
	<-hbDone

	switch {
	case err == nil:
		reward := r.src.Reward(t, res.ValAccuracy)
		rec := store.Result{Accuracy: res.ValAccuracy, Reward: reward, TestAccuracy: res.TestAccuracy, Seconds: seconds}
		if verr := rec.Validate(); verr != nil {
			return r.fail(wctx, t, fmt.Sprintf("invalid result: %v", verr), seconds)
		}
		switch err := r.record(wctx, t, "finish", store.TrialComplete, func(ctx context.Context) error { return r.st.FinishTrial(ctx, lease, rec) }); {
		case errors.Is(err, store.ErrLeaseLost):
			// Another attempt owns it now (this process was paused, or
			// cut off, for longer than a lease): its result stands.
			outages.notef("study %d trial %d (attempt %d): result refused: %v", t.Study, t.Number, t.Attempt, err)
			return outcome{trial: t}
		case err != nil:
			return outcome{trial: t, err: err}
		}
		t.State, t.Accuracy, t.Reward, t.TestAccuracy, t.Seconds = store.TrialComplete, res.ValAccuracy, reward, res.TestAccuracy, seconds
		return outcome{trial: t, trained: true}
	case errors.Is(err, errTooBig) || (ctx.Err() != nil && r.opts.NoPropose):
		// A worker stopped, or the trial needs a bigger machine: hand it
		// back so that another process claims it at once.
		why := "released: " + err.Error()
		if ctx.Err() != nil {
			why = "released: " + context.Cause(ctx).Error()
		} else {
			r.mu.Lock()
			r.tooBig = append(r.tooBig, t.Number)
			r.mu.Unlock()
		}
		if err := r.record(wctx, t, "release", store.TrialPending, func(ctx context.Context) error { return r.st.ReleaseTrial(ctx, lease, why) }); err != nil && !errors.Is(err, store.ErrLeaseLost) {
			return outcome{trial: t, err: err}
		}
		return outcome{trial: t}
	case ctx.Err() != nil:
		// Stopped from outside (Ctrl-C): the trial will be re-run on resume.
		why := "interrupted: " + context.Cause(ctx).Error()
		if err := r.record(wctx, t, "interrupt", store.TrialInterrupted, func(ctx context.Context) error { return r.st.InterruptTrial(ctx, lease, why) }); err != nil && !errors.Is(err, store.ErrLeaseLost) {
			return outcome{trial: t, err: err}
		}
		return outcome{trial: t}
	case errors.Is(cause, store.ErrLeaseLost), errors.Is(cause, errLeaseLapsed):
		// Another attempt owns it, or will: leave it.
		outages.notef("study %d trial %d (attempt %d): training stopped, left for another worker: %v", t.Study, t.Number, t.Attempt, cause)
		return outcome{trial: t}
	case store.IsDiskFull(cause):
		// The lease cannot be renewed until space is freed: stop the run.
		// The trial stays running for RecoverTrials on resume.
		return outcome{trial: t, err: cause}
	case errors.Is(err, trainer.ErrDiverged):
		return r.fail(wctx, t, "diverged: "+err.Error(), seconds)
	default:
		return r.fail(wctx, t, err.Error(), seconds)
	}
}

// heartbeat renews the trial's lease, claimed at claimed, every third of
// a lease until ctx ends. A renewal that fails is retried with backoff until the lease's
// local deadline (the last accepted renewal plus a lease), and no renewal
// may outlast that deadline (a dead connection can hang a call): past it,
// when the lease is lost, or when the store's disk is full, it cancels
// the training with the reason. Failures and the renewal that succeeds
// after them are told to the outage reporter, as Retry's are.
func (r *runner) heartbeat(ctx context.Context, lease store.Lease, claimed time.Time, cancel context.CancelCauseFunc) {
	deadline := claimed.Add(r.opts.Lease)
	next := r.opts.Lease / 3
	wait := retryFirst
	failed := false // since the last accepted renewal
	for {
		t := time.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		sent := time.Now()
		bound := deadline
		if !sent.Before(deadline) {
			// The timer fired past the deadline: this process was paused
			// (SIGSTOP, a suspended machine). Ask once all the same, for
			// a third of a lease: the store's refusal says who holds the
			// trial now.
			bound = sent.Add(r.opts.Lease / 3)
		}
		hctx, stop := context.WithDeadline(ctx, bound)
		err := r.st.Heartbeat(hctx, lease, r.opts.Lease)
		stop()
		switch {
		case err == nil:
			outages.up(sent)
			deadline, next, wait, failed = sent.Add(r.opts.Lease), r.opts.Lease/3, retryFirst, false
		case ctx.Err() != nil:
			return
		case errors.Is(err, store.ErrLeaseLost):
			cancel(fmt.Errorf("renew lease of %v: %w", lease, err))
			return
		case store.IsDiskFull(err):
			cancel(fmt.Errorf("renew lease of %v: %w", lease, err))
			return
		default:
			outages.down(err, !failed)
			failed = true
			if time.Now().Add(wait).After(deadline) {
				cancel(fmt.Errorf("%w (%v): %v", errLeaseLapsed, lease, err))
				return
			}
			next, wait = wait, min(2*wait, retryMax)
		}
	}
}

// record writes a trial's outcome through the retrying store call. When a
// retry is refused because the lease is gone, the earlier try may have
// been written with its reply lost: if the trial is now in the state that
// call sets, by this very claim, the outcome is recorded.
func (r *runner) record(ctx context.Context, t store.Trial, what string, want store.TrialState, fn func(context.Context) error) error {
	first := true
	return r.call(ctx, fmt.Sprintf("%s trial %d", what, t.Number), func(ctx context.Context) error {
		err := fn(ctx)
		if !first && errors.Is(err, store.ErrLeaseLost) {
			if cur, gerr := r.st.Trial(ctx, t.Study, t.Number); gerr == nil && cur.State == want &&
				(want == store.TrialPending || cur.Worker == t.Worker && cur.Attempt == t.Attempt) {
				return nil
			}
		}
		first = false
		return err
	})
}

func (r *runner) fail(ctx context.Context, t store.Trial, reason string, seconds float64) outcome {
	err := r.record(ctx, t, "fail", store.TrialFailed, func(ctx context.Context) error { return r.st.FailTrial(ctx, t.Lease(), reason, seconds) })
	if errors.Is(err, store.ErrLeaseLost) {
		return outcome{trial: t}
	}
	if err != nil {
		return outcome{trial: t, err: err}
	}
	t.State, t.Error, t.Seconds = store.TrialFailed, reason, seconds
	return outcome{trial: t, trained: true}
}

// trainSafely builds the trial's proxy and trains it at its rung's
// fidelity, turning a panic into an error so that one bad candidate cannot
// take the sweep down. A candidate that needs more memory than the
// study's budget fails before anything is built; one that fits the study
// but not this machine returns errTooBig.
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
	// The study's budget is checked against the estimate the trial was
	// planned with (runner.annotate: the data's channels and classes, the
	// planner's threads), so that a worker training on more threads, whose
	// estimate is larger, does not fail for good a trial the study admitted;
	// a trial planned without one (an older effnas) is estimated here. This
	// worker's own budget is checked against its own estimate: a trial too
	// big for it is handed back for another worker.
	p := r.src.Proxy()
	cfg := p.Train
	need := trainingMemory(r.src, arch, data.Channels, data.Classes, r.opts.Threads)
	if planned := cmp.Or(t.Memory, need); planned > p.MaxMemory && p.MaxMemory > 0 {
		return res, errors.New(tooBig(planned, p.MaxMemory, cfg.Batch))
	} else if need > r.opts.MaxMemory {
		return res, fmt.Errorf("%w: it needs about %s of memory to train, and this worker gives one training %s", errTooBig, FormatBytes(need), FormatBytes(r.opts.MaxMemory))
	}
	arch.InChannels, arch.Classes = data.Channels, data.Classes
	f := r.src.Fidelity(t)
	if f.TrainSize > 0 && f.TrainSize < data.Train.N {
		data = subset(data, f.TrainSize)
	}
	cfg.Epochs = f.Epochs
	cfg.Threads = r.opts.Threads
	cfg.Seed = trainingSeed(r.src, r.study.Seed, t)
	return trainer.Train(ctx, arch, data, cfg, nil)
}

// trainingSeed is a trial's training seed, derived as its study's stored
// seed scheme says (Proxy.TrainSeed).
func trainingSeed(src Source, study uint64, t store.Trial) uint64 {
	return src.Proxy().TrainSeed(study, t.Key, seedRung(src, t), t.Seed)
}

// seedRung is the rung a trial's training seed is derived from: its own,
// unless its source says otherwise (a proxy benchmark's reference, whose
// rung depends on how many proxy rungs the benchmark has).
func seedRung(src Source, t store.Trial) int {
	if s, ok := src.(interface{ SeedRung(store.Trial) int }); ok {
		return s.SeedRung(t)
	}
	return t.Rung
}

// subset returns data with only the first n training images; the
// validation and test sets are the study's.
func subset(data *dataset.Data, n int) *dataset.Data {
	d := *data
	per := d.Train.C * d.Train.H * d.Train.W
	d.Train.X, d.Train.Y, d.Train.N = d.Train.X[:n*per], d.Train.Y[:n], n
	return &d
}
