package search

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/effnas/effnas/store"
)

// permanent reports whether a store error says something about the request
// rather than about the store's health: retrying cannot change it.
func permanent(err error) bool {
	for _, e := range []error{store.ErrLeaseLost, store.ErrNotFound, store.ErrInvalid, store.ErrDuplicateKey,
		store.ErrInvalidMetric, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
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
// something about the request (lease lost, not found, invalid...),
// retrying any other error with backoff for up to patience; the last error
// is returned, saying how long the store kept failing.
func Retry(ctx context.Context, patience time.Duration, what string, fn func(ctx context.Context) error) error {
	deadline := time.Now().Add(patience)
	wait := retryFirst
	for tries := 1; ; tries++ {
		err := fn(ctx)
		if err == nil || permanent(err) || ctx.Err() != nil {
			return err
		}
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
