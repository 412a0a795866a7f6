package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/effnas/effnas/store"
)

// ErrNewerSchema: the database was migrated by a newer effnas.
var ErrNewerSchema = errors.New("database schema is newer than this program")

//go:embed migrations/*.sql
var migrationFS embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

func migrations() []migration {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		panic("postgres: read embedded migrations: " + err.Error())
	}
	var ms []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(e.Name(), ".up.sql") {
			panic("postgres: bad migration file name " + e.Name())
		}
		b, err := migrationFS.ReadFile("migrations/" + e.Name())
		if err != nil {
			panic("postgres: " + err.Error())
		}
		ms = append(ms, migration{v, e.Name(), string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			panic(fmt.Sprintf("postgres: migrations must be numbered 1, 2, 3...; found %s at position %d", m.name, i+1))
		}
	}
	return ms
}

// SchemaVersion is the schema version this program writes.
func SchemaVersion() int { return len(migrations()) }

// Store is a store.Store in PostgreSQL. Create it with Open.
type Store struct {
	pool *pgxpool.Pool
	url  string
}

// URL is the connection string the store was opened with (it may hold a
// password: do not log it).
func (s *Store) URL() string { return s.url }

var _ store.Store = (*Store)(nil)

// IsURL reports whether db names a PostgreSQL database rather than a file.
func IsURL(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

// Open connects to the database at url (postgres://user@host:port/db?...)
// and migrates its schema. Tables go in the connection's search_path.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open database: %w; want a URL such as postgres://user@host:5432/effnas", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", cfg.ConnConfig.Host, err)
	}
	s := &Store{pool: pool, url: url}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to PostgreSQL at %s:%d: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("migrate database: %w", err)
	}
	return s, nil
}

// migrate applies missing migrations in one transaction, serialised
// between processes by an advisory lock.
func (s *Store) migrate(ctx context.Context) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext('effnas schema migrations'))"); err != nil {
			return err
		}
		// The version table is the one thing created outside a numbered
		// migration: it records them.
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version INTEGER PRIMARY KEY,
			name    TEXT        NOT NULL,
			applied TIMESTAMPTZ NOT NULL)`); err != nil {
			return err
		}
		var current int
		if err := tx.QueryRow(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&current); err != nil {
			return err
		}
		if current > SchemaVersion() {
			return fmt.Errorf("%w: version %d, this effnas knows up to %d; use a newer effnas", ErrNewerSchema, current, SchemaVersion())
		}
		for _, m := range migrations() {
			if m.version <= current {
				continue
			}
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("apply %s: %w", m.name, err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name, applied) VALUES ($1, $2, now())", m.version, m.name); err != nil {
				return fmt.Errorf("record %s: %w", m.name, err)
			}
		}
		return nil
	})
}

// Close closes the connection pool.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

const studyCols = "id, name, kind, config, seed, space_hash, max_attempts, status, created, updated"

func scanStudy(row pgx.Row) (store.Study, error) {
	var (
		st     store.Study
		kind   string
		status string
		config []byte
		seed   int64
	)
	err := row.Scan(&st.ID, &st.Name, &kind, &config, &seed, &st.SpaceHash, &st.MaxAttempts, &status, &st.Created, &st.Updated)
	st.Kind, st.Status, st.Config, st.Seed = store.Kind(kind), store.StudyStatus(status), config, uint64(seed)
	st.Created, st.Updated = st.Created.UTC(), st.Updated.UTC()
	return st, err
}

func notFound(err error, format string, args ...any) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf(format+": %w", append(args, store.ErrNotFound)...)
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}

// CreateStudy implements store.Store.
func (s *Store) CreateStudy(ctx context.Context, st store.Study) (store.Study, error) {
	st, err := store.ValidateStudy(st)
	if err != nil {
		return st, fmt.Errorf("create study: %w", err)
	}
	out, err := scanStudy(s.pool.QueryRow(ctx, `INSERT INTO studies (name, kind, config, seed, space_hash, max_attempts, status, created, updated)
		VALUES ($1, $2, $3, $4, $5, $6, 'running', now(), now()) RETURNING `+studyCols,
		st.Name, string(st.Kind), []byte(st.Config), int64(st.Seed), st.SpaceHash, st.MaxAttempts))
	if err != nil {
		return out, fmt.Errorf("create study: %w", err)
	}
	return out, nil
}

// Study implements store.Store.
func (s *Store) Study(ctx context.Context, id int64) (store.Study, error) {
	st, err := scanStudy(s.pool.QueryRow(ctx, "SELECT "+studyCols+" FROM studies WHERE id = $1", id))
	if err != nil {
		return st, notFound(err, "study %d", id)
	}
	return st, nil
}

// LatestStudy implements store.Store.
func (s *Store) LatestStudy(ctx context.Context, kind store.Kind) (store.Study, error) {
	st, err := scanStudy(s.pool.QueryRow(ctx, "SELECT "+studyCols+" FROM studies WHERE $1 = '' OR kind = $1 ORDER BY id DESC LIMIT 1", string(kind)))
	if err != nil {
		return st, notFound(err, "latest study of kind %q", kind)
	}
	return st, nil
}

// Studies implements store.Store.
func (s *Store) Studies(ctx context.Context) ([]store.Study, error) {
	rows, err := s.pool.Query(ctx, "SELECT "+studyCols+" FROM studies ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("list studies: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Study, error) { return scanStudy(r) })
	if err != nil {
		return nil, fmt.Errorf("list studies: %w", err)
	}
	return out, nil
}

// SetStudyStatus implements store.Store.
func (s *Store) SetStudyStatus(ctx context.Context, id int64, status store.StudyStatus) error {
	if err := status.Validate(); err != nil {
		return fmt.Errorf("set status of study %d: %w", id, err)
	}
	tag, err := s.pool.Exec(ctx, "UPDATE studies SET status = $1, updated = now() WHERE id = $2", string(status), id)
	if err != nil {
		return fmt.Errorf("set status of study %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("set status of study %d: %w", id, store.ErrNotFound)
	}
	return nil
}

const trialCols = `study_id, number, key, choices, blocks, params, flops, alpha, beta, gamma, state,
	accuracy, reward, seconds, error, attempt, worker, lease_expires, created, updated`

func scanTrial(row pgx.Row) (store.Trial, error) {
	var (
		t                  store.Trial
		choices            []byte
		state              string
		alpha, beta, gamma *float64
		acc, reward        *float64
		lease              *time.Time
	)
	err := row.Scan(&t.Study, &t.Number, &t.Key, &choices, &t.Blocks, &t.Params, &t.FLOPs, &alpha, &beta, &gamma, &state,
		&acc, &reward, &t.Seconds, &t.Error, &t.Attempt, &t.Worker, &lease, &t.Created, &t.Updated)
	if err != nil {
		return t, err
	}
	t.Choices, t.State = choices, store.TrialState(state)
	if t.Blocks == nil {
		t.Blocks = []string{}
	}
	if alpha != nil && beta != nil && gamma != nil {
		t.Grid = &store.GridPoint{Alpha: *alpha, Beta: *beta, Gamma: *gamma}
	}
	if acc != nil {
		t.Accuracy = *acc
	}
	if reward != nil {
		t.Reward = *reward
	}
	if lease != nil {
		t.LeaseExpires = lease.UTC()
	}
	t.Created, t.Updated = t.Created.UTC(), t.Updated.UTC()
	return t, nil
}

func collectTrials(rows pgx.Rows) ([]store.Trial, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Trial, error) { return scanTrial(r) })
}

// lockStudy locks the study row for the transaction (serialising planners
// and claimers of one study) and returns its retry limit.
func lockStudy(ctx context.Context, tx pgx.Tx, study int64, share bool) (int, error) {
	mode := "FOR UPDATE"
	if share {
		mode = "FOR SHARE"
	}
	var n int
	err := tx.QueryRow(ctx, "SELECT max_attempts FROM studies WHERE id = $1 "+mode, study).Scan(&n)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("study %d: %w", study, store.ErrNotFound)
	}
	return n, err
}

// PlanTrials implements store.Store.
func (s *Store) PlanTrials(ctx context.Context, study int64, plans []store.Plan, controllerState []byte) ([]store.Trial, error) {
	if err := store.ValidatePlans(plans); err != nil {
		return nil, fmt.Errorf("plan trials for study %d: %w", study, err)
	}
	out := make([]store.Trial, 0, len(plans))
	err := s.tx(ctx, func(tx pgx.Tx) error {
		out = out[:0]
		if _, err := lockStudy(ctx, tx, study, false); err != nil {
			return err
		}
		var next int
		if err := tx.QueryRow(ctx, "SELECT COALESCE(MAX(number) + 1, 0) FROM trials WHERE study_id = $1", study).Scan(&next); err != nil {
			return err
		}
		for i, p := range plans {
			var n int
			switch err := tx.QueryRow(ctx, "SELECT number FROM trials WHERE study_id = $1 AND key = $2", study, p.Key).Scan(&n); {
			case err == nil:
				return fmt.Errorf("plan %d: key %q is trial %d: %w", i, p.Key, n, store.ErrDuplicateKey)
			case !errors.Is(err, pgx.ErrNoRows):
				return err
			}
			choices := []byte(p.Choices)
			if len(choices) == 0 {
				choices = []byte("null")
			}
			blocks := p.Blocks
			if blocks == nil {
				blocks = []string{}
			}
			var a, b, g *float64
			if p.Grid != nil {
				a, b, g = &p.Grid.Alpha, &p.Grid.Beta, &p.Grid.Gamma
			}
			t, err := scanTrial(tx.QueryRow(ctx, `INSERT INTO trials (study_id, number, key, choices, blocks, params, flops, alpha, beta, gamma, state, created, updated)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', now(), now()) RETURNING `+trialCols,
				study, next+i, p.Key, choices, blocks, p.Params, p.FLOPs, a, b, g))
			if err != nil {
				return fmt.Errorf("plan %d (key %q): %w", i, p.Key, err)
			}
			out = append(out, t)
		}
		if controllerState != nil {
			return saveState(ctx, tx, study, controllerState)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("plan trials for study %d: %w", study, err)
	}
	return out, nil
}

// ClaimTrials implements store.Store. Concurrent claimers skip each
// other's locked rows (FOR UPDATE SKIP LOCKED) instead of waiting.
func (s *Store) ClaimTrials(ctx context.Context, study int64, worker string, limit int, lease time.Duration) ([]store.Trial, error) {
	if worker == "" || limit < 1 || lease < time.Millisecond {
		return nil, fmt.Errorf("claim trials for study %d: %w: want a worker name, a limit of 1 or more and a lease of 1ms or more (got %q, %d, %v)", study, store.ErrInvalid, worker, limit, lease)
	}
	var out []store.Trial
	err := s.tx(ctx, func(tx pgx.Tx) error {
		out = nil
		max, err := lockStudy(ctx, tx, study, true)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE trials SET state = 'failed', lease_expires = NULL, updated = now(),
			error = format('lease of worker %s expired on attempt %s of %s', worker, attempt, $1::int)
			WHERE study_id = $2 AND state = 'running' AND lease_expires < now() AND attempt >= $1`, max, study); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `UPDATE trials t SET state = 'running', worker = $1, attempt = t.attempt + 1, error = '',
			lease_expires = now() + $2::bigint * interval '1 millisecond', updated = now()
			FROM (SELECT study_id, number FROM trials WHERE study_id = $3
				AND (state = 'pending' OR (state = 'running' AND lease_expires < now()))
				ORDER BY number LIMIT $4 FOR UPDATE SKIP LOCKED) c
			WHERE t.study_id = c.study_id AND t.number = c.number
			RETURNING `+prefixed("t.", trialCols), worker, lease.Milliseconds(), study, limit)
		if err != nil {
			return err
		}
		out, err = collectTrials(rows)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("claim trials for study %d: %w", study, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Number < out[j].Number })
	return out, nil
}

// prefixed qualifies each column of a list with p.
func prefixed(p, cols string) string {
	parts := strings.Split(cols, ",")
	for i, c := range parts {
		parts[i] = p + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}

// casUpdate runs "UPDATE trials SET set" only while l holds the trial
// (running, same worker and attempt, lease not expired) and reports
// ErrLeaseLost when it changed nothing. set's placeholders start at $5.
func (s *Store) casUpdate(ctx context.Context, l store.Lease, set string, args ...any) error {
	if err := store.ValidateLease(l); err != nil {
		return err
	}
	args = append([]any{l.Study, l.Number, l.Worker, l.Attempt}, args...)
	tag, err := s.pool.Exec(ctx, "UPDATE trials SET "+set+`, updated = now()
		WHERE study_id = $1 AND number = $2 AND state = 'running' AND worker = $3 AND attempt = $4 AND lease_expires >= now()`, args...)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	t, err := scanTrial(s.pool.QueryRow(ctx, "SELECT "+trialCols+" FROM trials WHERE study_id = $1 AND number = $2", l.Study, l.Number))
	if err != nil {
		return notFound(err, "trial %d of study %d", l.Number, l.Study)
	}
	if t.State == store.TrialRunning && t.Worker == l.Worker && t.Attempt == l.Attempt {
		return fmt.Errorf("%w: the lease expired at %s", store.ErrLeaseLost, t.LeaseExpires.Format(time.RFC3339Nano))
	}
	return fmt.Errorf("%w: the trial is now %s, attempt %d by worker %q", store.ErrLeaseLost, t.State, t.Attempt, t.Worker)
}

// Heartbeat implements store.Store.
func (s *Store) Heartbeat(ctx context.Context, l store.Lease, lease time.Duration) error {
	if lease < time.Millisecond {
		return fmt.Errorf("heartbeat %v: %w: lease %v; want 1ms or more", l, store.ErrInvalid, lease)
	}
	if err := s.casUpdate(ctx, l, "lease_expires = now() + $5::bigint * interval '1 millisecond'", lease.Milliseconds()); err != nil {
		return fmt.Errorf("heartbeat %v: %w", l, err)
	}
	return nil
}

// FinishTrial implements store.Store.
func (s *Store) FinishTrial(ctx context.Context, l store.Lease, r store.Result) error {
	if err := r.Validate(); err != nil {
		return fmt.Errorf("finish %v: %w", l, err)
	}
	if err := s.casUpdate(ctx, l, "state = 'complete', accuracy = $5, reward = $6, seconds = $7, error = '', lease_expires = NULL",
		r.Accuracy, r.Reward, r.Seconds); err != nil {
		return fmt.Errorf("finish %v: %w", l, err)
	}
	return nil
}

// FailTrial implements store.Store.
func (s *Store) FailTrial(ctx context.Context, l store.Lease, reason string, seconds float64) error {
	if err := (store.Result{Seconds: seconds}).Validate(); err != nil {
		return fmt.Errorf("fail %v: %w", l, err)
	}
	if reason == "" {
		reason = "failed (no reason given)"
	}
	if err := s.casUpdate(ctx, l, "state = 'failed', error = $5, seconds = $6, lease_expires = NULL", reason, seconds); err != nil {
		return fmt.Errorf("fail %v: %w", l, err)
	}
	return nil
}

// InterruptTrial implements store.Store.
func (s *Store) InterruptTrial(ctx context.Context, l store.Lease, reason string) error {
	if reason == "" {
		reason = "interrupted"
	}
	if err := s.casUpdate(ctx, l, "state = 'interrupted', error = $5, lease_expires = NULL", reason); err != nil {
		return fmt.Errorf("interrupt %v: %w", l, err)
	}
	return nil
}

// ReleaseTrial implements store.Store.
func (s *Store) ReleaseTrial(ctx context.Context, l store.Lease, reason string) error {
	if err := s.casUpdate(ctx, l, "state = 'pending', error = $5, lease_expires = NULL", reason); err != nil {
		return fmt.Errorf("release %v: %w", l, err)
	}
	return nil
}

// RecoverTrials implements store.Store.
func (s *Store) RecoverTrials(ctx context.Context, study int64) (store.Recovered, error) {
	var rec store.Recovered
	err := s.tx(ctx, func(tx pgx.Tx) error {
		max, err := lockStudy(ctx, tx, study, false)
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE trials SET state = 'failed', lease_expires = NULL, updated = now(),
			error = format('worker %s stopped during attempt %s of %s', worker, attempt, $1::int)
			WHERE study_id = $2 AND state = 'running' AND attempt >= $1`, max, study)
		if err != nil {
			return err
		}
		rec.Failed = int(tag.RowsAffected())
		tag, err = tx.Exec(ctx, `UPDATE trials SET state = 'pending', lease_expires = NULL, updated = now()
			WHERE study_id = $1 AND state IN ('running', 'interrupted')`, study)
		if err != nil {
			return err
		}
		rec.Requeued = int(tag.RowsAffected())
		return nil
	})
	if err != nil {
		return rec, fmt.Errorf("recover trials of study %d: %w", study, err)
	}
	return rec, nil
}

// Trial implements store.Store.
func (s *Store) Trial(ctx context.Context, study int64, number int) (store.Trial, error) {
	t, err := scanTrial(s.pool.QueryRow(ctx, "SELECT "+trialCols+" FROM trials WHERE study_id = $1 AND number = $2", study, number))
	if err != nil {
		return t, notFound(err, "trial %d of study %d", number, study)
	}
	return t, nil
}

// TrialByKey implements store.Store.
func (s *Store) TrialByKey(ctx context.Context, study int64, key string) (store.Trial, error) {
	t, err := scanTrial(s.pool.QueryRow(ctx, "SELECT "+trialCols+" FROM trials WHERE study_id = $1 AND key = $2", study, key))
	if err != nil {
		return t, notFound(err, "trial with key %q in study %d", key, study)
	}
	return t, nil
}

// Trials implements store.Store.
func (s *Store) Trials(ctx context.Context, study int64) ([]store.Trial, error) {
	rows, err := s.pool.Query(ctx, "SELECT "+trialCols+" FROM trials WHERE study_id = $1 ORDER BY number", study)
	if err != nil {
		return nil, fmt.Errorf("list trials of study %d: %w", study, err)
	}
	out, err := collectTrials(rows)
	if err != nil {
		return nil, fmt.Errorf("list trials of study %d: %w", study, err)
	}
	return out, nil
}

// CountTrials implements store.Store.
func (s *Store) CountTrials(ctx context.Context, study int64) (store.Counts, error) {
	var c store.Counts
	rows, err := s.pool.Query(ctx, "SELECT state, count(*) FROM trials WHERE study_id = $1 GROUP BY state", study)
	if err != nil {
		return c, fmt.Errorf("count trials of study %d: %w", study, err)
	}
	defer rows.Close()
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return c, fmt.Errorf("count trials of study %d: %w", study, err)
		}
		c.Add(store.TrialState(st), n)
	}
	if err := rows.Err(); err != nil {
		return c, fmt.Errorf("count trials of study %d: %w", study, err)
	}
	return c, nil
}

func saveState(ctx context.Context, tx pgx.Tx, study int64, state []byte) error {
	if state == nil {
		state = []byte{}
	}
	_, err := tx.Exec(ctx, `INSERT INTO controller_states (study_id, state, updated) VALUES ($1, $2, now())
		ON CONFLICT (study_id) DO UPDATE SET state = excluded.state, updated = excluded.updated`, study, state)
	return err
}

// SaveControllerState implements store.Store.
func (s *Store) SaveControllerState(ctx context.Context, study int64, state []byte) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := lockStudy(ctx, tx, study, true); err != nil {
			return err
		}
		return saveState(ctx, tx, study, state)
	})
	if err != nil {
		return fmt.Errorf("save controller state of study %d: %w", study, err)
	}
	return nil
}

// LoadControllerState implements store.Store.
func (s *Store) LoadControllerState(ctx context.Context, study int64) ([]byte, error) {
	var b []byte
	err := s.pool.QueryRow(ctx, "SELECT state FROM controller_states WHERE study_id = $1", study).Scan(&b)
	if err != nil {
		return nil, notFound(err, "controller state of study %d", study)
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}

// tx runs fn in a transaction, retrying it (up to 5 times) when PostgreSQL
// aborts it as a deadlock victim or a serialization failure, which row
// locks taken by concurrent claimers can cause.
func (s *Store) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := pgx.BeginFunc(ctx, s.pool, fn)
		var pe *pgconn.PgError
		if attempt < 5 && errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001") {
			time.Sleep(time.Duration(attempt) * 10 * time.Millisecond)
			continue
		}
		return err
	}
}
