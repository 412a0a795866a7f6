package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/store/postgres"
	"github.com/effnas/effnas/store/sqlite"
)

func init() {
	registerBench("store", "load the database like K workers would: claim and finish simulated trials, report cycles/s and latencies", runBenchStore)
}

// Limits of bench store's flags.
const (
	benchStoreMaxWorkers = 1024
	benchStoreMaxTrials  = 1000000
	benchStoreMaxTrialMS = 3600000
	benchStoreMinLease   = 100 * time.Millisecond
	benchStoreMaxLease   = 24 * time.Hour
)

// A worker with nothing to claim while trials still run looks again every
// third of a lease, but at least every benchStoreMaxPoll and at most every
// benchStoreMinPoll.
const (
	benchStoreMinPoll = 50 * time.Millisecond
	benchStoreMaxPoll = time.Second
)

// benchStoreChildEnv marks a process that bench store started to run some
// of its workers; it reads its orders on stdin (benchStoreSpec) and writes
// its report on stdout (benchStoreChildReport). The database URL travels on
// stdin, not in the arguments, where ps would show its password.
const benchStoreChildEnv = "EFFNAS_BENCH_STORE_CHILD"

// benchStoreSpaceHash marks a store benchmark's study in its space_hash.
// The study is of kind proxy, and its config's "proxy" is a sentence where
// a proxy benchmark has an object, so that search.OpenPanel refuses it: an
// effnas worker on the same database skips it ("skipping study N: ...
// decode its config") and never trains its trials, and bench proxy never
// takes its runs for reference runs (it compares the space hash first).
// Once the run is over the study is complete (or failed), which workers
// skip without opening it.
const benchStoreSpaceHash = "effnas bench store"

// benchStoreConfig is a run of bench store: K workers over P processes.
type benchStoreConfig struct {
	Workers int   `json:"workers"`  // K, simulated workers
	Procs   int   `json:"procs"`    // P, processes they are spread over
	TrialMS int   `json:"trial_ms"` // how long a trial lasts between its claim and its finish
	Trials  int   `json:"trials"`   // trials planned and worked through
	LeaseMS int64 `json:"lease_ms"` // the claims' lease, renewed every third of it
}

// lease is the claims' lease.
func (c benchStoreConfig) lease() time.Duration { return time.Duration(c.LeaseMS) * time.Millisecond }

// benchStoreReport is what bench store prints for one number of workers.
type benchStoreReport struct {
	Database string `json:"database"` // sqlite or postgres
	Study    int64  `json:"study"`    // the benchmark's own study
	benchStoreConfig
	Seconds             float64 `json:"seconds"`           // from the workers' start to the last accepted finish
	CyclesPerSecond     float64 `json:"cycles_per_second"` // accepted claim+finish cycles over Seconds
	ClaimP50MS          float64 `json:"claim_p50_ms"`
	ClaimP99MS          float64 `json:"claim_p99_ms"`
	FinishP50MS         float64 `json:"finish_p50_ms"`
	FinishP99MS         float64 `json:"finish_p99_ms"`
	DoubleClaims        int     `json:"double_claims"`
	Lost                int     `json:"lost"`
	LeasesLost          int     `json:"leases_lost"` // heartbeats or finishes refused with ErrLeaseLost
	Heartbeats          int     `json:"heartbeats"`
	HeartbeatsPerSecond float64 `json:"heartbeats_per_second"`
	// ClientCPUSeconds is the CPU time the workers' processes spent
	// from the start to their end, beside Seconds of wall time: on a
	// machine shared with the database, the rest of its CPU is the
	// server's.
	ClientCPUSeconds float64 `json:"client_cpu_seconds"`
	// Connections is the peak number of server connections of the run's
	// processes (PostgreSQL, from pg_stat_activity), or their SQLite
	// pools' sizes summed.
	Connections int `json:"connections"`
}

// runBenchStore is effnas bench store: for each K of --workers it plans
// --trials trials in a study of its own, starts --procs processes of this
// program that run K workers between them, and reports how fast the store
// gave out and took back the trials, and whether it gave one out twice or
// lost one (an error then, after the report). A database on loopback is
// assumed: double claims are found by comparing the database's clock with
// the workers'.
func runBenchStore(ctx context.Context, env *Env, args []string) error {
	if os.Getenv(benchStoreChildEnv) == "1" {
		return runBenchStoreChild(ctx, os.Stdin, env.Stdout)
	}
	fs := newFlagSet("bench store", env.Stderr)
	var (
		db      = dbFlag(fs, "", "database to load: postgres://user@host/db or a SQLite file (created when missing; other studies are left alone)")
		workers = fs.String("workers", "8", "simulated workers, or a list such as 1,8,64,256 for one run each")
		procs   = fs.Int("procs", 0, "processes the workers are spread over (0: one per 8 workers)")
		trialMS = fs.Int("trial-ms", 0, "milliseconds a simulated trial lasts between its claim and its finish")
		trials  = fs.Int("trials", 2000, "trials each run plans and works through")
		lease   = fs.Duration("lease", 2*time.Minute, "claim lease, renewed every third of it while a trial lasts, as effnas worker does")
		timeout = fs.Duration("timeout", 30*time.Minute, "longest a run may take")
		asJSON  = fs.Bool("json", false, "print the report as JSON (a list when several --workers are given)")
	)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ks, err := parseWorkerList(*workers)
	if err != nil {
		return err
	}
	switch {
	case *procs < 0 || *procs > benchStoreMaxWorkers:
		return usagef("--procs %d: must be 0 (one process per 8 workers) or 1 to --workers", *procs)
	case *trialMS < 0 || *trialMS > benchStoreMaxTrialMS:
		return usagef("--trial-ms %d: must be 0 to %d milliseconds", *trialMS, benchStoreMaxTrialMS)
	case *trials < 1 || *trials > benchStoreMaxTrials:
		return usagef("--trials %d: must be 1 to %d", *trials, benchStoreMaxTrials)
	case *lease < benchStoreMinLease || *lease > benchStoreMaxLease:
		return usagef("--lease %v: must be %v to %v, e.g. 2m", *lease, benchStoreMinLease, benchStoreMaxLease)
	case *timeout <= 0:
		return usagef("--timeout %v: must be positive, e.g. 30m", *timeout)
	}
	for _, k := range ks {
		if *procs > k {
			return usagef("--procs %d: must be 1 to --workers (%d), or 0 for one process per 8 workers", *procs, k)
		}
	}
	if db.Raw() == "" {
		return db.missing("the database to load, e.g. --db bench.db or --db postgres://user@host/effnas")
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this program to start the workers' processes: %w", err)
	}
	st, err := openForWriting(ctx, db)
	if err != nil {
		return err
	}
	defer st.Close()

	var reps []benchStoreReport
	for _, k := range ks {
		c := benchStoreConfig{Workers: k, Procs: cmp.Or(*procs, (k+7)/8), TrialMS: *trialMS, Trials: *trials, LeaseMS: lease.Milliseconds()}
		rctx, cancel := context.WithTimeout(ctx, *timeout)
		rep, err := benchStoreRun(rctx, st, db, exe, c)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return errInterrupted
			}
			return fmt.Errorf("%d workers: %w", k, err)
		}
		if !*asJSON {
			fmt.Fprintf(env.Stderr, "%d workers in %d processes: %.0f cycles/s\n", k, c.Procs, rep.CyclesPerSecond)
		}
		reps = append(reps, rep)
	}
	if *asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		var err error
		if len(reps) == 1 {
			err = enc.Encode(reps[0])
		} else {
			err = enc.Encode(reps)
		}
		if err != nil {
			return err
		}
	} else {
		printBenchStore(env.Stdout, reps)
	}
	var bad []string
	for _, r := range reps {
		if r.DoubleClaims > 0 || r.Lost > 0 {
			msg := fmt.Sprintf("%d double claims and %d lost trials at %d workers (study %d)", r.DoubleClaims, r.Lost, r.Workers, r.Study)
			if r.LeasesLost > 0 && r.DoubleClaims == 0 {
				// Without a double claim, a lost lease lapsed.
				msg += fmt.Sprintf(", after %d leases lapsed: a lease of %v is too short for this load", r.LeasesLost, r.lease())
			}
			bad = append(bad, msg)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("the store broke its guarantees: %s", strings.Join(bad, "; "))
	}
	return nil
}

// parseWorkerList reads --workers: one count or a comma-separated list.
func parseWorkerList(s string) ([]int, error) {
	var ks []int
	for _, f := range strings.Split(s, ",") {
		k, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || k < 1 || k > benchStoreMaxWorkers {
			return nil, usagef("--workers %s: each count must be a whole number from 1 to %d, e.g. 8 or 1,8,64,256", s, benchStoreMaxWorkers)
		}
		ks = append(ks, k)
	}
	return ks, nil
}

// printBenchStore writes the reports as a table.
func printBenchStore(w io.Writer, reps []benchStoreReport) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workers\tprocs\ttrial ms\ttrials\tcycles/s\tclaim p50 ms\tclaim p99 ms\tfinish p50 ms\tfinish p99 ms\tdouble claims\tlost\theartbeats/s\tconnections\t")
	for _, r := range reps {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%.0f\t%.1f\t%.1f\t%.1f\t%.1f\t%d\t%d\t%.1f\t%d\t\n", r.Workers, r.Procs, r.TrialMS, r.Trials,
			r.CyclesPerSecond, r.ClaimP50MS, r.ClaimP99MS, r.FinishP50MS, r.FinishP99MS, r.DoubleClaims, r.Lost, r.HeartbeatsPerSecond, r.Connections)
	}
	tw.Flush()
}

// benchStoreRun plans c.Trials trials in a study of their own, works
// through them with c.Workers workers in c.Procs processes of this program,
// and checks the outcome.
func benchStoreRun(ctx context.Context, st store.Store, db *dbName, exe string, c benchStoreConfig) (benchStoreReport, error) {
	rep := benchStoreReport{Database: "sqlite", benchStoreConfig: c}
	if postgres.IsURL(db.Raw()) {
		rep.Database = "postgres"
	}
	study, err := createBenchStoreStudy(ctx, st, c)
	if err != nil {
		return rep, err
	}
	rep.Study = study.ID
	children, err := runBenchStoreChildren(ctx, db, exe, study.ID, c, &rep.Connections)
	if err != nil {
		st.SetStudyStatus(context.WithoutCancel(ctx), study.ID, store.StudyFailed)
		return rep, err
	}
	final, err := st.Trials(ctx, study.ID)
	if err != nil {
		return rep, err
	}
	rep.summarise(children, final)
	status := store.StudyComplete
	if rep.Lost > 0 {
		status = store.StudyFailed
	}
	if err := st.SetStudyStatus(ctx, study.ID, status); err != nil {
		return rep, err
	}
	return rep, nil
}

// createBenchStoreStudy creates a store benchmark's study with c.Trials
// pending trials (see benchStoreSpaceHash for what keeps workers off it).
func createBenchStoreStudy(ctx context.Context, st store.Store, c benchStoreConfig) (store.Study, error) {
	cfg, err := json.Marshal(struct {
		Proxy      string           `json:"proxy"`
		StoreBench benchStoreConfig `json:"store_bench"`
	}{"none: the simulated trials of effnas bench store, which no worker trains", c})
	if err != nil {
		return store.Study{}, err
	}
	plans := make([]store.Plan, c.Trials)
	for i := range plans {
		plans[i] = store.Plan{Key: fmt.Sprintf("bench-%d", i)}
	}
	return st.CreateStudy(ctx, store.Study{Name: fmt.Sprintf("store benchmark: %d workers", c.Workers), Kind: store.KindProxy,
		Config: cfg, SpaceHash: benchStoreSpaceHash}, plans)
}

// benchStoreSpec is what a child process is told on its stdin.
type benchStoreSpec struct {
	DB      string `json:"db"`
	Study   int64  `json:"study"`
	Workers int    `json:"workers"` // goroutines in this process
	First   int    `json:"first"`   // the run's number of this process's first worker, 0 to Total-1
	Total   int    `json:"total"`   // the run's workers, in all processes
	TrialMS int    `json:"trial_ms"`
	LeaseMS int64  `json:"lease_ms"`
	AppName string `json:"app_name"` // PostgreSQL application_name, to count the run's connections
}

// benchClaim is one claim of one trial, as the claimant saw it. Times are
// milliseconds since the epoch; At and Expires are on the database's
// clock, Renewed and Finished on the worker's (the same clock for a
// database on loopback).
type benchClaim struct {
	Number   int    `json:"n"`
	Attempt  int    `json:"a"`
	Worker   string `json:"w"`
	At       int64  `json:"at"`            // when the database granted the claim: its lease expiry less the lease
	Expires  int64  `json:"exp"`           // the lease expiry the claim returned
	Renewed  int64  `json:"hb,omitempty"`  // when the last accepted heartbeat was sent
	Finished int64  `json:"fin,omitempty"` // when the accepted FinishTrial was sent; 0: not accepted
}

// benchStoreChildReport is what a child process reports on its stdout.
type benchStoreChildReport struct {
	Start      int64        `json:"start_ns"` // when its workers started, ns since the epoch
	EndNS      int64        `json:"end_ns"`   // when its last worker ended
	LastNS     int64        `json:"last_ns"`  // when its last accepted finish returned; 0: none
	Claims     []benchClaim `json:"claims"`
	ClaimNS    []int64      `json:"claim_ns"`  // the latency of every ClaimTrials call that got a trial
	FinishNS   []int64      `json:"finish_ns"` // every FinishTrial call's latency
	Heartbeats int          `json:"heartbeats"`
	LeasesLost int          `json:"leases_lost"`
	Pool       int          `json:"pool"`        // the store's pool size
	CPUSeconds float64      `json:"cpu_seconds"` // CPU time spent from the start to the end
	Error      string       `json:"error,omitempty"`
}

// runBenchStoreChildren starts c.Procs processes, lets their workers go at
// once when all are connected, and collects their reports. For PostgreSQL
// it samples the run's server connections into *conns meanwhile.
func runBenchStoreChildren(ctx context.Context, db *dbName, exe string, study int64, c benchStoreConfig, conns *int) ([]benchStoreChildReport, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type child struct {
		cmd    *exec.Cmd
		stdin  io.WriteCloser
		stdout *bufio.Reader
		stderr bytes.Buffer
	}
	appName := fmt.Sprintf("effnas-bench-store-%d", study)
	kids := make([]*child, c.Procs)
	first := 0
	defer func() {
		for _, k := range kids {
			if k != nil {
				k.stdin.Close()
				k.cmd.Wait()
			}
		}
	}()
	for i := range kids {
		k := &child{cmd: exec.CommandContext(ctx, exe, "bench", "store")}
		k.cmd.Env = append(os.Environ(), benchStoreChildEnv+"=1")
		k.cmd.Stderr = &k.stderr
		k.cmd.WaitDelay = 5 * time.Second
		var err error
		if k.stdin, err = k.cmd.StdinPipe(); err != nil {
			return nil, err
		}
		out, err := k.cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		k.stdout = bufio.NewReaderSize(out, 1<<20)
		if err := k.cmd.Start(); err != nil {
			return nil, fmt.Errorf("start a worker process (%s): %w", exe, err)
		}
		kids[i] = k
		// The workers are dealt out evenly: K/P each, the rest one more.
		spec := benchStoreSpec{DB: db.Raw(), Study: study, Workers: c.Workers / c.Procs, First: first, Total: c.Workers,
			TrialMS: c.TrialMS, LeaseMS: c.LeaseMS, AppName: appName}
		if i < c.Workers%c.Procs {
			spec.Workers++
		}
		first += spec.Workers
		if err := json.NewEncoder(k.stdin).Encode(spec); err != nil {
			return nil, fmt.Errorf("worker process %d: %w", i, err)
		}
	}
	// died says why a child failed, with what it wrote to stderr.
	died := func(i int, err error) error {
		kids[i].stdin.Close()
		kids[i].cmd.Wait()
		return fmt.Errorf("worker process %d: %w: %s", i, err, strings.TrimSpace(kids[i].stderr.String()))
	}
	for i, k := range kids {
		line, err := k.stdout.ReadBytes('\n')
		if err != nil || strings.TrimSpace(string(line)) != "ready" {
			return nil, died(i, fmt.Errorf("not ready (%q, %v)", line, err))
		}
	}
	var (
		wg   sync.WaitGroup
		peak chan int
	)
	if postgres.IsURL(db.Raw()) {
		// Connected and counted once before the workers go, so that a
		// short run is counted too.
		// The pool's settings (pool_max_conns...) are not the server's.
		cfg, err := pgxpool.ParseConfig(db.Raw())
		if err != nil {
			return nil, fmt.Errorf("database URL: %w", err)
		}
		conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
		if err != nil {
			return nil, fmt.Errorf("connect to count the run's connections: %w", err)
		}
		peak = make(chan int, 1)
		pctx, stop := context.WithCancel(ctx)
		defer stop()
		first := countConnections(pctx, conn, appName)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close(context.WithoutCancel(pctx))
			peak <- sampleConnections(pctx, conn, appName, first)
		}()
		defer func() { stop(); wg.Wait() }()
	}
	for i, k := range kids {
		if _, err := io.WriteString(k.stdin, "go\n"); err != nil {
			return nil, died(i, err)
		}
	}
	reps := make([]benchStoreChildReport, len(kids))
	errs := make([]error, len(kids))
	var rg sync.WaitGroup
	for i, k := range kids {
		rg.Add(1)
		go func() {
			defer rg.Done()
			line, err := k.stdout.ReadBytes('\n')
			if err == nil {
				err = json.Unmarshal(line, &reps[i])
			}
			if err == nil && reps[i].Error != "" {
				err = errors.New(reps[i].Error)
			}
			if err != nil {
				errs[i] = fmt.Errorf("worker process %d: %w", i, err)
				cancel() // the others need not go on
			}
		}()
	}
	rg.Wait()
	for i, err := range errs {
		if err != nil {
			if ctx.Err() != nil && !errors.Is(ctx.Err(), context.Canceled) {
				return nil, ctx.Err()
			}
			return nil, died(i, err)
		}
	}
	if peak != nil {
		cancel()
		*conns = <-peak
	} else {
		for _, r := range reps {
			*conns += r.Pool
		}
	}
	return reps, nil
}

// sampleConnections counts the server connections named appName every
// 20ms until ctx ends, and returns the most it saw, most at least.
func sampleConnections(ctx context.Context, conn *pgx.Conn, appName string, most int) int {
	for {
		select {
		case <-ctx.Done():
			return most
		case <-time.After(20 * time.Millisecond):
		}
		most = max(most, countConnections(ctx, conn, appName))
	}
}

// countConnections counts the server connections named appName (0 when it
// cannot).
func countConnections(ctx context.Context, conn *pgx.Conn, appName string) int {
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", appName).Scan(&n); err != nil {
		return 0
	}
	return n
}

// runBenchStoreChild is a worker process of bench store: it reads its
// spec, connects, says "ready", waits for "go", runs its workers until
// nothing is left to claim and writes its report. It stops when its stdin
// closes (bench store is gone).
func runBenchStoreChild(ctx context.Context, stdin io.Reader, stdout io.Writer) error {
	in := bufio.NewReader(stdin)
	var spec benchStoreSpec
	line, err := in.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("read the worker process's orders: %w", err)
	}
	if err := json.Unmarshal(line, &spec); err != nil {
		return fmt.Errorf("read the worker process's orders: %w", err)
	}
	st, pool, err := openBenchStore(ctx, spec)
	if err != nil {
		return err
	}
	defer st.Close()
	fmt.Fprintln(stdout, "ready")
	if line, err := in.ReadString('\n'); err != nil || line != "go\n" {
		return fmt.Errorf("wait for go: got %q, %v", line, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		io.Copy(io.Discard, in)
		cancel()
	}()
	rep := benchStoreChildReport{Pool: pool, Start: time.Now().UnixNano()}
	cpu0 := cpuSeconds()
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs []error
	)
	pid := os.Getpid()
	for i := range spec.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var w benchStoreChildReport
			// The workers start out of step, as those of a running
			// sweep are: worker g of K first claims g/K of a trial
			// after the start.
			delay := time.Duration(spec.TrialMS) * time.Millisecond * time.Duration(spec.First+i) / time.Duration(max(spec.Total, 1))
			err := sleepCtx(ctx, delay)
			if err == nil {
				err = benchStoreWorker(ctx, st, spec, fmt.Sprintf("bench:%d:%d", pid, i), &w)
			}
			mu.Lock()
			defer mu.Unlock()
			rep.Claims = append(rep.Claims, w.Claims...)
			rep.ClaimNS = append(rep.ClaimNS, w.ClaimNS...)
			rep.LastNS = max(rep.LastNS, w.LastNS)
			rep.FinishNS = append(rep.FinishNS, w.FinishNS...)
			rep.Heartbeats += w.Heartbeats
			rep.LeasesLost += w.LeasesLost
			if err != nil {
				errs = append(errs, err)
			}
		}()
	}
	wg.Wait()
	rep.EndNS = time.Now().UnixNano()
	rep.CPUSeconds = cpuSeconds() - cpu0
	if err := errors.Join(errs...); err != nil {
		rep.Error = err.Error()
	}
	return json.NewEncoder(stdout).Encode(rep)
}

// cpuSeconds is the CPU time this process has spent, user and system.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// openBenchStore opens the benchmark's database (it exists: bench store
// created the study) and returns the store's pool size.
func openBenchStore(ctx context.Context, spec benchStoreSpec) (store.Store, int, error) {
	var (
		st interface {
			store.Store
			PoolSize() int
		}
		err error
	)
	if postgres.IsURL(spec.DB) {
		u, perr := url.Parse(spec.DB)
		if perr != nil {
			return nil, 0, fmt.Errorf("database URL: %w", perr)
		}
		q := u.Query()
		q.Set("application_name", spec.AppName)
		u.RawQuery = q.Encode()
		st, err = postgres.Open(ctx, u.String(), postgres.Options{})
	} else {
		st, err = sqlite.Open(ctx, spec.DB, sqlite.Options{})
	}
	if err != nil {
		return nil, 0, err
	}
	return st, st.PoolSize(), nil
}

// benchStoreWorker claims one trial at a time until none is left to claim
// or running, lets each last spec.TrialMS while renewing its lease every
// third of a lease, as a training does, and finishes it. It records what it did in rep. A
// lost lease is counted, not an error; a store error ends the worker.
func benchStoreWorker(ctx context.Context, st store.Store, spec benchStoreSpec, name string, rep *benchStoreChildReport) error {
	lease := time.Duration(spec.LeaseMS) * time.Millisecond
	result := store.Result{Accuracy: 0.5, Reward: 0.5, Seconds: float64(spec.TrialMS) / 1000}
	for ctx.Err() == nil {
		start := time.Now()
		ts, err := st.ClaimTrials(ctx, spec.Study, store.Claim{Worker: name, Limit: 1, Lease: lease})
		took := time.Since(start)
		if err != nil {
			return err
		}
		if len(ts) == 0 {
			// Nothing to claim now. Done when no trial is left running
			// either; else one may come back when its lease lapses, and
			// the worker looks again, as effnas worker polls.
			n, err := st.CountTrials(ctx, spec.Study)
			if err != nil {
				return err
			}
			if n.Pending+n.Running+n.Interrupted == 0 {
				return nil
			}
			if err := sleepCtx(ctx, min(max(lease/3, benchStoreMinPoll), benchStoreMaxPoll)); err != nil {
				return err
			}
			continue
		}
		// Only claims that got a trial count: a worker polling at the end
		// of the run would swamp them with its empty ones.
		rep.ClaimNS = append(rep.ClaimNS, int64(took))
		t := ts[0]
		c := benchClaim{Number: t.Number, Attempt: t.Attempt, Worker: t.Worker, Expires: t.LeaseExpires.UnixMilli(), At: t.LeaseExpires.UnixMilli() - spec.LeaseMS}
		lost, err := benchStoreTrial(ctx, st, t.Lease(), lease, time.Duration(spec.TrialMS)*time.Millisecond, &c, rep)
		if err != nil {
			return err
		}
		if !lost {
			sent := time.Now()
			err := st.FinishTrial(ctx, t.Lease(), result)
			rep.FinishNS = append(rep.FinishNS, int64(time.Since(sent)))
			switch {
			case err == nil:
				c.Finished = sent.UnixMilli()
				rep.LastNS = time.Now().UnixNano()
			case errors.Is(err, store.ErrLeaseLost):
				rep.LeasesLost++
			default:
				return err
			}
		}
		rep.Claims = append(rep.Claims, c)
	}
	return ctx.Err()
}

// benchStoreTrial waits d, renewing the lease every third of lease, and
// reports whether the lease was lost meanwhile.
func benchStoreTrial(ctx context.Context, st store.Store, l store.Lease, lease, d time.Duration, c *benchClaim, rep *benchStoreChildReport) (bool, error) {
	done := time.NewTimer(d)
	defer done.Stop()
	beat := time.NewTicker(lease / 3)
	defer beat.Stop()
	for {
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-done.C:
			return false, nil
		case <-beat.C:
			sent := time.Now()
			err := st.Heartbeat(ctx, l, lease)
			switch {
			case err == nil:
				rep.Heartbeats++
				c.Renewed = sent.UnixMilli()
			case errors.Is(err, store.ErrLeaseLost):
				rep.LeasesLost++
				return true, nil
			default:
				return false, err
			}
		}
	}
}

// summarise fills the report from the children's reports and the study's
// trials at the end.
func (r *benchStoreReport) summarise(children []benchStoreChildReport, final []store.Trial) {
	var (
		claims            []benchClaim
		claimNS, finishNS []int64
		start, end        int64
		finished          int
	)
	for i, c := range children {
		claims = append(claims, c.Claims...)
		claimNS = append(claimNS, c.ClaimNS...)
		finishNS = append(finishNS, c.FinishNS...)
		r.Heartbeats += c.Heartbeats
		r.LeasesLost += c.LeasesLost
		r.ClientCPUSeconds += c.CPUSeconds
		if i == 0 || c.Start < start {
			start = c.Start
		}
		// The run ends with its last finish, not when the workers have
		// seen that nothing is left.
		end = max(end, cmp.Or(c.LastNS, c.EndNS))
	}
	for _, c := range claims {
		if c.Finished != 0 {
			finished++
		}
	}
	r.Seconds = float64(end-start) / 1e9
	if r.Seconds > 0 {
		r.CyclesPerSecond = float64(finished) / r.Seconds
		r.HeartbeatsPerSecond = float64(r.Heartbeats) / r.Seconds
	}
	r.ClaimP50MS, r.ClaimP99MS = quantileMS(claimNS, 0.50), quantileMS(claimNS, 0.99)
	r.FinishP50MS, r.FinishP99MS = quantileMS(finishNS, 0.50), quantileMS(finishNS, 0.99)
	r.DoubleClaims = doubleClaims(claims, r.LeaseMS)
	r.Lost = lostTrials(claims, final, r.Trials)
}

// quantileMS is the q-quantile of durations in nanoseconds (nearest
// rank), in milliseconds; 0 for none.
func quantileMS(ns []int64, q float64) float64 {
	if len(ns) == 0 {
		return 0
	}
	s := slices.Clone(ns)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.999999) - 1
	return float64(s[min(max(i, 0), len(s)-1)]) / 1e6
}

// doubleClaims counts the claims granted while an earlier claim of the
// same trial still held its lease. An earlier claim holds from its grant
// until its lease expires: the expiry its claim returned, or a lease after
// its last accepted heartbeat was sent, whichever is later, and no longer
// than until its accepted finish was sent. (Those bounds are the earliest
// the lease can have ended, so a claim counted here was certainly granted
// while the earlier one held.)
func doubleClaims(claims []benchClaim, leaseMS int64) int {
	by := map[int][]benchClaim{}
	for _, c := range claims {
		by[c.Number] = append(by[c.Number], c)
	}
	n := 0
	for _, cs := range by {
		slices.SortFunc(cs, func(a, b benchClaim) int { return cmp.Or(cmp.Compare(a.At, b.At), cmp.Compare(a.Attempt, b.Attempt)) })
		for j := 1; j < len(cs); j++ {
			for _, e := range cs[:j] {
				held := e.Expires
				if e.Renewed != 0 {
					held = max(held, e.Renewed+leaseMS)
				}
				if e.Finished != 0 {
					held = min(held, e.Finished)
				}
				if cs[j].At < held {
					n++
					break
				}
			}
		}
	}
	return n
}

// lostTrials counts the trials of 0..n-1 that are not complete at the end,
// or whose accepted finish is not the one the study recorded (another
// claim's result, or none).
func lostTrials(claims []benchClaim, final []store.Trial, n int) int {
	byNum := make(map[int]store.Trial, len(final))
	for _, t := range final {
		byNum[t.Number] = t
	}
	lost := map[int]bool{}
	for i := range n {
		if t, ok := byNum[i]; !ok || t.State != store.TrialComplete {
			lost[i] = true
		}
	}
	for _, c := range claims {
		if c.Finished == 0 {
			continue
		}
		if t := byNum[c.Number]; t.Worker != c.Worker || t.Attempt != c.Attempt {
			lost[c.Number] = true
		}
	}
	return len(lost)
}
