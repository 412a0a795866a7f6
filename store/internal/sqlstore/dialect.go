// Package sqlstore is the one implementation of store.Store over SQL: the
// claim, lease, compare-and-set, recovery and migration logic, written once
// and parameterised by a Dialect. store/sqlite and store/postgres only open
// connections and describe their SQL dialect, as river's drivers do; a bug
// in the trial lifecycle is fixed here, once, and the conformance suite
// (store/storetest) checks it on both databases.
package sqlstore

import (
	"strconv"
	"strings"
)

// Dialect is what differs between the databases: placeholders, the clock,
// how times, JSON and block lists are stored, and row locking. Times reach
// Go as integer milliseconds since the epoch whatever the column type.
type Dialect struct {
	Name string // "sqlite" or "postgres", for messages

	// Numbered makes placeholders $1, $2... instead of ?.
	Numbered bool
	// Now is the database clock as a value of the time columns.
	Now string
	// Created, Updated and LeaseExpires are the time columns' names.
	Created, Updated, LeaseExpires string
	// NoLease is the lease column's value when no lease is held.
	NoLease string
	// LeaseIn is the lease column's value ? milliseconds from Now.
	LeaseIn string
	// TimeMS reads a time column as integer milliseconds (0 for none).
	TimeMS func(col string) string
	// JSONIn is the placeholder of a JSON document given as text; JSONOut
	// reads a JSON column as text.
	JSONIn  string
	JSONOut func(col string) string
	// BlocksIn turns a JSON array of strings (a placeholder) into the
	// blocks column's type; BlocksOut reads the column as a JSON array.
	BlocksIn  string
	BlocksOut string
	// LockRow and ShareRow end a SELECT of the study row that serialises
	// writers of one study ("" where the database has one writer).
	LockRow, ShareRow string
	// SkipLocked ends the claim's sub-select ("" with one writer).
	SkipLocked string
	// Retryable reports an error after which the transaction is run
	// again (deadlock victims, serialization failures).
	Retryable func(error) bool

	// Migrations.
	VersionTable    string // CREATE TABLE IF NOT EXISTS schema_migrations (version, name, applied...)
	RecordMigration string // INSERT INTO schema_migrations of (version, name) as two placeholders
	HasVersionTable string // query: 1 when schema_migrations exists, else 0
	MigrationLock   string // first statement of the migration transaction ("" for none)
	// BeforeMigrate and AfterMigrate run on the migration's connection
	// outside its transaction (SQLite turns foreign keys off for table
	// rebuilds); MigrateCheck runs last inside it and must return no rows.
	BeforeMigrate, AfterMigrate, MigrateCheck string
	// MigrateDone runs last inside the migration transaction.
	MigrateDone string
}

// rebind rewrites ? placeholders as $1, $2... for numbered dialects. The
// statements are ours: no ? appears inside a string literal.
func (d *Dialect) rebind(q string) string {
	if !d.Numbered || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
