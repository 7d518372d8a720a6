#!/usr/bin/env bash
# tracejoin export checked by real consumers (make consumers installs
# them): the OTLP file decoded with the official OpenTelemetry protobuf
# definitions, the Perfetto file checked as trace events, and the Jaeger
# file read back by `tracejoin import --format jaeger`, whose export has
# the same trace shapes and the same call edges, on a generated dataset
# and on TraceWeaver traces.  Without node or the npm packages: SKIPPED.
set -u
. "$(dirname "$0")/lib.sh"
tj=$TJ
cons=${TJ_CONSUMERS:-$TJ_ROOT/build/consumers}
checks=$TJ_ROOT/tests/consumers
command -v node >/dev/null || skip "no node: run 'make consumers' (Debian nodejs)"
[ -f "$cons/node_modules/@opentelemetry/otlp-transformer/package.json" ] ||
	skip "no OTLP protobuf definitions in $cons: run 'make consumers' (needs the npm registry)"
tmp=$(mktemp -d /tmp/tj-export-consumers.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

"$tj" gen --scenario threadpool --load medium --requests 150 --seed 9 -o "$tmp/ds" >/dev/null 2>&1 ||
	fail "gen failed"
# regression: right on most calls of a thread pool, wrong on some
"$tj" correlate --algo regression -o "$tmp/edges.csv" "$tmp/ds" 2>/dev/null || fail "correlate failed"
calls=$(($(wc -l <"$tmp/ds/labels.csv") - 1))
rooted=$(awk -F, 'NR > 1 && $2 != ""' "$tmp/ds/labels.csv" | wc -l)
roots=$(grep -o '"roots": *[0-9]*' "$tmp/ds/manifest.json" | grep -o '[0-9]*$')
spans=$((roots + 2 * calls))
wrong=$(awk -F, 'NR==FNR { if (FNR > 1) l[$1] = $2; next } FNR > 1 && l[$1] != $2 { n++ } END { print n + 0 }' \
	"$tmp/ds/labels.csv" "$tmp/edges.csv")
m_rooted=$(awk -F, 'NR > 1 && $2 != ""' "$tmp/edges.csv" | wc -l)
[ "$wrong" -gt 0 ] && [ "$wrong" -lt "$calls" ] || fail "$wrong of $calls calls wrong: want some right, some wrong"

# --- OTLP: the labels' traces, then regression's with --truth ---
"$tj" export --format otlp --edges "$tmp/ds/labels.csv" -o "$tmp/truth.otlp.json" "$tmp/ds" 2>/dev/null ||
	fail "export otlp"
node "$checks/check_otlp.js" "$cons" "$tmp/truth.otlp.json" "$spans" $((rooted + calls)) \
	$((roots + calls - rooted)) || fail "OTLP decode of the labels' traces"
"$tj" export --format otlp --edges "$tmp/edges.csv" --truth "$tmp/ds/labels.csv" \
	-o "$tmp/m.otlp.json" "$tmp/ds" 2>/dev/null || fail "export otlp --truth"
node "$checks/check_otlp.js" "$cons" "$tmp/m.otlp.json" "$spans" $((m_rooted + calls)) >"$tmp/out" ||
	fail "OTLP decode of regression's traces"
cat "$tmp/out"
grep -q ", $wrong marked wrong" "$tmp/out" || fail "OTLP: want $wrong marked wrong"

# --- Perfetto: a slice per span, a flow per parent link, wrong calls red ---
"$tj" export --format perfetto --edges "$tmp/edges.csv" --truth "$tmp/ds/labels.csv" \
	-o "$tmp/m.perfetto.json" "$tmp/ds" 2>/dev/null || fail "export perfetto"
node "$checks/check_perfetto.js" "$tmp/m.perfetto.json" "$spans" $((m_rooted + calls)) "$wrong" >"$tmp/out" ||
	fail "Perfetto trace events"
cat "$tmp/out"
grep -q ", $((calls - wrong)) green" "$tmp/out" || fail "Perfetto: want $((calls - wrong)) green calls"

# --- every scenario: the OTLP and Perfetto files of regression's traces
# pass the checks and agree on spans, links and mistakes ---
for scn in $("$tj" gen --list | awk '{ print $1 }'); do
	"$tj" gen --scenario "$scn" --load medium --requests 30 --seed 3 -o "$tmp/s-$scn" >/dev/null 2>&1 ||
		fail "gen $scn"
	for f in otlp perfetto; do
		"$tj" export --format $f --algo regression --truth "$tmp/s-$scn/labels.csv" \
			-o "$tmp/s-$scn.$f.json" "$tmp/s-$scn" 2>"$tmp/err" || fail "$scn: export $f: $(cat "$tmp/err")"
	done
	o=$(node "$checks/check_otlp.js" "$cons" "$tmp/s-$scn.otlp.json") || fail "$scn: OTLP"
	p=$(node "$checks/check_perfetto.js" "$tmp/s-$scn.perfetto.json") || fail "$scn: Perfetto"
	read -r os ol ow <<<"$(echo "$o" | awk '{ print $2, $4, $10 }')"
	read -r ps pl pw <<<"$(echo "$p" | awk '{ print $2, $4, $6 }')"
	[ "$os $ol $ow" = "$ps $pl $pw" ] || fail "$scn: OTLP ($o) and Perfetto ($p) disagree"
	echo "$scn: $o"
done

# --- Jaeger: export, import, export again: same shapes, same edges ---
roundtrip() { # NAME DATASET
	local name=$1 ds=$2
	mkdir -p "$tmp/$name-j1"
	"$tj" export --format jaeger --edges "$ds/labels.csv" -o "$tmp/$name-j1/traces.json" "$ds" \
		2>/dev/null || fail "$name: export jaeger"
	"$tj" import --format jaeger "$tmp/$name-j1" -o "$tmp/$name-back" >"$tmp/$name-import.out" 2>&1 ||
		fail "$name: import of the export: $(tail -3 "$tmp/$name-import.out")"
	"$tj" export --format jaeger --edges "$tmp/$name-back/labels.csv" -o "$tmp/$name-j2.json" \
		"$tmp/$name-back" 2>/dev/null || fail "$name: export of the import"
	node "$checks/jaeger_shapes.js" "$tmp/$name-j1/traces.json" "$tmp/$name-j2.json" ||
		fail "$name: the round trip changed the traces"
	# the same call edges: as many calls, as many with a parent
	local a b
	a=$(awk -F, 'NR > 1 { n++; if ($2 != "") p++ } END { print n + 0, p + 0 }' "$ds/labels.csv")
	b=$(awk -F, 'NR > 1 { n++; if ($2 != "") p++ } END { print n + 0, p + 0 }' "$tmp/$name-back/labels.csv")
	[ "$a" = "$b" ] || fail "$name: labels (calls, with parent) $a before, $b after the round trip"
	echo "$name: jaeger round trip kept $a (calls, with a parent)"
}
roundtrip generated "$tmp/ds"
roundtrip sample-ci "$TJ_ROOT/datasets/real/sample-ci"

tw=${TRACEWEAVER:-$TJ_ROOT/../shared/data/traceweaver}
if [ -d "$tw/hotel_load25" ] && [ -d "$tw/node_load50" ]; then
	for set in hotel_load25 node_load50; do
		mkdir -p "$tmp/tw-$set"
		ls "$tw/$set" | head -n 60 | while read -r f; do cp "$tw/$set/$f" "$tmp/tw-$set/"; done
		"$tj" import --format jaeger "$tmp/tw-$set" -o "$tmp/tw-$set-ds" >/dev/null 2>&1
		rc=$?
		[ $rc -eq 0 ] || [ $rc -eq 3 ] || fail "import of $set failed ($rc)"
		roundtrip "$set" "$tmp/tw-$set-ds"
	done
else
	echo "no TraceWeaver data at $tw: its round trip not run"
fi
