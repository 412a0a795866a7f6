#!/usr/bin/env bash
# grid-bias.sh: does the grid's lowest rung favour the shallow (or narrow,
# or small) points for starting fast? Runs a grid with the given flags and a
# flat grid of the same points, each point trained once at the top
# fidelity (--rungs 1 --top-seeds 1), times both, and compares their rung-0
# accuracies with internal/cmd/gridbias (depth bias, the default winner's
# rank in the flat grid).
#
#   docs/bench/grid-bias.sh OUT DATASET BASE [grid flags...]
#
# OUT      a directory for the database, the JSON and the logs (created)
# DATASET  mnist, or a path such as /usr/share/datasets/fashion-mnist
# BASE     search: the B0 of a default effnas search on DATASET (run
#          first, in OUT/effnas.db, unless it is there already);
#          b0: EfficientNet-B0's blocks (--blocks)
# flags    passed to both grids, e.g. --dimension depth, or a candidate
#          schedule such as --rungs 2 --eta 2
#
# FLAT_FLAGS are given to the flat grid only. The grid is flat by default,
# so a flat grid under the same --seed would train the default grid's very
# runs again: the README's figures give the flat grid --seed 2, an
# independent replicate (other initial weights, batch order and validation
# split), and the series --seed 2 --data-seed 1 (the same validation
# images). FLAT=no skips the flat grid (when OUT already
# has one of the same points, give its JSON as FLAT_JSON=path); GRID=no
# skips the grid, whose JSON OUT then holds from an earlier run. EFFNAS is
# the effnas binary (default: built from this checkout into OUT/effnas).
# The README's grid figures come from (with FLAT_FLAGS="--seed 2", and
# "--seed 2 --data-seed 1" for the series):
#
#   docs/bench/grid-bias.sh /tmp/gb-mnist-search mnist search
#   docs/bench/grid-bias.sh /tmp/gb-mnist-b0 mnist b0
#   docs/bench/grid-bias.sh /tmp/gb-fashion-search /usr/share/datasets/fashion-mnist search
#   docs/bench/grid-bias.sh /tmp/gb-fashion-b0 /usr/share/datasets/fashion-mnist b0
#   docs/bench/grid-bias.sh /tmp/gb-mnist-search mnist search --dimension depth   # and width, resolution
#   docs/bench/grid-bias.sh /tmp/gb-fashion-search /usr/share/datasets/fashion-mnist search --dimension depth
#
# and MNIST's depth series once more with FLAT_FLAGS="--seed 2" (GRID=no).
set -euo pipefail
[ $# -ge 3 ] || { sed -n '2,38p' "$0" >&2; exit 2; }
out=$1 data=$2 base=$3
shift 3
repo=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
db=$out/effnas.db
if [ -z "${EFFNAS:-}" ]; then
	(cd "$repo" && go build -o "$out/effnas" ./cmd/effnas)
	EFFNAS=$out/effnas
fi
tag=$(printf '%s' "${*:-default}" | tr -c 'A-Za-z0-9.-' '_')
b0blocks="r1_k3_s11_e1_i32_o16_se0.25 r2_k3_s22_e6_i16_o24_se0.25 r2_k5_s22_e6_i24_o40_se0.25 r3_k3_s22_e6_i40_o80_se0.25 r3_k5_s11_e6_i80_o112_se0.25 r4_k5_s22_e6_i112_o192_se0.25 r1_k3_s11_e6_i192_o320_se0.25"

case $base in
search)
	# (grep reads all of list's output: with grep -q, list could die of
	# SIGPIPE and pipefail would take it for no complete search)
	if ! "$EFFNAS" list --db "$db" 2>/dev/null | grep 'search.*complete' >/dev/null; then
		s=$(date +%s)
		"$EFFNAS" search --db "$db" --dataset "$data" >"$out/search.log" 2>&1
		echo "search: $(($(date +%s) - s)) s" | tee -a "$out/times"
	fi
	from=()
	;;
b0) from=(--blocks "$b0blocks") ;;
*) echo "grid-bias.sh: BASE $base: want search or b0" >&2; exit 2 ;;
esac

# grid NAME FLAGS...: runs one grid, records its wall time and its show --json.
grid() {
	local name=$1
	shift
	local s
	s=$(date +%s)
	"$EFFNAS" grid --db "$db" --dataset "$data" "${from[@]}" --json "$@" >"$out/$name.result.json" 2>"$out/$name.log"
	local secs=$(($(date +%s) - s))
	"$EFFNAS" show --db "$db" --json >"$out/$name.json" # the newest study: this grid
	echo "$name: $secs s, $(grep -m1 '"id"' "$out/$name.json" | tr -d ' ,')" | tee -a "$out/times"
}

if [ "${GRID:-yes}" != no ]; then
	grid "grid-$tag" "$@"
fi
# A replicate's files are named by its FLAT_FLAGS too, so that a second
# replicate (other flags) does not overwrite the first.
ftag=$tag
[ -z "${FLAT_FLAGS:-}" ] || ftag=$tag$(printf '_%s' "$FLAT_FLAGS" | tr -c 'A-Za-z0-9.-' '_')
flat=${FLAT_JSON:-$out/flat-$ftag.json}
if [ "${FLAT:-yes}" != no ]; then
	# shellcheck disable=SC2086 # FLAT_FLAGS is a list of flags
	grid "flat-$ftag" "$@" --rungs 1 --top-seeds 1 ${FLAT_FLAGS:-}
fi
(cd "$repo" && go run ./internal/cmd/gridbias "$out/grid-$tag.json" "$flat") | tee "$out/bias-$ftag.txt"
