package main

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3" // the "sqlite3" driver

	"github.com/effnas/effnas/internal/testenv"
)

// halvingArgs is a small successive-halving search: 6 candidates at rung
// 0, the best half climb to rung 1, and the best 3 there are trained
// under a second seed. One worker, one thread: deterministic.
func halvingArgs(db string) []string {
	return []string{"search", "--db", db, "--trials", "6", "--rungs", "2", "--eta", "2", "--top-seeds", "2",
		"--workers", "1", "--threads", "1", "--controller", "evolution", "--seed", "11",
		"--train-size", "192", "--val-size", "96", "--test-size", "32", "--proxy-width", "0.25", "--proxy-res", "16", "--batch", "32", "--epochs", "2"}
}

type shownTrial struct {
	Number   int      `json:"number"`
	Key      string   `json:"key"`
	Rung     int      `json:"rung"`
	Seed     int      `json:"seed"`
	State    string   `json:"state"`
	Accuracy *float64 `json:"accuracy"`
	Test     *float64 `json:"test_accuracy"`
}

type shown struct {
	Study struct {
		Status string `json:"status"`
	} `json:"study"`
	Trials []shownTrial `json:"trials"`
	Best   *shownTrial  `json:"best"`
}

func showStudy(t *testing.T, bin, db string) shown {
	t.Helper()
	out, err := exec.Command(bin, "show", "--db", db, "--json").Output()
	if err != nil {
		t.Fatalf("show: %v", err)
	}
	var s shown
	if err := json.Unmarshal(out, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func trialList(s shown) string {
	var b strings.Builder
	for _, t := range s.Trials {
		acc := "-"
		if t.Accuracy != nil {
			acc = fmt.Sprintf("%.6f", *t.Accuracy)
		}
		fmt.Fprintf(&b, "%s rung %d seed %d %s %s\n", t.Key, t.Rung, t.Seed, t.State, acc)
	}
	return b.String()
}

// holdSQLiteTrial waits until the SQLite database at path shows a trial
// running and takes the write lock (BEGIN IMMEDIATE) in a transaction
// kept open until release is called or the test ends. SQLite writes are
// made by the writing process itself: while the lock is held a search
// can record nothing (its writes wait for the lock, up to its 30 s busy
// timeout), so the trial stays running as it was read, however fast the
// machine trains; killed meanwhile, the search leaves it running. The
// SQLite counterpart of holdTrial, which holds only the trial's row.
func holdSQLiteTrial(t *testing.T, path string, timeout time.Duration) (number int, release func()) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_txlock=immediate&_busy_timeout=30000")
	if err != nil {
		t.Fatal(err)
	}
	var tx *sql.Tx
	var once sync.Once
	release = func() {
		once.Do(func() {
			if tx != nil {
				tx.Rollback()
			}
			db.Close()
		})
	}
	t.Cleanup(release)
	for deadline := time.Now().Add(timeout); ; time.Sleep(2 * time.Millisecond) {
		if tx, err = db.Begin(); err != nil {
			t.Fatal(err)
		}
		err = tx.QueryRow("SELECT number FROM trials WHERE state = 'running' ORDER BY number LIMIT 1").Scan(&number)
		if err == nil {
			return number, release
		}
		tx.Rollback()
		tx = nil
		if !errors.Is(err, sql.ErrNoRows) {
			t.Fatalf("look for a running trial in %s: %v", path, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no trial running in %s within %v", path, timeout)
		}
	}
}

var rung1Line = regexp.MustCompile(`training rung 1 seed 0`)

// TestHalvingKillResumeDeterministic: a kill -9 in the middle of rung 1
// and a resume give the same trials (candidates, promotions, finalists'
// seeds, in the same order, with the same accuracies) and the same B0 as
// an uninterrupted run with the same seed; on SQLite and PostgreSQL. The
// kill lands mid-trial however fast the machine trains: the test holds a
// trial the store shows running (its row on PostgreSQL, the write lock
// on SQLite) from before the kill until the process is dead.
func TestHalvingKillResumeDeterministic(t *testing.T) {
	bin := buildEffnas(t)
	// Each database is made with the subtest's t, so that a missing
	// server skips (or, in CI, fails) the subtest alone.
	backends := map[string]struct {
		db   func(t *testing.T) string
		hold func(t *testing.T, db string, p *proc) (int, func())
	}{
		"sqlite": {
			db: func(t *testing.T) string { return filepath.Join(t.TempDir(), "h.db") },
			hold: func(t *testing.T, db string, _ *proc) (int, func()) {
				return holdSQLiteTrial(t, db, 40*time.Second)
			},
		},
		"postgres": {
			db: func(t *testing.T) string { return testenv.PostgresSchema(t, testenv.PostgresURL(t)) },
			hold: func(t *testing.T, db string, p *proc) (int, func()) {
				return holdTrial(t, db, p.Worker(), 40*time.Second)
			},
		},
	}
	for _, name := range []string{"sqlite", "postgres"} {
		be := backends[name]
		t.Run(name, func(t *testing.T) {
			straight, killed := be.db(t), be.db(t)
			if out, err := exec.Command(bin, halvingArgs(straight)...).CombinedOutput(); err != nil {
				t.Fatalf("uninterrupted search: %v\n%s", err, out)
			}
			want := showStudy(t, bin, straight)

			p := startProc(t, bin, "interrupted search", halvingArgs(killed)...)
			p.WaitFor(rung1Line, 1, 2*time.Minute) // a rung-1 trial has started
			// Kill the search while holding a trial it is running, so
			// that it cannot finish it between the look and the kill,
			// nor finish the study meanwhile.
			held, release := be.hold(t, killed, p)
			if err := p.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			p.Wait(10 * time.Second)
			release()
			mid := showStudy(t, bin, killed)
			i := slices.IndexFunc(mid.Trials, func(tr shownTrial) bool { return tr.Number == held })
			if i < 0 || mid.Trials[i].State != "running" || mid.Trials[i].Rung != 1 {
				t.Fatalf("trial %d was held running until the kill; want it running at rung 1 after it:\n%s", held, trialList(mid))
			}
			if out, err := exec.Command(bin, "resume", "--db", killed, "--workers", "1", "--threads", "1").CombinedOutput(); err != nil {
				t.Fatalf("resume: %v\n%s", err, out)
			}
			got := showStudy(t, bin, killed)
			if trialList(got) != trialList(want) {
				t.Errorf("after kill -9 and resume the trials differ\ngot:\n%swant:\n%s", trialList(got), trialList(want))
			}
			if got.Best == nil || want.Best == nil || got.Best.Key != want.Best.Key || got.Study.Status != "complete" {
				t.Errorf("best %+v (%s), want %+v", got.Best, got.Study.Status, want.Best)
			}
			rung1, seeds := 0, 0
			for _, tr := range want.Trials {
				if tr.Rung == 1 && tr.Seed == 0 {
					rung1++
				}
				if tr.Seed > 0 {
					seeds++
				}
			}
			if rung1 < 3 || seeds != 3 {
				t.Errorf("%d candidates at rung 1, %d finalists' extra seeds; want at least 3 and 3:\n%s", rung1, seeds, trialList(want))
			}
		})
	}
}
