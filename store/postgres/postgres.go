package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/store/internal/sqlstore"
)

// ErrNewerSchema: the database was migrated by a newer effnas.
var ErrNewerSchema = sqlstore.ErrNewerSchema

//go:embed migrations/*.sql
var migrationFS embed.FS

var migrations = sqlstore.LoadMigrations(migrationFS, "migrations")

// SchemaVersion is the schema version this program writes.
func SchemaVersion() int { return len(migrations) }

// dialect is PostgreSQL's SQL for the shared store: times are timestamptz
// on the server's clock, JSON is jsonb, blocks a text array, and writers of
// one study serialise on its row while claimers skip each other's rows.
var dialect = &sqlstore.Dialect{
	Name:         "postgres",
	Numbered:     true,
	Now:          "now()",
	Created:      "created",
	Updated:      "updated",
	LeaseExpires: "lease_expires",
	NoLease:      "NULL",
	LeaseIn:      "now() + CAST(? AS BIGINT) * interval '1 millisecond'",
	TimeMS: func(col string) string {
		return "COALESCE(CAST(EXTRACT(EPOCH FROM " + col + ") * 1000 AS BIGINT), 0)"
	},
	JSONIn:     "CAST(? AS jsonb)",
	JSONOut:    func(col string) string { return col + "::text" },
	BlocksIn:   "ARRAY(SELECT jsonb_array_elements_text(CAST(? AS jsonb)))",
	BlocksOut:  "array_to_json(blocks)::text",
	LockRow:    " FOR UPDATE",
	ShareRow:   " FOR SHARE",
	SkipLocked: " FOR UPDATE SKIP LOCKED",
	Retryable: func(err error) bool {
		var pe *pgconn.PgError
		return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
	},

	VersionTable: `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY,
		name    TEXT        NOT NULL,
		applied TIMESTAMPTZ NOT NULL)`,
	RecordMigration: "INSERT INTO schema_migrations (version, name, applied) VALUES (?, ?, now())",
	HasVersionTable: "SELECT count(*) FROM pg_catalog.pg_tables WHERE tablename = 'schema_migrations' AND schemaname = current_schema()",
	MigrationLock:   "SELECT pg_advisory_xact_lock(hashtext('effnas schema migrations'))",
}

// Store is a store.Store in PostgreSQL. Create it with Open.
type Store struct {
	*sqlstore.Store
	pool *pgxpool.Pool // closing the *sql.DB over it does not close it
	url  string
}

// Close closes the store and its connection pool.
func (s *Store) Close() error {
	err := s.Store.Close()
	s.pool.Close()
	return err
}

// PoolSize is the most connections the store opens at once: its pgx
// pool's limit (pool_max_conns in the URL, by default the larger of 4 and
// the number of CPUs).
func (s *Store) PoolSize() int { return int(s.pool.Config().MaxConns) }

// URL is the connection string the store was opened with (it may hold a
// password: do not print it).
func (s *Store) URL() string { return s.url }

var _ store.Store = (*Store)(nil)

// IsURL reports whether db names a PostgreSQL database rather than a file.
func IsURL(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

// Options tunes Open. The zero value is a read-write store.
type Options struct {
	// ReadOnly opens the database without creating, migrating or writing
	// anything: every transaction is read-only on the server
	// (default_transaction_read_only), so a role with SELECT rights
	// suffices, and a schema older than this program's is refused with the
	// missing migrations named. Write methods fail. Default false.
	ReadOnly bool
}

// Open connects to the database at url (postgres://user@host:port/db?...)
// and, unless opts.ReadOnly, migrates its schema. Tables go in the
// connection's search_path. The password may come from the URL, from
// PGPASSWORD or from ~/.pgpass, as libpq's.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open database: %w; want a URL such as postgres://user@host:5432/effnas", err)
	}
	if opts.ReadOnly {
		cfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	}
	where := fmt.Sprintf("PostgreSQL database %q at %s:%d", cfg.ConnConfig.Database, cfg.ConnConfig.Host, cfg.ConnConfig.Port)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", where, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to %s: %w", where, err)
	}
	db := stdlib.OpenDBFromPool(pool)
	if opts.ReadOnly {
		if err := sqlstore.CheckSchema(ctx, db, dialect, migrations); err != nil {
			db.Close()
			pool.Close()
			return nil, fmt.Errorf("open %s read-only: %w", where, err)
		}
		return &Store{Store: sqlstore.New(dialect, nil, db), pool: pool, url: url}, nil
	}
	if err := sqlstore.Migrate(ctx, db, dialect, migrations); err != nil {
		db.Close()
		pool.Close()
		return nil, fmt.Errorf("migrate %s: %w", where, err)
	}
	return &Store{Store: sqlstore.New(dialect, db, db), pool: pool, url: url}, nil
}
