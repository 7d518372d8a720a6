#!/usr/bin/env bash
# tracejoin export without outside consumers: the three formats are
# written, parse as JSON, hold the spans the dataset has; --traces and
# --root select; --truth marks as many wrong calls as differ from the
# labels; bad input is refused with a message and leaves no file behind.
# (tests/integration/export_consumers.sh checks the files with real
# consumers.)
set -u
. "$(dirname "$0")/lib.sh"
tj=$TJ
TJ_ROOT=${TJ_ROOT:-$PWD}
tmp=$(mktemp -d /tmp/tj-export.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

"$tj" gen --scenario threadpool --load low --requests 80 --seed 5 -o "$tmp/ds" >/dev/null 2>&1 ||
	fail "gen failed"
"$tj" gen --scenario fanout --load low --requests 20 --seed 5 -o "$tmp/other" >/dev/null 2>&1 ||
	fail "gen failed"
"$tj" correlate --algo metadata -o "$tmp/edges.csv" "$tmp/ds" 2>/dev/null || fail "correlate failed"

# Expected from the labels: every call is a client span and (generated
# data: every node captured) a server span; roots from the manifest.
calls=$(($(wc -l <"$tmp/ds/labels.csv") - 1))
roots=$(grep -o '"roots": *[0-9]*' "$tmp/ds/manifest.json" | grep -o '[0-9]*$')
spans=$((roots + 2 * calls))
# calls whose metadata parent differs from the label
wrong=$(awk -F, 'NR==FNR { if (FNR > 1) l[$1] = $2; next } FNR > 1 && l[$1] != $2 { n++ } END { print n + 0 }' \
	"$tmp/ds/labels.csv" "$tmp/edges.csv")

# --- usage ---
"$tj" export --help | grep -q 'usage: tracejoin export' || fail "--help"
"$tj" help | grep -q '^  export ' || fail "export not in the command list"
expect_exit 2 "$tj" export --format xml --edges "$tmp/edges.csv" -o "$tmp/x" "$tmp/ds"
expect_exit 2 "$tj" export --edges "$tmp/edges.csv" -o "$tmp/x" "$tmp/ds"
expect_exit 2 "$tj" export --format otlp -o "$tmp/x" "$tmp/ds"
expect_exit 2 "$tj" export --format otlp --edges "$tmp/edges.csv" --algo metadata -o "$tmp/x" "$tmp/ds"
expect_exit 2 "$tj" export --format otlp --edges "$tmp/edges.csv" "$tmp/ds"
expect_exit 2 "$tj" export --format otlp --edges "$tmp/edges.csv" -o "$tmp/x"
expect_exit 2 "$tj" export --format otlp --edges "$tmp/edges.csv" --param a=1 -o "$tmp/x" "$tmp/ds"
expect_exit 2 "$tj" export --format otlp --edges "$tmp/edges.csv" --traces 0 -o "$tmp/x" "$tmp/ds"
expect_exit 2 "$tj" export --format otlp --edges "$tmp/edges.csv" --traces 2 --root 1:1:in:0 -o "$tmp/x" "$tmp/ds"
expect_exit 2 "$tj" export --format otlp --edges "$tmp/edges.csv" --root nokey -o "$tmp/x" "$tmp/ds"
expect_exit 2 "$tj" export --format otlp --edges "$tmp/edges.csv" --root 9:9:in:9 -o "$tmp/x" "$tmp/ds"
expect_exit 2 "$tj" export --format otlp --algo nosuch -o "$tmp/x" "$tmp/ds"
expect_exit 2 "$tj" export --format otlp --edges "$tmp/edges.csv" --idle 0 -o "$tmp/x" "$tmp/ds"
expect_exit 2 "$tj" export --format otlp --edges "$tmp/edges.csv" --idle 1s -o "$tmp/x" "$tmp/ds"
expect_exit 2 "$tj" export --format otlp --algo metadata --param nosuch=1 -o "$tmp/x" "$tmp/ds"
expect_exit 2 "$tj" export --format otlp --bogus --edges "$tmp/edges.csv" -o "$tmp/x" "$tmp/ds"
expect_exit 1 "$tj" export --format otlp --edges "$tmp/edges.csv" -o "$tmp/x" "$tmp/nope"
expect_exit 1 "$tj" export --format otlp --edges "$tmp/nope.csv" -o "$tmp/x" "$tmp/ds"
[ -e "$tmp/x" ] && fail "a refused run left $tmp/x"

# --- bad edges: another dataset's, cut short (mid-row and at a row end) ---
"$tj" correlate --algo metadata -o "$tmp/other-edges.csv" "$tmp/other" 2>/dev/null
expect_exit 1 "$tj" export --format jaeger --edges "$tmp/other-edges.csv" -o "$tmp/x" "$tmp/ds"
"$tj" export --format jaeger --edges "$tmp/other-edges.csv" -o "$tmp/x" "$tmp/ds" 2>&1 |
	grep -q 'other-edges.csv: line 2: .* is not a call of this dataset' || fail "another dataset's edges: message"
head -c $(($(wc -c <"$tmp/edges.csv") / 2)) "$tmp/edges.csv" >"$tmp/cut.csv"
expect_exit 1 "$tj" export --format jaeger --edges "$tmp/cut.csv" -o "$tmp/x" "$tmp/ds"
head -n $((calls / 2)) "$tmp/edges.csv" >"$tmp/cut-rows.csv"
expect_exit 1 "$tj" export --format jaeger --edges "$tmp/cut-rows.csv" -o "$tmp/x" "$tmp/ds"
"$tj" export --format jaeger --edges "$tmp/cut-rows.csv" -o "$tmp/x" "$tmp/ds" 2>&1 |
	grep -q 'calls of the dataset have no edge' || fail "truncated edges: message"
expect_exit 1 "$tj" export --format jaeger --edges "$tmp/edges.csv" --truth "$tmp/cut.csv" -o "$tmp/x" "$tmp/ds"
[ -e "$tmp/x" ] && fail "bad edges left $tmp/x"
ls -a "$tmp" | grep -q '\.tmp' && fail "a temporary file was left behind"

# --- outputs: exists without --force, an input, a folder that is not there ---
for f in otlp jaeger perfetto; do
	"$tj" export --format $f --edges "$tmp/edges.csv" --truth "$tmp/ds/labels.csv" \
		-o "$tmp/out.$f.json" "$tmp/ds" 2>"$tmp/err" || fail "export $f: $(cat "$tmp/err")"
	grep -q "^export: $f, $spans spans, .*, $wrong wrong," "$tmp/err" ||
		fail "export $f: want $spans spans and $wrong wrong: $(cat "$tmp/err")"
	head -c 20 "$tmp/out.$f.json" | grep -q '^{' || fail "$f: not a JSON object"
done
cp "$tmp/out.otlp.json" "$tmp/keep.json"
expect_exit 2 "$tj" export --format otlp --edges "$tmp/edges.csv" -o "$tmp/out.otlp.json" "$tmp/ds"
cmp -s "$tmp/out.otlp.json" "$tmp/keep.json" || fail "a refused run changed the existing output"
"$tj" export --format otlp --edges "$tmp/edges.csv" --force -o "$tmp/out.otlp.json" "$tmp/ds" 2>/dev/null ||
	fail "--force did not replace"
expect_exit 2 "$tj" export --format otlp --edges "$tmp/edges.csv" --force -o "$tmp/edges.csv" "$tmp/ds"
expect_exit 2 "$tj" export --format otlp --edges "$tmp/edges.csv" --force -o "$tmp/ds/labels.csv" "$tmp/ds"
expect_exit 2 "$tj" export --format otlp --edges "$tmp/edges.csv" --force -o "$tmp/ds/node-1.evlog" "$tmp/ds"
expect_exit 1 "$tj" export --format otlp --edges "$tmp/edges.csv" -o "$tmp/no/such/dir.json" "$tmp/ds"
# a write that fails (file size limit: EFBIG) is exit 1 and leaves nothing
( trap '' XFSZ; ulimit -f 4; exec "$tj" export --format otlp --edges "$tmp/edges.csv" \
	-o "$tmp/big.json" "$tmp/ds" ) 2>"$tmp/err"
rc=$?
[ $rc -eq 1 ] || fail "a failed write exited $rc, want 1: $(cat "$tmp/err")"
grep -q 'big.json: File too large' "$tmp/err" || fail "failed write: message: $(cat "$tmp/err")"
ls "$tmp" | grep -q 'big.json' && fail "a failed write left a file"

# --- stdout, --algo, --traces, --root ---
"$tj" export --format jaeger --edges "$tmp/edges.csv" -o - "$tmp/ds" 2>/dev/null >"$tmp/stdout.json"
"$tj" export --format jaeger --edges "$tmp/edges.csv" -o "$tmp/file.json" "$tmp/ds" 2>/dev/null
cmp -s "$tmp/stdout.json" "$tmp/file.json" || fail "-o - and -o FILE differ"
"$tj" export --format jaeger --algo metadata --idle 2.0 -o "$tmp/algo.json" "$tmp/ds" 2>/dev/null
cmp -s "$tmp/algo.json" "$tmp/file.json" || fail "--algo metadata and its edges.csv differ"
"$tj" export --format jaeger --edges "$tmp/edges.csv" --traces 3 -o - "$tmp/ds" 2>"$tmp/err" >/dev/null
grep -q ', 3 traces,' "$tmp/err" || fail "--traces 3: $(cat "$tmp/err")"
# the root request of the first labeled call with a parent, and its trace
key=$(awk -F, 'NR > 1 && $2 != "" { print $2; exit }' "$tmp/ds/labels.csv")
"$tj" export --format jaeger --edges "$tmp/ds/labels.csv" --root "$key" -o - "$tmp/ds" 2>"$tmp/err" >"$tmp/root.json"
grep -q ', 1 traces,' "$tmp/err" || fail "--root: $(cat "$tmp/err")"
grep -q "\"value\":\"$key\"" "$tmp/root.json" || fail "--root $key: not in its trace"
# services: the manifest's node names (a labeled capture), else host names
real=$TJ_ROOT/datasets/real/sample-ci
if [ -d "$real" ]; then
	"$tj" export --format jaeger --edges "$real/labels.csv" -o "$tmp/real.json" "$real" 2>/dev/null ||
		fail "export of $real"
	[ "$(grep -o '"serviceName":"[a-z]*"' "$tmp/real.json" | sort -u | tr '\n' ' ')" = \
	  '"serviceName":"back" "serviceName":"front" "serviceName":"load" ' ] ||
		fail "sample-ci: services are not the manifest's names"
fi
grep -q '"serviceName":"front-1"' "$tmp/file.json" || fail "generated: services are not the host names"
# deterministic: the same input gives the same bytes
"$tj" export --format otlp --edges "$tmp/edges.csv" -o "$tmp/again.json" "$tmp/ds" 2>/dev/null
cmp -s "$tmp/again.json" "$tmp/out.otlp.json" || fail "two exports differ"
# --- a damaged log: traces of what could be read, exit 3 ---
cp -r "$tmp/ds" "$tmp/cut"
log=$(ls "$tmp/cut"/node-*.evlog | head -1)
truncate -s $(($(stat -c %s "$log") * 2 / 3)) "$log"
"$tj" export --format otlp --algo metadata -o "$tmp/cut.json" "$tmp/cut" 2>"$tmp/err"
rc=$?
[ $rc -eq 3 ] || fail "a damaged log: exit $rc, want 3: $(cat "$tmp/err")"
grep -q '^export: otlp, [1-9][0-9]* spans' "$tmp/err" && [ -s "$tmp/cut.json" ] ||
	fail "a damaged log: no traces written: $(cat "$tmp/err")"
# the full edges do not fit what is left: refused, not half-joined
expect_exit 1 "$tj" export --format otlp --edges "$tmp/edges.csv" -o "$tmp/cut2.json" "$tmp/cut"
[ -e "$tmp/cut2.json" ] && fail "refused edges left a file"
# Calls to services outside the captured set (the 'external' scenario's
# two uncaptured nodes): leaf client spans marked tracejoin.external, one
# per call the join found no server end for (the labels' calls minus the
# server spans of captured nodes, which are the joined ones).
"$tj" gen --scenario external --load low --requests 30 --seed 5 -o "$tmp/ext" >/dev/null 2>&1 ||
	fail "gen external failed"
"$tj" export --format jaeger --algo metadata -o "$tmp/ext.json" "$tmp/ext" 2>"$tmp/err" ||
	fail "export external: $(cat "$tmp/err")"
ext_calls=$("$tj" correlate --algo metadata --traces "$tmp/ext" 2>/dev/null | grep -c '^# unjoined .*no captured server end')
ext_marked=$(grep -o '"key": *"tracejoin.external"' "$tmp/ext.json" | wc -l)
[ "$ext_calls" -gt 0 ] && [ "$ext_marked" -eq "$ext_calls" ] ||
	fail "external: $ext_marked spans marked tracejoin.external, $ext_calls calls to uncaptured services"
echo "export: $spans spans, $wrong wrong, $ext_marked external leaves, every refusal clean"
