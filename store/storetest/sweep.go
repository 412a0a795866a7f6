package storetest

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/effnas/effnas/store"
)

// The kill tests run worker processes that SweepWorker drives and a
// parent that kills them with SIGKILL; CheckSweep then verifies the study.
// Each implementation's test binary re-executes itself as the worker.

// SweepValue is the worker's stand-in for training: a deterministic
// function of the candidate key that costs about a millisecond of CPU.
func SweepValue(key string) float64 {
	h := sha256.Sum256([]byte(key))
	for range 3000 {
		h = sha256.Sum256(h[:])
	}
	return float64(binary.BigEndian.Uint32(h[:4])) / (1 << 32)
}

// SweepWorkerConfig says how a worker process works.
type SweepWorkerConfig struct {
	Study   int64
	Log     string        // file the worker appends "claim N A" and "finish N A V" lines to
	Recover bool          // call RecoverTrials first: this process is the only one
	Lease   time.Duration // claim lease; heartbeats renew it every Lease/3
	Workers int           // goroutines claiming in this process
}

// SweepWorker claims, "trains" and finishes trials until none is pending
// or running. Every line is logged after the database accepted it, so a
// SIGKILL can only lose the last line, never invent one.
func SweepWorker(ctx context.Context, s store.Store, cfg SweepWorkerConfig) error {
	logf, err := os.OpenFile(cfg.Log, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	var logMu sync.Mutex
	logLine := func(format string, args ...any) {
		logMu.Lock()
		defer logMu.Unlock()
		fmt.Fprintf(logf, format+"\n", args...) // one write(2) per line
	}
	if cfg.Recover {
		if _, err := s.RecoverTrials(ctx, cfg.Study); err != nil {
			return err
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, cfg.Workers)
	for w := range cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			worker := fmt.Sprintf("pid%d-w%d", os.Getpid(), w)
			for {
				got, err := s.ClaimTrials(ctx, cfg.Study, store.Claim{Worker: worker, Limit: 1, Lease: cfg.Lease})
				if err != nil {
					errs <- err
					return
				}
				if len(got) == 0 {
					c, err := s.CountTrials(ctx, cfg.Study)
					if err != nil {
						errs <- err
						return
					}
					if c.Pending+c.Running+c.Interrupted == 0 {
						return
					}
					// Others hold the rest: wait for them to finish or for
					// their leases to expire.
					time.Sleep(min(cfg.Lease/4, 50*time.Millisecond))
					continue
				}
				tr := got[0]
				logLine("claim %d %d", tr.Number, tr.Attempt)
				start := time.Now()
				v := SweepValue(tr.Key)
				lost := false
				if err := s.Heartbeat(ctx, tr.Lease(), cfg.Lease); errors.Is(err, store.ErrLeaseLost) {
					lost = true
				} else if err != nil {
					errs <- err
					return
				}
				time.Sleep(2 * time.Millisecond)
				if !lost {
					err = s.FinishTrial(ctx, tr.Lease(), store.Result{Accuracy: v, Reward: v / 2, Seconds: time.Since(start).Seconds()})
					if errors.Is(err, store.ErrLeaseLost) {
						lost = true
					} else if err != nil {
						errs <- err
						return
					}
				}
				if lost {
					logLine("lost %d %d", tr.Number, tr.Attempt)
				} else {
					logLine("finish %d %d %v", tr.Number, tr.Attempt, v)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// SweepSummary is what CheckSweep found.
type SweepSummary struct {
	Trials   int // trials in the study
	Attempts int // claims in all
	Rerun    int // trials claimed more than once
	Lost     int // results refused because the lease was lost
}

// CheckSweep verifies a finished kill test: every trial complete exactly
// once with the value its key determines, every result a worker saw
// accepted is the stored one, no trial claimed again after it completed,
// and the stored attempts match the claims logged in logs (up to kills
// lines swallowed by SIGKILL).
func CheckSweep(t *testing.T, s store.Store, study int64, kills int, logs ...string) SweepSummary {
	t.Helper()
	type fin struct {
		attempt int
		v       float64
	}
	claims := map[int][]int{}
	finishes := map[int][]fin{}
	lost := 0
	var lines []string
	for _, log := range logs {
		b, err := os.ReadFile(log)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(strings.NewReader(string(b)))
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
	}
	for _, line := range lines {
		var n, a int
		var v float64
		fields := strings.Fields(line)
		switch {
		case len(fields) == 3 && fields[0] == "claim":
			if _, err := fmt.Sscan(fields[1]+" "+fields[2], &n, &a); err == nil {
				claims[n] = append(claims[n], a)
			}
		case len(fields) == 4 && fields[0] == "finish":
			if _, err := fmt.Sscan(fields[1]+" "+fields[2]+" "+fields[3], &n, &a, &v); err == nil {
				finishes[n] = append(finishes[n], fin{a, v})
			}
		case len(fields) == 3 && fields[0] == "lost":
			lost++
		}
		// Anything else is a line cut by SIGKILL: the database is the truth.
	}
	all, err := s.Trials(t.Context(), study)
	if err != nil {
		t.Fatal(err)
	}
	sum := SweepSummary{Trials: len(all), Lost: lost}
	for i, tr := range all {
		if tr.Number != i {
			t.Fatalf("trial numbers are not 0..%d: found %d at %d", len(all)-1, tr.Number, i)
		}
		if want := SweepValue(tr.Key); tr.State != store.TrialComplete || tr.Accuracy != want || tr.Reward != want/2 {
			t.Fatalf("trial %d: %s with accuracy %v, want complete with %v", i, tr.State, tr.Accuracy, want)
		}
		if len(finishes[i]) > 1 {
			t.Fatalf("trial %d was finished %d times: %+v", i, len(finishes[i]), finishes[i])
		}
		if fs := finishes[i]; len(fs) == 1 && (fs[0].attempt != tr.Attempt || fs[0].v != tr.Accuracy) {
			t.Fatalf("trial %d: an accepted result (attempt %d, %v) is not the stored one (attempt %d, %v)", i, fs[0].attempt, fs[0].v, tr.Attempt, tr.Accuracy)
		}
		if c := len(claims[i]); tr.Attempt < c || tr.Attempt > c+kills {
			t.Fatalf("trial %d: attempt %d in the database, %d claims logged, %d kills", i, tr.Attempt, c, kills)
		}
		for _, a := range claims[i] {
			if a > tr.Attempt {
				t.Fatalf("trial %d was claimed again (attempt %d) after it completed on attempt %d", i, a, tr.Attempt)
			}
		}
		sum.Attempts += tr.Attempt
		if tr.Attempt > 1 {
			sum.Rerun++
		}
	}
	return sum
}

// Environment of a worker process started by StartWorker.
const (
	envChild   = "EFFNAS_STORETEST_WORKER_DB"
	envStudy   = "EFFNAS_STORETEST_WORKER_STUDY"
	envLog     = "EFFNAS_STORETEST_WORKER_LOG"
	envRecover = "EFFNAS_STORETEST_WORKER_RECOVER"
	envLease   = "EFFNAS_STORETEST_WORKER_LEASE_MS"
)

// WorkerDB returns the database a worker process should open, or "" in
// the parent. A TestMain calls it first:
//
//	if db := storetest.WorkerDB(); db != "" {
//		os.Exit(storetest.WorkerMain(func(ctx context.Context) (store.Store, error) { return open(ctx, db) }))
//	}
func WorkerDB() string { return os.Getenv(envChild) }

// WorkerMain runs SweepWorker as configured by StartWorker and returns the
// process exit code.
func WorkerMain(open func(ctx context.Context) (store.Store, error)) int {
	ctx := context.Background()
	var cfg SweepWorkerConfig
	var leaseMS int64
	if _, err := fmt.Sscan(os.Getenv(envStudy)+" "+os.Getenv(envLease), &cfg.Study, &leaseMS); err != nil {
		fmt.Fprintln(os.Stderr, "storetest worker: bad environment:", err)
		return 3
	}
	cfg.Log, cfg.Recover, cfg.Lease, cfg.Workers = os.Getenv(envLog), os.Getenv(envRecover) == "1", time.Duration(leaseMS)*time.Millisecond, 2
	s, err := open(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "storetest worker:", err)
		return 3
	}
	defer s.Close()
	if err := SweepWorker(ctx, s, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "storetest worker:", err)
		return 3
	}
	return 0
}

// StartWorker starts this test binary again as a worker process on db.
func StartWorker(t *testing.T, db string, cfg SweepWorkerConfig) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	rec := "0"
	if cfg.Recover {
		rec = "1"
	}
	cmd.Env = append(os.Environ(), envChild+"="+db, envStudy+"="+strconv.FormatInt(cfg.Study, 10), envLog+"="+cfg.Log,
		envRecover+"="+rec, envLease+"="+strconv.FormatInt(cfg.Lease.Milliseconds(), 10))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// KillWorker sends SIGKILL and reaps the process; it reports whether the
// signal killed it (false: it had already exited successfully).
func KillWorker(t *testing.T, cmd *exec.Cmd) bool {
	t.Helper()
	cmd.Process.Signal(syscall.SIGKILL)
	err := cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return true
	}
	if err != nil {
		t.Fatalf("worker failed before it was killed: %v", err)
	}
	return false
}

// WaitWorker waits for a worker to finish the sweep.
func WaitWorker(t *testing.T, cmd *exec.Cmd, timeout time.Duration) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("worker: %v", err)
		}
	case <-time.After(timeout):
		cmd.Process.Kill()
		<-done
		t.Fatalf("worker did not finish the sweep within %v", timeout)
	}
}

// PlanSweep creates a search study of n trials keyed cand-0... for a kill
// test, with a retry limit high enough that kills never exhaust it.
func PlanSweep(t *testing.T, s store.Store, n int) store.Study {
	t.Helper()
	st, err := s.CreateStudy(t.Context(), store.Study{Kind: store.KindSearch, MaxAttempts: 1000}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ps := make([]store.Plan, n)
	for i := range ps {
		ps[i] = store.Plan{Key: fmt.Sprintf("cand-%d", i)}
	}
	if _, err := s.PlanTrials(t.Context(), st.ID, ps, nil); err != nil {
		t.Fatal(err)
	}
	return st
}

// AwaitProgress waits until the worker log has grown past its size when
// called (at most timeout), so a kill that follows lands in the middle of
// work rather than during process start-up. It reports false when the
// study finished first (other workers took the rest).
func AwaitProgress(t *testing.T, s store.Store, study int64, log string, timeout time.Duration) bool {
	t.Helper()
	size := func() int64 {
		st, err := os.Stat(log)
		if err != nil {
			return 0
		}
		return st.Size()
	}
	before := size()
	deadline := time.Now().Add(timeout)
	for size() == before {
		if SweepDone(t, s, study) {
			return false
		}
		if time.Now().After(deadline) {
			t.Fatalf("the worker logged nothing within %v", timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// SweepDone reports whether every trial of the study is complete or failed.
func SweepDone(t *testing.T, s store.Store, study int64) bool {
	t.Helper()
	c, err := s.CountTrials(t.Context(), study)
	if err != nil {
		t.Fatal(err)
	}
	return c.Pending+c.Running+c.Interrupted == 0
}

// KillResume kills a real worker process on db with SIGKILL at random
// points of a sweep of n trials, resumes (RecoverTrials, as the only
// process) until done, and checks with CheckSweep that every trial
// completed exactly once with its own result, that no accepted result was
// lost, and that the attempts add up.
func KillResume(t *testing.T, s store.Store, db string, n, kills int, seed uint64) {
	st := PlanSweep(t, s, n)
	cfg := SweepWorkerConfig{Study: st.ID, Log: filepath.Join(t.TempDir(), "worker.log"), Recover: true, Lease: time.Minute}
	rng := rand.New(rand.NewPCG(seed, 2026))
	killed := 0
	for range kills {
		if SweepDone(t, s, st.ID) {
			break
		}
		cmd := StartWorker(t, db, cfg)
		if !AwaitProgress(t, s, st.ID, cfg.Log, time.Minute) {
			KillWorker(t, cmd)
			break
		}
		time.Sleep(time.Duration(rng.IntN(100)) * time.Millisecond)
		if KillWorker(t, cmd) {
			killed++
		}
	}
	WaitWorker(t, StartWorker(t, db, cfg), 2*time.Minute)
	sum := CheckSweep(t, s, st.ID, kills, cfg.Log)
	if killed < 3 || sum.Rerun == 0 {
		t.Fatalf("%d of %d workers killed mid-sweep, %d trials re-run: the kills did not land", killed, kills, sum.Rerun)
	}
	t.Logf("kill-resume: %d trials, %d SIGKILLs, %d attempts, %d trials re-run, every trial complete exactly once with its own result", sum.Trials, killed, sum.Attempts, sum.Rerun)
}

// KillAmong runs steady worker processes on db that are never killed and
// one more that is killed and restarted at random times, without
// RecoverTrials: the trials a victim held are taken over by the others
// once their leases (400ms) lapse on the database's clock.
func KillAmong(t *testing.T, s store.Store, db string, n, kills, steady int, seed uint64) {
	st := PlanSweep(t, s, n)
	cfg := SweepWorkerConfig{Study: st.ID, Log: filepath.Join(t.TempDir(), "worker.log"), Lease: 400 * time.Millisecond}
	var steadies []*exec.Cmd
	for range steady {
		steadies = append(steadies, StartWorker(t, db, cfg))
	}
	rng := rand.New(rand.NewPCG(seed, 2026))
	killed := 0
	logs := []string{cfg.Log}
	for i := range kills {
		if SweepDone(t, s, st.ID) {
			break
		}
		victim := cfg
		victim.Log = filepath.Join(t.TempDir(), fmt.Sprintf("victim%d.log", i))
		logs = append(logs, victim.Log)
		cmd := StartWorker(t, db, victim)
		if !AwaitProgress(t, s, st.ID, victim.Log, time.Minute) {
			KillWorker(t, cmd)
			break
		}
		time.Sleep(time.Duration(rng.IntN(100)) * time.Millisecond)
		if KillWorker(t, cmd) {
			killed++
		}
	}
	for _, cmd := range steadies {
		WaitWorker(t, cmd, 2*time.Minute)
	}
	sum := CheckSweep(t, s, st.ID, kills, logs...)
	if killed < 2 || sum.Rerun == 0 {
		t.Fatalf("%d workers killed, %d trials re-run: the kills did not land", killed, sum.Rerun)
	}
	t.Logf("%d processes: %d trials, %d SIGKILLs, %d attempts, %d trials re-run (a killed process held up to 2), %d late results refused",
		steady+1, sum.Trials, killed, sum.Attempts, sum.Rerun, sum.Lost)
}

// BenchPlans returns n plans shaped like B0 trials of a search.
func BenchPlans(n int) []store.Plan {
	ps := make([]store.Plan, n)
	for i := range ps {
		ps[i] = store.Plan{
			Key:     fmt.Sprintf("k3e6_k5e6_k3e3_%06d", i),
			Choices: []byte(`{"kernel":[3,5,3,5,3,5,3],"expand":[6,6,3,6,6,6,6],"se":[1,1,1,1,1,1,1],"layers":[1,2,2,3,3,4,1]}`),
			Blocks: []string{"r1_k3_s11_e1_i32_o16_se0.25", "r2_k3_s22_e6_i16_o24_se0.25", "r2_k5_s22_e6_i24_o40_se0.25",
				"r3_k3_s22_e6_i40_o80_se0.25", "r3_k5_s11_e6_i80_o112_se0.25", "r4_k5_s22_e6_i112_o192_se0.25", "r1_k3_s11_e6_i192_o320_se0.25"},
			Params: 5_288_548,
			FLOPs:  385_814_752,
		}
	}
	return ps
}

// BenchClaimFinish measures the store's overhead per trial: one claim and
// one compare-and-set finish.
func BenchClaimFinish(b *testing.B, s store.Store) {
	ctx := b.Context()
	st, err := s.CreateStudy(ctx, store.Study{Kind: store.KindSearch}, BenchPlans(b.N))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		got, err := s.ClaimTrials(ctx, st.ID, store.Claim{Worker: "w", Limit: 1, Lease: time.Minute})
		if err != nil || len(got) != 1 {
			b.Fatal(len(got), err)
		}
		if err := s.FinishTrial(ctx, got[0].Lease(), store.Result{Accuracy: 0.5, Reward: 0.4, Seconds: 1}); err != nil {
			b.Fatal(err)
		}
	}
}
