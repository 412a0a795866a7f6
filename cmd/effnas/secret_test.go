package main

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/effnas/effnas/internal/testenv"
)

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://effnas:secret@db.lan/effnas":           "postgres://effnas:xxxxx@db.lan/effnas",
		"postgresql://u:p%40ss@h:5432/d?sslmode=disable":   "postgresql://u:xxxxx@h:5432/d?sslmode=disable",
		"postgres://u@h/d?password=secret&sslmode=disable": "postgres://u@h/d?password=xxxxx&sslmode=disable",
		"postgres://u@h/d": "postgres://u@h/d",
		"effnas.db":        "effnas.db",
		"host=db user=u password=secret dbname=effnas":            "host=db user=u password=xxxxx dbname=effnas",
		"postgres://u:sec ret@h/%zz":                              "postgres://xxxxx@h/%zz",
		"/data/studies/password=notasecret-but-looks-like-one.db": "/data/studies/password=xxxxx",
		"postgres://u@h/d?sslpassword=secret&PASSWORD=secret":     "postgres://u@h/d?PASSWORD=xxxxx&sslpassword=xxxxx",
		"host=db sslpassword=secret":                              "host=db sslpassword=xxxxx",
	} {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
		if strings.Contains(redact(in), "secret") && !strings.Contains(in, "notasecret") {
			t.Errorf("redact(%q) = %q still shows the secret", in, redact(in))
		}
	}
	// Hints leave the password out, so that they run as printed with
	// PGPASSWORD or ~/.pgpass.
	for in, want := range map[string]string{
		"postgres://effnas:secret@db.lan/effnas":           " --db postgres://effnas@db.lan/effnas",
		"postgres://u@h/d?password=secret&sslmode=disable": " --db 'postgres://u@h/d?sslmode=disable'",
		"effnas.db": " --db effnas.db",
	} {
		d := &dbName{raw: in}
		if got := d.Flag(); got != want {
			t.Errorf("Flag of %q = %q, want %q", in, got, want)
		}
	}
}

// everyCommand runs each command that takes --db against db, with tiny
// settings, and returns what each printed and its error.
func everyCommand(t *testing.T, db string) map[string]string {
	t.Helper()
	small := []string{"--train-size", "128", "--val-size", "64", "--test-size", "32", "--proxy-width", "0.25", "--proxy-res", "16",
		"--batch", "32", "--epochs", "1", "--workers", "1"}
	cmds := map[string][]string{
		"search":      append([]string{"search", "--db", db, "--trials", "1", "--rungs", "1", "--top-seeds", "1"}, small...),
		"grid":        append([]string{"grid", "--db", db, "--step", "0.2", "--rungs", "1", "--top-seeds", "1"}, small...),
		"bench proxy": append([]string{"bench", "proxy", "--db", db, "--panel", "1", "--seeds", "2", "--ref-seeds", "2", "--ref-train-size", "192", "--ref-epochs", "1", "--png", "-"}, small...),
		"list":        {"list", "--db", db},
		"show":        {"show", "--db", db},
		"show json":   {"show", "--db", db, "--json"},
		"export":      {"export", "--db", db},
		"resume":      {"resume", "--db", db, "--workers", "1"},
		"worker":      {"worker", "--db", db, "--once", "--workers", "1"},
		"search -h":   {"search", "-h"},
	}
	out := map[string]string{}
	for _, name := range []string{"search", "grid", "bench proxy", "list", "show", "show json", "export", "resume", "worker", "search -h"} {
		stdout, stderr, err := runTrainCmd(t, cmds[name]...)
		s := stdout + stderr
		if err != nil {
			s += "\nerror: " + err.Error()
		}
		out[name] = s
	}
	return out
}

// TestNoPasswordPrinted: no command prints the password of a database
// URL, whether it fails to connect (any machine) or works (a PostgreSQL
// role that needs a password; in CI always).
func TestNoPasswordPrinted(t *testing.T) {
	t.Run("unreachable", func(t *testing.T) {
		const pw = "Hunter2-secret"
		db := "postgres://effnas:" + pw + "@127.0.0.1:1/effnas?sslmode=disable&connect_timeout=2"
		t.Setenv(envDB, db) // the default of --db, shown by -h
		outs := everyCommand(t, db)
		// The dashboard serves until stopped; against an unreachable
		// server it must fail at once, without the password.
		stdout, stderr, err := runTrainCmd(t, "dashboard", "--db", db)
		outs["dashboard"] = stdout + stderr + fmt.Sprint(err)
		for name, out := range outs {
			if strings.Contains(out, pw) {
				t.Errorf("%s printed the password:\n%s", name, out)
			}
			if name != "search -h" && !strings.Contains(out, "127.0.0.1:1") {
				t.Errorf("%s does not say which server it could not reach:\n%s", name, out)
			}
		}
	})
	t.Run("postgres", func(t *testing.T) {
		full := testenv.PostgresPasswordURL(t)
		u, err := url.Parse(full)
		if err != nil {
			t.Fatal(err)
		}
		pw, _ := u.User.Password()
		db := testenv.PostgresSchema(t, full)
		t.Chdir(t.TempDir()) // bench proxy and export write nothing here, but be safe
		for name, out := range everyCommand(t, db) {
			if strings.Contains(out, pw) {
				t.Errorf("%s printed the password:\n%s", name, out)
			}
			if strings.Contains(out, "error:") && name != "export" && name != "search -h" {
				t.Errorf("%s failed against a working database:\n%s", name, out)
			}
		}
	})
}

// TestDatabaseFromEnvironment: with --db absent, EFFNAS_DB names the
// database, and a PostgreSQL password may come from PGPASSWORD instead of
// the URL (so it never appears on a command line).
func TestDatabaseFromEnvironment(t *testing.T) {
	path, _, _ := sweepDB(t)
	t.Setenv(envDB, path)
	out, err := runCmd(t, "list")
	if err != nil || !strings.Contains(out, "b0") {
		t.Fatalf("list with EFFNAS_DB=%s: %v\n%s", path, err, out)
	}
	// Hints do not repeat a database that came from the environment.
	if _, err := runCmd(t, "show", "--study", "99"); err == nil || strings.Contains(err.Error(), "--db") {
		t.Errorf("show of a missing study with EFFNAS_DB set: %v; want an error whose hint has no --db", err)
	}

	full := testenv.PostgresPasswordURL(t)
	u, err := url.Parse(full)
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := u.User.Password()
	u.User = url.User(u.User.Username())
	bare := testenv.PostgresSchema(t, u.String())
	t.Setenv("PGPASSFILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv(envDB, bare)
	t.Setenv("PGPASSWORD", "")
	os.Unsetenv("PGPASSWORD")
	if _, err := runCmd(t, "list"); err == nil {
		t.Fatal("list as a role that needs a password, given none, succeeded: the test server does not ask for it")
	}
	t.Setenv("PGPASSWORD", pw)
	if out, err := runCmd(t, "search", "--trials", "1", "--rungs", "1", "--top-seeds", "1", "--train-size", "64", "--val-size", "32",
		"--test-size", "32", "--proxy-width", "0.25", "--proxy-res", "16", "--batch", "32", "--workers", "1"); err != nil {
		t.Fatalf("search with EFFNAS_DB and PGPASSWORD: %v\n%s", err, out)
	}
	out, err = runCmd(t, "list")
	if err != nil || !strings.Contains(out, "search") {
		t.Fatalf("list with EFFNAS_DB and PGPASSWORD: %v\n%s", err, out)
	}
}

// TestReadOnlyRole: show, list and export work unchanged with a role that
// may only read, and never create or migrate anything; on a database that
// lacks migrations they say which, and which command applies them.
func TestReadOnlyRole(t *testing.T) {
	rw := testenv.PostgresSchema(t, testenv.PostgresURL(t))
	if out, err := runCmd(t, "search", "--db", rw, "--trials", "1", "--rungs", "1", "--top-seeds", "1", "--train-size", "64", "--val-size", "32",
		"--test-size", "32", "--proxy-width", "0.25", "--proxy-res", "16", "--batch", "32", "--workers", "1"); err != nil {
		t.Fatalf("search: %v\n%s", err, out)
	}
	u, _ := url.Parse(rw)
	ro := testenv.PostgresReadOnlyURL(t) + "&search_path=" + u.Query().Get("search_path")
	for _, args := range [][]string{{"list"}, {"show", "--json"}, {"export", "--format", "json"}} {
		out, err := runCmd(t, append(args, "--db", ro)...)
		if err != nil || out == "" {
			t.Errorf("%s as a read-only role: %v\n%s", args[0], err, out)
		}
	}
	// An empty schema: nothing to read, nothing created.
	empty := testenv.PostgresSchema(t, testenv.PostgresURL(t))
	u, _ = url.Parse(empty)
	roEmpty := testenv.PostgresReadOnlyURL(t) + "&search_path=" + u.Query().Get("search_path")
	_, err := runCmd(t, "list", "--db", roEmpty)
	if err == nil || !strings.Contains(err.Error(), "no effnas tables") {
		t.Errorf("list of an empty database as a read-only role: %v; want it to say there are no effnas tables", err)
	}
	if _, err := runCmd(t, "list", "--db", empty); err == nil || !strings.Contains(err.Error(), "no effnas tables") {
		t.Errorf("list of an empty database: %v; want it to say there are no effnas tables (and create none)", err)
	}
}
