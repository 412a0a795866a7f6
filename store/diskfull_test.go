package store_test

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/effnas/effnas/store"
)

// TestIsDiskFull: each database's way of saying its disk is full is
// recognised, wrapped as the store wraps errors; other faults are not.
func TestIsDiskFull(t *testing.T) {
	for _, c := range []struct {
		err  error
		full bool
	}{
		{fmt.Errorf("finish trial 3: %w", store.ErrDiskFull), true},
		{fmt.Errorf("claim trials for study 1: %w", errors.New("database or disk is full")), true},                 // SQLITE_FULL
		{fmt.Errorf("plan trials: %w", errors.New("disk I/O error: no space left on device")), true},               // SQLITE_IOERR_WRITE, ENOSPC
		{fmt.Errorf("plan trials: %w", errors.New("disk I/O error: file too large")), true},                        // RLIMIT_FSIZE
		{fmt.Errorf("write: %w", &fs.PathError{Op: "write", Path: "effnas.db-wal", Err: syscall.ENOSPC}), true},    // the OS
		{fmt.Errorf("finish trial 2: %w", &pgconn.PgError{Code: "53100", Message: "could not extend file"}), true}, // PostgreSQL disk_full
		{fmt.Errorf("finish trial 2: %w", &pgconn.PgError{Code: "57P01", Message: "terminating connection due to administrator command"}), false},
		{fmt.Errorf("finish trial 2: %w", &pgconn.PgError{Code: "57P03", Message: "the database system is starting up"}), false},
		{fmt.Errorf("claim: %w", syscall.ECONNREFUSED), false},
		{fmt.Errorf("claim: %w", errors.New("database is locked")), false},
		{nil, false},
	} {
		if got := store.IsDiskFull(c.err); got != c.full {
			t.Errorf("IsDiskFull(%v) = %v; want %v", c.err, got, c.full)
		}
	}
}
