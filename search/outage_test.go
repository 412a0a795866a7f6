package search

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/effnas/effnas/store"
)

// reportTo points the process's outage reporter at a buffer for the
// test, and back at nothing afterwards.
func reportTo(t *testing.T) *syncBuffer {
	t.Helper()
	var b syncBuffer
	ReportOutages(&b)
	outages.mu.Lock()
	outages.out = false
	outages.mu.Unlock()
	t.Cleanup(func() { ReportOutages(nil) })
	return &b
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestOutageReportedOnce: twenty goroutines retry through one outage,
// each call failing several times; the reporter says once that the store
// is unreachable, with the first error and its password hidden, and once
// that it is back, counting the calls that retried.
func TestOutageReportedOnce(t *testing.T) {
	log := reportTo(t)
	var down atomic.Bool
	down.Store(true)
	secret := errors.New(`failed to connect to postgres://effnas:s3cret@db:5432/effnas?sslpassword=s3cret2&password=s3cret3` + "\n\tdial error: connection refused")
	call := func(ctx context.Context) error {
		if down.Load() {
			return secret
		}
		return nil
	}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() { errs <- Retry(context.Background(), 10*time.Second, "call", call) })
	}
	time.Sleep(400 * time.Millisecond) // several retries each
	down.Store(false)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("a call failed through a short outage: %v", err)
		}
	}
	// A call that succeeds without a fault reports nothing more.
	if err := Retry(context.Background(), time.Second, "call", call); err != nil {
		t.Fatal(err)
	}
	out := log.String()
	if strings.Contains(out, "s3cret") {
		t.Errorf("the report shows a password:\n%s", out)
	}
	want := regexp.MustCompile(`^store unreachable: failed to connect to postgres://effnas:xxxxx@db:5432/effnas\?sslpassword=xxxxx&password=xxxxx dial error: connection refused; retrying
store reachable again after [0-9]+\.[0-9]s, 20 calls retried
$`)
	if !want.MatchString(out) {
		t.Errorf("report:\n%s\nwant it to match:\n%s", out, want)
	}
}

// TestOutageIgnoresStaleSuccess: a call sent before the outage began that
// succeeds during it does not end the outage.
func TestOutageIgnoresStaleSuccess(t *testing.T) {
	log := reportTo(t)
	sent := time.Now()
	outages.down(errBlip, true)
	outages.up(sent)
	if strings.Contains(log.String(), "reachable again") {
		t.Errorf("a reply to a call sent before the outage ended it:\n%s", log)
	}
	outages.up(time.Now())
	if n := strings.Count(log.String(), "\n"); n != 2 {
		t.Errorf("report:\n%s\nwant two lines", log)
	}
}

// TestRetryDiskFull: a full disk is not retried (no retry frees space),
// whatever the driver calls it; a call that timed out on its own deadline
// is retried, while the caller's cancelled context stops the retries.
func TestRetryDiskFull(t *testing.T) {
	reportTo(t)
	for _, full := range []error{
		errors.New("finish trial 3: database or disk is full"),
		fmt.Errorf("write: %w", store.ErrDiskFull),
	} {
		tries := 0
		start := time.Now()
		err := Retry(context.Background(), 10*time.Second, "finish", func(ctx context.Context) error { tries++; return full })
		if tries != 1 || !errors.Is(err, full) || time.Since(start) > time.Second {
			t.Errorf("Retry of %q: %d tries in %v, %v; want 1 try, the error at once", full, tries, time.Since(start), err)
		}
	}
	tries := 0
	err := Retry(context.Background(), 10*time.Second, "count", func(ctx context.Context) error {
		if tries++; tries < 3 {
			return fmt.Errorf("count trials: %w", context.DeadlineExceeded) // a dead connection timed out
		}
		return nil
	})
	if err != nil || tries != 3 {
		t.Errorf("Retry of a call's own timeout: %d tries, %v; want 3, nil", tries, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tries = 0
	err = Retry(ctx, 10*time.Second, "count", func(ctx context.Context) error { tries++; return ctx.Err() })
	if tries != 1 || !errors.Is(err, context.Canceled) {
		t.Errorf("Retry under a cancelled context: %d tries, %v; want 1, context.Canceled", tries, err)
	}
}

// TestRestartErrorsRetried: what a client sees while PostgreSQL restarts
// is retried, not taken for a fault of the request.
func TestRestartErrorsRetried(t *testing.T) {
	for _, err := range []error{
		&pgconn.PgError{Severity: "FATAL", Code: "57P01", Message: "terminating connection due to administrator command"},
		&pgconn.PgError{Severity: "FATAL", Code: "57P03", Message: "the database system is starting up"},
		errors.New("failed to connect to `user=postgres database=effnas`: 127.0.0.1:5432 (127.0.0.1): dial error: dial tcp 127.0.0.1:5432: connect: connection refused"),
		errors.New("unexpected EOF"),
		fmt.Errorf("heartbeat: %w", context.DeadlineExceeded),
	} {
		if permanent(fmt.Errorf("claim trials for study 1: %w", err)) {
			t.Errorf("%v is taken as permanent; want it retried", err)
		}
	}
}

// TestRetryHangCutOff: a call that hangs (a dead connection) is cut off
// when the patience runs out, not left to hang.
func TestRetryHangCutOff(t *testing.T) {
	reportTo(t)
	start := time.Now()
	err := Retry(context.Background(), 300*time.Millisecond, "claim", func(ctx context.Context) error {
		select {
		case <-ctx.Done():
			return fmt.Errorf("claim trials: %w", ctx.Err())
		case <-time.After(5 * time.Second): // bounds the test, not the call
			return errors.New("claim trials: still hung after 5s")
		}
	})
	if el := time.Since(start); err == nil || el > 2*time.Second {
		t.Errorf("a hung call returned %v after %v; want an error after the 300ms patience", err, el)
	}
	if err != nil && !strings.Contains(err.Error(), "kept failing") {
		t.Errorf("a hung call: %v; want it to say the store kept failing", err)
	}
}

// hanging is a real store whose heartbeats hang until their context ends,
// as a call on a connection whose peer vanished without a reset does.
type hanging struct{ store.Store }

func (h hanging) Heartbeat(ctx context.Context, l store.Lease, d time.Duration) error {
	<-ctx.Done()
	return fmt.Errorf("heartbeat %v: %w", l, ctx.Err())
}

// TestHeartbeatHangStopsAtDeadline: a renewal that hangs cannot keep a
// training going past its lease: the heartbeat gives up at the lease's
// deadline and stops the training with errLeaseLapsed.
func TestHeartbeatHangStopsAtDeadline(t *testing.T) {
	log := reportTo(t)
	real, _ := openStore(t)
	lease := 300 * time.Millisecond
	r := &runner{st: hanging{real}, opts: Options{Lease: lease}}
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	start := time.Now()
	go r.heartbeat(ctx, store.Lease{Study: 1, Number: 0, Worker: "w", Attempt: 1}, start, cancel)
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatalf("the training still ran %v after a hung renewal; want it stopped at the %v lease deadline", time.Since(start), lease)
	}
	el := time.Since(start)
	if !errors.Is(context.Cause(ctx), errLeaseLapsed) {
		t.Errorf("training stopped with %v; want errLeaseLapsed", context.Cause(ctx))
	}
	if el < lease/3 || el > lease+200*time.Millisecond {
		t.Errorf("training stopped %v after the claim; want at the %v lease deadline", el, lease)
	}
	if !strings.HasPrefix(log.String(), "store unreachable: heartbeat") {
		t.Errorf("report %q; want the failed renewal reported as an outage", log)
	}
}
