package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/store/postgres"
	"github.com/effnas/effnas/store/storetest"
)

var schemaSeq atomic.Int64

func TestMain(m *testing.M) {
	if db := storetest.WorkerDB(); db != "" {
		os.Exit(storetest.WorkerMain(func(ctx context.Context) (store.Store, error) { return postgres.Open(ctx, db) }))
	}
	os.Exit(m.Run())
}

// openSchema returns a store in a fresh schema of the server at
// EFFNAS_PG_URL, dropped when the test ends. Without the variable the
// test is skipped, and says so: store/postgres/pgserver.sh starts a
// server and prints the variable.
func openSchema(t *testing.T) *postgres.Store {
	t.Helper()
	url := pgURL(t)
	ctx := context.Background()
	schema := fmt.Sprintf("effnas_test_%d_%d", os.Getpid(), schemaSeq.Add(1))
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect to EFFNAS_PG_URL: %v", err)
	}
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		admin.Close(context.Background())
	})
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	s, err := postgres.Open(ctx, url+sep+"search_path="+schema)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// pgURL returns EFFNAS_PG_URL or skips the test, saying why.
func pgURL(t *testing.T) string {
	t.Helper()
	url := os.Getenv("EFFNAS_PG_URL")
	if url == "" {
		t.Skip("EFFNAS_PG_URL is not set: skipping the PostgreSQL store tests (eval \"$(store/postgres/pgserver.sh start)\" to run them)")
	}
	return url
}

func TestConformance(t *testing.T) {
	pgURL(t)
	storetest.Run(t, func(t *testing.T) store.Store { return openSchema(t) })
}

// TestNewerSchemaRefused: a database migrated by a newer effnas is refused
// and left as it was.
func TestNewerSchemaRefused(t *testing.T) {
	pgURL(t)
	s := openSchema(t)
	ctx := context.Background()
	st, err := s.CreateStudy(ctx, store.Study{Kind: store.KindSearch})
	if err != nil {
		t.Fatal(err)
	}
	url := s.URL()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "INSERT INTO schema_migrations (version, name, applied) VALUES (99, '099_future.up.sql', now())"); err != nil {
		t.Fatal(err)
	}
	_, err = postgres.Open(ctx, url)
	if !errors.Is(err, postgres.ErrNewerSchema) || !strings.Contains(err.Error(), "newer effnas") {
		t.Fatalf("Open of a newer schema: %v, want ErrNewerSchema", err)
	}
	var n int
	conn.QueryRow(ctx, "SELECT count(*) FROM studies WHERE id = $1", st.ID).Scan(&n)
	if n != 1 {
		t.Fatal("the refused database lost its study")
	}
}

func TestUnreachableServer(t *testing.T) {
	_, err := postgres.Open(context.Background(), "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2")
	if err == nil || !strings.Contains(err.Error(), "connect to PostgreSQL at 127.0.0.1:1") {
		t.Fatalf("Open of an unreachable server: %v, want an error naming it", err)
	}
}

// TestKillResume: a worker process is killed with SIGKILL at random
// points; each restart recovers the study as its only process.
func TestKillResume(t *testing.T) {
	pgURL(t)
	s := openSchema(t)
	const trials, kills = 300, 6
	st := storetest.PlanSweep(t, s, trials)
	cfg := storetest.SweepWorkerConfig{Study: st.ID, Log: filepath.Join(t.TempDir(), "worker.log"), Recover: true, Lease: time.Minute}
	rng := rand.New(rand.NewPCG(6, 2026))
	killed := 0
	for range kills {
		if storetest.SweepDone(t, s, st.ID) {
			break
		}
		cmd := storetest.StartWorker(t, s.URL(), cfg)
		if !storetest.AwaitProgress(t, s, st.ID, cfg.Log, time.Minute) {
			storetest.KillWorker(t, cmd)
			break
		}
		time.Sleep(time.Duration(rng.IntN(100)) * time.Millisecond)
		if storetest.KillWorker(t, cmd) {
			killed++
		}
	}
	storetest.WaitWorker(t, storetest.StartWorker(t, s.URL(), cfg), 2*time.Minute)
	sum := storetest.CheckSweep(t, s, st.ID, kills, cfg.Log)
	if killed < 3 || sum.Rerun == 0 {
		t.Fatalf("%d of %d workers killed mid-sweep, %d trials re-run: the kills did not land", killed, kills, sum.Rerun)
	}
	t.Logf("kill-resume: %d trials, %d SIGKILLs, %d attempts, %d trials re-run", sum.Trials, killed, sum.Attempts, sum.Rerun)
}

// TestKillOneOfThree: three worker processes share the study; one is
// killed and restarted repeatedly; the trials it held are re-run by the
// others once their leases expire on the server's clock.
func TestKillOneOfThree(t *testing.T) {
	pgURL(t)
	s := openSchema(t)
	const trials, kills = 300, 4
	st := storetest.PlanSweep(t, s, trials)
	cfg := storetest.SweepWorkerConfig{Study: st.ID, Log: filepath.Join(t.TempDir(), "worker.log"), Lease: 400 * time.Millisecond}
	a, b := storetest.StartWorker(t, s.URL(), cfg), storetest.StartWorker(t, s.URL(), cfg)
	rng := rand.New(rand.NewPCG(7, 2026))
	killed := 0
	logs := []string{cfg.Log}
	for i := range kills {
		if storetest.SweepDone(t, s, st.ID) {
			break
		}
		victim := cfg
		victim.Log = filepath.Join(t.TempDir(), fmt.Sprintf("victim%d.log", i))
		logs = append(logs, victim.Log)
		cmd := storetest.StartWorker(t, s.URL(), victim)
		if !storetest.AwaitProgress(t, s, st.ID, victim.Log, time.Minute) {
			storetest.KillWorker(t, cmd)
			break
		}
		time.Sleep(time.Duration(rng.IntN(100)) * time.Millisecond)
		if storetest.KillWorker(t, cmd) {
			killed++
		}
	}
	storetest.WaitWorker(t, a, 2*time.Minute)
	storetest.WaitWorker(t, b, 2*time.Minute)
	sum := storetest.CheckSweep(t, s, st.ID, kills, logs...)
	if killed < 2 || sum.Rerun == 0 {
		t.Fatalf("%d workers killed, %d trials re-run: the kills did not land", killed, sum.Rerun)
	}
	t.Logf("three processes: %d trials, %d SIGKILLs, %d attempts, %d trials re-run (a killed process held up to 2), %d late results refused", sum.Trials, killed, sum.Attempts, sum.Rerun, sum.Lost)
}

// BenchmarkClaimFinish is the store's overhead per trial: one claim and one
// compare-and-set finish.
func BenchmarkClaimFinish(b *testing.B) {
	url := os.Getenv("EFFNAS_PG_URL")
	if url == "" {
		b.Skip("EFFNAS_PG_URL is not set")
	}
	ctx := context.Background()
	schema := fmt.Sprintf("effnas_bench_%d", os.Getpid())
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		b.Fatal(err)
	}
	defer admin.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
	s, err := postgres.Open(ctx, url+"&search_path="+schema)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	st, err := s.CreateStudy(ctx, store.Study{Kind: store.KindSearch})
	if err != nil {
		b.Fatal(err)
	}
	ps := make([]store.Plan, b.N)
	for i := range ps {
		ps[i] = store.Plan{Key: strconv.Itoa(i), Blocks: []string{"r1_k3_s11_e1_i32_o16_se0.25"}}
	}
	if _, err := s.PlanTrials(ctx, st.ID, ps, nil); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		got, err := s.ClaimTrials(ctx, st.ID, "w", 1, time.Minute)
		if err != nil || len(got) != 1 {
			b.Fatal(len(got), err)
		}
		if err := s.FinishTrial(ctx, got[0].Lease(), store.Result{Accuracy: 0.5, Reward: 0.4, Seconds: 1}); err != nil {
			b.Fatal(err)
		}
	}
}
