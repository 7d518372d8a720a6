#!/usr/bin/env bash
# tracejoin correlate end to end: on a generated dataset every call gets
# one edge and metadata is exact on thread-per-request traffic; the final
# stderr line has its documented form; plugins load by path and bad ones
# are refused by name; labels and manifest are never opened; --traces
# prints trees; damaged logs give exit 3 with edges; bad usage exits 2.
set -u
. "$(dirname "$0")/lib.sh"
tj=$TJ
tmp=$(mktemp -d /tmp/tj-correlate.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
plugins=$(dirname "$tj")/plugins

"$tj" gen --list >/dev/null 2>&1 || skip "tracejoin gen is not built"
"$tj" gen --scenario threaded --requests 60 --seed 3 -o "$tmp/ds" >/dev/null 2>"$tmp/gen.err" ||
	fail "gen failed: $(tail -3 "$tmp/gen.err")"

# --- usage ---
"$tj" correlate --help | grep -q 'usage: tracejoin correlate' || fail "--help"
"$tj" correlate --list | grep -q '^metadata ' || fail "--list lacks metadata"
expect_exit 2 "$tj" correlate --algo metadata --bogus "$tmp/ds"
[ "$("$tj" correlate --algo metadata --bogus "$tmp/ds" 2>&1 | wc -l)" -eq 1 ] ||
	fail "an unknown option takes more than one line"
expect_exit 2 "$tj" correlate    # no input (no --algo is the default: correlate_default.sh)
expect_exit 2 "$tj" correlate --algo metadata
expect_exit 2 "$tj" correlate --algo nosuch "$tmp/ds"
expect_exit 2 "$tj" correlate --algo metadata --param expire "$tmp/ds"
expect_exit 2 "$tj" correlate --algo metadata --param nosuch=1 "$tmp/ds"
expect_exit 2 "$tj" correlate --algo metadata --idle -1 "$tmp/ds"
expect_exit 1 "$tj" correlate --algo metadata "$tmp/nope"
"$tj" correlate --algo metadata "$tmp/nope" 2>&1 | grep -q "$tmp/nope" ||
	fail "a missing input is not named"
expect_exit 1 "$tj" correlate --algo metadata "$tmp/ds/labels.csv"
expect_exit 2 "$tj" correlate --algo metadata --train "$tmp/ds" "$tmp/ds"
expect_exit 2 "$tj" correlate --algo metadata --explain "$tmp/ds"
# nest refuses a bad param naming it, and names its signal with --explain.
"$tj" correlate --algo nest --param explain=2 "$tmp/ds" 2>&1 >/dev/null | grep -q 'explain=2' ||
	fail "nest explain=2: not refused by name"
expect_exit 2 "$tj" correlate --algo nest --param explain=2 "$tmp/ds"
expect_exit 2 "$tj" correlate --algo nest --param cap=1 "$tmp/ds"
"$tj" correlate --algo nest --explain "$tmp/ds" 2>&1 >/dev/null | grep -q ' by nesting$' ||
	fail "nest --explain names no signal"
# A refused param leaves no output at all, not even the CSV header.
out=$("$tj" correlate --algo regression --param bogus=1 "$tmp/ds" 2>/dev/null)
[ -z "$out" ] || fail "a refused --param still wrote: $out"
# unit-fifo refuses bad params by name, and --explain names each call's signal.
expect_exit 2 "$tj" correlate --algo unit-fifo --param units=bytes "$tmp/ds"
"$tj" correlate --algo unit-fifo --param units=bytes "$tmp/ds" 2>&1 | grep -q 'units=bytes' ||
	fail "unit-fifo's bad units is not named"
expect_exit 2 "$tj" correlate --algo unit-fifo --param window=0 "$tmp/ds"
"$tj" correlate --algo unit-fifo --explain "$tmp/ds" 2>&1 >/dev/null | grep -q ' by thread (1 writes, 1 calls)' ||
	fail "unit-fifo --explain names no signal"
# --explain prints the regression model's fitted delays on stderr.
"$tj" correlate --algo regression --explain "$tmp/ds" 2>&1 >/dev/null | grep -q 'median_ms' ||
	fail "--explain printed no fitted model"
# issue-fifo: --explain names the signal that decided the calls; a bad
# param is refused, naming it (exit 2); every call gets one edge.
"$tj" correlate --algo issue-fifo --explain "$tmp/ds" -o "$tmp/ifo.csv" 2>"$tmp/ifo.err" ||
	fail "issue-fifo failed: $(tail -3 "$tmp/ifo.err")"
grep -Eq '^issue-fifo: [0-9]+ calls: [0-9]+ direct .*, [0-9]+ fifo .*, [0-9]+ connect .*, [0-9]+ none$' "$tmp/ifo.err" ||
	fail "issue-fifo --explain names no signal: $(head -3 "$tmp/ifo.err")"
[ "$(($(wc -l <"$tmp/ifo.csv") - 1))" -eq "$(($(wc -l <"$tmp/ds/labels.csv") - 1))" ] ||
	fail "issue-fifo: not one edge per labeled call"
for bad in expire=0 expire=soon explain=2 colour=red; do
	expect_exit 2 "$tj" correlate --algo issue-fifo --param $bad "$tmp/ds"
	"$tj" correlate --algo issue-fifo --param $bad "$tmp/ds" 2>&1 >/dev/null | grep -q "issue-fifo: .*${bad%%=*}" ||
		fail "issue-fifo --param $bad: the message does not name the param"
done

# --- metadata on thread-per-request traffic ---
"$tj" correlate --algo metadata "$tmp/ds" -o "$tmp/edges.csv" 2>"$tmp/err" ||
	fail "correlate failed: $(cat "$tmp/err")"
tail -n 1 "$tmp/err" | grep -Eq '^correlate: algo metadata, [0-9]+ events, [0-9.]+ Mev/s, [0-9]+ MB peak$' ||
	fail "last stderr line: $(tail -n 1 "$tmp/err")"
nlab=$(($(wc -l <"$tmp/ds/labels.csv") - 1))
nedge=$(($(wc -l <"$tmp/edges.csv") - 1))
[ "$nlab" -gt 0 ] || fail "the dataset has no labeled calls"
[ "$nedge" -eq "$nlab" ] || fail "$nedge edges for $nlab labeled calls"
# exact on this scenario: same child->parent set as the labels
cut -d, -f1,2 "$tmp/ds/labels.csv" | sort >"$tmp/want"
cut -d, -f1,2 "$tmp/edges.csv" | sort >"$tmp/got"
diff -q "$tmp/want" "$tmp/got" >/dev/null ||
	fail "metadata differs from the labels: $(diff "$tmp/want" "$tmp/got" | head -5)"
# stdout by default, same edges
"$tj" correlate --algo metadata "$tmp/ds" 2>/dev/null | cmp -s - "$tmp/edges.csv" ||
	fail "edges on stdout differ from -o"

# --- labels and manifest are never opened: make them FIFOs that would
# block whoever opened them ---
mkdir "$tmp/blind"
cp "$tmp/ds"/node-*.evlog "$tmp/blind/"
mkfifo "$tmp/blind/labels.csv" "$tmp/blind/manifest.json"
timeout 60 "$tj" correlate --algo metadata "$tmp/blind" -o "$tmp/blind.csv" 2>"$tmp/err" ||
	fail "correlate on a folder whose labels are FIFOs: exit $? $(tail -2 "$tmp/err")"
cmp -s "$tmp/blind.csv" "$tmp/edges.csv" || fail "edges differ without labels"

# --- plugins ---
"$tj" correlate --algo "$plugins/naive_recent.so" "$tmp/ds" -o "$tmp/naive.csv" 2>"$tmp/err" ||
	fail "naive_recent plugin: $(cat "$tmp/err")"
[ $(($(wc -l <"$tmp/naive.csv") - 1)) -eq "$nlab" ] || fail "naive_recent: not one edge per call"
tail -n 1 "$tmp/err" | grep -q '^correlate: algo naive_recent,' || fail "plugin name not in the last line"
for bad in no_symbol wrong_abi; do
	expect_exit 2 "$tj" correlate --algo "$plugins/bad/$bad.so" "$tmp/ds"
	"$tj" correlate --algo "$plugins/bad/$bad.so" "$tmp/ds" 2>&1 | grep -q "$bad.so" ||
		fail "$bad.so refused without naming it"
done
# (masking is proven on logs with payloads by tests/unit/test_host.c: gen
# writes none, so peek_headers would pass here without looking)

# --- traces ---
"$tj" correlate --algo metadata --traces "$tmp/ds" >"$tmp/traces" 2>"$tmp/err" ||
	fail "--traces: $(cat "$tmp/err")"
grep -q '^request [0-9]*:[0-9]*:in:[0-9]*  node [0-9]* pid [0-9]* tid [0-9]* start [0-9.]* dur [0-9.]* ms$' "$tmp/traces" ||
	fail "--traces: no root request line: $(head -3 "$tmp/traces")"
grep -q '^  call ' "$tmp/traces" || fail "--traces: no call under a request"
grep -q '^# [0-9]* trees' "$tmp/traces" || fail "--traces: no summary"
"$tj" correlate --algo metadata --traces -o "$tmp/tr-edges.csv" "$tmp/ds" >/dev/null 2>&1 ||
	fail "--traces with -o"
cmp -s "$tmp/tr-edges.csv" "$tmp/edges.csv" || fail "--traces -o wrote other edges"

# --- a damaged log: exit 3, edges of what could be read ---
mkdir "$tmp/cut"
for f in "$tmp/ds"/node-*.evlog; do
	head -c $(($(stat -c %s "$f") * 2 / 3)) "$f" >"$tmp/cut/$(basename "$f")"
done
expect_exit 3 "$tj" correlate --algo metadata "$tmp/cut" -o "$tmp/cut.csv"
[ "$(head -n 1 "$tmp/cut.csv")" = "child,parent,score" ] || fail "no edges file for a damaged log"
"$tj" correlate --algo metadata "$tmp/cut" 2>&1 >/dev/null | grep -q 'damaged' ||
	fail "damage not reported"
echo "correlate: all checks passed"
