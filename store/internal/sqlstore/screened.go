package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/effnas/effnas/store"
)

// screenedChunk is how many screened rows one statement writes or looks
// up: 500 rows of 11 placeholders stay far below SQLite's 32766 and
// PostgreSQL's 65535 parameters, and a batch of thousands costs a few
// round trips.
const screenedChunk = 500

// screenedCols is the select list of a screened candidate.
func (s *Store) screenedCols() string {
	return "study_id, number, key, " + s.d.JSONOut("choices") + ", " + s.d.BlocksOut + ", params, flops, score, reward, step, promoted"
}

func scanScreened(row scanner) (store.Screened, error) {
	var (
		c               store.Screened
		choices, blocks string
	)
	err := row.Scan(&c.Study, &c.Number, &c.Key, &choices, &blocks, &c.Params, &c.FLOPs, &c.Score, &c.Reward, &c.Step, &c.Promoted)
	if err != nil {
		return c, err
	}
	c.Choices = json.RawMessage(choices)
	if c.Blocks, err = stringArray(blocks); err != nil {
		return c, fmt.Errorf("screened %d blocks: %w", c.Number, err)
	}
	return c, nil
}

// placeholders is "?, ?, ..." n times.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// recorded returns which of numbers the study's screened rows hold.
func (s *Store) recorded(ctx context.Context, tx *sql.Tx, study int64, numbers []int) ([]int, error) {
	args := []any{study}
	for _, n := range numbers {
		args = append(args, n)
	}
	return collect(ctx, tx, s.q("SELECT number FROM screened WHERE study_id = ? AND number IN ("+placeholders(len(numbers))+") ORDER BY number"),
		func(r scanner) (int, error) {
			var n int
			return n, r.Scan(&n)
		}, args...)
}

// AddScreened implements store.Store.
//
// The study's row is locked (where the database has many writers) while
// the batch's numbers are looked up and written, so that two coordinators
// adding the same number meet ErrDuplicateScreened, not a constraint error.
func (s *Store) AddScreened(ctx context.Context, study int64, rows []store.Screened) error {
	if err := store.ValidateScreened(study, rows); err != nil {
		return fmt.Errorf("add screened candidates to study %d: %w", study, err)
	}
	row := "(?, ?, ?, " + s.d.JSONIn + ", " + s.d.BlocksIn + ", ?, ?, ?, ?, ?, ?, " + s.d.Now + ")"
	err := s.write(ctx, func(tx *sql.Tx) error {
		if _, _, err := s.lockStudy(ctx, tx, study, false); err != nil {
			return err
		}
		for chunk := range slices.Chunk(rows, screenedChunk) {
			numbers := make([]int, len(chunk))
			for i, c := range chunk {
				numbers[i] = c.Number
			}
			old, err := s.recorded(ctx, tx, study, numbers)
			if err != nil {
				return err
			}
			if len(old) > 0 {
				return fmt.Errorf("number %d: %w", old[0], store.ErrDuplicateScreened)
			}
			args := make([]any, 0, len(chunk)*11)
			for _, c := range chunk {
				choices := string(c.Choices)
				if choices == "" {
					choices = "null"
				}
				blocks := c.Blocks
				if blocks == nil {
					blocks = []string{}
				}
				bj, err := json.Marshal(blocks)
				if err != nil {
					return err
				}
				args = append(args, study, c.Number, c.Key, choices, string(bj), c.Params, c.FLOPs, c.Score, c.Reward, c.Step, c.Promoted)
			}
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO screened (study_id, number, key, choices, blocks, params, flops, score, reward, step, promoted, `+s.d.Created+`)
				VALUES `+strings.TrimSuffix(strings.Repeat(row+", ", len(chunk)), ", ")), args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("add %d screened candidates to study %d: %w", len(rows), study, err)
	}
	return nil
}

// PromoteScreened implements store.Store.
func (s *Store) PromoteScreened(ctx context.Context, study int64, numbers []int) error {
	numbers = slices.Clone(numbers)
	slices.Sort(numbers)
	numbers = slices.Compact(numbers)
	err := s.write(ctx, func(tx *sql.Tx) error {
		if _, _, err := s.lockStudy(ctx, tx, study, true); err != nil {
			return err
		}
		for chunk := range slices.Chunk(numbers, screenedChunk) {
			have, err := s.recorded(ctx, tx, study, chunk)
			if err != nil {
				return err
			}
			if len(have) < len(chunk) {
				var missing []int
				for _, n := range chunk {
					if _, ok := slices.BinarySearch(have, n); !ok {
						missing = append(missing, n)
					}
				}
				return fmt.Errorf("numbers %v: %w: the study has no screened candidates of these numbers", missing, store.ErrNotFound)
			}
			args := []any{study}
			for _, n := range chunk {
				args = append(args, n)
			}
			if _, err := tx.ExecContext(ctx, s.q("UPDATE screened SET promoted = true WHERE study_id = ? AND number IN ("+placeholders(len(chunk))+")"), args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("promote %d screened candidates of study %d: %w", len(numbers), study, err)
	}
	return nil
}

// Screened implements store.Store.
func (s *Store) Screened(ctx context.Context, study int64) ([]store.Screened, error) {
	out, err := collect(ctx, s.r, s.q("SELECT "+s.screenedCols()+" FROM screened WHERE study_id = ? ORDER BY number"), scanScreened, study)
	if err != nil {
		return nil, fmt.Errorf("list screened candidates of study %d: %w", study, err)
	}
	return out, nil
}

// CountScreened implements store.Store.
func (s *Store) CountScreened(ctx context.Context, study int64) (int, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, s.q("SELECT count(*) FROM screened WHERE study_id = ?"), study).Scan(&n); err != nil {
		return 0, fmt.Errorf("count screened candidates of study %d: %w", study, err)
	}
	return n, nil
}
