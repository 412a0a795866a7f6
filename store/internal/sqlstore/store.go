package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/effnas/effnas/store"
)

// ErrReadOnly: a write through a store opened read-only.
var ErrReadOnly = errors.New("database opened read-only")

// Store implements store.Store over database/sql in a Dialect.
type Store struct {
	d *Dialect
	w *sql.DB // writes; nil when read-only
	r *sql.DB // reads

	studyCols, trialCols string // select lists, times as milliseconds
}

var _ store.Store = (*Store)(nil)

// New returns a store that writes through w (nil: read-only) and reads
// through r, which may be the same pool.
func New(d *Dialect, w, r *sql.DB) *Store {
	s := &Store{d: d, w: w, r: r}
	s.studyCols = "id, name, kind, " + d.JSONOut("config") + ", seed, space_hash, max_attempts, status, " +
		d.TimeMS(d.Created) + ", " + d.TimeMS(d.Updated)
	s.trialCols = "study_id, number, key, rung, seed, " + d.JSONOut("choices") + ", " + d.BlocksOut +
		", params, flops, alpha, beta, gamma, state, accuracy, reward, test_accuracy, seconds, error, attempt, crashes, memory, worker, " +
		d.TimeMS(d.LeaseExpires) + ", " + d.TimeMS(d.Created) + ", " + d.TimeMS(d.Updated)
	return s
}

// Close closes the pools.
func (s *Store) Close() error {
	var errs []error
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	if s.w != nil && s.w != s.r {
		errs = append(errs, s.w.Close())
	}
	return errors.Join(errs...)
}

// PoolSize is the most connections the store opens at once: the limits of
// its writer's and reader's pools summed (a pool shared by both counted
// once), 0 when a pool has no limit.
func (s *Store) PoolSize() int {
	n := 0
	for _, db := range []*sql.DB{s.w, s.r} {
		if db == nil || (db == s.r && s.r == s.w) {
			continue
		}
		m := db.Stats().MaxOpenConnections
		if m == 0 {
			return 0
		}
		n += m
	}
	return n
}

// q rebinds a statement for the dialect.
func (s *Store) q(query string) string { return s.d.rebind(query) }

// write runs fn in one transaction on the writer, again when the dialect
// says the database aborted it as a deadlock victim or a serialization
// failure (up to 5 times).
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return s.retry(ctx, func() error { return s.tryWrite(ctx, fn) })
}

// conn is a transaction or the writer's pool.
type conn interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// writeEach runs fn's statements, each of which must be correct alone,
// with as few round trips as the database allows, and again as write
// does. Where the database has many writers (PostgreSQL) each statement
// commits on its own: one round trip, where BEGIN, the statement and
// COMMIT cost three. Where it has one (SQLite) they run in one
// transaction, which takes the write lock once.
func (s *Store) writeEach(ctx context.Context, fn func(c conn) error) error {
	if s.d.SkipLocked == "" {
		return s.write(ctx, func(tx *sql.Tx) error { return fn(tx) })
	}
	return s.retry(ctx, func() error { return fn(s.w) })
}

// retry calls try until it succeeds, fails for good, or fails a fifth
// time with an error the dialect says is worth retrying.
func (s *Store) retry(ctx context.Context, try func() error) error {
	if s.w == nil {
		return ErrReadOnly
	}
	for attempt := 1; ; attempt++ {
		err := try()
		if attempt < 5 && err != nil && s.d.Retryable != nil && s.d.Retryable(err) {
			select {
			case <-ctx.Done():
				return err
			case <-time.After(time.Duration(attempt) * 10 * time.Millisecond):
			}
			continue
		}
		return err
	}
}

func (s *Store) tryWrite(ctx context.Context, fn func(tx *sql.Tx) error) error {
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

type scanner interface{ Scan(dest ...any) error }

func scanStudy(row scanner) (store.Study, error) {
	var (
		st               store.Study
		kind, status     string
		config           string
		seed             int64
		created, updated int64
	)
	err := row.Scan(&st.ID, &st.Name, &kind, &config, &seed, &st.SpaceHash, &st.MaxAttempts, &status, &created, &updated)
	st.Kind, st.Status = store.Kind(kind), store.StudyStatus(status)
	st.Config = json.RawMessage(config)
	st.Seed = uint64(seed)
	st.Created, st.Updated = msTime(created), msTime(updated)
	return st, err
}

func scanTrial(row scanner) (store.Trial, error) {
	var (
		t                       store.Trial
		state                   string
		choices, blocks         string
		alpha, beta, gamma      sql.NullFloat64
		acc, reward, test       sql.NullFloat64
		lease, created, updated int64
	)
	err := row.Scan(&t.Study, &t.Number, &t.Key, &t.Rung, &t.Seed, &choices, &blocks, &t.Params, &t.FLOPs, &alpha, &beta, &gamma, &state,
		&acc, &reward, &test, &t.Seconds, &t.Error, &t.Attempt, &t.Crashes, &t.Memory, &t.Worker, &lease, &created, &updated)
	if err != nil {
		return t, err
	}
	t.State = store.TrialState(state)
	t.Choices = json.RawMessage(choices)
	if t.Blocks, err = stringArray(blocks); err != nil {
		return t, fmt.Errorf("trial %d blocks: %w", t.Number, err)
	}
	if alpha.Valid && beta.Valid && gamma.Valid {
		t.Grid = &store.GridPoint{Alpha: alpha.Float64, Beta: beta.Float64, Gamma: gamma.Float64}
	}
	t.Accuracy, t.Reward, t.TestAccuracy = acc.Float64, reward.Float64, test.Float64
	t.LeaseExpires, t.Created, t.Updated = msTime(lease), msTime(created), msTime(updated)
	return t, nil
}

// notFound wraps sql.ErrNoRows as store.ErrNotFound.
func notFound(err error, format string, args ...any) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf(format+": %w", append(args, store.ErrNotFound)...)
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}

// CreateStudy implements store.Store.
func (s *Store) CreateStudy(ctx context.Context, st store.Study, plans []store.Plan) (store.Study, error) {
	st, err := store.ValidateStudy(st)
	if err != nil {
		return st, fmt.Errorf("create study: %w", err)
	}
	if err := store.ValidatePlans(plans); err != nil {
		return st, fmt.Errorf("create study: %w", err)
	}
	var out store.Study
	err = s.write(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = scanStudy(tx.QueryRowContext(ctx, s.q(`INSERT INTO studies (name, kind, config, seed, space_hash, max_attempts, status, `+s.d.Created+`, `+s.d.Updated+`)
			VALUES (?, ?, `+s.d.JSONIn+`, ?, ?, ?, 'running', `+s.d.Now+`, `+s.d.Now+`) RETURNING `+s.studyCols),
			st.Name, string(st.Kind), string(st.Config), int64(st.Seed), st.SpaceHash, st.MaxAttempts))
		if err != nil || len(plans) == 0 {
			return err
		}
		_, err = s.insertPlans(ctx, tx, out.ID, 0, plans)
		return err
	})
	if err != nil {
		return out, fmt.Errorf("create study: %w", err)
	}
	return out, nil
}

// Study implements store.Store.
func (s *Store) Study(ctx context.Context, id int64) (store.Study, error) {
	st, err := scanStudy(s.r.QueryRowContext(ctx, s.q("SELECT "+s.studyCols+" FROM studies WHERE id = ?"), id))
	if err != nil {
		return st, notFound(err, "study %d", id)
	}
	return st, nil
}

// LatestStudy implements store.Store.
func (s *Store) LatestStudy(ctx context.Context, kind store.Kind) (store.Study, error) {
	st, err := scanStudy(s.r.QueryRowContext(ctx, s.q("SELECT "+s.studyCols+" FROM studies WHERE ? = '' OR kind = ? ORDER BY id DESC LIMIT 1"), string(kind), string(kind)))
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
	out, err := collect(ctx, s.r, s.q("SELECT "+s.studyCols+" FROM studies ORDER BY id"), scanStudy)
	if err != nil {
		return nil, fmt.Errorf("list studies: %w", err)
	}
	return out, nil
}

// querier is a pool or a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// collect runs a query and scans every row.
func collect[T any](ctx context.Context, db querier, query string, scan func(scanner) (T, error), args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// SetStudyStatus implements store.Store.
func (s *Store) SetStudyStatus(ctx context.Context, id int64, status store.StudyStatus) error {
	if err := status.Validate(); err != nil {
		return fmt.Errorf("set status of study %d: %w", id, err)
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q("UPDATE studies SET status = ?, "+s.d.Updated+" = "+s.d.Now+" WHERE id = ?"), string(status), id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return store.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("set status of study %d: %w", id, err)
	}
	return nil
}

// lockStudy reads the study's crash limit and status in a write
// transaction, locking its row (exclusively, or shared) where the database
// has many writers.
func (s *Store) lockStudy(ctx context.Context, tx *sql.Tx, study int64, shared bool) (int, store.StudyStatus, error) {
	lock := s.d.LockRow
	if shared {
		lock = s.d.ShareRow
	}
	var (
		n      int
		status string
	)
	err := tx.QueryRowContext(ctx, s.q("SELECT max_attempts, status FROM studies WHERE id = ?"+lock), study).Scan(&n, &status)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", fmt.Errorf("study %d: %w", study, store.ErrNotFound)
	}
	return n, store.StudyStatus(status), err
}

// PlanTrials implements store.Store.
func (s *Store) PlanTrials(ctx context.Context, study int64, plans []store.Plan, controllerState []byte) ([]store.Trial, error) {
	if err := store.ValidatePlans(plans); err != nil {
		return nil, fmt.Errorf("plan trials for study %d: %w", study, err)
	}
	var out []store.Trial
	err := s.write(ctx, func(tx *sql.Tx) error {
		out = make([]store.Trial, 0, len(plans))
		if _, _, err := s.lockStudy(ctx, tx, study, false); err != nil {
			return err
		}
		var next int
		if err := tx.QueryRowContext(ctx, s.q("SELECT COALESCE(MAX(number) + 1, 0) FROM trials WHERE study_id = ?"), study).Scan(&next); err != nil {
			return err
		}
		var err error
		if out, err = s.insertPlans(ctx, tx, study, next, plans); err != nil {
			return err
		}
		if controllerState != nil {
			return s.saveState(ctx, tx, study, controllerState)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("plan trials for study %d: %w", study, err)
	}
	return out, nil
}

// insertPlans writes plans as pending trials (failed when rejected,
// complete when copied) numbered from next.
func (s *Store) insertPlans(ctx context.Context, tx *sql.Tx, study int64, next int, plans []store.Plan) ([]store.Trial, error) {
	dup, err := tx.PrepareContext(ctx, s.q("SELECT number FROM trials WHERE study_id = ? AND key = ? AND rung = ? AND seed = ?"))
	if err != nil {
		return nil, err
	}
	defer dup.Close()
	ins, err := tx.PrepareContext(ctx, s.q(`INSERT INTO trials (study_id, number, key, rung, seed, choices, blocks, params, flops, alpha, beta, gamma, memory, state, error,
			accuracy, reward, test_accuracy, seconds, worker, `+s.d.Created+`, `+s.d.Updated+`)
		VALUES (?, ?, ?, ?, ?, `+s.d.JSONIn+`, `+s.d.BlocksIn+`, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, `+s.d.Now+`, `+s.d.Now+`) RETURNING `+s.trialCols))
	if err != nil {
		return nil, err
	}
	defer ins.Close()
	out := make([]store.Trial, 0, len(plans))
	for i, p := range plans {
		var n int
		switch err := dup.QueryRowContext(ctx, study, p.Key, p.Rung, p.Seed).Scan(&n); {
		case err == nil:
			return nil, fmt.Errorf("plan %d: key %q at rung %d, seed %d is trial %d: %w", i, p.Key, p.Rung, p.Seed, n, store.ErrDuplicateKey)
		case !errors.Is(err, sql.ErrNoRows):
			return nil, err
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
			return nil, err
		}
		var a, b, g any
		if p.Grid != nil {
			a, b, g = p.Grid.Alpha, p.Grid.Beta, p.Grid.Gamma
		}
		state := store.TrialPending
		var acc, reward, test any
		var seconds float64
		switch {
		case p.Rejected != "":
			state = store.TrialFailed
		case p.Copied != nil:
			state = store.TrialComplete
			acc, reward, test, seconds = p.Copied.Accuracy, p.Copied.Reward, p.Copied.TestAccuracy, p.Copied.Seconds
		}
		t, err := scanTrial(ins.QueryRowContext(ctx, study, next+i, p.Key, p.Rung, p.Seed, choices, string(bj), p.Params, p.FLOPs, a, b, g, p.Memory,
			string(state), p.Rejected, acc, reward, test, seconds, p.Source))
		if err != nil {
			return nil, fmt.Errorf("plan %d (key %q): %w", i, p.Key, err)
		}
		out = append(out, t)
	}
	return out, nil
}

// ClaimTrials implements store.Store.
//
// A claim is one statement, its own transaction, with no lock on the
// study's row; it reads the study's status and crash limit itself. A
// claim that read "running" just before the study was stopped is ordered
// before the stop, as if it had committed first (the stop reads no
// trials). Expired trials that reached the crash limit are never claimed;
// a second statement marks them failed when a claim gets fewer trials
// than it asked for, which is when workers run out of work and the
// coordinator waits for the last trials. Under load the earlier claim (one
// transaction that took the study's row FOR SHARE, failed the expired
// trials, then claimed) cost PostgreSQL five round trips for every claim
// and made it build a MultiXact of all concurrent claimers on the study's
// row.
func (s *Store) ClaimTrials(ctx context.Context, study int64, c store.Claim) ([]store.Trial, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("claim trials for study %d: %w", study, err)
	}
	maxMem := c.MaxMemory
	if maxMem == 0 {
		maxMem = math.MaxInt64
	}
	expired := `state = 'running' AND ` + s.d.LeaseExpires + ` < ` + s.d.Now
	running := `EXISTS (SELECT 1 FROM studies WHERE id = ? AND status = 'running')`
	limit := `(SELECT max_attempts FROM studies WHERE id = ?)`
	var out []store.Trial
	err := s.writeEach(ctx, func(db conn) error {
		out = nil
		// The candidates are chosen once, in materialised CTEs: an IN
		// (sub-select ... LIMIT) may be evaluated more than once by
		// PostgreSQL and then claims more than the limit. Pending trials
		// and expired ones are looked up apart, each in the order of the
		// index on (study_id, state, number), and merged: one scan of
		// "pending OR expired" in number order walked over every trial
		// already done, so a claim's cost grew with the study.
		skip, skipArgs := "", []any{}
		if len(c.Skip) > 0 {
			skip = " AND number NOT IN (?" + strings.Repeat(", ?", len(c.Skip)-1) + ")"
			for _, n := range c.Skip {
				skipArgs = append(skipArgs, n)
			}
		}
		args := append(append([]any{study, maxMem}, skipArgs...), study, c.Limit)
		args = append(append(append(args, study, maxMem), skipArgs...), study, study, c.Limit)
		args = append(args, c.Limit, c.Worker, c.Lease.Milliseconds(), study)
		var err error
		out, err = collect(ctx, db, s.q(`WITH p AS MATERIALIZED (
				SELECT number FROM trials WHERE study_id = ? AND memory <= ?`+skip+` AND state = 'pending' AND `+running+`
				ORDER BY number LIMIT ?`+s.d.SkipLocked+`),
			e AS MATERIALIZED (
				SELECT number FROM trials WHERE study_id = ? AND memory <= ?`+skip+` AND `+expired+` AND crashes + 1 < `+limit+` AND `+running+`
				ORDER BY number LIMIT ?`+s.d.SkipLocked+`),
			c AS MATERIALIZED (
				SELECT number FROM (SELECT number FROM p UNION ALL SELECT number FROM e) AS u ORDER BY number LIMIT ?)
			UPDATE trials SET state = 'running', worker = ?, attempt = attempt + 1, error = '',
			crashes = crashes + CASE WHEN state = 'running' THEN 1 ELSE 0 END,
			`+s.d.LeaseExpires+` = `+s.d.LeaseIn+`, `+s.d.Updated+` = `+s.d.Now+`
			WHERE study_id = ? AND number IN (SELECT number FROM c)
			RETURNING `+s.trialCols), scanTrial, args...)
		return err
	})
	if err == nil && len(out) < c.Limit {
		// An expired lease is a crash. A trial that reached the crash
		// limit keeps killing its workers (or they keep dying): stop
		// retrying it. A study that is not running is left as it is.
		// (Not in the claim's retries: a claim that committed is not
		// made again. Nor is its failure the claim's when it got trials:
		// the next claim that comes back short does it again.)
		ferr := s.writeEach(ctx, func(db conn) error {
			_, err := db.ExecContext(ctx, s.q(`UPDATE trials SET state = 'failed', crashes = crashes + 1, `+s.d.LeaseExpires+` = `+s.d.NoLease+`, `+s.d.Updated+` = `+s.d.Now+`,
			error = 'lease of worker ' || worker || ' expired on attempt ' || attempt || ' (crash ' || (crashes + 1) || ' of ' || `+limit+` || ')'
			WHERE study_id = ? AND `+expired+` AND crashes + 1 >= `+limit+` AND `+running), study, study, study, study)
			return err
		})
		if len(out) == 0 {
			err = ferr
		}
	}
	if err == nil && len(out) == 0 {
		// Nothing claimed: a missing study is an error.
		var one int
		switch e := s.r.QueryRowContext(ctx, s.q("SELECT 1 FROM studies WHERE id = ?"), study).Scan(&one); {
		case errors.Is(e, sql.ErrNoRows):
			err = fmt.Errorf("study %d: %w", study, store.ErrNotFound)
		case e != nil:
			err = e
		}
	}
	if err != nil {
		return nil, fmt.Errorf("claim trials for study %d: %w", study, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Number < out[j].Number })
	return out, nil
}

// casUpdate runs "UPDATE trials SET set" only while l holds the trial
// (running under the same worker and attempt, lease not expired on the
// database's clock) and reports ErrLeaseLost, saying why, when it changed
// nothing.
func (s *Store) casUpdate(ctx context.Context, l store.Lease, set string, args ...any) error {
	if err := store.ValidateLease(l); err != nil {
		return err
	}
	args = append(args, l.Study, l.Number, l.Worker, l.Attempt)
	// One statement, its own transaction: one round trip to PostgreSQL.
	return s.writeEach(ctx, func(db conn) error {
		res, err := db.ExecContext(ctx, s.q("UPDATE trials SET "+set+", "+s.d.Updated+" = "+s.d.Now+
			" WHERE study_id = ? AND number = ? AND state = 'running' AND worker = ? AND attempt = ? AND "+s.d.LeaseExpires+" >= "+s.d.Now), args...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 1 {
			return nil
		}
		return s.whyLost(ctx, db, l)
	})
}

// whyLost explains an ErrLeaseLost with the trial's current holder.
func (s *Store) whyLost(ctx context.Context, db conn, l store.Lease) error {
	t, err := scanTrial(db.QueryRowContext(ctx, s.q("SELECT "+s.trialCols+" FROM trials WHERE study_id = ? AND number = ?"), l.Study, l.Number))
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
	if err := s.casUpdate(ctx, l, s.d.LeaseExpires+" = "+s.d.LeaseIn, lease.Milliseconds()); err != nil {
		return fmt.Errorf("heartbeat %v: %w", l, err)
	}
	return nil
}

// FinishTrial implements store.Store.
func (s *Store) FinishTrial(ctx context.Context, l store.Lease, r store.Result) error {
	if err := r.Validate(); err != nil {
		return fmt.Errorf("finish %v: %w", l, err)
	}
	err := s.casUpdate(ctx, l, "state = 'complete', accuracy = ?, reward = ?, test_accuracy = ?, seconds = ?, error = '', "+s.d.LeaseExpires+" = "+s.d.NoLease,
		r.Accuracy, r.Reward, r.TestAccuracy, r.Seconds)
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
	if err := s.casUpdate(ctx, l, "state = 'failed', error = ?, seconds = ?, "+s.d.LeaseExpires+" = "+s.d.NoLease, reason, seconds); err != nil {
		return fmt.Errorf("fail %v: %w", l, err)
	}
	return nil
}

// InterruptTrial implements store.Store.
func (s *Store) InterruptTrial(ctx context.Context, l store.Lease, reason string) error {
	if reason == "" {
		reason = "interrupted"
	}
	if err := s.casUpdate(ctx, l, "state = 'interrupted', error = ?, "+s.d.LeaseExpires+" = "+s.d.NoLease, reason); err != nil {
		return fmt.Errorf("interrupt %v: %w", l, err)
	}
	return nil
}

// ReleaseTrial implements store.Store.
func (s *Store) ReleaseTrial(ctx context.Context, l store.Lease, reason string) error {
	if err := s.casUpdate(ctx, l, "state = 'pending', error = ?, "+s.d.LeaseExpires+" = "+s.d.NoLease, reason); err != nil {
		return fmt.Errorf("release %v: %w", l, err)
	}
	return nil
}

// RecoverTrials implements store.Store.
func (s *Store) RecoverTrials(ctx context.Context, study int64) (store.Recovered, error) {
	var rec store.Recovered
	err := s.write(ctx, func(tx *sql.Tx) error {
		max, _, err := s.lockStudy(ctx, tx, study, false)
		if err != nil {
			return err
		}
		// A trial left running lost its worker: a crash.
		res, err := tx.ExecContext(ctx, s.q(`UPDATE trials SET state = 'failed', crashes = crashes + 1, `+s.d.LeaseExpires+` = `+s.d.NoLease+`, `+s.d.Updated+` = `+s.d.Now+`,
			error = 'worker ' || worker || ' stopped during attempt ' || attempt || ' (crash ' || (crashes + 1) || ' of ' || ? || ')'
			WHERE study_id = ? AND state = 'running' AND crashes + 1 >= ?`), strconv.Itoa(max), study, max)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		rec.Failed = int(n)
		res, err = tx.ExecContext(ctx, s.q(`UPDATE trials SET state = 'pending', `+s.d.LeaseExpires+` = `+s.d.NoLease+`, `+s.d.Updated+` = `+s.d.Now+`,
			crashes = crashes + CASE WHEN state = 'running' THEN 1 ELSE 0 END
			WHERE study_id = ? AND state IN ('running', 'interrupted')`), study)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		rec.Requeued = int(n)
		// The supernet's trainer is gone too: its claim is dropped, its
		// checkpoint kept.
		_, err = tx.ExecContext(ctx, s.q(`UPDATE supernets SET holder = '', `+s.d.LeaseExpires+` = `+s.d.NoLease+` WHERE study_id = ?`), study)
		return err
	})
	if err != nil {
		return rec, fmt.Errorf("recover trials of study %d: %w", study, err)
	}
	return rec, nil
}

// Trial implements store.Store.
func (s *Store) Trial(ctx context.Context, study int64, number int) (store.Trial, error) {
	t, err := scanTrial(s.r.QueryRowContext(ctx, s.q("SELECT "+s.trialCols+" FROM trials WHERE study_id = ? AND number = ?"), study, number))
	if err != nil {
		return t, notFound(err, "trial %d of study %d", number, study)
	}
	return t, nil
}

// TrialByKey implements store.Store.
func (s *Store) TrialByKey(ctx context.Context, study int64, key string, rung, seed int) (store.Trial, error) {
	t, err := scanTrial(s.r.QueryRowContext(ctx, s.q("SELECT "+s.trialCols+" FROM trials WHERE study_id = ? AND key = ? AND rung = ? AND seed = ?"), study, key, rung, seed))
	if err != nil {
		return t, notFound(err, "trial with key %q at rung %d, seed %d in study %d", key, rung, seed, study)
	}
	return t, nil
}

// Trials implements store.Store.
func (s *Store) Trials(ctx context.Context, study int64) ([]store.Trial, error) {
	out, err := collect(ctx, s.r, s.q("SELECT "+s.trialCols+" FROM trials WHERE study_id = ? ORDER BY number"), scanTrial, study)
	if err != nil {
		return nil, fmt.Errorf("list trials of study %d: %w", study, err)
	}
	return out, nil
}

// CountTrials implements store.Store.
func (s *Store) CountTrials(ctx context.Context, study int64) (store.Counts, error) {
	var c store.Counts
	type count struct {
		state string
		n     int
	}
	rows, err := collect(ctx, s.r, s.q("SELECT state, count(*) FROM trials WHERE study_id = ? GROUP BY state"),
		func(r scanner) (count, error) {
			var c count
			return c, r.Scan(&c.state, &c.n)
		}, study)
	if err != nil {
		return c, fmt.Errorf("count trials of study %d: %w", study, err)
	}
	for _, r := range rows {
		c.Add(store.TrialState(r.state), r.n)
	}
	return c, nil
}

func (s *Store) saveState(ctx context.Context, tx *sql.Tx, study int64, state []byte) error {
	if state == nil {
		state = []byte{}
	}
	_, err := tx.ExecContext(ctx, s.q(`INSERT INTO controller_states (study_id, state, `+s.d.Updated+`) VALUES (?, ?, `+s.d.Now+`)
		ON CONFLICT (study_id) DO UPDATE SET state = excluded.state, `+s.d.Updated+` = excluded.`+s.d.Updated), study, state)
	return err
}

// SaveControllerState implements store.Store.
func (s *Store) SaveControllerState(ctx context.Context, study int64, state []byte) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		if _, _, err := s.lockStudy(ctx, tx, study, true); err != nil {
			return err
		}
		return s.saveState(ctx, tx, study, state)
	})
	if err != nil {
		return fmt.Errorf("save controller state of study %d: %w", study, err)
	}
	return nil
}

// LoadControllerState implements store.Store.
func (s *Store) LoadControllerState(ctx context.Context, study int64) ([]byte, error) {
	var b []byte
	err := s.r.QueryRowContext(ctx, s.q("SELECT state FROM controller_states WHERE study_id = ?"), study).Scan(&b)
	if err != nil {
		return nil, notFound(err, "controller state of study %d", study)
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}

// stringArray decodes a JSON array of strings. Block strings hold no
// quotes, commas or escapes, so the common case is split by hand, which
// makes reading 10,000 trials several times faster; anything else goes
// through encoding/json.
func stringArray(s string) ([]string, error) {
	if len(s) >= 2 && s[0] == '[' && s[len(s)-1] == ']' && !strings.ContainsRune(s, '\\') {
		inner := strings.TrimSpace(s[1 : len(s)-1])
		if inner == "" {
			return []string{}, nil
		}
		parts := strings.Split(inner, ",")
		out := make([]string, len(parts))
		ok := true
		for i, p := range parts {
			p = strings.TrimSpace(p)
			if len(p) < 2 || p[0] != '"' || p[len(p)-1] != '"' || strings.ContainsRune(p[1:len(p)-1], '"') {
				ok = false
				break
			}
			out[i] = p[1 : len(p)-1]
		}
		if ok {
			return out, nil
		}
	}
	var out []string
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, err
	}
	if out == nil {
		out = []string{}
	}
	return out, nil
}
