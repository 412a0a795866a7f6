package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// HasSchema reports whether the database at url holds effnas's tables,
// without creating or changing anything: a worker that starts before its
// coordinator waits for them instead of creating them. An error means the
// server could not be asked (not reachable yet, a wrong password...).
func HasSchema(ctx context.Context, url string) (bool, error) {
	pcfg, err := pgxpool.ParseConfig(url) // takes the pool's settings (pool_max_conns...) out of the URL
	if err != nil {
		return false, fmt.Errorf("open database: %w; want a URL such as postgres://user@host:5432/effnas", err)
	}
	cfg := pcfg.ConnConfig
	cfg.RuntimeParams["default_transaction_read_only"] = "on"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return false, fmt.Errorf("connect to PostgreSQL database %q at %s:%d: %w", cfg.Database, cfg.Host, cfg.Port, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var n int
	if err := conn.QueryRow(ctx, dialect.HasVersionTable).Scan(&n); err != nil {
		return false, fmt.Errorf("look for effnas's tables in database %q at %s:%d: %w", cfg.Database, cfg.Host, cfg.Port, err)
	}
	return n > 0, nil
}
