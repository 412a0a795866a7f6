#!/usr/bin/env bash
# oneshot.sh: what one-shot screening costs and what it finds. For MNIST
# and Fashion-MNIST and search seeds 1 and 2, back to back at one commit:
# the default search, then effnas search --screen 2000 (the same flags
# otherwise); their wall times go to OUT/times.tsv. Then each Fashion-MNIST
# search's B0 is retrained with the reference recipe of bench proxy
# (30,000 images x 3 epochs at the proxy's width 0.5 and 32x32, on the
# data split of the evidence's Fashion-MNIST panel 1: --data-seed 1, 1,000
# validation and 1,000 test images) under seeds 1 and 2, and its reward
# (test accuracy x (multiply-adds/400M)^-0.07, the full-size B0's
# multiply-adds) goes to OUT/e2e.tsv, to compare with the rewards of that
# panel's random members at the same reference. The README's
# one-shot figures come from
#
#   EFFNAS=./effnas docs/bench/oneshot.sh /tmp/oneshot
#
# Run it alone on the machine: the times are the point. STAGES picks the
# parts ("cost e2e", the default).
set -euo pipefail
[ $# -eq 1 ] || { sed -n '2,18p' "$0" >&2; exit 2; }
out=$1
mkdir -p "$out"
out=$(cd "$out" && pwd)
repo=$(cd "$(dirname "$0")/../.." && pwd)
if [ -z "${EFFNAS:-}" ]; then
	(cd "$repo" && go build -o "$out/effnas" ./cmd/effnas)
	EFFNAS=$out/effnas
fi
fashion=${FASHION:-/usr/share/datasets/fashion-mnist}
stages=${STAGES:-cost e2e}
if [[ " $stages " == *" cost "* ]]; then
	[ -e "$out/times.tsv" ] || printf 'dataset\tkind\tseed\twall_seconds\tsupernet_seconds\tscore_seconds\n' >"$out/times.tsv"
	for data in mnist "$fashion"; do
		name=$(basename "${data%/}")
		for seed in 1 2; do
			for kind in default screen; do
				base=$out/$name-$kind-seed$seed
				[ -e "$base.json" ] && continue
				extra=()
				[ "$kind" = screen ] && extra=(--screen 2000)
				s=$(date +%s.%N)
				"$EFFNAS" search --db "$base.db" --dataset "$data" --seed "$seed" "${extra[@]}" --json >"$base.json" 2>"$base.log"
				wall=$(echo "$(date +%s.%N) - $s" | bc)
				printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$kind" "$seed" "$wall" \
					"$(jq '.supernet.seconds // 0' "$base.json")" "$(jq '.supernet.score_seconds // 0' "$base.json")" >>"$out/times.tsv"
			done
		done
	done
	column -t "$out/times.tsv"
fi
if [[ " $stages " == *" e2e "* ]]; then
	name=$(basename "${fashion%/}")
	[ -e "$out/e2e.tsv" ] || printf 'kind\tsearch_seed\ttrain_seed\ttest_accuracy\tflops\treward\tblocks\n' >"$out/e2e.tsv"
	for kind in default screen; do
		for seed in 1 2; do
			base=$out/$name-$kind-seed$seed
			blocks=$(jq -r '.best.blocks | join(" ")' "$base.json")
			flops=$(jq '.best.flops' "$base.json")
			for ts in 1 2; do
				r=$out/$name-$kind-seed$seed-retrain$ts.json
				[ -e "$r" ] || "$EFFNAS" train --dataset "$fashion" --blocks "$blocks" --train-size 30000 --epochs 3 \
					--val-size 1000 --test-size 1000 --data-seed 1 --width 0.5 --res 32 --seed "$ts" --json >"$r"
				acc=$(jq '.accuracy' "$r")
				reward=$(echo "$acc * e(-0.07 * l($flops / 400000000))" | bc -l)
				printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$kind" "$seed" "$ts" "$acc" "$flops" "$reward" "$blocks" >>"$out/e2e.tsv"
			done
		done
	done
	column -t -s $'\t' "$out/e2e.tsv" | cut -c1-120
fi
