#!/usr/bin/env bash
# pgserver.sh start|stop: a throwaway PostgreSQL server on loopback for the
# store/postgres tests, from Debian's packages (apt-get install -y postgresql).
#
#   eval "$(store/postgres/pgserver.sh start)"   # exports EFFNAS_PG_URL...
#   go test ./store/postgres/
#   store/postgres/pgserver.sh stop
#
# The data directory (default /tmp/effnas-pg) is created fresh on start and
# removed on stop. The server listens on 127.0.0.1 only and runs with fsync
# off: it is for tests, not for data. It exports three URLs:
#
#   EFFNAS_PG_URL      the superuser postgres, trusted (no password)
#   EFFNAS_PG_PW_URL   role effnas_pw, which must give its password
#                      (scram-sha-256); the URL carries it, so tests can
#                      check that no command prints it, and can strip it to
#                      test PGPASSWORD
#   EFFNAS_PG_RO_URL   role effnas_ro, which may only read (pg_read_all_data),
#                      for the read-only commands' tests
set -euo pipefail
dir=${EFFNAS_PG_DIR:-/tmp/effnas-pg}
port=${EFFNAS_PG_PORT:-54329}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$bin" ]; then
	echo "pgserver.sh: PostgreSQL is not installed; run apt-get install -y postgresql" >&2
	exit 1
fi
as_pg() {
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case "${1:-}" in
start)
	if [ -f "$dir/data/postmaster.pid" ]; then
		as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
	fi
	rm -rf "$dir"
	mkdir -p "$dir"
	[ "$(id -u)" = 0 ] && chown postgres "$dir"
	as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1 ||
		{ cat "$dir/initdb.log" >&2; exit 1; }
	cat >"$dir/data/pg_hba.conf" <<-EOF
		local all all                trust
		host  all postgres 127.0.0.1/32 trust
		host  all all      127.0.0.1/32 scram-sha-256
	EOF
	as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
		-o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c max_connections=200" >/dev/null ||
		{ cat "$dir/server.log" >&2; exit 1; }
	as_pg "$bin/psql" -h "$dir" -p "$port" -U postgres -d postgres -qv ON_ERROR_STOP=1 >/dev/null <<-EOF ||
		CREATE ROLE effnas_pw LOGIN PASSWORD 'pw-Secret-4711';
		GRANT CREATE ON DATABASE postgres TO effnas_pw;
		CREATE ROLE effnas_ro LOGIN PASSWORD 'ro-Secret-4712';
		GRANT pg_read_all_data TO effnas_ro;
	EOF
		{ echo "pgserver.sh: could not create the test roles" >&2; exit 1; }
	echo "export EFFNAS_PG_URL='postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable'"
	echo "export EFFNAS_PG_PW_URL='postgres://effnas_pw:pw-Secret-4711@127.0.0.1:$port/postgres?sslmode=disable'"
	echo "export EFFNAS_PG_RO_URL='postgres://effnas_ro:ro-Secret-4712@127.0.0.1:$port/postgres?sslmode=disable'"
	;;
stop)
	if [ -d "$dir/data" ]; then
		as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
	fi
	rm -rf "$dir"
	;;
*)
	echo "usage: $0 start|stop" >&2
	exit 2
	;;
esac
