package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/store/postgres"
	"github.com/effnas/effnas/store/storetest"
)

var schemaSeq atomic.Int64

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
