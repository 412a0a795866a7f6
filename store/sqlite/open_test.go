package sqlite_test

import (
	"crypto/sha256"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/store/sqlite"
)

func sum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// filled makes a closed database at a new path with one study and trials.
func filled(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "effnas.db")
	s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.CreateStudy(t.Context(), store.Study{Kind: store.KindSearch}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ps := make([]store.Plan, 200)
	for i := range ps {
		ps[i] = store.Plan{Key: strings.Repeat("k", 50) + string(rune('a'+i%26)) + time.Duration(i).String()}
	}
	if _, err := s.PlanTrials(t.Context(), st.ID, ps, []byte("state")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// rawExec changes a database behind the store's back.
func rawExec(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// TestOpenRefusesAndLeavesFileUnchanged: files that are not effnas
// databases are refused with a clear error and stay byte-for-byte the same.
func TestOpenRefusesAndLeavesFileUnchanged(t *testing.T) {
	tests := []struct {
		name    string
		make    func(t *testing.T) string
		want    error
		message string
	}{
		{"text file", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "notes.txt")
			os.WriteFile(p, []byte(strings.Repeat("my precious notes\n", 500)), 0o644)
			return p
		}, sqlite.ErrNotDatabase, "does not start with the SQLite header"},
		{"short file", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "x.db")
			os.WriteFile(p, []byte("SQLite format 3"), 0o644)
			return p
		}, sqlite.ErrNotDatabase, "SQLite header"},
		{"damaged pages", func(t *testing.T) string {
			p := filled(t)
			b, _ := os.ReadFile(p)
			for i := 4096; i < len(b); i++ { // every page after the first
				b[i] = byte(i*7 + 3)
			}
			os.WriteFile(p, b, 0o644)
			return p
		}, sqlite.ErrCorrupt, "damaged"},
		{"truncated", func(t *testing.T) string {
			p := filled(t)
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:len(b)/2], 0o644)
			return p
		}, sqlite.ErrCorrupt, "damaged"},
		{"newer schema", func(t *testing.T) string {
			p := filled(t)
			rawExec(t, p, "INSERT INTO schema_migrations (version, name, applied_ms) VALUES (99, '099_future.up.sql', 0)")
			return p
		}, sqlite.ErrNewerSchema, "use a newer effnas"},
		{"another program's database", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "other.db")
			rawExec(t, p, "CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)", "INSERT INTO invoices VALUES (1, 9.5)")
			return p
		}, sqlite.ErrNotDatabase, "invoices"},
		{"another application id", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "other.db")
			rawExec(t, p, "PRAGMA application_id = 1234", "CREATE TABLE t (x)")
			return p
		}, sqlite.ErrNotDatabase, "application id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.make(t)
			before := sum(t, path)
			for _, ro := range []bool{false, true} {
				s, err := sqlite.Open(t.Context(), path, sqlite.Options{ReadOnly: ro})
				if err == nil {
					s.Close()
					t.Fatalf("Open(ReadOnly=%v) succeeded, want %v", ro, tc.want)
				}
				if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.message) || !strings.Contains(err.Error(), path) {
					t.Fatalf("Open(ReadOnly=%v) error %q, want %v naming the path and saying %q", ro, err, tc.want, tc.message)
				}
			}
			if after := sum(t, path); after != before {
				t.Fatalf("the refused file changed")
			}
			if side, _ := filepath.Glob(path + "-*"); len(side) > 0 {
				t.Fatalf("refusing %s left files beside it: %v", path, side)
			}
		})
	}
}

func TestOpenUnwritable(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "plain")
	os.WriteFile(file, []byte("x"), 0o644)
	for _, path := range []string{
		filepath.Join(dir, "missing", "effnas.db"),
		filepath.Join(file, "effnas.db"),
		dir,
	} {
		s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
		if err == nil {
			s.Close()
			t.Fatalf("Open(%s) succeeded, want an error", path)
		}
		if !strings.Contains(err.Error(), path) && !strings.Contains(err.Error(), filepath.Dir(path)) {
			t.Fatalf("Open(%s) error %q does not name the path", path, err)
		}
	}
	if os.Getuid() == 0 {
		t.Log("running as root: skipping the read-only directory case (root can write anywhere)")
		return
	}
	ro := filepath.Join(dir, "ro")
	os.Mkdir(ro, 0o500)
	_, err := sqlite.Open(t.Context(), filepath.Join(ro, "effnas.db"), sqlite.Options{})
	if err == nil || !strings.Contains(err.Error(), "writable") {
		t.Fatalf("Open in a read-only directory: %v, want an error saying it is not writable", err)
	}
}

func TestOpenReadOnlyNeverCreates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "none.db")
	_, err := sqlite.Open(t.Context(), path, sqlite.Options{ReadOnly: true})
	if !errors.Is(err, sqlite.ErrNoDatabase) || !strings.Contains(err.Error(), "no database at "+path) {
		t.Fatalf("read-only Open of a missing file: %v, want ErrNoDatabase naming the path", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("read-only Open created %s", path)
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	ctx := t.Context()
	path := filled(t)
	s, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := s.LatestStudy(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.CountTrials(ctx, st.ID)
	if err != nil || c.Pending != 200 {
		t.Fatalf("after reopen: %+v, %v; want 200 pending trials", c, err)
	}
	if b, err := s.LoadControllerState(ctx, st.ID); err != nil || string(b) != "state" {
		t.Fatalf("controller state after reopen: %q, %v", b, err)
	}
	ro, err := sqlite.Open(ctx, path, sqlite.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, err := ro.Trials(ctx, st.ID); err != nil {
		t.Fatalf("read-only Trials: %v", err)
	}
	if _, err := ro.CreateStudy(ctx, store.Study{Kind: store.KindGrid}, nil); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("CreateStudy on a read-only store: %v, want a read-only error", err)
	}
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n, v int
	var mode string
	db.QueryRow("SELECT count(*), max(version) FROM schema_migrations").Scan(&n, &v)
	db.QueryRow("PRAGMA journal_mode").Scan(&mode)
	if n != sqlite.SchemaVersion() || v != sqlite.SchemaVersion() || mode != "wal" {
		t.Fatalf("schema_migrations has %d rows up to %d, journal %q; want each of %d migrations once, wal", n, v, mode, sqlite.SchemaVersion())
	}
}

func TestEmptyFileBecomesDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.db")
	os.WriteFile(path, nil, 0o644)
	s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatalf("Open of an empty file: %v", err)
	}
	s.Close()
}

// TestNewerSchemaInWAL: the newer version is still in the WAL of a live
// writer (not checkpointed): it is seen, refused, and nothing is written.
func TestNewerSchemaInWAL(t *testing.T) {
	path := filled(t)
	db, err := sql.Open("sqlite3", path+"?_journal_mode=WAL")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for _, q := range []string{"PRAGMA wal_autocheckpoint = 0", "INSERT INTO schema_migrations (version, name, applied_ms) VALUES (99, '099_next.up.sql', 0)"} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	before, beforeWAL := sum(t, path), sum(t, path+"-wal")
	_, err = sqlite.Open(t.Context(), path, sqlite.Options{})
	if !errors.Is(err, sqlite.ErrNewerSchema) || !strings.Contains(err.Error(), "schema version 99") {
		t.Fatalf("Open with a newer schema in the WAL: %v, want ErrNewerSchema version 99", err)
	}
	if sum(t, path) != before || sum(t, path+"-wal") != beforeWAL {
		t.Fatal("the refused database or its WAL changed")
	}
}

// TestReadOnlySeesLaterWriter: a read-only store of a file of mode 444
// with no -wal beside it reads it immutable (no locks, no -wal or -shm),
// which promises SQLite that nobody writes the file. A dashboard keeps
// its store open for days, and a writer may come anyway: root ignores
// the mode (as a search run as root does, without the chmod this test
// needs when it is not root), and anyone may chmod the file and start a
// search. Whatever the writer did, the store's next read sees it.
func TestReadOnlySeesLaterWriter(t *testing.T) {
	chmod := func(t *testing.T, path string, mode os.FileMode) {
		t.Helper()
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
	// writeStudy opens a writer, as effnas search would (WAL), and adds a
	// study named "later"; the caller closes it.
	writeStudy := func(t *testing.T, path string) *sqlite.Store {
		t.Helper()
		w, err := sqlite.Open(t.Context(), path, sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.CreateStudy(t.Context(), store.Study{Kind: store.KindSearch, Name: "later"}, nil); err != nil {
			w.Close()
			t.Fatal(err)
		}
		return w
	}
	for _, tc := range []struct {
		name string
		// write changes the file behind the read-only store, which must
		// see the change before done is called.
		write func(t *testing.T, path string) (done func())
	}{
		// The writer's commits are in the -wal, the file is as it was:
		// only the -wal beside it says that it changed.
		{"a writer open", func(t *testing.T, path string) func() {
			chmod(t, path, 0o644)
			w := writeStudy(t, path)
			chmod(t, path, 0o444)
			return func() { w.Close() }
		}},
		// The writer closed: its commits were copied into the file and
		// the -wal removed; only the file's size and time say so.
		{"a writer that finished", func(t *testing.T, path string) func() {
			chmod(t, path, 0o644)
			writeStudy(t, path).Close()
			chmod(t, path, 0o444)
			return func() {}
		}},
		// Another file took its name (a backup restored with cp -p and
		// mv), of the same size and time: only the inode differs.
		{"replaced by one of the same size and time", func(t *testing.T, path string) func() {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			other := path + ".restored"
			if err := os.WriteFile(other, b, 0o644); err != nil {
				t.Fatal(err)
			}
			rawExec(t, other, "UPDATE studies SET name = 'later'")
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(other, fi.ModTime(), fi.ModTime()); err != nil {
				t.Fatal(err)
			}
			chmod(t, other, 0o444)
			if ofi, err := os.Stat(other); err != nil || ofi.Size() != fi.Size() {
				t.Fatalf("the replacement has %v bytes (%v), the file %d; the case needs them equal", ofi.Size(), err, fi.Size())
			}
			if err := os.Rename(other, path); err != nil {
				t.Fatal(err)
			}
			return func() {}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			path := filled(t)
			chmod(t, path, 0o444)
			ro, err := sqlite.Open(ctx, path, sqlite.Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer ro.Close()
			names := func() []string {
				t.Helper()
				all, err := ro.Studies(ctx)
				if err != nil {
					t.Fatalf("read-only Studies: %v", err)
				}
				var ns []string
				for _, s := range all {
					ns = append(ns, s.Name)
				}
				return ns
			}
			if got := names(); slices.Contains(got, "later") {
				t.Fatalf("studies before the write: %q", got)
			}
			if side, _ := filepath.Glob(path + "-*"); len(side) > 0 {
				t.Fatalf("reading a file of mode 444 created %v beside it", side)
			}
			done := tc.write(t, path)
			got := names()
			done()
			if !slices.Contains(got, "later") {
				t.Errorf("studies after the write, as the read-only store sees them: %q; want one named later", got)
			}
		})
	}
}
