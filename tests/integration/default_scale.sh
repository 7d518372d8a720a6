#!/usr/bin/env bash
# bench/default-scale.sh: refuses bad input naming it, and with two
# binaries and two correlators prints one median row per (correlator,
# binary) on the same dataset (the before/after of correlate/ASYNC.md
# "Speed of the default").
set -u
TJ=${TJ:-build/tracejoin}
. "$(dirname "$0")/lib.sh"
script=$(dirname "$0")/../../bench/default-scale.sh
work=$(mktemp -d /tmp/tj-dscale.XXXXXX)
trap 'rm -rf "$work"' EXIT

expect_exit 2 bash "$script" --tj "$TJ" --rounds 0 300
expect_exit 2 bash "$script" --tj "$TJ" --rounds x 300
expect_exit 2 bash "$script" --tj "$TJ" --algos bogus 300
expect_exit 2 bash "$script" --tj "$TJ" 12x
expect_exit 2 bash "$script" --tj "$work/no-such-tracejoin" 300
expect_exit 2 bash "$script" --bogus
err=$(bash "$script" --tj "$TJ" --algos bogus 300 2>&1); [[ $err == *"'bogus'"* ]] ||
	fail "message does not name the correlator: $err"
err=$(bash "$script" --tj "$TJ" --rounds 0 300 2>&1); [[ $err == *"--rounds '0'"* ]] ||
	fail "message does not name --rounds: $err"

bash "$script" --tj "$TJ" --tj "$TJ" --algos default,metadata --rounds 3 --scenarios async 300 \
	>"$work/out" 2>"$work/err" || fail "default-scale failed: $(cat "$work/err")"
cat "$work/out"
# rows: scenario roots events algo binary Mev/s MB; 2 correlators x 2 binaries
awk '$1 == "async" && $2 == 300 && $3 > 0 && $6 > 0 && $7 > 0 { n[$4 " " $5]++ }
     END { exit !(n["default 1"] == 1 && n["default 2"] == 1 &&
                  n["metadata 1"] == 1 && n["metadata 2"] == 1) }' "$work/out" ||
	fail "expected one row per (correlator, binary) with events, speed and memory"
echo "default_scale: ok"
