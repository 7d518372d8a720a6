#!/bin/sh
# recorder-same-log.sh OLD NEW: two builds of bench/recorder-bench write
# the same log, byte for byte, for the same synthetic record streams (one
# CPU; two at capture's rate; four and seven CPUs at rates where
# timestamps tie across runs; small and large).  A change that speeds the
# recorder up must leave what capture writes unchanged.
# Exit 0 when every log is the same, 1 at the first difference, 2 on
# bad arguments.
set -eu
if [ $# -ne 2 ] || [ ! -x "$1" ] || [ ! -x "$2" ]; then
	echo "usage: recorder-same-log.sh OLD_RECORDER_BENCH NEW_RECORDER_BENCH" >&2
	exit 2
fi
dir=$(mktemp -d /tmp/tj-recorder-same.XXXXXX)
trap 'rm -rf "$dir"' EXIT
status=0
for shape in "50000 1 300000" "400000 2 500000" "300000 4 4000000" \
	     "200000 7 4000000000" "300000 3 3000000" "2000000 2 500000"; do
	rm -f "$dir/old.evlog" "$dir/new.evlog"
	# shellcheck disable=SC2086
	"$1" $shape "$dir/old.evlog" >/dev/null
	# shellcheck disable=SC2086
	"$2" $shape "$dir/new.evlog" >/dev/null
	if cmp -s "$dir/old.evlog" "$dir/new.evlog"; then
		echo "same log: recorder-bench $shape ($(wc -c <"$dir/new.evlog") bytes)"
	else
		echo "DIFFERENT log: recorder-bench $shape" >&2
		status=1
	fi
done
exit $status
