package sqlite

import (
	"strconv"

	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/store/internal/sqlstore"
)

// nowMS is the database's clock in integer milliseconds since the epoch.
// SQLite evaluates it once per statement.
const nowMS = "CAST(unixepoch('subsec') * 1000 AS INTEGER)"

// dialect is SQLite's SQL for the shared store: times are integer
// milliseconds, JSON is text, and there is one writer, so no row locks.
var dialect = &sqlstore.Dialect{
	Name:         "sqlite",
	Now:          nowMS,
	Created:      "created_ms",
	Updated:      "updated_ms",
	LeaseExpires: "lease_expires_ms",
	NoLease:      "0",
	LeaseIn:      nowMS + " + ?",
	TimeMS:       func(col string) string { return col },
	JSONIn:       "?",
	JSONOut:      func(col string) string { return col },
	BlocksIn:     "?",
	BlocksOut:    "blocks",

	VersionTable: `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_ms INTEGER NOT NULL
	) STRICT`,
	RecordMigration: "INSERT INTO schema_migrations (version, name, applied_ms) VALUES (?, ?, " + nowMS + ")",
	HasVersionTable: "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'",
	// A migration that rebuilds a table needs foreign keys off (SQLite's
	// twelve-step procedure); the check before commit keeps them honest.
	BeforeMigrate: "PRAGMA foreign_keys = OFF",
	AfterMigrate:  "PRAGMA foreign_keys = ON",
	MigrateCheck:  "PRAGMA foreign_key_check",
	MigrateDone:   "PRAGMA application_id = " + strconv.Itoa(applicationID),
}

// Store is a store.Store in one SQLite file. Create it with Open.
type Store struct {
	*sqlstore.Store
	path string
}

var _ store.Store = (*Store)(nil)

// Path is the database file.
func (s *Store) Path() string { return s.path }
