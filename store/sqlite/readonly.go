package sqlite

import (
	"context"
	"database/sql/driver"
	"errors"
	"io/fs"
	"os"

	"github.com/mattn/go-sqlite3"
)

// readConnector opens the connections of a read-only store. A file
// nobody may write (no write bit in its mode) with no -wal beside it is
// not being written, and is read immutable: otherwise SQLite would create
// a -wal and -shm beside it (and fail in a read-only directory).
//
// Immutable is a promise to SQLite that the file does not change: it
// takes no locks, ignores any -wal and keeps the pages it read. A
// read-only store, a dashboard's, stays open for days, and a writer may
// come all the same: root ignores the mode, and anyone may chmod the
// file and start a search. So an immutable connection is dropped before
// its next use once the file would not be opened immutable now (a -wal
// beside it: a writer is open) or is not the one it opened (another
// inode, size or time: a writer came and went), and the next connection
// is opened by the same rule. Any other file is read through the WAL
// like a live database, with a -shm beside it.
type readConnector struct {
	path   string
	params []string // as for a file that may be written
}

func (c *readConnector) Connect(context.Context) (driver.Conn, error) {
	fi, immutable := immutableFile(c.path)
	params := c.params
	if immutable {
		params = append(params[:len(params):len(params)], "immutable=1")
	}
	conn, err := c.Driver().Open(dsn(c.path, params...))
	if err != nil || !immutable {
		return conn, err
	}
	return &immutableConn{SQLiteConn: conn.(*sqlite3.SQLiteConn), path: c.path, opened: fi}, nil
}

func (c *readConnector) Driver() driver.Driver { return &sqlite3.SQLiteDriver{} }

// immutableFile returns the file's state and whether it may be read
// immutable: nobody may write it, and no -wal is beside it.
func immutableFile(path string) (fs.FileInfo, bool) {
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm()&0o222 != 0 {
		return nil, false
	}
	if _, err := os.Stat(path + "-wal"); !errors.Is(err, fs.ErrNotExist) {
		return nil, false
	}
	return fi, true
}

// immutableConn is a connection that reads its file immutable.
type immutableConn struct {
	*sqlite3.SQLiteConn
	path   string
	opened fs.FileInfo // the file as it was when the connection opened
}

// ResetSession is called before the connection is used again; it drops
// the connection once its file is no longer as it was.
func (c *immutableConn) ResetSession(context.Context) error {
	fi, ok := immutableFile(c.path)
	if !ok || !os.SameFile(fi, c.opened) || fi.Size() != c.opened.Size() || !fi.ModTime().Equal(c.opened.ModTime()) {
		return driver.ErrBadConn
	}
	return nil
}
