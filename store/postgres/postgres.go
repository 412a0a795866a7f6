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
	url string
}

// URL is the connection string the store was opened with (it may hold a
// password: do not print it).
func (s *Store) URL() string { return s.url }

var _ store.Store = (*Store)(nil)

// IsURL reports whether db names a PostgreSQL database rather than a file.
func IsURL(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

// Open connects to the database at url (postgres://user@host:port/db?...)
// and migrates its schema. Tables go in the connection's search_path.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open database: %w; want a URL such as postgres://user@host:5432/effnas", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", cfg.ConnConfig.Host, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to PostgreSQL at %s:%d: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	}
	db := stdlib.OpenDBFromPool(pool)
	if err := sqlstore.Migrate(ctx, db, dialect, migrations); err != nil {
		db.Close()
		pool.Close()
		return nil, fmt.Errorf("migrate database: %w", err)
	}
	return &Store{Store: sqlstore.New(dialect, db, db), url: url}, nil
}
