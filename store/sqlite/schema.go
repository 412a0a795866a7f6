package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
)

// HasSchema reports whether the file at path holds effnas's tables, without
// creating or changing anything: a missing or empty file has none. A
// worker that starts before its coordinator waits for them instead of
// creating them. A file that is not a SQLite database is an error.
func HasSchema(ctx context.Context, path string) (bool, error) {
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("open database %s: %w", path, err)
	case st.IsDir():
		return false, fmt.Errorf("open database %s: %w: it is a directory; want a file path", path, ErrNotDatabase)
	case st.Size() == 0:
		return false, nil // created, not yet written: the coordinator is at it
	}
	db, err := sql.Open("sqlite3", dsn(path, "mode=ro", "_query_only=1", "_busy_timeout="+strconv.FormatInt(DefaultBusyTimeout.Milliseconds(), 10)))
	if err != nil {
		return false, fmt.Errorf("open database %s: %w", path, err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx, dialect.HasVersionTable).Scan(&n); err != nil {
		return false, fmt.Errorf("look for effnas's tables in %s: %w", path, err)
	}
	return n > 0, nil
}
