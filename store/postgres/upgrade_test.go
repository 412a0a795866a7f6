package postgres

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/effnas/effnas/internal/testenv"
	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/store/internal/sqlstore"
	"github.com/jackc/pgx/v5"
)

// TestUpgradeKeepsData: a database written by the first schema is
// migrated in place to the current one with every study, trial and
// controller state kept; a read-only open before that names the missing
// migrations and changes nothing.
func TestUpgradeKeepsData(t *testing.T) {
	ctx := context.Background()
	url := testenv.PostgresSchema(t, testenv.PostgresURL(t))
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	if err := sqlstore.Migrate(ctx, db, dialect, migrations[:1]); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO studies (id, name, kind, config, seed, space_hash, max_attempts, status, created, updated)
			OVERRIDING SYSTEM VALUE VALUES (4, 'old', 'search', '{"trials":2}', -1, 'h', 3, 'stopped', now(), now())`,
		`INSERT INTO trials (study_id, number, key, choices, blocks, params, flops, state, accuracy, reward, seconds, attempt, worker, created, updated)
			VALUES (4, 0, 'k0', '[1,2]', '{r1_k3_s11_e1_i32_o16}', 10, 20, 'complete', 0.9, 0.8, 3.5, 1, 'w', now(), now())`,
		`INSERT INTO controller_states (study_id, state, updated) VALUES (4, '\x0102', now())`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	_, err = Open(ctx, url, Options{ReadOnly: true})
	if !errors.Is(err, sqlstore.ErrOlderSchema) || !strings.Contains(err.Error(), "002_crashes.up.sql") || !strings.Contains(err.Error(), "effnas resume") {
		t.Fatalf("read-only open of a version-1 database: %v; want the missing migrations and how to apply them", err)
	}
	s, err := Open(ctx, url, Options{})
	if err != nil {
		t.Fatalf("migrate: %v", err)
	}
	defer s.Close()
	st, err := s.Study(ctx, 4)
	if err != nil || st.Name != "old" || st.Seed != 1<<64-1 || st.Status != store.StudyStopped {
		t.Fatalf("study after upgrade = %+v, %v", st, err)
	}
	trials, err := s.Trials(ctx, 4)
	if err != nil || len(trials) != 1 || trials[0].Accuracy != 0.9 || trials[0].Rung != 0 || trials[0].Blocks[0] != "r1_k3_s11_e1_i32_o16" {
		t.Fatalf("trials after upgrade = %+v, %v", trials, err)
	}
	if b, err := s.LoadControllerState(ctx, 4); err != nil || string(b) != "\x01\x02" {
		t.Fatalf("controller state after upgrade = %q, %v", b, err)
	}
	// The old study can train a supernet and screen candidates.
	if _, ok, err := s.ClaimSupernet(ctx, 4, "w", time.Minute); err != nil || !ok {
		t.Fatalf("claim the old study's supernet: %v, %v", ok, err)
	}
	if err := s.SaveSupernet(ctx, "w", store.SupernetCheckpoint{Study: 4, Step: 1, Weights: []byte{1}}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.AddScreened(ctx, 4, []store.Screened{{Number: 0, Key: "k0", Score: 0.5}}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.CountScreened(ctx, 4); err != nil || n != 1 {
		t.Fatalf("CountScreened after upgrade = %d, %v", n, err)
	}
	if _, err := s.CreateStudy(ctx, store.Study{Kind: store.KindProxy}, []store.Plan{{Key: "k0"}, {Key: "k0", Rung: 1}}); err != nil {
		t.Fatal(err)
	}
}
