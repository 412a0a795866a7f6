package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/effnas/effnas/store"
)

// nowMS is the database's clock in integer milliseconds since the epoch.
// SQLite evaluates it once per statement.
const nowMS = "CAST(unixepoch('subsec') * 1000 AS INTEGER)"

// Store is a store.Store in one SQLite file. Create it with Open.
type Store struct {
	path string
	w    *sql.DB // the single writer connection; nil when read-only
	r    *sql.DB // read-only connections
}

var _ store.Store = (*Store)(nil)

// Path is the database file.
func (s *Store) Path() string { return s.path }

// Close closes the connections.
func (s *Store) Close() error {
	var errs []error
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	if s.w != nil {
		errs = append(errs, s.w.Close())
	}
	return errors.Join(errs...)
}

var errReadOnly = errors.New("database opened read-only")

// write runs fn in one immediate transaction on the writer connection.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) (err error) {
	if s.w == nil {
		return errReadOnly
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

func msTime(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

const studyCols = "id, name, kind, config, seed, space_hash, max_attempts, status, created_ms, updated_ms"

type scanner interface{ Scan(dest ...any) error }

func scanStudy(row scanner) (store.Study, error) {
	var (
		s                store.Study
		config           string
		seed             int64
		created, updated int64
	)
	err := row.Scan(&s.ID, &s.Name, &s.Kind, &config, &seed, &s.SpaceHash, &s.MaxAttempts, &s.Status, &created, &updated)
	s.Config = json.RawMessage(config)
	s.Seed = uint64(seed)
	s.Created, s.Updated = msTime(created), msTime(updated)
	return s, err
}

// CreateStudy implements store.Store.
func (s *Store) CreateStudy(ctx context.Context, st store.Study) (store.Study, error) {
	st, err := store.ValidateStudy(st)
	if err != nil {
		return st, fmt.Errorf("create study: %w", err)
	}
	var out store.Study
	err = s.write(ctx, func(tx *sql.Tx) error {
		row := tx.QueryRowContext(ctx, `INSERT INTO studies (name, kind, config, seed, space_hash, max_attempts, status, created_ms, updated_ms)
			VALUES (?, ?, ?, ?, ?, ?, 'running', `+nowMS+`, `+nowMS+`) RETURNING `+studyCols,
			st.Name, string(st.Kind), string(st.Config), int64(st.Seed), st.SpaceHash, st.MaxAttempts)
		var err error
		out, err = scanStudy(row)
		return err
	})
	if err != nil {
		return out, fmt.Errorf("create study: %w", err)
	}
	return out, nil
}

// Study implements store.Store.
func (s *Store) Study(ctx context.Context, id int64) (store.Study, error) {
	st, err := scanStudy(s.r.QueryRowContext(ctx, "SELECT "+studyCols+" FROM studies WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return st, fmt.Errorf("study %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return st, fmt.Errorf("read study %d: %w", id, err)
	}
	return st, nil
}

// LatestStudy implements store.Store.
func (s *Store) LatestStudy(ctx context.Context, kind store.Kind) (store.Study, error) {
	st, err := scanStudy(s.r.QueryRowContext(ctx, "SELECT "+studyCols+" FROM studies WHERE ? = '' OR kind = ? ORDER BY id DESC LIMIT 1", string(kind), string(kind)))
	if errors.Is(err, sql.ErrNoRows) {
		if kind == "" {
			return st, fmt.Errorf("latest study: %w: the database has no studies", store.ErrNotFound)
		}
		return st, fmt.Errorf("latest %s study: %w: the database has no %s studies", kind, store.ErrNotFound, kind)
	}
	if err != nil {
		return st, fmt.Errorf("read latest study: %w", err)
	}
	return st, nil
}

// Studies implements store.Store.
func (s *Store) Studies(ctx context.Context) ([]store.Study, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT "+studyCols+" FROM studies ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("list studies: %w", err)
	}
	defer rows.Close()
	var out []store.Study
	for rows.Next() {
		st, err := scanStudy(rows)
		if err != nil {
			return nil, fmt.Errorf("list studies: %w", err)
		}
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list studies: %w", err)
	}
	return out, nil
}

// SetStudyStatus implements store.Store.
func (s *Store) SetStudyStatus(ctx context.Context, id int64, status store.StudyStatus) error {
	if err := status.Validate(); err != nil {
		return fmt.Errorf("set status of study %d: %w", id, err)
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE studies SET status = ?, updated_ms = "+nowMS+" WHERE id = ?", string(status), id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return store.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("set status of study %d: %w", id, err)
	}
	return nil
}

const trialCols = `study_id, number, key, choices, blocks, params, flops, alpha, beta, gamma, state,
	accuracy, reward, seconds, error, attempt, worker, lease_expires_ms, created_ms, updated_ms`

func scanTrial(row scanner) (store.Trial, error) {
	var (
		t                       store.Trial
		choices, blocks         string
		alpha, beta, gamma      sql.NullFloat64
		acc, reward             sql.NullFloat64
		lease, created, updated int64
	)
	err := row.Scan(&t.Study, &t.Number, &t.Key, &choices, &blocks, &t.Params, &t.FLOPs, &alpha, &beta, &gamma, &t.State,
		&acc, &reward, &t.Seconds, &t.Error, &t.Attempt, &t.Worker, &lease, &created, &updated)
	if err != nil {
		return t, err
	}
	t.Choices = json.RawMessage(choices)
	if err := json.Unmarshal([]byte(blocks), &t.Blocks); err != nil {
		return t, fmt.Errorf("trial %d blocks: %w", t.Number, err)
	}
	if alpha.Valid {
		t.Grid = &store.GridPoint{Alpha: alpha.Float64, Beta: beta.Float64, Gamma: gamma.Float64}
	}
	t.Accuracy, t.Reward = acc.Float64, reward.Float64
	t.LeaseExpires, t.Created, t.Updated = msTime(lease), msTime(created), msTime(updated)
	return t, nil
}

func studyMaxAttempts(ctx context.Context, tx *sql.Tx, study int64) (int, error) {
	var n int
	err := tx.QueryRowContext(ctx, "SELECT max_attempts FROM studies WHERE id = ?", study).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
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
	err := s.write(ctx, func(tx *sql.Tx) error {
		if _, err := studyMaxAttempts(ctx, tx, study); err != nil {
			return err
		}
		var next int
		if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(number) + 1, 0) FROM trials WHERE study_id = ?", study).Scan(&next); err != nil {
			return err
		}
		dup, err := tx.PrepareContext(ctx, "SELECT number FROM trials WHERE study_id = ? AND key = ?")
		if err != nil {
			return err
		}
		defer dup.Close()
		ins, err := tx.PrepareContext(ctx, `INSERT INTO trials (study_id, number, key, choices, blocks, params, flops, alpha, beta, gamma, state, created_ms, updated_ms)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', `+nowMS+`, `+nowMS+`) RETURNING `+trialCols)
		if err != nil {
			return err
		}
		defer ins.Close()
		for i, p := range plans {
			var n int
			switch err := dup.QueryRowContext(ctx, study, p.Key).Scan(&n); {
			case err == nil:
				return fmt.Errorf("plan %d: key %q is trial %d: %w", i, p.Key, n, store.ErrDuplicateKey)
			case !errors.Is(err, sql.ErrNoRows):
				return err
			}
			choices := string(p.Choices)
			if choices == "" {
				choices = "null"
			}
			blocks := p.Blocks
			if blocks == nil {
				blocks = []string{}
			}
			bj, err := json.Marshal(blocks)
			if err != nil {
				return err
			}
			var a, b, g any
			if p.Grid != nil {
				a, b, g = p.Grid.Alpha, p.Grid.Beta, p.Grid.Gamma
			}
			t, err := scanTrial(ins.QueryRowContext(ctx, study, next+i, p.Key, choices, string(bj), p.Params, p.FLOPs, a, b, g))
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

// ClaimTrials implements store.Store.
func (s *Store) ClaimTrials(ctx context.Context, study int64, worker string, limit int, lease time.Duration) ([]store.Trial, error) {
	if worker == "" || limit < 1 || lease < time.Millisecond {
		return nil, fmt.Errorf("claim trials for study %d: %w: want a worker name, a limit of 1 or more and a lease of 1ms or more (got %q, %d, %v)", study, store.ErrInvalid, worker, limit, lease)
	}
	var out []store.Trial
	err := s.write(ctx, func(tx *sql.Tx) error {
		max, err := studyMaxAttempts(ctx, tx, study)
		if err != nil {
			return err
		}
		// Expired leases on their last attempt: the trial keeps killing
		// its workers (or they keep dying); stop retrying it.
		if _, err := tx.ExecContext(ctx, `UPDATE trials SET state = 'failed', lease_expires_ms = 0, updated_ms = `+nowMS+`,
			error = printf('lease of worker %s expired on attempt %d of %d', worker, attempt, ?)
			WHERE study_id = ? AND state = 'running' AND lease_expires_ms < `+nowMS+` AND attempt >= ?`, max, study, max); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `UPDATE trials SET state = 'running', worker = ?, attempt = attempt + 1, error = '',
			lease_expires_ms = `+nowMS+` + ?, updated_ms = `+nowMS+`
			WHERE study_id = ? AND number IN (
				SELECT number FROM trials WHERE study_id = ?
				AND (state = 'pending' OR (state = 'running' AND lease_expires_ms < `+nowMS+`))
				ORDER BY number LIMIT ?)
			RETURNING `+trialCols, worker, lease.Milliseconds(), study, study, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			t, err := scanTrial(rows)
			if err != nil {
				return err
			}
			out = append(out, t)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("claim trials for study %d: %w", study, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Number < out[j].Number })
	return out, nil
}

// holds is the compare-and-set condition: the trial is still running under
// this worker and attempt, and its lease has not expired.
const holds = ` WHERE study_id = ? AND number = ? AND state = 'running' AND worker = ? AND attempt = ? AND lease_expires_ms >= ` + nowMS

// casUpdate runs an UPDATE whose WHERE clause is holds and reports
// ErrLeaseLost when it changed nothing.
func (s *Store) casUpdate(ctx context.Context, l store.Lease, set string, args ...any) error {
	if err := store.ValidateLease(l); err != nil {
		return err
	}
	args = append(args, l.Study, l.Number, l.Worker, l.Attempt)
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE trials SET "+set+", updated_ms = "+nowMS+holds, args...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 1 {
			return nil
		}
		return s.whyLost(ctx, tx, l)
	})
}

// whyLost explains an ErrLeaseLost with the trial's current holder.
func (s *Store) whyLost(ctx context.Context, tx *sql.Tx, l store.Lease) error {
	t, err := scanTrial(tx.QueryRowContext(ctx, "SELECT "+trialCols+" FROM trials WHERE study_id = ? AND number = ?", l.Study, l.Number))
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("trial %d of study %d: %w", l.Number, l.Study, store.ErrNotFound)
	}
	if err != nil {
		return err
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
	if err := s.casUpdate(ctx, l, "lease_expires_ms = "+nowMS+" + ?", lease.Milliseconds()); err != nil {
		return fmt.Errorf("heartbeat %v: %w", l, err)
	}
	return nil
}

// FinishTrial implements store.Store.
func (s *Store) FinishTrial(ctx context.Context, l store.Lease, r store.Result) error {
	if err := r.Validate(); err != nil {
		return fmt.Errorf("finish %v: %w", l, err)
	}
	err := s.casUpdate(ctx, l, "state = 'complete', accuracy = ?, reward = ?, seconds = ?, error = '', lease_expires_ms = 0",
		r.Accuracy, r.Reward, r.Seconds)
	if err != nil {
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
	if err := s.casUpdate(ctx, l, "state = 'failed', error = ?, seconds = ?, lease_expires_ms = 0", reason, seconds); err != nil {
		return fmt.Errorf("fail %v: %w", l, err)
	}
	return nil
}

// InterruptTrial implements store.Store.
func (s *Store) InterruptTrial(ctx context.Context, l store.Lease, reason string) error {
	if reason == "" {
		reason = "interrupted"
	}
	if err := s.casUpdate(ctx, l, "state = 'interrupted', error = ?, lease_expires_ms = 0", reason); err != nil {
		return fmt.Errorf("interrupt %v: %w", l, err)
	}
	return nil
}

// ReleaseTrial implements store.Store.
func (s *Store) ReleaseTrial(ctx context.Context, l store.Lease, reason string) error {
	if err := s.casUpdate(ctx, l, "state = 'pending', error = ?, lease_expires_ms = 0", reason); err != nil {
		return fmt.Errorf("release %v: %w", l, err)
	}
	return nil
}

// RecoverTrials implements store.Store.
func (s *Store) RecoverTrials(ctx context.Context, study int64) (store.Recovered, error) {
	var rec store.Recovered
	err := s.write(ctx, func(tx *sql.Tx) error {
		max, err := studyMaxAttempts(ctx, tx, study)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE trials SET state = 'failed', lease_expires_ms = 0, updated_ms = `+nowMS+`,
			error = printf('worker %s stopped during attempt %d of %d', worker, attempt, ?)
			WHERE study_id = ? AND state = 'running' AND attempt >= ?`, max, study, max)
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		rec.Failed = int(n)
		res, err = tx.ExecContext(ctx, `UPDATE trials SET state = 'pending', lease_expires_ms = 0, updated_ms = `+nowMS+`
			WHERE study_id = ? AND state IN ('running', 'interrupted')`, study)
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		rec.Requeued = int(n)
		return nil
	})
	if err != nil {
		return rec, fmt.Errorf("recover trials of study %d: %w", study, err)
	}
	return rec, nil
}

// Trial implements store.Store.
func (s *Store) Trial(ctx context.Context, study int64, number int) (store.Trial, error) {
	t, err := scanTrial(s.r.QueryRowContext(ctx, "SELECT "+trialCols+" FROM trials WHERE study_id = ? AND number = ?", study, number))
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("trial %d of study %d: %w", number, study, store.ErrNotFound)
	}
	if err != nil {
		return t, fmt.Errorf("read trial %d of study %d: %w", number, study, err)
	}
	return t, nil
}

// TrialByKey implements store.Store.
func (s *Store) TrialByKey(ctx context.Context, study int64, key string) (store.Trial, error) {
	t, err := scanTrial(s.r.QueryRowContext(ctx, "SELECT "+trialCols+" FROM trials WHERE study_id = ? AND key = ?", study, key))
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("trial with key %q in study %d: %w", key, study, store.ErrNotFound)
	}
	if err != nil {
		return t, fmt.Errorf("read trial with key %q in study %d: %w", key, study, err)
	}
	return t, nil
}

// Trials implements store.Store.
func (s *Store) Trials(ctx context.Context, study int64) ([]store.Trial, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT "+trialCols+" FROM trials WHERE study_id = ? ORDER BY number", study)
	if err != nil {
		return nil, fmt.Errorf("list trials of study %d: %w", study, err)
	}
	defer rows.Close()
	var out []store.Trial
	for rows.Next() {
		t, err := scanTrial(rows)
		if err != nil {
			return nil, fmt.Errorf("list trials of study %d: %w", study, err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list trials of study %d: %w", study, err)
	}
	return out, nil
}

// CountTrials implements store.Store.
func (s *Store) CountTrials(ctx context.Context, study int64) (store.Counts, error) {
	var c store.Counts
	rows, err := s.r.QueryContext(ctx, "SELECT state, count(*) FROM trials WHERE study_id = ? GROUP BY state", study)
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

func saveState(ctx context.Context, tx *sql.Tx, study int64, state []byte) error {
	if state == nil {
		state = []byte{}
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO controller_states (study_id, state, updated_ms) VALUES (?, ?, `+nowMS+`)
		ON CONFLICT (study_id) DO UPDATE SET state = excluded.state, updated_ms = excluded.updated_ms`, study, state)
	return err
}

// SaveControllerState implements store.Store.
func (s *Store) SaveControllerState(ctx context.Context, study int64, state []byte) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		if _, err := studyMaxAttempts(ctx, tx, study); err != nil {
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
	err := s.r.QueryRowContext(ctx, "SELECT state FROM controller_states WHERE study_id = ?", study).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("controller state of study %d: %w", study, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("load controller state of study %d: %w", study, err)
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}
