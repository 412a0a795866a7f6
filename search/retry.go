package search

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/effnas/effnas/store"
)

// permanent reports whether a store error says something about the request
// (or the store's disk) rather than about the store's reachability:
// retrying cannot change it. A context error is not permanent by itself:
// Retry stops on the caller's cancelled context, while a call that timed
// out on its own deadline (a dead connection) is tried again.
func permanent(err error) bool {
	for _, e := range []error{store.ErrLeaseLost, store.ErrNotFound, store.ErrInvalid, store.ErrDuplicateKey,
		store.ErrDuplicateScreened, store.ErrInvalidMetric} {
		if errors.Is(err, e) {
			return true
		}
	}
	return store.IsDiskFull(err)
}

// Backoff between retries of a failed store call: it doubles from
// retryFirst up to retryMax.
const (
	retryFirst = 50 * time.Millisecond
	retryMax   = 5 * time.Second
)

// call runs a store operation, retrying a transient fault (a busy
// database, a dropped connection) with backoff for up to Options.Retry. A
// fault that persists that long is returned, and stops the run.
func (r *runner) call(ctx context.Context, what string, fn func(ctx context.Context) error) error {
	return Retry(ctx, r.opts.Retry, what, fn)
}

// Retry calls fn until it succeeds or fails with an error that says
// something about the request (lease lost, not found, invalid...) or that
// no retry can mend (the disk is full), retrying any other error with
// backoff for up to patience; the last error is returned, saying how long
// the store kept failing. No try outlasts the patience either: a call
// hung on a connection whose peer vanished without a reset is cut off
// there. Each call's first failure and the first success after an outage
// are told to the process's outage reporter (ReportOutages).
func Retry(ctx context.Context, patience time.Duration, what string, fn func(ctx context.Context) error) error {
	deadline := time.Now().Add(patience)
	wait := retryFirst
	for tries := 1; ; tries++ {
		sent := time.Now()
		tctx, stop := ctx, context.CancelFunc(func() {})
		if patience > 0 { // no patience: one try, bounded by ctx alone
			tctx, stop = context.WithDeadline(ctx, deadline)
		}
		err := fn(tctx)
		stop()
		switch {
		case err == nil:
			outages.up(sent)
			return nil
		case permanent(err) || ctx.Err() != nil:
			return err
		}
		outages.down(err, tries == 1)
		if time.Now().Add(wait).After(deadline) {
			return fmt.Errorf("%s: the store kept failing for %v (%d tries): %w", what, patience.Round(time.Millisecond), tries, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(2*wait, retryMax)
	}
}

// ReportOutages makes this process tell w, in one line each, when its
// store calls start failing and when the store answers again, however
// many calls (in however many goroutines) retry meanwhile:
//
//	store unreachable: <the first error>; retrying
//	store reachable again after 3.2s, 14 calls retried
//
// and, in one line per trial, when a training was given up because its
// lease lapsed or was lost, or its result was refused because another
// attempt holds the trial. Passwords are removed from the errors. A nil w
// (the default) reports nothing. Call it once, from main.
func ReportOutages(w io.Writer) {
	outages.mu.Lock()
	defer outages.mu.Unlock()
	outages.w = w
}

// outages is the process's outage reporter.
var outages reporter

// reporter tracks whether the store is reachable, as the calls that
// retry it see it.
type reporter struct {
	mu      sync.Mutex
	w       io.Writer
	out     bool      // the store is unreachable: a call failed and none has succeeded since
	since   time.Time // the first failure of the outage
	retried int       // calls that failed at least once during the outage
}

// down records a call's failure; first says it is this call's first.
func (o *reporter) down(err error, first bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.out {
		if first {
			o.retried++
		}
		return
	}
	o.out, o.since, o.retried = true, time.Now(), 1
	if o.w != nil {
		fmt.Fprintf(o.w, "store unreachable: %s; retrying\n", oneLine(err))
	}
}

// up records a call, sent at sent, that succeeded. The success of a call
// sent before the outage began says nothing about the store now and ends
// nothing.
func (o *reporter) up(sent time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.out || sent.Before(o.since) {
		return
	}
	o.out = false
	if o.w != nil {
		calls := "calls"
		if o.retried == 1 {
			calls = "call"
		}
		fmt.Fprintf(o.w, "store reachable again after %.1fs, %d %s retried\n", time.Since(o.since).Seconds(), o.retried, calls)
	}
}

// notef writes one line to the reporter's writer, if any.
func (o *reporter) notef(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.w != nil {
		fmt.Fprintf(o.w, format+"\n", args...)
	}
}

// oneLine is err as one line with any password hidden.
func oneLine(err error) string {
	return store.HidePasswords(strings.Join(strings.Fields(err.Error()), " "))
}
