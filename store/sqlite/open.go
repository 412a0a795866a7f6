package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mattn/go-sqlite3" // also registers the "sqlite3" driver

	"github.com/effnas/effnas/store/internal/sqlstore"
)

// Errors Open returns, wrapped with the path; test them with errors.Is.
var (
	// ErrNoDatabase: a read-only open found no file at the path.
	ErrNoDatabase = errors.New("no database")
	// ErrNotDatabase: the file is not a SQLite database, or is one that
	// belongs to another program. It is left untouched.
	ErrNotDatabase = errors.New("not an effnas SQLite database")
	// ErrCorrupt: the file is a damaged SQLite database. It is left untouched.
	ErrCorrupt = errors.New("damaged database")
	// ErrNewerSchema: the database was written by a newer effnas. It is left
	// untouched.
	ErrNewerSchema = sqlstore.ErrNewerSchema
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// applicationID marks effnas databases in the SQLite header (offset 68):
// "EFNS". A database with another application id belongs to another program.
const applicationID = 0x45464E53

// sqliteMagic is the first 16 bytes of every SQLite 3 database.
var sqliteMagic = []byte("SQLite format 3\x00")

// DefaultBusyTimeout is how long a write waits for another connection or
// process holding the write lock before it gives up.
const DefaultBusyTimeout = 30 * time.Second

// Options tunes Open. The zero value is a read-write store.
type Options struct {
	// ReadOnly opens an existing database without creating, migrating or
	// writing it; write methods fail. Default false.
	ReadOnly bool
	// BusyTimeout bounds the wait for the write lock; default
	// DefaultBusyTimeout.
	BusyTimeout time.Duration
}

var migrations = sqlstore.LoadMigrations(migrationFS, "migrations")

// SchemaVersion is the schema version this program writes.
func SchemaVersion() int { return len(migrations) }

// dsn builds a go-sqlite3 URI for path with the given parameters.
func dsn(path string, params ...string) string {
	r := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")
	return "file:" + r.Replace(path) + "?" + strings.Join(params, "&")
}

// Open opens the effnas database at path, creating it (and migrating its
// schema) unless opts.ReadOnly. Before anything can write, an existing file
// is inspected read-only: a file that is not a SQLite database, a damaged
// one, one of another program, or one with a newer schema is refused with
// ErrNotDatabase, ErrCorrupt or ErrNewerSchema and left byte-for-byte as it
// was.
//
// Several processes may open one file: WAL lets readers run beside the
// writer, writes take the write lock up front (BEGIN IMMEDIATE) and wait up
// to BusyTimeout for it, and trial leases keep two workers off one trial.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if path == "" {
		return nil, fmt.Errorf("open database: empty path; want a file path such as effnas.db")
	}
	busy := opts.BusyTimeout
	if busy <= 0 {
		busy = DefaultBusyTimeout
	}
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if opts.ReadOnly {
			return nil, fmt.Errorf("%w at %s", ErrNoDatabase, path)
		}
		dir := filepath.Dir(path)
		if dst, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("create database %s: directory %s: %w", path, dir, err)
		} else if !dst.IsDir() {
			return nil, fmt.Errorf("create database %s: %s is not a directory", path, dir)
		}
	case err != nil:
		return nil, fmt.Errorf("open database %s: %w", path, err)
	case st.IsDir():
		return nil, fmt.Errorf("open database %s: %w: it is a directory; want a file path", path, ErrNotDatabase)
	case st.Size() == 0:
		if opts.ReadOnly {
			return nil, fmt.Errorf("open database %s: %w: the file is empty", path, ErrNotDatabase)
		}
		// An empty file is an empty SQLite database: it becomes ours.
	default:
		if err := inspect(ctx, path, busy); err != nil {
			return nil, err
		}
	}

	var w *sql.DB
	if !opts.ReadOnly {
		// synchronous=FULL: every commit (a claim, a result) is fsynced
		// before it returns. Commits are rare next to training (a few per
		// trial, each trial minutes long), so the millisecond an fsync
		// costs is nothing, while a result that cost minutes of compute
		// then survives power loss and OS crashes too, not only process
		// crashes (which WAL with NORMAL already survives).
		var err error
		w, err = sql.Open("sqlite3", dsn(path, "mode=rwc", "_txlock=immediate",
			"_busy_timeout="+strconv.FormatInt(busy.Milliseconds(), 10),
			"_journal_mode=WAL", "_synchronous=FULL", "_foreign_keys=1"))
		if err != nil {
			return nil, fmt.Errorf("open database %s: %w", path, err)
		}
		// One writer connection: goroutines of this process queue in Go
		// instead of spinning on SQLite's busy handler; other processes
		// wait on the busy timeout.
		w.SetMaxOpenConns(1)
		w.SetConnMaxIdleTime(0)
		if err := w.PingContext(ctx); err != nil {
			w.Close()
			return nil, fmt.Errorf("open database %s for writing: %w (are the file and its directory writable?)", path, err)
		}
		if err := sqlstore.Migrate(ctx, w, dialect, migrations); err != nil {
			w.Close()
			if strings.Contains(err.Error(), "readonly") {
				return nil, fmt.Errorf("open database %s for writing: %w (the file is read-only; make it writable or choose another path)", path, err)
			}
			return nil, fmt.Errorf("migrate database %s: %w", path, err)
		}
	}
	ro := []string{"mode=ro", "_busy_timeout=" + strconv.FormatInt(busy.Milliseconds(), 10), "_query_only=1"}
	var r *sql.DB
	if opts.ReadOnly {
		// A file of mode 444 is read immutable while nobody writes it.
		r = sql.OpenDB(&readConnector{path: path, params: ro})
	} else if r, err = sql.Open("sqlite3", dsn(path, ro...)); err != nil {
		w.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	s := &Store{Store: sqlstore.New(dialect, w, r), path: path}
	if opts.ReadOnly {
		if err := sqlstore.CheckSchema(ctx, r, dialect, migrations); err != nil {
			s.Close()
			return nil, fmt.Errorf("open database %s read-only: %w", path, err)
		}
	}
	return s, nil
}

// inspect checks an existing, non-empty file without writing to it: the
// SQLite header, the application id, integrity and schema version.
func inspect(ctx context.Context, path string, busy time.Duration) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open database %s: %w", path, err)
	}
	hdr := make([]byte, 100)
	_, err = io.ReadFull(f, hdr)
	f.Close()
	if err != nil || !bytes.Equal(hdr[:16], sqliteMagic) {
		return fmt.Errorf("open database %s: %w: it does not start with the SQLite header; choose another path (the file was not changed)", path, ErrNotDatabase)
	}

	// Without a -wal file the main file is the whole database: open it
	// immutable, so SQLite creates no -wal or -shm file beside a file it
	// may refuse. With one, a writer is running or crashed, the WAL holds
	// committed pages, and a read-only open reuses the files that exist.
	params := []string{"mode=ro", "_query_only=1", "_busy_timeout=" + strconv.FormatInt(busy.Milliseconds(), 10)}
	if _, err := os.Stat(path + "-wal"); errors.Is(err, fs.ErrNotExist) {
		params = append(params, "immutable=1")
	}
	db, err := sql.Open("sqlite3", dsn(path, params...))
	if err != nil {
		return fmt.Errorf("open database %s: %w", path, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	// The application id is read through SQLite, not from the header
	// bytes: a writer's uncommitted-to-file WAL may hold the newer header.
	var appID int64
	if err := db.QueryRowContext(ctx, "PRAGMA application_id").Scan(&appID); err != nil {
		if isBusy(err) {
			return fmt.Errorf("open database %s: another process holds it locked: %w", path, err)
		}
		return fmt.Errorf("open database %s: %w: %v (the file was not changed)", path, ErrCorrupt, err)
	}
	if appID != 0 && appID != applicationID {
		return fmt.Errorf("open database %s: %w: it is a SQLite database of another program (application id %#x); choose another path (the file was not changed)", path, ErrNotDatabase, appID)
	}
	var check string
	if err := db.QueryRowContext(ctx, "PRAGMA quick_check").Scan(&check); err != nil {
		if isBusy(err) {
			return fmt.Errorf("open database %s: another process holds it locked: %w", path, err)
		}
		return fmt.Errorf("open database %s: %w: %v (the file was not changed)", path, ErrCorrupt, err)
	}
	if check != "ok" {
		lines := strings.Split(strings.TrimPrefix(check, "*** in database main ***\n"), "\n")
		more := ""
		if len(lines) > 2 {
			more = fmt.Sprintf(" and %d more problems", len(lines)-2)
			lines = lines[:2]
		}
		return fmt.Errorf("open database %s: %w: integrity check says %q%s (the file was not changed)", path, ErrCorrupt, strings.Join(lines, "; "), more)
	}
	var tables []string
	rows, err := db.QueryContext(ctx, "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
	if err != nil {
		return fmt.Errorf("open database %s: %w: %v (the file was not changed)", path, ErrCorrupt, err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return fmt.Errorf("open database %s: %w", path, err)
		}
		tables = append(tables, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("open database %s: %w: %v (the file was not changed)", path, ErrCorrupt, err)
	}
	if len(tables) == 0 {
		return nil // an empty database becomes ours
	}
	if appID != applicationID {
		return fmt.Errorf("open database %s: %w: it holds tables %s of another program; choose another path (the file was not changed)", path, ErrNotDatabase, strings.Join(tables, ", "))
	}
	v, err := sqlstore.SchemaVersion(ctx, db, dialect)
	if err != nil {
		return fmt.Errorf("open database %s: %w", path, err)
	}
	if v > SchemaVersion() {
		return fmt.Errorf("open database %s: %w: it has schema version %d and this effnas knows up to %d; use a newer effnas (the file was not changed)", path, ErrNewerSchema, v, SchemaVersion())
	}
	return nil
}

// isBusy reports whether err is SQLite's "database is locked" or "busy",
// which says nothing about the file's health.
func isBusy(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && (se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked)
}
