package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"

	"github.com/effnas/effnas/cmd/effnas/dashboard"
	"github.com/effnas/effnas/store/postgres"
)

func init() {
	register("dashboard", "watch and compare studies in a browser: a read-only web UI over a database", runDashboard)
}

// defaultDashboardAddr is loopback: the dashboard has no login.
const defaultDashboardAddr = "127.0.0.1:8080"

func runDashboard(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet("dashboard", env.Stderr)
	var (
		db   = dbFlag(fs, "effnas.db", "database to show: a SQLite file (never created) or postgres:// URL, opened read-only")
		addr = fs.String("addr", defaultDashboardAddr, "address to serve on; anything but loopback shows every study to whoever can reach it")
	)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		return usagef("--addr %q: want host:port, such as %s (or :8080 for every interface)", *addr, defaultDashboardAddr)
	}
	st, err := openForReading(ctx, db)
	if err != nil {
		return err
	}
	defer st.Close()
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("--addr %s: %w", *addr, err)
	}
	if !loopback(host) {
		fmt.Fprintf(env.Stderr, "warning: --addr %s serves the dashboard beyond this machine: it has no login, so anyone who can reach %s can read every study in the database\n", *addr, l.Addr())
	}
	label := "PostgreSQL"
	if !postgres.IsURL(db.Raw()) {
		label = filepath.Base(db.Raw())
	}
	srv := dashboard.New(st, dashboard.Options{Label: label, Log: slog.New(slog.NewTextHandler(env.Stderr, nil))})
	fmt.Fprintf(env.Stderr, "dashboard of %s (read-only) at http://%s/  (Ctrl-C stops it)\n", db, l.Addr())
	return dashboard.Serve(ctx, l, srv)
}

// loopback reports whether host names only this machine.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
