package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

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

// TestHalvingKillResumeDeterministic: a kill -9 in the middle of rung 1
// and a resume give the same trials (candidates, promotions, finalists'
// seeds, in the same order, with the same accuracies) and the same B0 as
// an uninterrupted run with the same seed; on SQLite and PostgreSQL.
func TestHalvingKillResumeDeterministic(t *testing.T) {
	bin := buildEffnas(t)
	// Each database is made with the subtest's t, so that a missing
	// server skips (or, in CI, fails) the subtest alone.
	dbs := map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return filepath.Join(t.TempDir(), "h.db") },
		"postgres": func(t *testing.T) string { return testenv.PostgresSchema(t, testenv.PostgresURL(t)) },
	}
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			straight, killed := dbs[name](t), dbs[name](t)
			if out, err := exec.Command(bin, halvingArgs(straight)...).CombinedOutput(); err != nil {
				t.Fatalf("uninterrupted search: %v\n%s", err, out)
			}
			want := showStudy(t, bin, straight)

			cmd := exec.Command(bin, halvingArgs(killed)...)
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var log strings.Builder
			sc := bufio.NewScanner(stderr)
			for sc.Scan() {
				log.WriteString(sc.Text() + "\n")
				if strings.Contains(sc.Text(), "training rung 1 seed 0") {
					break // a rung-1 trial has just started: kill it mid-rung
				}
			}
			time.Sleep(100 * time.Millisecond)
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()
			mid := showStudy(t, bin, killed)
			if !strings.Contains(trialList(mid), "running") {
				t.Fatalf("the kill did not land mid-trial:\n%s\n%s", trialList(mid), log.String())
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
