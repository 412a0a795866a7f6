package faults_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/effnas/effnas/internal/testenv"
	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/store/postgres"
)

// pgServer is a PostgreSQL server of the test's own: restarting the shared
// test server would break the tests of other packages running beside.
type pgServer struct {
	t      *testing.T
	bindir string
	data   string
	port   int
	url    string
	asUser []string // runuser -u postgres -- when the test runs as root
}

// startPostgres initialises a cluster in a temporary folder and starts a
// server on a free port of 127.0.0.1, without fsync (a crash of the
// machine is not what the tests are about); it is stopped when the test
// ends. Without PostgreSQL's server binaries the test is skipped (or
// fails in CI).
func startPostgres(t *testing.T) *pgServer {
	t.Helper()
	initdb, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(initdb) == 0 {
		testenv.Missing(t, "no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb): apt-get install postgresql")
	}
	sort.Strings(initdb) // the newest major version last (same number of digits)
	s := &pgServer{t: t, bindir: filepath.Dir(initdb[len(initdb)-1])}
	root := t.TempDir()
	s.data = filepath.Join(root, "pg")
	must(t, os.Mkdir(s.data, 0o700))
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root: run it as postgres, which
		// must reach and own its folder.
		u, err := user.Lookup("postgres")
		if err != nil {
			testenv.Missing(t, "running as root and no postgres user to run the PostgreSQL server as: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		for d := root; d != filepath.Dir(d) && d != os.TempDir(); d = filepath.Dir(d) {
			must(t, os.Chmod(d, 0o755))
		}
		must(t, os.Chown(s.data, uid, gid))
		s.asUser = []string{"runuser", "-u", "postgres", "--"}
	}
	s.run("initdb", "-D", s.data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C")
	s.port = freePort(t)
	s.url = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable&connect_timeout=5", s.port)
	s.start()
	t.Cleanup(func() { s.ctl("stop", "-m", "immediate", "-w") })
	return s
}

// run runs one of the server's programs as the server's user.
func (s *pgServer) run(prog string, args ...string) {
	s.t.Helper()
	argv := append(append(append([]string{}, s.asUser...), filepath.Join(s.bindir, prog)), args...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = s.data
	// A server that pg_ctl starts keeps any output pipe it inherits: never
	// wait for that pipe to close once pg_ctl itself has exited.
	cmd.WaitDelay = 5 * time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		s.t.Fatalf("%s: %v\n%s", prog, err, out)
	}
}

// ctl runs pg_ctl on the cluster.
func (s *pgServer) ctl(args ...string) {
	s.t.Helper()
	s.run("pg_ctl", append([]string{"-D", s.data}, args...)...)
}

// start starts the server and waits until it accepts connections.
func (s *pgServer) start() {
	s.t.Helper()
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off -c full_page_writes=off", s.port)
	s.ctl("start", "-w", "-t", "30", "-o", opts, "-l", filepath.Join(s.data, "server.log"))
}

// TestPostgresRestart: the database restarts (pg_ctl restart -m
// immediate, then pg_ctl stop -m immediate and start: a crash and its
// recovery) in the middle of a sweep run by a
// coordinator and two workers (--until-done). Every process reconnects,
// the study finishes and every process exits 0; no trial fails, every attempt is accounted for, and each
// process reports the outage once and its end once, however many of its
// calls retried meanwhile.
//
// pg_ctl restart brings the server back within a second or two, before a
// process that happens to be between store calls notices: after it, the
// test stops the server, waits until every process has reported the
// outage, then starts it, so that each process's reports can be counted. The outage
// stays shorter than the workers' lease, as a restart is: a 12s lease
// renews every 4s and its heartbeat's backoff gives up early, so that
// an outage of up to about 6s after the first failed renewal passes
// without a crash (a start of PostgreSQL took 3.7s at a load of 23 on
// 2 cores).
func TestPostgresRestart(t *testing.T) {
	t0 := time.Now()
	pg := startPostgres(t)
	t.Logf("server up after %v", time.Since(t0).Round(10*time.Millisecond))
	const trials = 8
	c := start(t, "coordinator", append([]string{"search", "--db", pg.url, "--trials", strconv.Itoa(trials), "--workers", "1", "--epochs", "20"}, tiny...)...)
	worker := func(name string) *proc {
		return start(t, name, "worker", "--db", pg.url, "--workers", "1", "--threads", "1", "--lease", "12s", "--poll", "100ms", "--until-done")
	}
	w1, w2 := worker("worker 1"), worker("worker 2")
	procs := []*proc{c, w1, w2}

	ctx := t.Context()
	st, err := postgres.Open(ctx, pg.url, postgres.Options{})
	must(t, err)
	study, err := latestStudy(t, st, 20*time.Second)
	must(t, err)
	waitTrials(t, st, study.ID, 20*time.Second, "mid-sweep", func(all []store.Trial) bool {
		done := 0
		for _, tr := range all {
			if tr.State == store.TrialComplete {
				done++
			}
		}
		return done >= 1 && done < trials
	})
	st.Close()

	t.Logf("mid-sweep after %v", time.Since(t0).Round(10*time.Millisecond))
	// The restart itself, as an operator (or a crash) does it. A process
	// may see it or not: it is over within a second or two.
	pg.ctl("restart", "-m", "immediate", "-w", "-t", "30", "-l", filepath.Join(pg.data, "server.log"))
	t.Logf("restarted (pg_ctl restart -m immediate) after %v", time.Since(t0).Round(10*time.Millisecond))
	time.Sleep(500 * time.Millisecond)
	// Then a longer outage that every process sees.
	pg.ctl("stop", "-m", "immediate", "-w")
	down := time.Now()
	for _, p := range procs {
		p.WaitFor(unreachable, 1, 15*time.Second)
	}
	t.Logf("all saw it after %v", time.Since(down).Round(10*time.Millisecond))
	pg.start()
	t.Logf("the server was down for %v", time.Since(down).Round(10*time.Millisecond))

	if code := c.Wait(40 * time.Second); code != 0 {
		t.Fatalf("coordinator exited with %d after the restart; want 0", code)
	}
	t.Logf("coordinator done after %v", time.Since(t0).Round(10*time.Millisecond))
	for _, w := range []*proc{w1, w2} {
		if code := w.Wait(20 * time.Second); code != 0 {
			t.Errorf("%s exited with %d once the study was complete; want 0", w.Name, code)
		}
	}

	st, err = postgres.Open(ctx, pg.url, postgres.Options{})
	must(t, err)
	defer st.Close()
	study, err = st.Study(ctx, study.ID)
	must(t, err)
	if study.Status != store.StudyComplete {
		t.Errorf("study %d: %s; want complete", study.ID, study.Status)
	}
	all, err := st.Trials(ctx, study.ID)
	must(t, err)
	accounted(t, all, trials, c.Worker(), w1.Worker(), w2.Worker())
	t.Logf("trials:%s", describe(all))
	for _, p := range procs {
		// Two outages (the restart, which a process may miss, and the
		// stop): one report and one recovery each, never one per retry.
		if down, up := p.Count(unreachable), p.Count(reachableAgain); down < 1 || down > 2 || up != down {
			t.Errorf("%s reported the store unreachable %d times and reachable again %d times; want once each per outage it saw (1 or 2)", p.Name, down, up)
		}
		if up, err := p.LookFor(reachableAgain, 1, 0); err == nil {
			t.Logf("%s: %s", p.Name, up[0])
		}
	}
}

// latestStudy waits for the coordinator to create its study.
func latestStudy(t *testing.T, st store.Store, timeout time.Duration) (store.Study, error) {
	t.Helper()
	for deadline := time.Now().Add(timeout); ; time.Sleep(20 * time.Millisecond) {
		s, err := st.LatestStudy(t.Context(), "")
		if err == nil || time.Now().After(deadline) {
			return s, err
		}
	}
}
