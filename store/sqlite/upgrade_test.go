package sqlite

import (
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/effnas/effnas/store"
	"github.com/effnas/effnas/store/internal/sqlstore"
)

// TestUpgradeKeepsData: a database written by the first schema is
// migrated in place to the current one (tables rebuilt) with every study,
// trial and controller state kept; a read-only open of the old file says
// which migrations are missing and changes nothing.
func TestUpgradeKeepsData(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite3", dsn(path, "mode=rwc", "_txlock=immediate", "_foreign_keys=1"))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	if err := sqlstore.Migrate(ctx, db, dialect, migrations[:1]); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO studies (id, name, kind, config, seed, space_hash, max_attempts, status, created_ms, updated_ms)
			VALUES (4, 'old', 'search', '{"trials":2}', -1, 'h', 3, 'stopped', 1000, 2000)`,
		`INSERT INTO trials (study_id, number, key, choices, blocks, params, flops, state, accuracy, reward, seconds, attempt, worker, created_ms, updated_ms)
			VALUES (4, 0, 'k0', '[1,2]', '["r1_k3_s11_e1_i32_o16"]', 10, 20, 'complete', 0.9, 0.8, 3.5, 1, 'w', 1000, 2000)`,
		`INSERT INTO trials (study_id, number, key, choices, blocks, params, flops, state, attempt, worker, created_ms, updated_ms)
			VALUES (4, 1, 'k1', '[2,2]', '[]', 11, 21, 'interrupted', 2, 'w', 1000, 2000)`,
		`INSERT INTO controller_states (study_id, state, updated_ms) VALUES (4, x'0102', 2000)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	_, err = Open(ctx, path, Options{ReadOnly: true})
	if !errors.Is(err, sqlstore.ErrOlderSchema) || !strings.Contains(err.Error(), "002_crashes.up.sql") {
		t.Fatalf("read-only open of a version-1 file: %v; want it to name the missing migrations", err)
	}
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatalf("migrate: %v", err)
	}
	defer s.Close()
	st, err := s.Study(ctx, 4)
	if err != nil || st.Name != "old" || st.Seed != 1<<64-1 || st.Status != store.StudyStopped || string(st.Config) != `{"trials":2}` {
		t.Fatalf("study after upgrade = %+v, %v", st, err)
	}
	trials, err := s.Trials(ctx, 4)
	if err != nil || len(trials) != 2 {
		t.Fatalf("trials after upgrade: %d, %v", len(trials), err)
	}
	if tr := trials[0]; tr.Key != "k0" || tr.Accuracy != 0.9 || tr.Reward != 0.8 || tr.Rung != 0 || tr.Seed != 0 || tr.Crashes != 0 || tr.Blocks[0] != "r1_k3_s11_e1_i32_o16" {
		t.Fatalf("trial 0 after upgrade = %+v", tr)
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
	// The new schema is live: proxy studies, rungs, foreign keys.
	if _, err := s.CreateStudy(ctx, store.Study{Kind: store.KindProxy}, []store.Plan{{Key: "k0"}, {Key: "k0", Rung: 1}}); err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite3", dsn(path, "mode=ro"))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	rows, err := raw.QueryContext(ctx, "PRAGMA foreign_key_check")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	if rows.Next() {
		t.Fatal("the migrated tables fail the foreign-key check")
	}
}
