package sqlite_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
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
	"github.com/effnas/effnas/store/sqlite"
)

// The kill test re-executes this test binary as a worker process.
const (
	childEnv   = "EFFNAS_SQLITE_KILL_CHILD" // database path; set only in the child
	childLog   = "EFFNAS_SQLITE_KILL_LOG"
	childStudy = "EFFNAS_SQLITE_KILL_STUDY"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		if err := runChild(path); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(3)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// train is the child's stand-in for training: a deterministic function of
// the key that takes a few milliseconds.
func train(key string) float64 {
	h := sha256.Sum256([]byte(key))
	for range 3000 {
		h = sha256.Sum256(h[:])
	}
	return float64(binary.BigEndian.Uint32(h[:4])) / (1 << 32)
}

// runChild is the worker process: it recovers the study (it is the only
// process), then two goroutines claim, train and finish until nothing is
// left, logging each claim and each accepted result after it committed.
func runChild(path string) error {
	ctx := context.Background()
	study, err := strconv.ParseInt(os.Getenv(childStudy), 10, 64)
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(os.Getenv(childLog), os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	s, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	if _, err := s.RecoverTrials(ctx, study); err != nil {
		return err
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			worker := fmt.Sprintf("pid%d-w%d", os.Getpid(), w)
			for {
				got, err := s.ClaimTrials(ctx, study, worker, 1, 10*time.Second)
				if err != nil {
					errs <- err
					return
				}
				if len(got) == 0 {
					return
				}
				tr := got[0]
				fmt.Fprintf(logf, "claim %d %d\n", tr.Number, tr.Attempt)
				start := time.Now()
				acc := train(tr.Key)
				time.Sleep(2 * time.Millisecond)
				err = s.FinishTrial(ctx, tr.Lease(), store.Result{Accuracy: acc, Reward: acc / 2, Seconds: time.Since(start).Seconds()})
				if err != nil {
					errs <- err
					return
				}
				fmt.Fprintf(logf, "finish %d %d %v\n", tr.Number, tr.Attempt, acc)
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// TestKillResume kills a real worker process with SIGKILL at random points
// of a sweep, resumes until done, and checks that every trial completed
// exactly once with its own result, that no accepted result was lost, and
// that the attempts add up.
func TestKillResume(t *testing.T) {
	ctx := t.Context()
	const trials, kills = 120, 8
	path := filepath.Join(t.TempDir(), "sweep.db")
	logPath := filepath.Join(t.TempDir(), "worker.log")
	s, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.CreateStudy(ctx, store.Study{Kind: store.KindSearch, MaxAttempts: 100})
	if err != nil {
		t.Fatal(err)
	}
	ps := make([]store.Plan, trials)
	for i := range ps {
		ps[i] = store.Plan{Key: fmt.Sprintf("cand-%d", i)}
	}
	if _, err := s.PlanTrials(ctx, st.ID, ps, nil); err != nil {
		t.Fatal(err)
	}
	s.Close()

	start := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+path, childLog+"="+logPath, childStudy+"="+strconv.FormatInt(st.ID, 10))
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	rng := rand.New(rand.NewPCG(4, 2026))
	killed := 0
	for range kills {
		cmd := start()
		time.Sleep(time.Duration(50+rng.IntN(250)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			killed++
		} else if err != nil {
			t.Fatalf("child failed before it was killed: %v", err)
		}
	}
	cmd := start()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("final child: %v", err)
		}
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		t.Fatal("final child did not finish the sweep within 2 minutes")
	}

	// Read what the workers saw.
	claims := map[int][]int{}
	type fin struct {
		attempt int
		acc     float64
	}
	finishes := map[int][]fin{}
	f, err := os.Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var n, a int
		var acc float64
		fields := strings.Fields(sc.Text())
		switch {
		case len(fields) == 3 && fields[0] == "claim":
			fmt.Sscan(fields[1]+" "+fields[2], &n, &a)
			claims[n] = append(claims[n], a)
		case len(fields) == 4 && fields[0] == "finish":
			fmt.Sscan(fields[1]+" "+fields[2]+" "+fields[3], &n, &a, &acc)
			finishes[n] = append(finishes[n], fin{a, acc})
		default:
			// A line cut by SIGKILL mid-write; the database is the truth.
		}
	}

	s, err = sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	all, err := s.Trials(ctx, st.ID)
	if err != nil || len(all) != trials {
		t.Fatalf("%d trials, %v; want %d", len(all), err, trials)
	}
	attempts, rerun := 0, 0
	for i, tr := range all {
		if tr.Number != i || tr.Key != fmt.Sprintf("cand-%d", i) {
			t.Fatalf("trial %d is %d %q: numbers or candidates changed", i, tr.Number, tr.Key)
		}
		if tr.State != store.TrialComplete || tr.Accuracy != train(tr.Key) || tr.Reward != tr.Accuracy/2 {
			t.Fatalf("trial %d: %s accuracy %v, want complete with %v", i, tr.State, tr.Accuracy, train(tr.Key))
		}
		if len(finishes[i]) > 1 {
			t.Fatalf("trial %d was finished %d times: %+v", i, len(finishes[i]), finishes[i])
		}
		if fs := finishes[i]; len(fs) == 1 && (fs[0].attempt != tr.Attempt || fs[0].acc != tr.Accuracy) {
			t.Fatalf("trial %d: a worker's accepted result (attempt %d, %v) is not the stored one (attempt %d, %v)", i, fs[0].attempt, fs[0].acc, tr.Attempt, tr.Accuracy)
		}
		// A claim is logged after it commits, so SIGKILL may swallow the
		// last line: the database counts the logged claims, or one more.
		if c := len(claims[i]); tr.Attempt != c && tr.Attempt != c+1 {
			t.Fatalf("trial %d: attempt %d in the database, %d claims logged", i, tr.Attempt, c)
		}
		for _, a := range claims[i] {
			if a > tr.Attempt {
				t.Fatalf("trial %d was claimed again (attempt %d) after it completed on attempt %d", i, a, tr.Attempt)
			}
		}
		attempts += tr.Attempt
		if tr.Attempt > 1 {
			rerun++
		}
	}
	if killed < kills/2 {
		t.Fatalf("only %d of %d children were killed mid-sweep; the test did not test much", killed, kills)
	}
	if rerun == 0 {
		t.Fatalf("no trial needed a second attempt: no kill landed mid-trial")
	}
	t.Logf("kill test: %d trials, %d SIGKILLs, %d attempts in all, %d trials re-run after a kill, every trial complete exactly once with its own result", trials, killed, attempts, rerun)
}

// TestTwoHandlesOneFile: two stores on one file (as two processes would
// open it) claim concurrently; every trial is claimed exactly once and no
// write fails with "database is locked".
func TestTwoHandlesOneFile(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "shared.db")
	a, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	st, err := a.CreateStudy(ctx, store.Study{Kind: store.KindGrid})
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	ps := make([]store.Plan, n)
	for i := range ps {
		ps[i] = store.Plan{Key: strconv.Itoa(i), Grid: &store.GridPoint{Alpha: 1 + float64(i)/100, Beta: 1, Gamma: 1}}
	}
	if _, err := b.PlanTrials(ctx, st.ID, ps, nil); err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		claimed = map[int]int{}
		wg      sync.WaitGroup
		errs    = make(chan error, 16)
	)
	for w := range 16 {
		s := a
		if w%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				got, err := s.ClaimTrials(ctx, st.ID, "w"+strconv.Itoa(w), 2, time.Minute)
				if err != nil {
					errs <- err
					return
				}
				if len(got) == 0 {
					return
				}
				for _, tr := range got {
					mu.Lock()
					claimed[tr.Number]++
					mu.Unlock()
					if err := s.FinishTrial(ctx, tr.Lease(), store.Result{Accuracy: tr.Grid.Alpha, Reward: 1}); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	c, err := a.CountTrials(ctx, st.ID)
	if err != nil || c != (store.Counts{Complete: n}) || len(claimed) != n {
		t.Fatalf("counts %+v (%v), %d claimed; want %d complete", c, err, len(claimed), n)
	}
	for num, k := range claimed {
		if k != 1 {
			t.Fatalf("trial %d claimed %d times", num, k)
		}
	}
}
