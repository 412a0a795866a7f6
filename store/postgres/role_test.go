package postgres_test

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/effnas/effnas/internal/testenv"
	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/store/internal/sqlstore"
	"github.com/effnas/effnas/store/postgres"
)

// TestReadOnlyRole: a role that may only read opens a database read-only,
// reads everything, and can write nothing.
func TestReadOnlyRole(t *testing.T) {
	ctx := context.Background()
	rw := openSchema(t)
	st, err := rw.CreateStudy(ctx, store.Study{Kind: store.KindSearch, Name: "seen"}, []store.Plan{{Key: "a"}, {Key: "b"}})
	if err != nil {
		t.Fatal(err)
	}
	roURL := withSearchPath(t, testenv.PostgresReadOnlyURL(t), rw.URL())
	ro, err := postgres.Open(ctx, roURL, postgres.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only open by a read-only role: %v", err)
	}
	defer ro.Close()
	if got, err := ro.Study(ctx, st.ID); err != nil || got.Name != "seen" {
		t.Fatalf("Study = %+v, %v", got, err)
	}
	if trials, err := ro.Trials(ctx, st.ID); err != nil || len(trials) != 2 {
		t.Fatalf("Trials = %d, %v", len(trials), err)
	}
	if err := ro.SetStudyStatus(ctx, st.ID, store.StudyStopped); !errors.Is(err, sqlstore.ErrReadOnly) {
		t.Fatalf("SetStudyStatus through a read-only store: %v, want ErrReadOnly", err)
	}
	// Even opened for writing, the role's writes are refused by the server.
	rwByRO, err := postgres.Open(ctx, roURL, postgres.Options{})
	if err != nil {
		t.Fatalf("open of an up-to-date schema by a read-only role: %v", err)
	}
	defer rwByRO.Close()
	if err := rwByRO.SetStudyStatus(ctx, st.ID, store.StudyStopped); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("a write by a read-only role: %v, want permission denied", err)
	}
}

// TestReadOnlyOlderSchema: a read-only open of a database that lacks
// migrations names them and the commands that apply them, and creates
// nothing; an empty database is refused too, without creating a table.
func TestReadOnlyOlderSchema(t *testing.T) {
	ctx := context.Background()
	empty := testenv.PostgresSchema(t, testenv.PostgresURL(t))
	_, err := postgres.Open(ctx, empty, postgres.Options{ReadOnly: true})
	if !errors.Is(err, sqlstore.ErrOlderSchema) || !strings.Contains(err.Error(), "no effnas tables") {
		t.Fatalf("read-only open of an empty database: %v", err)
	}
	rw, err := postgres.Open(ctx, empty, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rw.Close()
	if _, err := rw.Studies(ctx); err != nil {
		t.Fatalf("the read-only open left the database unusable: %v", err)
	}
}

// withSearchPath returns roleURL with the search_path of like.
func withSearchPath(t *testing.T, roleURL, like string) string {
	t.Helper()
	u, err := url.Parse(like)
	if err != nil {
		t.Fatal(err)
	}
	sep := "?"
	if strings.Contains(roleURL, "?") {
		sep = "&"
	}
	return roleURL + sep + "search_path=" + u.Query().Get("search_path")
}

// TestPasswordFromEnvironment: a role that needs a password connects with
// a URL that holds none when PGPASSWORD or a .pgpass file gives it, and
// is refused without either.
func TestPasswordFromEnvironment(t *testing.T) {
	ctx := context.Background()
	full := testenv.PostgresPasswordURL(t)
	u, err := url.Parse(full)
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := u.User.Password()
	u.User = url.User(u.User.Username())
	bare := withSearchPath(t, u.String(), testenv.PostgresSchema(t, testenv.PostgresURL(t)))
	t.Setenv("PGPASSFILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("PGPASSWORD", "")
	os.Unsetenv("PGPASSWORD")
	short, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if s, err := postgres.Open(short, bare, postgres.Options{}); err == nil {
		s.Close()
		t.Fatal("a role that needs a password connected without one: the server does not ask for it")
	} else if strings.Contains(err.Error(), pw) {
		t.Fatalf("the error shows the password: %v", err)
	}

	t.Setenv("PGPASSWORD", pw)
	s, err := postgres.Open(ctx, bare, postgres.Options{})
	if err != nil {
		t.Fatalf("open with PGPASSWORD: %v", err)
	}
	if _, err := s.CreateStudy(ctx, store.Study{Kind: store.KindGrid}, nil); err != nil {
		t.Fatal(err)
	}
	s.Close()

	os.Unsetenv("PGPASSWORD")
	pgpass := filepath.Join(t.TempDir(), "pgpass")
	if err := os.WriteFile(pgpass, []byte(u.Hostname()+":"+u.Port()+":*:"+u.User.Username()+":"+pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PGPASSFILE", pgpass)
	s, err = postgres.Open(ctx, bare, postgres.Options{})
	if err != nil {
		t.Fatalf("open with a .pgpass file: %v", err)
	}
	s.Close()
}
