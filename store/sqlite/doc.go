// Package sqlite is the Store in one SQLite file (github.com/mattn/go-sqlite3):
// embedded numbered migrations, WAL, leases on the database's clock, and
// refusal to touch files that are not its own databases.
package sqlite
