// Package testenv says what the machine running the tests has: the
// PostgreSQL server, the Fashion-MNIST files and the Chromium browser that
// some tests need. Outside CI a test without them is skipped and says what
// to install; in CI (CI=true) it fails instead, so that a broken CI machine
// cannot pass by skipping.
package testenv

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
)

// Missing skips t (or fails it in CI) because something it needs is not
// on this machine; the message says what and how to get it.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true, yet a test's requirement is missing: "+format, args...)
	}
	t.Skipf(format, args...)
}

// PostgresURL returns the URL of the test server's superuser
// (EFFNAS_PG_URL), or calls Missing.
func PostgresURL(t testing.TB) string {
	t.Helper()
	return env(t, "EFFNAS_PG_URL")
}

// PostgresPasswordURL returns the URL of a role that must give a password
// (EFFNAS_PG_PW_URL, password included), or calls Missing.
func PostgresPasswordURL(t testing.TB) string {
	t.Helper()
	return env(t, "EFFNAS_PG_PW_URL")
}

// PostgresReadOnlyURL returns the URL of a role that may only read
// (EFFNAS_PG_RO_URL), or calls Missing.
func PostgresReadOnlyURL(t testing.TB) string {
	t.Helper()
	return env(t, "EFFNAS_PG_RO_URL")
}

func env(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		Missing(t, "%s is not set: no PostgreSQL test server (eval \"$(store/postgres/pgserver.sh start)\" starts one)", name)
	}
	return v
}

// FashionMNIST is where Debian's dataset-fashion-mnist installs the IDX files.
const FashionMNIST = "/usr/share/datasets/fashion-mnist"

// FashionMNISTDir returns FashionMNIST, or calls Missing when it is absent.
func FashionMNISTDir(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat(FashionMNIST + "/train-images-idx3-ubyte.gz"); err != nil {
		Missing(t, "Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist): %v", err)
	}
	return FashionMNIST
}

var schemaSeq atomic.Int64

// PostgresSchema creates a fresh schema in the test server (as the
// superuser, dropped with everything in it when the test ends) that any
// role may use, and returns roleURL with its search_path set to it, so
// that the role's tables land there. roleURL is one of the URLs above.
func PostgresSchema(t testing.TB, roleURL string) string {
	t.Helper()
	admin := PostgresURL(t)
	ctx := context.Background()
	schema := fmt.Sprintf("effnas_test_%d_%d", os.Getpid(), schemaSeq.Add(1))
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connect to EFFNAS_PG_URL: %v", err)
	}
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema+"; GRANT ALL ON SCHEMA "+schema+" TO PUBLIC"); err != nil {
		conn.Close(ctx)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		conn.Close(context.Background())
	})
	sep := "?"
	if strings.Contains(roleURL, "?") {
		sep = "&"
	}
	return roleURL + sep + "search_path=" + schema
}
