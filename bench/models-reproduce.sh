#!/usr/bin/env bash
# Does `make models` reproduce the committed models bit for bit?  Runs
# models/train-default.sh (the recipe `make models` runs: generated data
# only, seeds 101-102) with TRACEJOIN into a scratch folder and compares
# each fitted file with the committed one (models/default.model,
# models/order.model), byte for byte.  Prints one line per model (same /
# differs, and the first differing line); exit 0 when both are the same,
# 1 when one differs or the fit fails, 2 on bad arguments.  The fits are
# deterministic, so a difference means the generator, the features or
# the fitting changed since the committed fit: refit with `make models`
# and commit both files with the change (models/README.md).  Takes about
# 5 minutes of CPU on 2 cores.  The environment of `make models`
# (TJ_MODEL_SEEDS, TJ_MODEL_REQUESTS, TJ_MODEL_RUNTIMES, TJ_MODEL_QUEUE) is cleared: the
# committed models are the defaults'.
#
#   bench/models-reproduce.sh [--keep DIR] TRACEJOIN [MODELS_DIR]
#   (MODELS_DIR: the committed models, default the models/ folder beside
#   this script)
set -u
keep=
while [ $# -gt 0 ]; do
	case $1 in
	--keep) keep=${2:?--keep needs a folder}; shift 2 ;;
	-h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) echo "$0: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
done
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	echo "usage: $0 [--keep DIR] TRACEJOIN [MODELS_DIR]" >&2
	exit 2
fi
tj=$1
here=$(cd "$(dirname "$0")/.." && pwd)
models=${2:-$here/models}
[ -x "$tj" ] && [ -f "$tj" ] || { echo "$0: TRACEJOIN '$tj': not an executable file" >&2; exit 2; }
for m in default.model order.model; do
	[ -f "$models/$m" ] || { echo "$0: MODELS_DIR '$models': no $m there" >&2; exit 2; }
done
if [ -n "$keep" ]; then
	mkdir -p "$keep" || exit 2
	work=$keep
else
	work=$(mktemp -d /tmp/tj-models-reproduce.XXXXXX) || exit 1
	trap 'rm -rf "$work"' EXIT
fi
unset TJ_MODEL_SEEDS TJ_MODEL_REQUESTS TJ_MODEL_RUNTIMES TJ_MODEL_QUEUE TJ_MODEL_EXECUTOR TJ_MODEL_RUN_ARGS
if ! "$here/models/train-default.sh" "$tj" "$work/data" "$work/out" >"$work/train.log" 2>&1; then
	echo "models-reproduce: models/train-default.sh failed:" >&2
	tail -5 "$work/train.log" >&2
	exit 1
fi
rc=0
for m in default.model order.model; do
	if cmp -s "$work/out/$m" "$models/$m"; then
		echo "$m: same bytes as $models/$m"
	else
		first=$(diff "$models/$m" "$work/out/$m" | sed -n '2p;4p' | cut -c1-100 | tr '\n' ' ')
		echo "$m: DIFFERS from $models/$m: $first"
		rc=1
	fi
done
exit $rc
