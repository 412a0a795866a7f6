package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/effnas/effnas/internal/testenv"
	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/store/postgres"
	"github.com/effnas/effnas/store/sqlite"
)

func TestBenchStoreBadFlags(t *testing.T) {
	db := filepath.Join(t.TempDir(), "b.db")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--workers", "0"}, "--workers 0: each count must be a whole number from 1 to 1024"},
		{[]string{"--workers", "8,0"}, "--workers 8,0: each count must be a whole number from 1 to 1024"},
		{[]string{"--workers", "2000"}, "--workers 2000"},
		{[]string{"--workers", "many"}, "--workers many"},
		{[]string{"--trial-ms", "-1"}, "--trial-ms -1: must be 0 to 3600000 milliseconds"},
		{[]string{"--workers", "4", "--procs", "5"}, "--procs 5: must be 1 to --workers (4)"},
		{[]string{"--workers", "8,2", "--procs", "4"}, "--procs 4: must be 1 to --workers (2)"},
		{[]string{"--procs", "-1"}, "--procs -1: must be 0"},
		{[]string{"--trials", "0"}, "--trials 0: must be 1 to 1000000"},
		{[]string{"--lease", "10ms"}, "--lease 10ms: must be 100ms to 24h0m0s"},
		{[]string{"--timeout", "0s"}, "--timeout 0s"},
		{[]string{"stray"}, "stray"},
	} {
		_, err := runCmd(t, append([]string{"bench", "store", "--db", db}, tc.args...)...)
		var u *usageError
		if err == nil || !errors.As(err, &u) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("bench store %v: error %v; want a usage error saying %q", tc.args, err, tc.want)
		}
	}
	t.Setenv(envDB, "")
	if _, err := runCmd(t, "bench", "store"); err == nil || !strings.Contains(err.Error(), "EFFNAS_DB is set but empty") {
		t.Errorf("bench store with EFFNAS_DB empty: error %v; want it to say so", err)
	}
	os.Unsetenv(envDB) // restored by t.Setenv's cleanup
	if _, err := runCmd(t, "bench", "store"); err == nil || !strings.Contains(err.Error(), "--db is required") {
		t.Errorf("bench store without --db: error %v; want --db is required", err)
	}
}

// TestBenchStoreDetectors feeds the double-claim and lost-trial counts
// claim logs written by hand. The lease is 1000 ms.
func TestBenchStoreDetectors(t *testing.T) {
	first := benchClaim{Number: 0, Attempt: 1, Worker: "a", At: 1000, Expires: 2000}
	for _, tc := range []struct {
		name   string
		claims []benchClaim
		want   int
	}{
		{"one claim", []benchClaim{first}, 0},
		{"second claim inside the lease", []benchClaim{first, {Number: 0, Attempt: 2, Worker: "b", At: 1500, Expires: 2500}}, 1},
		// The same pair in the order the processes reported them.
		{"reported out of order", []benchClaim{{Number: 0, Attempt: 2, Worker: "b", At: 1500, Expires: 2500}, first}, 1},
		{"second claim after the lease expired", []benchClaim{first, {Number: 0, Attempt: 2, Worker: "b", At: 2001, Expires: 3001}}, 0},
		// A heartbeat sent at 1800 renewed the lease to 2800 at least.
		{"second claim inside a renewed lease", []benchClaim{{Number: 0, Attempt: 1, Worker: "a", At: 1000, Expires: 2000, Renewed: 1800},
			{Number: 0, Attempt: 2, Worker: "b", At: 2500, Expires: 3500}}, 1},
		// Finished at 1200: the lease ended there.
		{"second claim after the finish", []benchClaim{{Number: 0, Attempt: 1, Worker: "a", At: 1000, Expires: 2000, Finished: 1200},
			{Number: 0, Attempt: 2, Worker: "b", At: 1500, Expires: 2500}}, 0},
		{"other trials do not overlap", []benchClaim{first, {Number: 1, Attempt: 1, Worker: "b", At: 1500, Expires: 2500}}, 0},
		{"three claims at once count two", []benchClaim{first, {Number: 0, Attempt: 2, Worker: "b", At: 1100, Expires: 2100},
			{Number: 0, Attempt: 3, Worker: "c", At: 1200, Expires: 2200}}, 2},
	} {
		if got := doubleClaims(tc.claims, 1000); got != tc.want {
			t.Errorf("%s: %d double claims, want %d", tc.name, got, tc.want)
		}
	}

	done := func(n int, worker string, attempt int) store.Trial {
		return store.Trial{Number: n, State: store.TrialComplete, Worker: worker, Attempt: attempt}
	}
	finished := []benchClaim{{Number: 0, Attempt: 1, Worker: "a", Finished: 1}, {Number: 1, Attempt: 1, Worker: "b", Finished: 1}, {Number: 2, Attempt: 1, Worker: "a", Finished: 1}}
	for _, tc := range []struct {
		name   string
		claims []benchClaim
		final  []store.Trial
		want   int
	}{
		{"all recorded", finished, []store.Trial{done(0, "a", 1), done(1, "b", 1), done(2, "a", 1)}, 0},
		{"a trial missing", finished, []store.Trial{done(0, "a", 1), done(2, "a", 1)}, 1},
		{"a trial left running", finished[:2], []store.Trial{done(0, "a", 1), done(1, "b", 1), {Number: 2, State: store.TrialRunning, Worker: "a", Attempt: 1}}, 1},
		{"a finish recorded as another claim's", finished, []store.Trial{done(0, "a", 1), done(1, "c", 2), done(2, "a", 1)}, 1},
		{"a finish never written", finished, []store.Trial{done(0, "a", 1), done(1, "b", 1), {Number: 2, State: store.TrialPending}}, 1},
	} {
		if got := lostTrials(tc.claims, tc.final, 3); got != tc.want {
			t.Errorf("%s: %d lost, want %d", tc.name, got, tc.want)
		}
	}
}

// TestBenchStore runs bench store in real processes on SQLite and on
// PostgreSQL (the binary built once for both).
func TestBenchStore(t *testing.T) {
	bin := buildEffnas(t)
	t.Run("sqlite", func(t *testing.T) { testBenchStore(t, bin, filepath.Join(t.TempDir(), "bench.db")) })
	t.Run("postgres", func(t *testing.T) { testBenchStore(t, bin, testenv.PostgresSchema(t, testenv.PostgresURL(t))) })
}

// testBenchStore runs bench store on an empty database, then again beside
// another study, which it must leave as it was.
func testBenchStore(t *testing.T, bin, db string) {
	// An empty database: no schema yet. Trials of 250 ms under a lease of
	// 600ms get a heartbeat each (every 200 ms).
	var rep benchStoreReport
	runBenchStoreBin(t, bin, &rep, "--db", db, "--workers", "2", "--procs", "2", "--trials", "8", "--trial-ms", "250", "--lease", "600ms")
	st := openBenchTestDB(t, db)
	checkBenchStoreReport(t, st, rep, benchStoreConfig{Workers: 2, Procs: 2, TrialMS: 250, Trials: 8, LeaseMS: 600})
	if rep.Heartbeats < 1 || rep.HeartbeatsPerSecond <= 0 {
		t.Errorf("%d heartbeats (%.1f/s) for trials of 250 ms under a lease of 600 ms; want one a trial", rep.Heartbeats, rep.HeartbeatsPerSecond)
	}

	// Another study, with a trial running and controller state, is left
	// as it was; a list of worker counts prints a list.
	ctx := t.Context()
	other, err := st.CreateStudy(ctx, store.Study{Name: "other", Kind: store.KindGrid}, []store.Plan{{Key: "x"}, {Key: "y"}, {Key: "z"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.ClaimTrials(ctx, other.ID, store.Claim{Worker: "w", Limit: 1, Lease: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if err := st.SaveControllerState(ctx, other.ID, []byte("state")); err != nil {
		t.Fatal(err)
	}
	before, beforeTrials := benchSnapshot(t, st, other.ID)
	var reps []benchStoreReport
	runBenchStoreBin(t, bin, &reps, "--db", db, "--workers", "1,3", "--procs", "1", "--trials", "20")
	if len(reps) != 2 {
		t.Fatalf("%d reports for --workers 1,3; want 2", len(reps))
	}
	for i, k := range []int{1, 3} {
		checkBenchStoreReport(t, st, reps[i], benchStoreConfig{Workers: k, Procs: 1, Trials: 20, LeaseMS: 120000})
	}
	after, afterTrials := benchSnapshot(t, st, other.ID)
	if !reflect.DeepEqual(before, after) || !reflect.DeepEqual(beforeTrials, afterTrials) {
		t.Errorf("the other study changed:\n%+v\n%+v\nbecame\n%+v\n%+v", before, beforeTrials, after, afterTrials)
	}
	if s, err := st.LoadControllerState(ctx, other.ID); err != nil || string(s) != "state" {
		t.Errorf("the other study's controller state: %q, %v", s, err)
	}
}

// runBenchStoreBin runs bench store --json with args and decodes its report.
func runBenchStoreBin(t *testing.T, bin string, out any, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, append([]string{"bench", "store", "--json"}, args...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("bench store %v: %v\n%s%s", args, err, stdout.String(), stderr.String())
	}
	// Every field the report promises is there.
	var fields any
	if err := json.Unmarshal(stdout.Bytes(), &fields); err != nil {
		t.Fatalf("bench store --json: %v\n%s", err, stdout.String())
	}
	objs, ok := fields.([]any)
	if !ok {
		objs = []any{fields}
	}
	for _, o := range objs {
		m, _ := o.(map[string]any)
		for _, k := range []string{"workers", "procs", "trial_ms", "trials", "cycles_per_second", "claim_p50_ms", "claim_p99_ms",
			"finish_p50_ms", "finish_p99_ms", "double_claims", "lost", "heartbeats_per_second", "connections"} {
			if _, ok := m[k]; !ok {
				t.Errorf("bench store --json: no %q in %v", k, m)
			}
		}
	}
	if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
		t.Fatalf("bench store --json: %v\n%s", err, stdout.String())
	}
}

// checkBenchStoreReport checks a report against its run and the study it
// left: every trial complete once, by workers of c.Procs processes.
func checkBenchStoreReport(t *testing.T, st store.Store, rep benchStoreReport, c benchStoreConfig) {
	t.Helper()
	if rep.benchStoreConfig != c {
		t.Errorf("report of %+v; want %+v", rep.benchStoreConfig, c)
	}
	if rep.DoubleClaims != 0 || rep.Lost != 0 || rep.LeasesLost != 0 {
		t.Errorf("%d double claims, %d lost, %d leases lost; want none", rep.DoubleClaims, rep.Lost, rep.LeasesLost)
	}
	if rep.CyclesPerSecond <= 0 || rep.ClaimP50MS <= 0 || rep.ClaimP99MS < rep.ClaimP50MS || rep.FinishP50MS <= 0 || rep.FinishP99MS < rep.FinishP50MS {
		t.Errorf("rates and latencies %+v; want positive, p99 >= p50", rep)
	}
	if want := float64(c.Trials) / rep.Seconds; rep.CyclesPerSecond < 0.99*want || rep.CyclesPerSecond > 1.01*want {
		t.Errorf("%.1f cycles/s; want %d trials in %.3f s = %.1f/s", rep.CyclesPerSecond, c.Trials, rep.Seconds, want)
	}
	if rep.Connections < c.Procs {
		t.Errorf("%d connections for %d processes; want at least one each", rep.Connections, c.Procs)
	}
	ctx := t.Context()
	study, err := st.Study(ctx, rep.Study)
	if err != nil {
		t.Fatal(err)
	}
	if study.Status != store.StudyComplete || study.SpaceHash != benchStoreSpaceHash {
		t.Errorf("bench study %+v; want complete, marked %q", study, benchStoreSpaceHash)
	}
	trials, err := st.Trials(ctx, rep.Study)
	if err != nil {
		t.Fatal(err)
	}
	pids := map[string]bool{}
	for _, tr := range trials {
		if tr.State != store.TrialComplete || tr.Attempt != 1 {
			t.Errorf("trial %d: %s, attempt %d; want complete on the first attempt", tr.Number, tr.State, tr.Attempt)
		}
		f := strings.Split(tr.Worker, ":")
		if len(f) != 3 || f[0] != "bench" {
			t.Fatalf("trial %d's worker %q; want bench:PID:N", tr.Number, tr.Worker)
		}
		pids[f[1]] = true
	}
	if len(trials) != c.Trials || len(pids) != c.Procs {
		t.Errorf("%d trials by workers of %d processes; want %d by %d", len(trials), len(pids), c.Trials, c.Procs)
	}
}

func openBenchTestDB(t *testing.T, db string) store.Store {
	t.Helper()
	var (
		st  store.Store
		err error
	)
	if postgres.IsURL(db) {
		st, err = postgres.Open(t.Context(), db, postgres.Options{})
	} else {
		st, err = sqlite.Open(t.Context(), db, sqlite.Options{})
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func benchSnapshot(t *testing.T, st store.Store, id int64) (store.Study, []store.Trial) {
	t.Helper()
	s, err := st.Study(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	trials, err := st.Trials(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return s, trials
}

// TestBenchStoreStudySkipped: an effnas worker on the same database never
// trains a store benchmark's trials, even while the benchmark runs.
func TestBenchStoreStudySkipped(t *testing.T) {
	db := filepath.Join(t.TempDir(), "w.db")
	st := openBenchTestDB(t, db)
	study, err := createBenchStoreStudy(t.Context(), st, benchStoreConfig{Workers: 1, Procs: 1, Trials: 3, LeaseMS: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if err := Run(t.Context(), &Env{Stdout: &out, Stderr: &errb}, []string{"worker", "--db", db, "--once"}); err != nil {
		t.Fatalf("worker: %v\n%s", err, errb.String())
	}
	if !strings.Contains(errb.String(), "skipping study 1") {
		t.Errorf("worker's log does not say it skips the benchmark's study:\n%s", errb.String())
	}
	c, err := st.CountTrials(t.Context(), study.ID)
	if err != nil || c != (store.Counts{Pending: 3}) {
		t.Errorf("the benchmark's trials after a worker: %+v, %v; want 3 pending", c, err)
	}
}
