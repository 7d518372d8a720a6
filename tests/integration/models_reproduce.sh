#!/usr/bin/env bash
# bench/models-reproduce.sh refuses bad arguments (exit 2, a message
# naming the argument) before any fit; the fit itself (about 5 CPU
# minutes) is run by hand and by the coordinator, not here.
set -u
TJ=${TJ:-build/asan/tracejoin}
. "$(dirname "$0")/lib.sh"
script=$(dirname "$0")/../../bench/models-reproduce.sh
work=$(mktemp -d /tmp/tracejoin-models-reproduce.XXXXXX)
trap 'rm -rf "$work"' EXIT

expect_msg 2 "usage:" bash "$script"
expect_msg 2 "usage:" bash "$script" a b c
expect_msg 2 "unknown option --bogus" bash "$script" --bogus "$TJ"
expect_msg 2 "TRACEJOIN '$work/none': not an executable" bash "$script" "$work/none"
expect_msg 2 "TRACEJOIN '$work': not an executable" bash "$script" "$work"
mkdir -p "$work/models" && : >"$work/models/default.model"
expect_msg 2 "MODELS_DIR '$work/models': no order.model" bash "$script" "$TJ" "$work/models"
bash "$script" --help | grep -q 'models-reproduce.sh \[--keep DIR\] TRACEJOIN' || fail "--help does not show the usage"
[ -z "$(ls -A "$work" | grep -v '^models$')" ] || fail "a refused run left files: $(ls "$work")"
echo "ok"
