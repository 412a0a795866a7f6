package faults_test

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/effnas/effnas/internal/testenv"
	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/store/sqlite"
)

// coordinatorFinished is a coordinator's line for a finished trial.
var coordinatorFinished = regexp.MustCompile(`^trial (\d+) \(rung \d+, seed \d+\): accuracy ([0-9.]+)`)

// TestDiskFullSQLite: the disk of a search's SQLite file fills up while it
// runs. The search stops at once (no retry can mend a full disk), exits
// non-zero saying the disk is full and what to do; every trial committed
// before is intact and the file passes PRAGMA integrity_check; once space
// is freed, effnas resume finishes the study.
//
// The disk is a tmpfs of its own, filled with a file the test writes and
// removes. Where mounting is not allowed, the search runs under
// RLIMIT_FSIZE instead (prlimit): its files cannot grow past a bound, and
// SQLite sees the same short writes; the resume runs without the bound.
func TestDiskFullSQLite(t *testing.T) {
	ctx := t.Context()
	dir := filepath.Join(t.TempDir(), "disk")
	must(t, os.Mkdir(dir, 0o755))
	mounted := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", dir).Run() == nil
	if mounted {
		t.Cleanup(func() {
			if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
				t.Errorf("umount %s: %v %s", dir, err, out)
			}
		})
	}
	db := filepath.Join(dir, "s.db")
	const trials = 8
	args := append([]string{"search", "--db", db, "--trials", fmt.Sprint(trials), "--workers", "1", "--epochs", "10"}, tiny...)
	var c *proc
	if mounted {
		c = start(t, "search", args...)
	} else {
		prlimit, err := exec.LookPath("prlimit")
		if err != nil {
			t.Skipf("cannot mount a tmpfs (not root?) and no prlimit (util-linux) for RLIMIT_FSIZE: %v", err)
		}
		t.Logf("mount -t tmpfs failed (no privilege): the search runs under RLIMIT_FSIZE (prlimit --fsize) instead of on a full disk")
		// The new database's write-ahead log takes some 100 KB, and each
		// trial adds 20 to 40 KB: the bound is met after a few trials.
		c = testenv.StartProc(t, "search", exec.Command(prlimit, append([]string{"--fsize=262144", "--", bin}, args...)...))
	}
	c.WaitFor(coordinatorFinished, 1, 20*time.Second)
	filler := filepath.Join(dir, "filler")
	if mounted {
		fill(t, filler)
	}
	code := c.Wait(20 * time.Second)
	if code == 0 {
		t.Fatalf("the search on a full disk exited 0; want a failure:\n%s", c.Log())
	}
	lines := strings.Split(c.Log(), "\n")
	t.Logf("the search exited %d: %s", code, lines[len(lines)-1])
	if want := "disk is full: free space and run effnas resume"; !strings.Contains(c.Log(), want) {
		t.Errorf("the search's stderr does not say %q:\n%s", want, c.Log())
	}
	if n := c.Count(regexp.MustCompile(`kept failing`)); n > 0 {
		t.Errorf("the search retried the full disk as if the store were unreachable:\n%s", c.Log())
	}
	if n := c.Count(regexp.MustCompile(`^panic|^goroutine \d+`)); n > 0 {
		t.Errorf("the search panicked:\n%s", c.Log())
	}

	// Every trial the search reported finished was committed: each is in
	// the file as reported, and the file is sound.
	after := readTrials(t, db)
	committed := 0
	for _, l := range lines {
		m := coordinatorFinished.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		committed++
		n, _ := strconv.Atoi(m[1])
		if tr, ok := trialOf(after, n); !ok || tr.State != store.TrialComplete || fmt.Sprintf("%.4f", tr.Accuracy) != m[2] {
			t.Errorf("trial %d, reported finished with accuracy %s before the disk filled: %+v in the file", n, m[2], tr)
		}
	}
	integrity(t, db)
	t.Logf("%d trials committed before the disk filled; %d trials in the file after the failure", committed, len(after))

	// Free the space and resume.
	if mounted {
		must(t, os.Remove(filler))
	}
	r := start(t, "resume", "resume", "--db", db, "--workers", "1", "--threads", "1")
	if code := r.Wait(30 * time.Second); code != 0 {
		t.Fatalf("resume after space was freed exited %d:\n%s", code, r.Log())
	}
	st, err := sqlite.Open(ctx, db, sqlite.Options{ReadOnly: true})
	must(t, err)
	defer st.Close()
	study, err := st.LatestStudy(ctx, "")
	must(t, err)
	if study.Status != store.StudyComplete {
		t.Errorf("study %d after resume: %s; want complete", study.ID, study.Status)
	}
	final, err := st.Trials(ctx, study.ID)
	must(t, err)
	host, _ := os.Hostname()
	accounted(t, final, trials, fmt.Sprintf("%s:%d", host, c.Cmd.Process.Pid), fmt.Sprintf("%s:%d", host, r.Cmd.Process.Pid))
	integrity(t, db)
}

// fill writes path until its file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	must(t, err)
	defer f.Close()
	buf := make([]byte, 64<<10)
	for size := len(buf); size >= 512; {
		if _, err := f.Write(buf[:size]); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill %s: %v", path, err)
			}
			size /= 2
		}
	}
}

// readTrials reads the newest study's trials from the SQLite file without
// writing it.
func readTrials(t *testing.T, path string) []store.Trial {
	t.Helper()
	st, err := sqlite.Open(t.Context(), path, sqlite.Options{ReadOnly: true})
	must(t, err)
	defer st.Close()
	study, err := st.LatestStudy(t.Context(), "")
	must(t, err)
	trials, err := st.Trials(t.Context(), study.ID)
	must(t, err)
	return trials
}

// integrity runs PRAGMA integrity_check on the SQLite file.
func integrity(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	must(t, err)
	defer db.Close()
	var res string
	if err := db.QueryRowContext(t.Context(), "PRAGMA integrity_check").Scan(&res); err != nil || res != "ok" {
		t.Errorf("PRAGMA integrity_check of %s: %q, %v; want ok", path, res, err)
	}
}
