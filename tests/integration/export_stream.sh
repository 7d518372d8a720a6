#!/usr/bin/env bash
# The streamed export (export/stream.h): a dataset longer than the window
# is written holding only part of its spans at once; a child that comes
# too late for the stream (an edge to a request whose trace was already
# written) still ends up in its trace, whole, because the in-memory model
# takes over and stderr says so; clocks skewed beyond the window give the
# same bytes streamed with a wider --window as without it.
set -u
. "$(dirname "$0")/lib.sh"
tj=$TJ
tmp=$(mktemp -d /tmp/tj-export-stream.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# ~5 s of traffic at 600 requests/s: longer than the 2 s window
"$tj" gen --scenario threadpool --load high --requests 3000 --seed 7 -o "$tmp/ds" >/dev/null 2>&1 ||
	fail "gen failed"
calls=$(($(wc -l <"$tmp/ds/labels.csv") - 1))
spans=$((3000 + 2 * calls))

# --- bounded: streamed, fewer spans held than written ---
"$tj" export --format jaeger --edges "$tmp/ds/labels.csv" -o "$tmp/a.json" "$tmp/ds" 2>"$tmp/err" ||
	fail "export: $(cat "$tmp/err")"
grep -q "^export: jaeger, $spans spans, 3000 traces," "$tmp/err" || fail "spans: $(cat "$tmp/err")"
held=$(grep -o 'streamed: at most [0-9]* spans' "$tmp/err" | grep -o '[0-9]*')
[ -n "$held" ] && [ "$held" -lt $((spans / 2)) ] ||
	fail "not streamed, or held $held of $spans spans: $(cat "$tmp/err")"

# --- the edges file is read a block of lines at a time: CRLF, a BOM and
# quoted fields (more than one block) give the same bytes, streamed ---
awk -F, 'NR == 1 { printf "\357\273\277%s\r\n", $0; next }
	{ printf "\"%s\",\"%s\",\"%s\"\r\n", $1, $2, $3 }' "$tmp/ds/labels.csv" >"$tmp/quoted.csv"
[ "$(stat -c %s "$tmp/quoted.csv")" -gt 262144 ] || fail "quoted.csv is one block only"
"$tj" export --format jaeger --edges "$tmp/quoted.csv" -o "$tmp/q.json" "$tmp/ds" 2>"$tmp/err" ||
	fail "quoted edges: $(cat "$tmp/err")"
grep -q 'streamed: at most' "$tmp/err" || fail "quoted edges: not streamed: $(cat "$tmp/err")"
cmp -s "$tmp/q.json" "$tmp/a.json" || fail "quoted CRLF edges give another export"

# --- edges in another order than the calls': the stream takes an edge
# from a window at the front of what it read ahead and hashes the ones it
# passes over; reversed (every edge passed over until the last block) and
# shuffled, the same bytes, streamed ---
{ head -n 1 "$tmp/ds/labels.csv"; tail -n +2 "$tmp/ds/labels.csv" | tac; } >"$tmp/rev.csv"
{ head -n 1 "$tmp/ds/labels.csv"; tail -n +2 "$tmp/ds/labels.csv" |
	shuf --random-source=<(yes); } >"$tmp/shuf.csv"
for order in rev shuf; do
	"$tj" export --format jaeger --edges "$tmp/$order.csv" -o "$tmp/$order.json" "$tmp/ds" 2>"$tmp/err" ||
		fail "$order edges: $(cat "$tmp/err")"
	grep -q 'streamed: at most' "$tmp/err" || fail "$order edges: not streamed: $(cat "$tmp/err")"
	cmp -s "$tmp/$order.json" "$tmp/a.json" || fail "$order edges give another export"
done

# --- --traces N still checks every edge, as the in-memory model does ---
head -n $((calls / 2)) "$tmp/ds/labels.csv" >"$tmp/half.csv"
expect_exit 1 "$tj" export --format jaeger --edges "$tmp/half.csv" --traces 3 -o "$tmp/x" "$tmp/ds"
"$tj" export --format jaeger --edges "$tmp/half.csv" --traces 3 -o "$tmp/x" "$tmp/ds" 2>&1 |
	grep -q 'calls of the dataset have no edge' || fail "--traces 3, half the edges: no reason given"
[ -e "$tmp/x" ] && fail "refused edges left a file"

# --- bad --window ---
expect_exit 2 "$tj" export --format jaeger --edges "$tmp/ds/labels.csv" --window 0 -o "$tmp/x" "$tmp/ds"
expect_exit 2 "$tj" export --format jaeger --edges "$tmp/ds/labels.csv" --window soon -o "$tmp/x" "$tmp/ds"
expect_exit 2 "$tj" export --format jaeger --edges "$tmp/ds/labels.csv" --window -o "$tmp/x" "$tmp/ds"
[ -e "$tmp/x" ] && fail "a refused --window left a file"

# --- a late child: the last call with a parent gets, instead, the
# first request of its node that has calls (seconds earlier, its trace
# long written when the call comes) ---
late=$(awk -F, 'NR > 1 && $2 != "" { c = $1; n = $1 } END { print c }' "$tmp/ds/labels.csv")
node=${late%%:*}
first=$(awk -F, -v n="$node" 'NR > 1 && $2 != "" && index($2, n ":") == 1 { print $2; exit }' "$tmp/ds/labels.csv")
[ -n "$late" ] && [ -n "$first" ] || fail "no call to move"
awk -F, -v OFS=, -v c="$late" -v p="$first" 'NR > 1 && $1 == c { $2 = p } { print }' \
	"$tmp/ds/labels.csv" >"$tmp/late.csv"
"$tj" export --format jaeger --edges "$tmp/late.csv" -o "$tmp/late.json" "$tmp/ds" 2>"$tmp/err" ||
	fail "late child: $(cat "$tmp/err")"
grep -q "not streamed (an edge's parent is not a request in flight): the in-memory model wrote it" "$tmp/err" ||
	fail "late child: stderr does not say what happened: $(cat "$tmp/err")"
grep -q "^export: jaeger, $spans spans," "$tmp/err" || fail "late child: spans lost: $(cat "$tmp/err")"
python3 - "$tmp/late.json" "$late" "$first" <<'EOF' || fail "late child: not in its parent's trace"
import json, sys
doc = json.load(open(sys.argv[1]))
late, first = sys.argv[2], sys.argv[3]
def key(span):
    return next(t["value"] for t in span["tags"] if t["key"] == "tracejoin.key")
for trace in doc["data"]:
    by_key = {key(s): s for s in trace["spans"]}
    if first in by_key:
        child = by_key.get(late)
        ids = {s["spanID"]: key(s) for s in trace["spans"]}
        assert child is not None, "the late call is not in the trace of its parent"
        assert ids[child["references"][0]["spanID"]] == first, "wrong parent"
        sys.exit(0)
sys.exit("no trace holds " + first)
EOF

# --- skew: four nodes with clocks seconds apart.  The default window
# gives up (stderr says why); a wider one streams; same bytes. ---
"$tj" gen --scenario multinode-skew --load high --requests 1500 --seed 4 -o "$tmp/skew" >/dev/null 2>&1 ||
	fail "gen multinode-skew failed"
"$tj" export --format otlp --edges "$tmp/skew/labels.csv" -o "$tmp/skew1.json" "$tmp/skew" 2>"$tmp/err1" ||
	fail "skew: $(cat "$tmp/err1")"
"$tj" export --format otlp --edges "$tmp/skew/labels.csv" --window 10 -o "$tmp/skew2.json" "$tmp/skew" 2>"$tmp/err2" ||
	fail "skew --window 10: $(cat "$tmp/err2")"
grep -q 'streamed: at most' "$tmp/err2" || fail "skew --window 10: not streamed: $(cat "$tmp/err2")"
cmp -s "$tmp/skew1.json" "$tmp/skew2.json" || fail "skew: streamed and in-memory exports differ"
echo "export stream: held $held of $spans spans; a late child kept in its trace; skew: $(grep -o 'not streamed ([^)]*)' "$tmp/err1" || echo streamed) by default, streamed with --window 10, same bytes"
