package sqlite_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/store/sqlite"
	"github.com/effnas/effnas/store/storetest"
)

func TestMain(m *testing.M) {
	if db := storetest.WorkerDB(); db != "" {
		os.Exit(storetest.WorkerMain(func(ctx context.Context) (store.Store, error) {
			return sqlite.Open(ctx, db, sqlite.Options{})
		}))
	}
	os.Exit(m.Run())
}

// TestKillResume kills a real worker process with SIGKILL at random points
// of a sweep, resumes (RecoverTrials, as the only process) until done, and
// checks that every trial completed exactly once with its own result, that
// no accepted result was lost, and that the attempts add up.
func TestKillResume(t *testing.T) {
	const trials, kills = 150, 8
	path := filepath.Join(t.TempDir(), "sweep.db")
	s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st := storetest.PlanSweep(t, s, trials)
	cfg := storetest.SweepWorkerConfig{Study: st.ID, Log: filepath.Join(t.TempDir(), "worker.log"), Recover: true, Lease: time.Minute}
	rng := rand.New(rand.NewPCG(4, 2026))
	killed := 0
	for range kills {
		if storetest.SweepDone(t, s, st.ID) {
			break
		}
		cmd := storetest.StartWorker(t, path, cfg)
		if !storetest.AwaitProgress(t, s, st.ID, cfg.Log, time.Minute) {
			storetest.KillWorker(t, cmd)
			break
		}
		time.Sleep(time.Duration(rng.IntN(100)) * time.Millisecond)
		if storetest.KillWorker(t, cmd) {
			killed++
		}
	}
	storetest.WaitWorker(t, storetest.StartWorker(t, path, cfg), 2*time.Minute)
	sum := storetest.CheckSweep(t, s, st.ID, kills, cfg.Log)
	if killed < 3 || sum.Rerun == 0 {
		t.Fatalf("%d of %d workers killed mid-sweep, %d trials re-run: the kills did not land", killed, kills, sum.Rerun)
	}
	t.Logf("kill-resume: %d trials, %d SIGKILLs, %d attempts, %d trials re-run, every trial complete exactly once with its own result", sum.Trials, killed, sum.Attempts, sum.Rerun)
}

// TestKillTwoProcesses runs two worker processes on one file at once
// without RecoverTrials; one is killed and restarted at random times, and
// the trial it held is taken over by the other after its lease expires.
func TestKillTwoProcesses(t *testing.T) {
	const trials, kills = 150, 5
	path := filepath.Join(t.TempDir(), "sweep.db")
	s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st := storetest.PlanSweep(t, s, trials)
	cfg := storetest.SweepWorkerConfig{Study: st.ID, Log: filepath.Join(t.TempDir(), "worker.log"), Lease: 400 * time.Millisecond}
	steady := storetest.StartWorker(t, path, cfg)
	rng := rand.New(rand.NewPCG(5, 2026))
	killed := 0
	logs := []string{cfg.Log}
	for i := range kills {
		if storetest.SweepDone(t, s, st.ID) {
			break
		}
		victim := cfg
		victim.Log = filepath.Join(t.TempDir(), fmt.Sprintf("victim%d.log", i))
		logs = append(logs, victim.Log)
		cmd := storetest.StartWorker(t, path, victim)
		if !storetest.AwaitProgress(t, s, st.ID, victim.Log, time.Minute) {
			storetest.KillWorker(t, cmd)
			break
		}
		time.Sleep(time.Duration(rng.IntN(100)) * time.Millisecond)
		if storetest.KillWorker(t, cmd) {
			killed++
		}
	}
	storetest.WaitWorker(t, steady, 2*time.Minute)
	sum := storetest.CheckSweep(t, s, st.ID, kills, logs...)
	if killed < 2 || sum.Rerun == 0 {
		t.Fatalf("%d workers killed, %d trials re-run: the kills did not land", killed, sum.Rerun)
	}
	t.Logf("two processes: %d trials, %d SIGKILLs, %d attempts, %d trials re-run (a killed process held up to 2), %d late results refused", sum.Trials, killed, sum.Attempts, sum.Rerun, sum.Lost)
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
