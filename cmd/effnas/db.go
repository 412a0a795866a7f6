package main

import (
	"context"
	"strings"

	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/store/sqlite"
)

// openForWriting opens the database at db, creating it when it does not
// exist. A postgres:// URL selects PostgreSQL once that store lands.
func openForWriting(ctx context.Context, db string) (store.Store, error) {
	if db == "" {
		return nil, usagef("--db is required: the database file that keeps the study, e.g. --db effnas.db")
	}
	if strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://") {
		return nil, usagef("--db %q: PostgreSQL databases are not supported by this build; want the path of a SQLite file", db)
	}
	return sqlite.Open(ctx, db, sqlite.Options{})
}
