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

expect() { # exit-code message-fragment command...
	local code=$1 frag=$2; shift 2
	"$@" >"$work/out" 2>"$work/err"
	local rc=$?
	[ $rc -eq "$code" ] || fail "exit $rc, not $code: $*: $(cat "$work/err")"
	grep -q -- "$frag" "$work/err" || fail "no '$frag' in: $(cat "$work/err")"
}
expect 2 "usage:" bash "$script"
expect 2 "usage:" bash "$script" a b c
expect 2 "unknown option --bogus" bash "$script" --bogus "$TJ"
expect 2 "TRACEJOIN '$work/none': not an executable" bash "$script" "$work/none"
expect 2 "TRACEJOIN '$work': not an executable" bash "$script" "$work"
mkdir -p "$work/models" && : >"$work/models/default.model"
expect 2 "MODELS_DIR '$work/models': no order.model" bash "$script" "$TJ" "$work/models"
bash "$script" --help | grep -q 'models-reproduce.sh \[--keep DIR\] TRACEJOIN' || fail "--help does not show the usage"
[ -z "$(ls -A "$work" | grep -v '^models$\|^out$\|^err$')" ] || fail "a refused run left files: $(ls "$work")"
echo "ok"
