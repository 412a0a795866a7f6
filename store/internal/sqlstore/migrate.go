package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
)

// ErrNewerSchema: the database was migrated by a newer effnas.
var ErrNewerSchema = errors.New("database schema is newer than this program")

// ErrOlderSchema: a read-only open found migrations missing.
var ErrOlderSchema = errors.New("database schema is older than this program")

// Migration is one numbered schema change, NNN_name.up.sql.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// LoadMigrations reads the *.up.sql files of dir in fsys, which must be
// numbered 1, 2, 3... It panics on a malformed set: they are embedded in
// the binary, so that is a programmer's error.
func LoadMigrations(fsys fs.FS, dir string) []Migration {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		panic("sqlstore: read embedded migrations: " + err.Error())
	}
	var ms []Migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(name, ".up.sql") {
			panic("sqlstore: bad migration file name " + name)
		}
		b, err := fs.ReadFile(fsys, dir+"/"+name)
		if err != nil {
			panic("sqlstore: read migration " + name + ": " + err.Error())
		}
		ms = append(ms, Migration{Version: v, Name: name, SQL: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i, m := range ms {
		if m.Version != i+1 {
			panic(fmt.Sprintf("sqlstore: migrations must be numbered 1, 2, 3...; found %s at position %d", m.Name, i+1))
		}
	}
	return ms
}

// SchemaVersion reads the highest applied migration of db; 0 when the
// database has none (a new database).
func SchemaVersion(ctx context.Context, db *sql.DB, d *Dialect) (int, error) {
	var n int
	if err := db.QueryRowContext(ctx, d.HasVersionTable).Scan(&n); err != nil || n == 0 {
		return 0, err
	}
	var v int
	err := db.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&v)
	return v, err
}

// CheckSchema is the read-only open's check: it writes nothing and
// refuses a schema older or newer than ms, saying which migrations are
// missing and which commands apply them.
func CheckSchema(ctx context.Context, db *sql.DB, d *Dialect, ms []Migration) error {
	v, err := SchemaVersion(ctx, db, d)
	if err != nil {
		return fmt.Errorf("read the schema version: %w", err)
	}
	switch {
	case v > len(ms):
		return fmt.Errorf("%w: it has schema version %d and this effnas knows up to %d; use a newer effnas", ErrNewerSchema, v, len(ms))
	case v == 0:
		return fmt.Errorf("%w: it has no effnas tables yet; a coordinator (effnas search or grid) creates them; workers wait for them", ErrOlderSchema)
	case v < len(ms):
		var names []string
		for _, m := range ms[v:] {
			names = append(names, m.Name)
		}
		return fmt.Errorf("%w: it has schema version %d and this effnas needs %d (missing %s); run a command that writes, such as effnas resume or effnas worker --once, with a role that may alter the tables, to apply them",
			ErrOlderSchema, v, len(ms), strings.Join(names, ", "))
	}
	return nil
}

// Migrate applies the migrations db lacks in one transaction, recorded in
// schema_migrations. Concurrent migrators are serialised by the dialect's
// lock (SQLite's write lock, a PostgreSQL advisory lock).
func Migrate(ctx context.Context, db *sql.DB, d *Dialect, ms []Migration) (err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if d.BeforeMigrate != "" {
		if _, err := conn.ExecContext(ctx, d.BeforeMigrate); err != nil {
			return err
		}
		defer func() {
			if _, aerr := conn.ExecContext(context.WithoutCancel(ctx), d.AfterMigrate); aerr != nil && err == nil {
				err = aerr
			}
		}()
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	if d.MigrationLock != "" {
		if _, err := tx.ExecContext(ctx, d.MigrationLock); err != nil {
			return err
		}
	}
	// The version table is the one thing created outside a numbered
	// migration: it records them.
	if _, err := tx.ExecContext(ctx, d.VersionTable); err != nil {
		return err
	}
	var current int
	if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&current); err != nil {
		return err
	}
	if current > len(ms) {
		return fmt.Errorf("%w: version %d, this effnas knows up to %d; use a newer effnas", ErrNewerSchema, current, len(ms))
	}
	for _, m := range ms[current:] {
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return fmt.Errorf("apply %s: %w", m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, d.rebind(d.RecordMigration), m.Version, m.Name); err != nil {
			return fmt.Errorf("record %s: %w", m.Name, err)
		}
	}
	if d.MigrateCheck != "" {
		rows, err := tx.QueryContext(ctx, d.MigrateCheck)
		if err != nil {
			return err
		}
		bad := rows.Next()
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("foreign-key check: %w", err)
		}
		if bad {
			return errors.New("the migrated tables fail the foreign-key check")
		}
	}
	if d.MigrateDone != "" {
		if _, err := tx.ExecContext(ctx, d.MigrateDone); err != nil {
			return err
		}
	}
	return tx.Commit()
}
