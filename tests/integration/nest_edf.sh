#!/usr/bin/env bash
# nest-edf end to end (correlate/nest_edf.c): on a generated M:N dataset
# every call gets one edge and the score is printed (a figure, never
# asserted); --explain names its signals per queue (earliest deadline,
# continuation and its gate, calls per request); bad params are refused
# with exit 2, naming the param, and leave no output file.
set -u
. "$(dirname "$0")/lib.sh"
tj=$TJ
tmp=$(mktemp -d /tmp/tj-nest-edf.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

"$tj" correlate --list | grep -q '^nest-edf ' || fail "--list lacks nest-edf"
"$tj" gen --scenario mn-pool --load high --requests 300 --seed 3 -o "$tmp/ds" >/dev/null 2>"$tmp/gen.err" ||
	fail "gen failed: $(tail -3 "$tmp/gen.err")"

"$tj" correlate --algo nest-edf --explain "$tmp/ds" -o "$tmp/e.csv" 2>"$tmp/explain.txt" ||
	fail "correlate --algo nest-edf: $(tail -3 "$tmp/explain.txt")"
calls=$(awk -F, 'NR > 1' "$tmp/ds/labels.csv" | wc -l)
edges=$(awk -F, 'NR > 1' "$tmp/e.csv" | wc -l)
[ "$calls" -eq "$edges" ] || fail "$edges edges for $calls calls"
grep -q 'matched by earliest deadline' "$tmp/explain.txt" || fail "--explain does not name earliest deadline"
grep -Eq 'continued; gate (on|off)' "$tmp/explain.txt" || fail "--explain does not give the continuation gate"
grep -Eq ' -> [0-9.:a-f]+:[0-9]+: [0-9]+ calls' "$tmp/explain.txt" || fail "--explain does not name the queues"
"$tj" score --labels "$tmp/ds/labels.csv" "$tmp/e.csv" >"$tmp/score.txt" || fail "score"
echo "score mn-pool high (300 roots, seed 3) nest-edf: $(grep '^edge ' "$tmp/score.txt")"

for bad in horizon_ms=-1 horizon_ms=x gate_share=0.2 gate_share=2 explain=3 nosuch=1; do
	expect_exit 2 "$tj" correlate --algo nest-edf --param "$bad" "$tmp/ds" -o "$tmp/bad.csv"
	"$tj" correlate --algo nest-edf --param "$bad" "$tmp/ds" -o "$tmp/bad.csv" 2>&1 | grep -q "nest-edf.*${bad%%=*}" ||
		fail "--param $bad: the message does not name nest-edf and the param"
	[ -e "$tmp/bad.csv" ] && fail "--param $bad left $tmp/bad.csv"
done
echo "ok: nest-edf answers every call, explains its queues, refuses bad params"
