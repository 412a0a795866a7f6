package sqlite_test

import (
	"context"
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

func openFile(t *testing.T) (*sqlite.Store, string) {
	path := filepath.Join(t.TempDir(), "sweep.db")
	s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// TestKillResume: a worker process is killed with SIGKILL at random
// points; each restart recovers the study as its only process.
func TestKillResume(t *testing.T) {
	s, path := openFile(t)
	storetest.KillResume(t, s, path, 150, 8, 4)
}

// TestKillTwoProcesses: two worker processes share one file; one is
// killed and restarted, and the other takes its trials over.
func TestKillTwoProcesses(t *testing.T) {
	s, path := openFile(t)
	storetest.KillAmong(t, s, path, 300, 5, 1, 5)
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
	st, err := a.CreateStudy(ctx, store.Study{Kind: store.KindGrid}, nil)
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
				got, err := s.ClaimTrials(ctx, st.ID, store.Claim{Worker: "w" + strconv.Itoa(w), Limit: 2, Lease: time.Minute})
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
