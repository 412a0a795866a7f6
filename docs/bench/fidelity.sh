#!/usr/bin/env bash
# fidelity.sh: the fidelity curve of search's default schedule (rungs of
# 1,333 x 1, 4,000 x 1 and 6,000 x 2 images x epochs): effnas bench proxy
# --rungs 3 on panels of B0 + 12 random members, 3 seeds at every rung, 2
# reference seeds at 30,000 x 3. The README's fidelity-curve table comes from
#
#   docs/bench/fidelity.sh /tmp/fidelity /usr/share/datasets/fashion-mnist 1 2
#   docs/bench/fidelity.sh /tmp/fidelity mnist 1 2
#
#   docs/bench/fidelity.sh OUT DATASET SEED...
#
# Each panel is a study in OUT/NAME.db (NAME the dataset's last path
# element), its report in OUT/NAME-seedS.json and .txt, its plot in
# OUT/NAME-seedS.png. EFFNAS is the effnas binary (default: built from this
# checkout into OUT/effnas). An interrupted panel is finished with effnas resume --db OUT/NAME.db.
set -euo pipefail
[ $# -ge 3 ] || { sed -n '2,15p' "$0" >&2; exit 2; }
out=$1 data=$2
shift 2
repo=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
if [ -z "${EFFNAS:-}" ]; then
	(cd "$repo" && go build -o "$out/effnas" ./cmd/effnas)
	EFFNAS=$out/effnas
fi
name=$(basename "${data%/}")
for seed in "$@"; do
	s=$(date +%s)
	"$EFFNAS" bench proxy --db "$out/$name.db" --dataset "$data" --seed "$seed" --rungs 3 \
		--png "$out/$name-seed$seed.png" --json >"$out/$name-seed$seed.json" 2>"$out/$name-seed$seed.log"
	echo "$name seed $seed: $(($(date +%s) - s)) s" | tee -a "$out/times"
	"$EFFNAS" show --db "$out/$name.db" >"$out/$name-seed$seed.txt"
done
