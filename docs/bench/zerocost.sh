#!/usr/bin/env bash
# zerocost.sh: zero-cost baselines (parameter count, multiply-adds, gradient
# norm and synflow at initialisation) judged against the reference of
# panels that fidelity.sh already trained: effnas bench proxy --proxy KIND
# with fidelity.sh's settings, so that every benchmark reuses the panel's
# reference runs and costs seconds. The README's zero-cost table comes from
#
#   docs/bench/zerocost.sh /tmp/zc /tmp/fidelity/fashion-mnist.db /usr/share/datasets/fashion-mnist 1 2
#   docs/bench/zerocost.sh /tmp/zc /tmp/fidelity/mnist.db mnist 1 2
#
#   docs/bench/zerocost.sh OUT DB DATASET SEED...
#
# DB is fidelity.sh's database; it is copied to OUT/NAME.db (NAME the
# dataset's last path element) the first time, and only the copy is
# written. Each benchmark's report goes to OUT/NAME-seedS-KIND.json and
# .txt, its log to .log, its plot to .png; OUT/NAME.tsv sums them up
# (seed, kind, tau against the reference, the reference seeds' tau, the
# study the reference came from, seconds). KINDS picks the kinds (default
# "params flops gradnorm synflow"; supernet works too, with its defaults).
# EFFNAS is the effnas binary (default: built from this checkout into
# OUT/effnas).
set -euo pipefail
[ $# -ge 4 ] || { sed -n '2,23p' "$0" >&2; exit 2; }
out=$1 src=$2 data=$3
shift 3
kinds=${KINDS:-params flops gradnorm synflow}
repo=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
if [ -z "${EFFNAS:-}" ]; then
	(cd "$repo" && go build -o "$out/effnas" ./cmd/effnas)
	EFFNAS=$out/effnas
fi
name=$(basename "${data%/}")
db=$out/$name.db
if [ ! -e "$db" ]; then
	# The original is only read (no SQLite connection to it: even a
	# read-only one may touch its -shm); nothing may be writing to it.
	cp "$src" "$db"
	if [ -s "$src-wal" ]; then cp "$src-wal" "$db-wal"; fi
fi
tsv=$out/$name.tsv
[ -e "$tsv" ] || printf 'seed\tkind\ttau_reference\ttau_reference_seeds\ttau_seeds\treference_from\tseconds\n' >"$tsv"
for seed in "$@"; do
	for kind in $kinds; do
		base=$out/$name-seed$seed-$kind
		s=$(date +%s.%N)
		"$EFFNAS" bench proxy --db "$db" --dataset "$data" --seed "$seed" --proxy "$kind" \
			--png "$base.png" --json >"$base.json" 2>"$base.log"
		secs=$(echo "$(date +%s.%N) - $s" | bc)
		study=$(jq .study "$base.json")
		"$EFFNAS" show --db "$db" --study "$study" >"$base.txt"
		jq -r --arg seed "$seed" --arg secs "$secs" \
			'[$seed, .proxy_kind, .tau_reference, .tau_reference_seeds, .tau_seeds, (.reference_from // 0), $secs] | @tsv' \
			"$base.json" >>"$tsv"
	done
done
column -t "$tsv"
