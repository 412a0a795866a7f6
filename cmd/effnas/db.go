package main

import (
	"context"

	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/store/postgres"
	"github.com/effnas/effnas/store/sqlite"
)

// openForWriting opens the database at db, creating a SQLite file when it
// does not exist; a postgres:// URL selects PostgreSQL.
func openForWriting(ctx context.Context, db string) (store.Store, error) {
	if db == "" {
		return nil, usagef("--db is required: the database file that keeps the study, e.g. --db effnas.db")
	}
	if postgres.IsURL(db) {
		return postgres.Open(ctx, db)
	}
	return sqlite.Open(ctx, db, sqlite.Options{})
}
