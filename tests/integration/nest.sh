#!/usr/bin/env bash
# nest end to end (correlate/nest.c): on a generated M:N dataset every
# call gets one edge and the score is printed (a figure, never asserted);
# --explain names the signal that decided each call (nesting,
# continuation) and each queue's counts and continuation gate; bad params
# are refused with exit 2, naming nest and the param, and leave no output
# file.  The same for nest-em on a timer-driven loop (async-timer), whose
# --explain also gives each queue's fitted delay model.
set -u
. "$(dirname "$0")/lib.sh"
tj=$TJ
tmp=$(mktemp -d /tmp/tj-nest.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

"$tj" correlate --list | grep -q '^nest ' || fail "--list lacks nest"
"$tj" gen --scenario mn-pool --load high --requests 300 --seed 3 -o "$tmp/ds" >/dev/null 2>"$tmp/gen.err" ||
	fail "gen failed: $(tail -3 "$tmp/gen.err")"

"$tj" correlate --algo nest --explain "$tmp/ds" -o "$tmp/e.csv" 2>"$tmp/explain.txt" ||
	fail "correlate --algo nest: $(tail -3 "$tmp/explain.txt")"
calls=$(awk -F, 'NR > 1' "$tmp/ds/labels.csv" | wc -l)
edges=$(awk -F, 'NR > 1' "$tmp/e.csv" | wc -l)
[ "$calls" -eq "$edges" ] || fail "$edges edges for $calls calls"
grep -q ' by nesting$' "$tmp/explain.txt" || fail "--explain does not name nesting"
grep -q ' by continuation$' "$tmp/explain.txt" || fail "--explain does not name continuation"
grep -q 'calls matched by nesting' "$tmp/explain.txt" || fail "--explain gives no totals"
grep -Eq 'continued; gate (on|off)' "$tmp/explain.txt" || fail "--explain does not give the continuation gate"
grep -Eq ' -> [0-9.:a-f]+:[0-9]+: [0-9]+ calls' "$tmp/explain.txt" || fail "--explain does not name the queues"
"$tj" score --labels "$tmp/ds/labels.csv" "$tmp/e.csv" >"$tmp/score.txt" || fail "score"
echo "score mn-pool high (300 roots, seed 3) nest: $(grep '^edge ' "$tmp/score.txt")"

for bad in gate_share=0.2 gate_share=2 gate_share=x explain=3 horizon_ms=5 nosuch=1; do
	expect_exit 2 "$tj" correlate --algo nest --param "$bad" "$tmp/ds" -o "$tmp/bad.csv"
	"$tj" correlate --algo nest --param "$bad" "$tmp/ds" -o "$tmp/bad.csv" 2>&1 | grep -q "nest.*${bad%%=*}" ||
		fail "--param $bad: the message does not name nest and the param"
	[ -e "$tmp/bad.csv" ] && fail "--param $bad left $tmp/bad.csv"
done
"$tj" correlate --list | grep -q '^nest-em ' || fail "--list lacks nest-em"
"$tj" gen --scenario async-timer --load high --requests 400 --seed 3 -o "$tmp/at" >/dev/null 2>"$tmp/gen.err" ||
	fail "gen async-timer failed: $(tail -3 "$tmp/gen.err")"
"$tj" correlate --algo nest-em --explain "$tmp/at" -o "$tmp/em.csv" 2>"$tmp/em.txt" ||
	fail "correlate --algo nest-em: $(tail -3 "$tmp/em.txt")"
calls=$(awk -F, 'NR > 1' "$tmp/at/labels.csv" | wc -l)
edges=$(awk -F, 'NR > 1' "$tmp/em.csv" | wc -l)
[ "$calls" -eq "$edges" ] || fail "nest-em: $edges edges for $calls calls"
grep -Eq '^nest-em: .* <- .* by (nesting|delay)$' "$tmp/em.txt" || fail "nest-em --explain names no signal"
grep -Eq 'delay model fitted [1-9][0-9]* times on [0-9]+ groups: write after the request median' "$tmp/em.txt" ||
	fail "nest-em --explain gives no fitted delay model"
"$tj" score --labels "$tmp/at/labels.csv" "$tmp/em.csv" >"$tmp/score.txt" || fail "score nest-em"
echo "score async-timer high (400 roots, seed 3) nest-em: $(grep '^edge ' "$tmp/score.txt")"
for bad in gate_share=0.2 gate_share=x explain=3 window=4 nosuch=1; do
	expect_exit 2 "$tj" correlate --algo nest-em --param "$bad" "$tmp/at" -o "$tmp/bad.csv"
	"$tj" correlate --algo nest-em --param "$bad" "$tmp/at" -o "$tmp/bad.csv" 2>&1 | grep -q "nest-em.*${bad%%=*}" ||
		fail "nest-em --param $bad: the message does not name nest-em and the param"
	[ -e "$tmp/bad.csv" ] && fail "nest-em --param $bad left $tmp/bad.csv"
done
echo "ok: nest and nest-em answer every call, explain their signals and queues, refuse bad params"
