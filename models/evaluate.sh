#!/usr/bin/env bash
# Held-out accuracy of the classifier, by the two protocols of
# models/README.md:
#   seeds     train on every scenario x load with seeds 101,102; test on
#             seed 201 (same traffic, data never seen)
#   scenario  leave one scenario out: train on the nine others (seeds
#             101,102), test on the tenth (seed 201): traffic never seen
# Accuracy: the share of labeled calls given their true parent (or "none"),
# the model running as the correlator does.
#   usage: models/evaluate.sh TRACEJOIN WORKDIR [seeds|scenario|both] [FIT]
set -euo pipefail
tj=$1 work=$2 proto=${3:-both} fit=${4:-clogit}
scenarios="threaded threadpool keepalive async async-keepalive fanout deep-chain multinode-skew noisy lossy"
loads="low medium high"
requests=${TJ_MODEL_REQUESTS:-1000}
genflags=${TJ_GEN_FLAGS:-} # e.g. --stacks: call sites for the site_* features
mkdir -p "$work"
ds() { # scenario load seed -> dataset folder, generated once
	local d="$work/$1-$2-s$3"
	[ -f "$d/manifest.json" ] ||
		"$tj" gen --scenario "$1" --load "$2" --seed "$3" --requests "$requests" $genflags \
			--force -o "$d" >/dev/null
	echo "$d"
}
sets() { # seed scenario... -> dataset folders
	local seed=$1; shift
	for s in "$@"; do for l in $loads; do ds "$s" "$l" "$seed"; done; done
}
report() { # label, train output on stdin -> one line per test set
	sed -n "s|^test $fit $work/\([^:]*\): accuracy \([0-9.]*\) of \([0-9]*\) calls.*|$1 \1 \2 \3|p"
}
if [ "$proto" = seeds ] || [ "$proto" = both ]; then
	train=$(sets 101 $scenarios; sets 102 $scenarios)
	tests=$(sets 201 $scenarios | sed 's/^/--test /')
	# shellcheck disable=SC2086
	"$tj" train --algo classifier --fit "$fit" $train $tests -o "$work/seeds.model" 2>&1 |
		tee "$work/seeds.log" | report seeds
	sed -n "s|^test $fit all: \(.*\)|seeds all \1|p" "$work/seeds.log"
fi
if [ "$proto" = scenario ] || [ "$proto" = both ]; then
	for held in $scenarios; do
		others=$(echo $scenarios | tr ' ' '\n' | grep -vx "$held" | tr '\n' ' ')
		# shellcheck disable=SC2086
		train=$(sets 101 $others; sets 102 $others)
		tests=$(sets 201 "$held" | sed 's/^/--test /')
		# shellcheck disable=SC2086
		"$tj" train --algo classifier --fit "$fit" $train $tests -o "$work/without-$held.model" 2>&1 |
			tee "$work/without-$held.log" | report "without-$held"
		sed -n "s|^test $fit all: \(.*\)|without-$held all \1|p" "$work/without-$held.log"
	done
fi
