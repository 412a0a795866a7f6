#!/usr/bin/env bash
# store-load.sh: the store's load curve. effnas bench store runs K simulated
# workers (claim a trial, let it last TRIAL_MS with heartbeats, finish it)
# for K = 1, 2, 4 ... 256, against a SQLite file and against a PostgreSQL
# 15 of its own on loopback (fsync and synchronous_commit on,
# max_connections=400), and writes one JSON file per database and trial
# length.
#
#   docs/bench/store-load.sh                 # everything, into ./store-load/
#   OUT=/tmp/curve KS=1,8,64 DBS=postgres docs/bench/store-load.sh
#   docs/bench/store-load.sh server          # only start the server; prints its URL
#   docs/bench/store-load.sh stop            # stop it and remove its data
#
# Settings (environment):
#   EFFNAS     the effnas binary (default: go build of ./cmd/effnas)
#   OUT        where the JSON files go (default ./store-load)
#   KS         the worker counts (default 1,2,4,8,16,32,64,128,256)
#   TRIAL_MS   trial lengths, one curve each (default "0 100": the store's
#              capacity, then trials of 100 ms)
#   TRIALS     trials per run (default: 40 per worker, at least 200)
#   PROCS      processes per run (default 0: one per 8 workers)
#   DBS        which databases (default "sqlite postgres")
#   HEARTBEAT  yes (default) also measures heartbeats at 256 workers:
#              --trial-ms 3000 --lease 3s (one heartbeat a second each)
#   PGDIR      the server's folder (default /tmp/effnas-pg-load), PGPORT
#              its port (default 54340)
#
# The server is started as the postgres user (runuser when run as root)
# from Debian's postgresql-15 (apt-get install -y postgresql) and is left
# running; "store-load.sh stop" removes it. Each run's log line says how
# idle the CPU was just before it (vmstat): a machine busy with anything
# else gives lower numbers. (The load average is no guide: the benchmark's
# own processes raise it.)
set -euo pipefail
OUT=$(realpath -m "${OUT:-./store-load}")
cd "$(dirname "$0")/../.."
PGDIR=${PGDIR:-/tmp/effnas-pg-load}
PGPORT=${PGPORT:-54340}
KS=${KS:-1,2,4,8,16,32,64,128,256}
TRIAL_MS=${TRIAL_MS:-0 100}
TRIALS=${TRIALS:-}
PROCS=${PROCS:-0}
DBS=${DBS:-sqlite postgres}
HEARTBEAT=${HEARTBEAT:-yes}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
url="postgres://postgres@127.0.0.1:$PGPORT/postgres?sslmode=disable"

as_pg() {
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

server() {
	if [ -z "$bin" ]; then
		echo "store-load.sh: PostgreSQL is not installed; run apt-get install -y postgresql" >&2
		exit 1
	fi
	if [ -f "$PGDIR/data/postmaster.pid" ] && as_pg "$bin/pg_ctl" -D "$PGDIR/data" status >/dev/null 2>&1; then
		return
	fi
	rm -rf "$PGDIR"
	mkdir -p "$PGDIR"
	[ "$(id -u)" = 0 ] && chown postgres "$PGDIR"
	as_pg "$bin/initdb" -D "$PGDIR/data" -U postgres --auth=trust -E UTF8 >"$PGDIR/initdb.log" 2>&1 ||
		{ cat "$PGDIR/initdb.log" >&2; exit 1; }
	as_pg "$bin/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w -t 60 start \
		-o "-c listen_addresses=127.0.0.1 -p $PGPORT -k $PGDIR -c max_connections=400 -c fsync=on -c synchronous_commit=on" >/dev/null ||
		{ cat "$PGDIR/server.log" >&2; exit 1; }
}

case "${1:-run}" in
server)
	server
	echo "$url"
	exit 0
	;;
stop)
	if [ -n "$bin" ] && [ -d "$PGDIR/data" ]; then
		as_pg "$bin/pg_ctl" -D "$PGDIR/data" -m fast -w stop >/dev/null || true
	fi
	rm -rf "$PGDIR"
	exit 0
	;;
run) ;;
*)
	echo "usage: $0 [run|server|stop]" >&2
	exit 2
	;;
esac

if [ -z "${EFFNAS:-}" ]; then
	EFFNAS=$(mktemp -d)/effnas
	go build -o "$EFFNAS" ./cmd/effnas
fi
mkdir -p "$OUT"
rm -f "$OUT"/*.tmp
# idle prints the CPU's idle percentage over the next second.
idle() { vmstat 1 2 | tail -1 | awk '{print $15 "% idle"}'; }
for db in $DBS; do
	case $db in
	sqlite)
		target=$OUT/bench-store.db
		rm -f "$target" "$target-wal" "$target-shm"
		;;
	postgres)
		server
		target=$url
		;;
	*)
		echo "store-load.sh: DBS: unknown database $db; want sqlite or postgres" >&2
		exit 2
		;;
	esac
	for t in $TRIAL_MS; do
		# One run per K, so that the trials can grow with K; their reports
		# are gathered into one JSON list.
		out=$OUT/$db-trial$t.json
		sep="["
		for k in ${KS//,/ }; do
			n=${TRIALS:-$((k * 40 > 200 ? k * 40 : 200))}
			echo "$db: $k workers, $n trials of $t ms (CPU before: $(idle))" >&2
			printf '%s\n' "$sep" >>"$out.tmp"
			"$EFFNAS" bench store --db "$target" --workers "$k" --procs "$PROCS" --trial-ms "$t" --trials "$n" --json >>"$out.tmp"
			sep=","
		done
		echo "]" >>"$out.tmp"
		mv "$out.tmp" "$out"
	done
	if [ "$HEARTBEAT" = yes ]; then
		echo "$db, heartbeats: 256 workers, trials of 3 s, lease 3s (CPU before: $(idle))" >&2
		"$EFFNAS" bench store --db "$target" --workers 256 --procs "$PROCS" --trial-ms 3000 --lease 3s --trials 1024 --json \
			>"$OUT/$db-heartbeat.json"
	fi
done
echo "results in $OUT" >&2
