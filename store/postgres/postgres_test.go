package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/effnas/effnas/internal/testenv"
	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/store/postgres"
	"github.com/effnas/effnas/store/storetest"
)

func TestMain(m *testing.M) {
	if db := storetest.WorkerDB(); db != "" {
		os.Exit(storetest.WorkerMain(func(ctx context.Context) (store.Store, error) { return postgres.Open(ctx, db, postgres.Options{}) }))
	}
	os.Exit(m.Run())
}

// openSchema returns a store in a fresh schema of the test server, as the
// superuser, dropped when the test ends.
func openSchema(t testing.TB) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), testenv.PostgresSchema(t, testenv.PostgresURL(t)), postgres.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	testenv.PostgresURL(t)
	storetest.Run(t, func(t *testing.T) store.Store { return openSchema(t) })
}

// TestNewerSchemaRefused: a database migrated by a newer effnas is refused
// and left as it was.
func TestNewerSchemaRefused(t *testing.T) {
	s := openSchema(t)
	ctx := context.Background()
	st, err := s.CreateStudy(ctx, store.Study{Kind: store.KindSearch}, nil)
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
	for _, opts := range []postgres.Options{{}, {ReadOnly: true}} {
		_, err = postgres.Open(ctx, url, opts)
		if !errors.Is(err, postgres.ErrNewerSchema) || !strings.Contains(err.Error(), "newer effnas") {
			t.Fatalf("Open(%+v) of a newer schema: %v, want ErrNewerSchema", opts, err)
		}
	}
	var n int
	conn.QueryRow(ctx, "SELECT count(*) FROM studies WHERE id = $1", st.ID).Scan(&n)
	if n != 1 {
		t.Fatal("the refused database lost its study")
	}
}

func TestUnreachableServer(t *testing.T) {
	_, err := postgres.Open(context.Background(), "postgres://nobody:hunter2@127.0.0.1:1/none?sslmode=disable&connect_timeout=2", postgres.Options{})
	if err == nil || !strings.Contains(err.Error(), "at 127.0.0.1:1") {
		t.Fatalf("Open of an unreachable server: %v, want an error naming it", err)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("the error shows the password: %v", err)
	}
}

// TestKillResume: a worker process is killed with SIGKILL at random
// points; each restart recovers the study as its only process.
func TestKillResume(t *testing.T) {
	s := openSchema(t)
	storetest.KillResume(t, s, s.URL(), 300, 6, 6)
}

// TestKillOneOfThree: three worker processes share the study; one is
// killed and restarted repeatedly; the trials it held are re-run by the
// others once their leases expire on the server's clock.
func TestKillOneOfThree(t *testing.T) {
	s := openSchema(t)
	storetest.KillAmong(t, s, s.URL(), 300, 4, 2, 7)
}

// BenchmarkClaimFinish is the store's overhead per trial: one claim and one
// compare-and-set finish.
func BenchmarkClaimFinish(b *testing.B) {
	storetest.BenchClaimFinish(b, openSchema(b))
}

// TestCloseClosesConnections: Close returns the store's server
// connections, read-write and read-only (the pool under database/sql is
// closed too, not only the *sql.DB over it).
func TestCloseClosesConnections(t *testing.T) {
	ctx := context.Background()
	url := testenv.PostgresSchema(t, testenv.PostgresURL(t))
	conn, err := pgx.Connect(ctx, testenv.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for i, opts := range []postgres.Options{{}, {ReadOnly: true}} {
		app := fmt.Sprintf("effnas_close_test_%d_%d", os.Getpid(), i)
		s, err := postgres.Open(ctx, url+"&application_name="+app, opts)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Studies(ctx); err != nil {
			t.Fatal(err)
		}
		count := func() int {
			var n int
			if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", app).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		if n := count(); n == 0 {
			t.Fatalf("%+v: the open store has no connection named %s; the test cannot see it", opts, app)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		n := count()
		for deadline := time.Now().Add(10 * time.Second); n > 0 && time.Now().Before(deadline); n = count() {
			time.Sleep(50 * time.Millisecond)
		}
		if n > 0 {
			t.Errorf("%+v: %d connections still open after Close", opts, n)
		}
	}
}
