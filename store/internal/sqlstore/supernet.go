package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/effnas/effnas/store"
)

// A study's supernet is one row of supernets: its latest checkpoint and
// the worker that holds the right to train it (holder, '' when nobody),
// with a lease on the database's clock, as a trial's. Every write that
// needs the claim compares holder and lease in its WHERE clause, so a
// worker whose lease lapsed cannot overwrite a newer holder's checkpoint.

// supernetCols is the select list of a checkpoint; weights is the weights
// column or NULL.
func (s *Store) supernetCols(weights string) string {
	return "study_id, step, checkpoints, seconds, done, meta, " + weights + ", holder, " + s.d.TimeMS(s.d.Updated)
}

func scanSupernet(row scanner) (store.SupernetCheckpoint, error) {
	var (
		ck      store.SupernetCheckpoint
		updated int64
	)
	err := row.Scan(&ck.Study, &ck.Step, &ck.Checkpoints, &ck.Seconds, &ck.Done, &ck.Meta, &ck.Weights, &ck.Holder, &updated)
	if len(ck.Meta) == 0 {
		ck.Meta = nil
	}
	if len(ck.Weights) == 0 {
		ck.Weights = nil
	}
	ck.Updated = msTime(updated)
	return ck, err
}

// validClaim checks a worker's name and lease.
func validClaim(worker string, lease time.Duration) error {
	if worker == "" || lease < time.Millisecond {
		return fmt.Errorf("%w: want a worker name and a lease of 1ms or more (got %q, %v)", store.ErrInvalid, worker, lease)
	}
	return nil
}

// ClaimSupernet implements store.Store.
//
// One upsert takes the claim: it inserts the study's row, or takes it over
// when the training is not done and the row has no live holder but
// worker; a refused upsert changes nothing. The row is then read in the
// same transaction, with its weights only when the caller may use them.
func (s *Store) ClaimSupernet(ctx context.Context, study int64, worker string, lease time.Duration) (store.SupernetCheckpoint, bool, error) {
	if err := validClaim(worker, lease); err != nil {
		return store.SupernetCheckpoint{}, false, fmt.Errorf("claim the supernet of study %d: %w", study, err)
	}
	var (
		ck      store.SupernetCheckpoint
		claimed bool
	)
	le := s.d.LeaseExpires
	err := s.write(ctx, func(tx *sql.Tx) error {
		if _, _, err := s.lockStudy(ctx, tx, study, true); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, s.q(`INSERT INTO supernets (study_id, holder, `+le+`, `+s.d.Updated+`) VALUES (?, ?, `+s.d.LeaseIn+`, `+s.d.Now+`)
			ON CONFLICT (study_id) DO UPDATE SET holder = excluded.holder, `+le+` = excluded.`+le+`
			WHERE supernets.holder = '' OR supernets.holder = excluded.holder OR supernets.`+le+` < `+s.d.Now+``),
			study, worker, lease.Milliseconds())
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		claimed = n == 1
		ck, err = scanSupernet(tx.QueryRowContext(ctx, s.q("SELECT "+s.supernetCols("CASE WHEN ? OR done THEN weights END")+" FROM supernets WHERE study_id = ?"), claimed, study))
		claimed = claimed || ck.Done
		return err
	})
	if err != nil {
		return store.SupernetCheckpoint{}, false, fmt.Errorf("claim the supernet of study %d for worker %q: %w", study, worker, err)
	}
	return ck, claimed, nil
}

// SaveSupernet implements store.Store.
func (s *Store) SaveSupernet(ctx context.Context, worker string, ck store.SupernetCheckpoint, lease time.Duration) error {
	if err := validClaim(worker, lease); err != nil {
		return fmt.Errorf("save the supernet of study %d: %w", ck.Study, err)
	}
	if err := ck.Validate(); err != nil {
		return fmt.Errorf("save the supernet of study %d: %w", ck.Study, err)
	}
	le := s.d.LeaseExpires
	// One statement, its own transaction: the checkpoint is written only
	// while worker holds a live claim and the step does not go back.
	err := s.writeEach(ctx, func(db conn) error {
		res, err := db.ExecContext(ctx, s.q(`UPDATE supernets SET step = ?, checkpoints = ?, seconds = ?, done = ?, meta = ?, weights = ?,
			`+le+` = `+s.d.LeaseIn+`, `+s.d.Updated+` = `+s.d.Now+`
			WHERE study_id = ? AND holder = ? AND `+le+` >= `+s.d.Now+` AND step <= ?`),
			ck.Step, ck.Checkpoints, ck.Seconds, ck.Done, ck.Meta, ck.Weights, lease.Milliseconds(), ck.Study, worker, ck.Step)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 1 {
			return nil
		}
		if err := s.supernetHeld(ctx, db, ck.Study, worker); err != nil {
			return err
		}
		var step int
		if err := db.QueryRowContext(ctx, s.q("SELECT step FROM supernets WHERE study_id = ?"), ck.Study).Scan(&step); err != nil {
			return err
		}
		if step > ck.Step {
			return fmt.Errorf("step %d: %w: the stored checkpoint is at step %d, and a checkpoint never goes back (a late save of an older state?)", ck.Step, store.ErrInvalid, step)
		}
		return fmt.Errorf("%w: the checkpoint changed while it was saved", store.ErrLeaseLost)
	})
	if err != nil {
		return fmt.Errorf("save the supernet of study %d at step %d by worker %q: %w", ck.Study, ck.Step, worker, err)
	}
	return nil
}

// supernetHeld explains why worker's claim-guarded write changed nothing:
// ErrNotFound for a missing study, ErrLeaseLost naming the holder when
// worker does not hold a live claim, nil when it does.
func (s *Store) supernetHeld(ctx context.Context, db conn, study int64, worker string) error {
	var (
		holder string
		live   bool
		until  int64
	)
	err := db.QueryRowContext(ctx, s.q(`SELECT holder, CASE WHEN `+s.d.LeaseExpires+` >= `+s.d.Now+` THEN 1 ELSE 0 END = 1, `+s.d.TimeMS(s.d.LeaseExpires)+`
		FROM supernets WHERE study_id = ?`), study).Scan(&holder, &live, &until)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		var one int
		if err := db.QueryRowContext(ctx, s.q("SELECT 1 FROM studies WHERE id = ?"), study).Scan(&one); errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("study %d: %w", study, store.ErrNotFound)
		} else if err != nil {
			return err
		}
		return fmt.Errorf("%w: nobody claimed the study's supernet; call ClaimSupernet first", store.ErrLeaseLost)
	case err != nil:
		return err
	case holder == "":
		return fmt.Errorf("%w: the claim was released", store.ErrLeaseLost)
	case holder != worker:
		return fmt.Errorf("%w: worker %q holds the claim now", store.ErrLeaseLost, holder)
	case !live:
		return fmt.Errorf("%w: the lease expired at %s", store.ErrLeaseLost, msTime(until).Format(time.RFC3339Nano))
	}
	return nil
}

// casSupernet runs "UPDATE supernets SET set" only while worker holds a
// live claim on the study's supernet, and says why when it changed
// nothing.
func (s *Store) casSupernet(ctx context.Context, study int64, worker, set string, args ...any) error {
	args = append(args, study, worker)
	return s.writeEach(ctx, func(db conn) error {
		res, err := db.ExecContext(ctx, s.q("UPDATE supernets SET "+set+
			" WHERE study_id = ? AND holder = ? AND "+s.d.LeaseExpires+" >= "+s.d.Now), args...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 1 {
			return nil
		}
		if err := s.supernetHeld(ctx, db, study, worker); err != nil {
			return err
		}
		return fmt.Errorf("%w: the claim changed meanwhile", store.ErrLeaseLost)
	})
}

// HeartbeatSupernet implements store.Store.
func (s *Store) HeartbeatSupernet(ctx context.Context, study int64, worker string, lease time.Duration) error {
	if err := validClaim(worker, lease); err != nil {
		return fmt.Errorf("heartbeat the supernet of study %d: %w", study, err)
	}
	if err := s.casSupernet(ctx, study, worker, s.d.LeaseExpires+" = "+s.d.LeaseIn, lease.Milliseconds()); err != nil {
		return fmt.Errorf("heartbeat the supernet of study %d by worker %q: %w", study, worker, err)
	}
	return nil
}

// ReleaseSupernet implements store.Store.
func (s *Store) ReleaseSupernet(ctx context.Context, study int64, worker string) error {
	if worker == "" {
		return fmt.Errorf("release the supernet of study %d: %w: want the worker name that claimed it", study, store.ErrInvalid)
	}
	if err := s.casSupernet(ctx, study, worker, "holder = '', "+s.d.LeaseExpires+" = "+s.d.NoLease); err != nil {
		return fmt.Errorf("release the supernet of study %d by worker %q: %w", study, worker, err)
	}
	return nil
}

// Supernet implements store.Store.
func (s *Store) Supernet(ctx context.Context, study int64) (store.SupernetCheckpoint, error) {
	return s.supernet(ctx, study, "weights")
}

// SupernetInfo implements store.Store.
func (s *Store) SupernetInfo(ctx context.Context, study int64) (store.SupernetCheckpoint, error) {
	return s.supernet(ctx, study, "NULL")
}

func (s *Store) supernet(ctx context.Context, study int64, weights string) (store.SupernetCheckpoint, error) {
	ck, err := scanSupernet(s.r.QueryRowContext(ctx, s.q("SELECT "+s.supernetCols(weights)+" FROM supernets WHERE study_id = ?"), study))
	if err != nil {
		return store.SupernetCheckpoint{}, notFound(err, "supernet of study %d", study)
	}
	return ck, nil
}
