#!/usr/bin/env bash
# The default correlator: `correlate DATASET` without --algo runs it (the
# same edges as --algo default and as --algo NAME), --list marks it, and
# export takes --algo default.  queue-select (the per-queue chooser) gives
# one edge per call, explains its choice, and refuses bad params by name
# with no output left behind.
set -u
. "$(dirname "$0")/lib.sh"
tj=$TJ
tmp=$(mktemp -d /tmp/tj-default.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

"$tj" gen --list >/dev/null 2>&1 || skip "tracejoin gen is not built"
"$tj" gen --scenario async --load high --requests 300 --seed 5 -o "$tmp/ds" >/dev/null 2>"$tmp/gen.err" ||
	fail "gen failed: $(tail -3 "$tmp/gen.err")"
calls=$(($(wc -l <"$tmp/ds/labels.csv") - 1))

# --list marks exactly one default, and that is the one run without --algo
dflt=$("$tj" correlate --list | awk '$2 == "(default)" { print $1 }')
[ "$(printf '%s\n' "$dflt" | grep -c .)" -eq 1 ] || fail "--list marks '$dflt' as default"
"$tj" correlate "$tmp/ds" -o "$tmp/none.csv" 2>"$tmp/none.err" || fail "no --algo: $(cat "$tmp/none.err")"
tail -n 1 "$tmp/none.err" | grep -q "^correlate: algo $dflt, " ||
	fail "no --algo ran: $(tail -n 1 "$tmp/none.err"), --list says $dflt"
[ "$(($(wc -l <"$tmp/none.csv") - 1))" -eq "$calls" ] || fail "default: not one edge per call"
"$tj" correlate --algo default "$tmp/ds" -o "$tmp/dflt.csv" 2>/dev/null || fail "--algo default"
"$tj" correlate --algo "$dflt" "$tmp/ds" -o "$tmp/named.csv" 2>/dev/null || fail "--algo $dflt"
cmp -s "$tmp/none.csv" "$tmp/dflt.csv" || fail "no --algo and --algo default differ"
cmp -s "$tmp/none.csv" "$tmp/named.csv" || fail "no --algo and --algo $dflt differ"
"$tj" export --format otlp --algo default "$tmp/ds" -o "$tmp/t.json" 2>"$tmp/exp.err" ||
	fail "export --algo default: $(cat "$tmp/exp.err")"

# queue-select: one edge per call, its choice explained per queue
"$tj" correlate --algo queue-select --explain "$tmp/ds" -o "$tmp/qs.csv" 2>"$tmp/qs.err" ||
	fail "queue-select: $(cat "$tmp/qs.err")"
[ "$(($(wc -l <"$tmp/qs.csv") - 1))" -eq "$calls" ] || fail "queue-select: not one edge per call"
grep -q '^queue-select: .* queues' "$tmp/qs.err" || fail "queue-select --explain printed no queues"
grep -q '^queue-select: calls answered by lookahead [0-9]*, order-align [0-9]*, classifier' "$tmp/qs.err" ||
	fail "queue-select --explain does not say which method answered"
grep -q '^    decided by: \(completion links\|description length\)' "$tmp/qs.err" ||
	fail "queue-select --explain does not say which evidence decided each queue"
# judge=soft (i15w's judge, not the default): one edge per call, and
# --explain says which evidence decided against the runner-up
"$tj" correlate --algo queue-select --param judge=soft --explain "$tmp/ds" -o "$tmp/qsoft.csv" \
	2>"$tmp/qsoft.err" || fail "queue-select judge=soft: $(cat "$tmp/qsoft.err")"
[ "$(($(wc -l <"$tmp/qsoft.csv") - 1))" -eq "$calls" ] || fail "queue-select judge=soft: not one edge per call"
grep -q '^    decided: [a-z-]* \(over [a-z-]* by [-0-9.]* nats (description length\|, the only candidate\)' "$tmp/qsoft.err" ||
	fail "queue-select judge=soft --explain does not say which evidence decided"
# judge=sign is the default: the same edges as without the param
"$tj" correlate --algo queue-select --param judge=sign "$tmp/ds" -o "$tmp/qsign.csv" 2>/dev/null ||
	fail "queue-select judge=sign"
cmp -s "$tmp/qsign.csv" "$tmp/qs.csv" || fail "queue-select judge=sign: not the default's edges"
# corroborate=0 backed=0 over the old methods is the judge before i15j's
# (every method still answers; one edge per call)
"$tj" correlate --algo queue-select --param corroborate=0 --param backed=0 \
	--param methods=lookahead,order-align,classifier,regression,metadata,issue-fifo \
	"$tmp/ds" -o "$tmp/qold.csv" 2>/dev/null || fail "queue-select corroborate=0 backed=0"
[ "$(($(wc -l <"$tmp/qold.csv") - 1))" -eq "$calls" ] || fail "queue-select old judge: not one edge per call"
# correct=1: the chosen answers go through lookahead's links, one edge per call still
"$tj" correlate --algo queue-select --param correct=1 "$tmp/ds" -o "$tmp/qc.csv" 2>/dev/null ||
	fail "queue-select correct=1"
[ "$(($(wc -l <"$tmp/qc.csv") - 1))" -eq "$calls" ] || fail "queue-select correct=1: not one edge per call"
# share=1 (lookahead's links over the order-align answers queue-select
# already has, one feature pass for classifier and order-align) gives the
# edges every method run on its own gives (judge_own=1: without sharing,
# lookahead's own links are not seen, so it is judged on them too)
"$tj" correlate --algo queue-select --param judge_own=1 "$tmp/ds" -o "$tmp/sh1.csv" 2>/dev/null ||
	fail "queue-select judge_own=1"
"$tj" correlate --algo queue-select --param share=0 "$tmp/ds" -o "$tmp/sh0.csv" 2>/dev/null ||
	fail "queue-select share=0"
cmp -s "$tmp/sh1.csv" "$tmp/sh0.csv" || fail "queue-select: sharing the passes changed the edges"
# the base listed before lookahead: the same answers (in another order)
for s in 0 1; do
	"$tj" correlate --algo queue-select --param methods=order-align,lookahead \
		--param judge_own=1 --param share=$s "$tmp/ds" -o "$tmp/ol$s.csv" 2>/dev/null ||
		fail "queue-select share=$s methods=order-align,lookahead"
	sort "$tmp/ol$s.csv" >"$tmp/ol$s.sorted"
done
cmp -s "$tmp/ol0.sorted" "$tmp/ol1.sorted" ||
	fail "queue-select methods=order-align,lookahead: sharing changed the edges"
# one method alone is that method
"$tj" correlate --algo queue-select --param methods=metadata "$tmp/ds" -o "$tmp/qm.csv" 2>/dev/null ||
	fail "queue-select methods=metadata"
"$tj" correlate --algo metadata "$tmp/ds" -o "$tmp/m.csv" 2>/dev/null || fail "metadata"
cut -d, -f1,2 "$tmp/qm.csv" | sort >"$tmp/a"
cut -d, -f1,2 "$tmp/m.csv" | sort >"$tmp/b"
cmp -s "$tmp/a" "$tmp/b" || fail "queue-select over metadata alone differs from metadata"

# bad params: exit 2, the param named, no output file
bad() {
	local want=$1
	shift
	local err
	err=$("$tj" correlate --algo queue-select "$@" "$tmp/ds" -o "$tmp/bad.csv" 2>&1 >/dev/null)
	local rc=$?
	[ $rc -eq 2 ] || fail "queue-select $*: exit $rc, want 2 ($err)"
	printf '%s' "$err" | grep -q -- "$want" || fail "queue-select $*: '$err' lacks '$want'"
	[ ! -e "$tmp/bad.csv" ] || fail "queue-select $*: wrote an output"
}
bad "param methods: 'nosuch'" --param methods=nosuch
bad "param methods: 'queue-select'" --param methods=order-align,queue-select
bad "param methods: 'default'" --param methods=default
bad "param methods: 'metadata' twice" --param methods=metadata,metadata
bad "param methods=,: no method" --param methods=,
bad "param warm=0" --param warm=0
bad "param warm=1.5" --param warm=1.5
bad "param z=11" --param z=11
bad "param z=-1" --param z=-1
bad "param links=2" --param links=2
bad "param correct=2" --param correct=2
bad "param judge_own=2" --param judge_own=2
bad "param share=0.5" --param share=0.5
bad "param handoff=2" --param handoff=2
bad "param handoff=no" --param handoff=no
bad "param cover=1.5" --param cover=1.5
bad "param cover=-0.1" --param cover=-0.1
bad "param corroborate=1.5" --param corroborate=1.5
bad "param corroborate=-0.1" --param corroborate=-0.1
bad "param backed=2" --param backed=2
bad "param backed=-1" --param backed=-1
bad "not a number" --param backed=half
bad "unknown param 'score'" --param score=mdl
bad "param explain=2" --param explain=2
bad "param judge=hard: soft or sign" --param judge=hard
bad "param judge=: soft or sign" --param judge=
bad "unknown param 'colour'" --param colour=red
bad "not a number" --param warm=x
expect_exit 2 "$tj" correlate --algo queue-select --train "$tmp/ds" "$tmp/ds"
echo "ok: default is $dflt; queue-select and its params"
