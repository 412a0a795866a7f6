package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"regexp"
	"strings"

	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/store/postgres"
	"github.com/effnas/effnas/store/sqlite"
)

// envDB names the database when --db is not given.
const envDB = "EFFNAS_DB"

// dbName is a --db value: a SQLite file or a postgres:// URL. Printed with
// %s or %v it hides any password, so that no message, hint or usage line
// shows one; Raw is for opening it.
type dbName struct {
	raw     string
	fromEnv bool // taken from EFFNAS_DB: hints need not repeat it
	given   bool // set by --db, perhaps to ""
	// emptyEnv: EFFNAS_DB is set but empty (a Secret without the key's
	// value, say); the command refuses rather than use its default.
	emptyEnv bool
}

func (d *dbName) String() string {
	if d == nil {
		return ""
	}
	return redact(d.raw)
}

// Set implements flag.Value. It refuses a variable reference left
// unexpanded: Kubernetes passes "$(EFFNAS_DB)" through as it is when the
// container has no such variable, and a shell's "${EFFNAS_DB}" in single
// quotes does the same; either would otherwise become a SQLite file of
// that name that no other process sees.
func (d *dbName) Set(s string) error {
	if m := unexpanded.FindStringSubmatch(s); m != nil {
		return fmt.Errorf("%q is a variable reference nobody expanded: %s is not set where this command runs; set it to the database URL shared with the coordinator (in Kubernetes, an env entry from the Secret), or give the URL itself", s, m[1]+m[2]+m[3])
	}
	d.raw, d.fromEnv, d.given = s, false, true
	return nil
}

// unexpanded matches "$(NAME)", "${NAME}" and "$NAME": the whole value is
// a variable reference.
var unexpanded = regexp.MustCompile(`^\$(?:\(([A-Za-z_][A-Za-z0-9_]*)\)|\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))$`)

// Raw is the value as given, password included.
func (d *dbName) Raw() string { return d.raw }

// Flag is "--db NAME" for a hint that repeats the command, or "" when the
// database came from EFFNAS_DB and the same environment will supply it.
// A URL's password is left out of it: with PGPASSWORD or ~/.pgpass the
// hint runs as printed.
func (d *dbName) Flag() string {
	if d.fromEnv {
		return ""
	}
	return " --db " + shellQuote(hidePassword(d.raw, true))
}

// dbFlag registers --db on fs. Its default is $EFFNAS_DB, else def (""
// when the command needs it given).
func dbFlag(fs *flag.FlagSet, def, usage string) *dbName {
	d := &dbName{raw: def}
	if v, ok := os.LookupEnv(envDB); ok && v != "" {
		d.raw, d.fromEnv = v, true
	} else if ok {
		d.raw, d.emptyEnv = "", true
	}
	fs.Var(d, "db", usage+" (default $"+envDB+", else "+orNone(def)+"); a PostgreSQL password may come from PGPASSWORD or ~/.pgpass instead of the URL")
	return d
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// redact hides the password of a database URL: the user-info password and
// any parameter whose name holds "password" (sslpassword, PASSWORD;
// key=value connection strings too). A file path is returned as it is.
func redact(db string) string { return hidePassword(db, false) }

// hidePassword replaces a database URL's passwords with xxxxx or, when
// drop is set, leaves them out, so that the URL still works with
// PGPASSWORD or ~/.pgpass.
func hidePassword(db string, drop bool) string {
	if postgres.IsURL(db) {
		if u, err := url.Parse(db); err == nil {
			if _, has := u.User.Password(); has && drop {
				u.User = url.User(u.User.Username())
			} else if has {
				u.User = url.UserPassword(u.User.Username(), "xxxxx")
			}
			q, hidden := u.Query(), false
			for k := range q {
				if strings.Contains(strings.ToLower(k), "password") {
					hidden = true
					if drop {
						q.Del(k)
					} else {
						q.Set(k, "xxxxx")
					}
				}
			}
			if hidden {
				u.RawQuery = q.Encode()
			}
			return u.String()
		}
		// Unparseable: hide everything between the scheme and the host.
		if i, j := strings.Index(db, "://"), strings.LastIndex(db, "@"); i >= 0 && j > i {
			return db[:i+3] + "xxxxx" + db[j:]
		}
	}
	return store.HidePasswords(db)
}

// shellQuote quotes s for a shell when it holds anything but plain
// characters.
func shellQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`!*?[]{}()<>|&;#~") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// missing returns the error of a command run without a database: what
// the database is for is the command's own words (what), e.g. "the
// database that keeps the study, e.g. --db effnas.db".
func (d *dbName) missing(what string) error {
	switch {
	case d.given:
		return usagef("--db is empty: want %s; in a script, --db \"$%s\" with %s unset or empty gives this", what, envDB, envDB)
	case d.emptyEnv:
		return usagef("%s is set but empty: want %s (set %s to it, or give --db)", envDB, what, envDB)
	}
	return usagef("--db is required: %s (or set %s)", what, envDB)
}

// openForWriting opens the database at db, creating a SQLite file when it
// does not exist; a postgres:// URL selects PostgreSQL.
func openForWriting(ctx context.Context, db *dbName) (store.Store, error) {
	if db.Raw() == "" {
		return nil, db.missing("the database that keeps the study, e.g. --db effnas.db")
	}
	if postgres.IsURL(db.Raw()) {
		return postgres.Open(ctx, db.Raw(), postgres.Options{})
	}
	return sqlite.Open(ctx, db.Raw(), sqlite.Options{})
}

// openForReading opens an existing database without creating, migrating
// or changing it; a missing file is an error ("no database at PATH"). A
// postgres:// URL opens the PostgreSQL store read-only, which a role that
// may only read suffices for.
func openForReading(ctx context.Context, db *dbName) (store.Store, error) {
	if db.Raw() == "" {
		return nil, db.missing("the database of the study, e.g. --db effnas.db")
	}
	if postgres.IsURL(db.Raw()) {
		return postgres.Open(ctx, db.Raw(), postgres.Options{ReadOnly: true})
	}
	return sqlite.Open(ctx, db.Raw(), sqlite.Options{ReadOnly: true})
}

// openExisting opens for writing a database that must exist already: a
// worker or a resume joins studies someone created, so a mistyped SQLite
// path is an error, not a new file. A PostgreSQL database exists on its
// server; opening it migrates an older schema.
func openExisting(ctx context.Context, db *dbName) (store.Store, error) {
	if db.Raw() != "" && !postgres.IsURL(db.Raw()) {
		if _, err := os.Stat(db.Raw()); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w at %s", sqlite.ErrNoDatabase, db)
		}
	}
	return openForWriting(ctx, db)
}
