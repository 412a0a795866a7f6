// Package postgres is the Store in a PostgreSQL database
// (github.com/jackc/pgx/v5), for studies shared by workers on several
// machines: claims use FOR UPDATE SKIP LOCKED and leases expire on the
// database server's clock.
package postgres
