#!/bin/sh
# supernet-speed.sh: effnas bench train of B0 built plainly against the same
# network trained as a path of the built-in space's supernet (its weights
# gathered from the shared tensors and scattered back every step), 5
# alternating pairs at each proxy. Usage: EFFNAS=./effnas docs/bench/supernet-speed.sh
set -eu
EFFNAS=${EFFNAS:-effnas}
ips() { "$EFFNAS" bench train "$@" --steps 30 --json | sed -n 's/.*"train_images_per_second":\([0-9.]*\).*/\1/p'; }
for cfg in "--width 0.5 --res 32" "--width 1.0 --res 64"; do
	for i in 1 2 3 4 5; do
		# shellcheck disable=SC2086
		a=$(ips $cfg)
		# shellcheck disable=SC2086
		b=$(ips $cfg --supernet)
		echo "$cfg pair $i: plain $a supernet $b ratio $(echo "$b / $a" | bc -l | cut -c1-5)"
	done
done
