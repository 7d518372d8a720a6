#!/usr/bin/env bash
# A labeled real capture in CI: two services in their own network
# namespaces (a thread-pool front with a keepalive pool, an epoll back
# end; datasets/workloads/configs/ci.cfg) and the load generator in a
# third, captured with --payload, labeled.  The labels must cover every
# call the workload says it made (run-real.sh checks the load generator's
# and the services' own counts against them), the dataset's logs must
# carry no payload byte (dump --csv, info), the calls must join across
# nodes, and the services must exit clean under the sanitizers.
# Skipped where BPF or network namespaces are unavailable.
set -u
. "$(dirname "$0")/lib.sh"
TJ=${TJ:-build/asan/tracejoin}
work=$(mktemp -d /tmp/tj-real-ci.XXXXXX)
trap 'rm -rf "$work"' EXIT

# a bad --seed-shift is refused before anything runs, naming the option
for bad in -1 abc 1.5 ''; do
	bash datasets/workloads/run-real.sh --tj "$TJ" --config datasets/workloads/configs/ci.cfg --name ci \
		--out "$work/bad" --seed-shift "$bad" >"$work/bad.txt" 2>&1
	[ $? -eq 2 ] && grep -q -- "--seed-shift '$bad'" "$work/bad.txt" || fail "--seed-shift '$bad' not refused: $(cat "$work/bad.txt")"
	[ -e "$work/bad" ] && fail "--seed-shift '$bad' wrote $work/bad"
done
real_capture ci "$work/ds" "$work/run.txt"
grep -q 'load completed 120,' "$work/run.txt" || fail "the load generator did not complete its 120 requests"
grep -q 'services made 240 calls' "$work/run.txt" || fail "the front did not make 2 calls per request"
grep -q 'runtime error\|AddressSanitizer\|LeakSanitizer' "$work/run.txt" && fail "sanitizer report from a workload program"

# labels: one row per call, a header, 240 with a parent
[ "$(($(wc -l <"$work/ds/labels.csv") - 1))" -eq 360 ] || fail "labels.csv does not hold 360 calls"
[ "$(awk -F, 'NR > 1 && $2 != ""' "$work/ds/labels.csv" | wc -l)" -eq 240 ] || fail "not 240 labeled parents"
[ -f "$work/ds/unlabeled.csv" ] && fail "calls left unlabeled: $(head -3 "$work/ds/unlabeled.csv")"

# no payload bytes anywhere a correlator looks
n=0
for log in "$work"/ds/node-*.evlog; do
	n=$((n + 1))
	"$TJ" dump --csv "$log" >"$work/dump.csv" || fail "dump $log"
	awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "payload_hex") c = i; next }
		$c != "" { bad = 1 } END { exit bad || !c }' "$work/dump.csv" || fail "$log: payload bytes left"
	"$TJ" info "$log" >"$work/info.txt" || fail "info $log"
	grep -Eq '^ *capture .*payload|^ *payloads ' "$work/info.txt" && fail "$log: info shows payloads: $(grep payload "$work/info.txt")"
	grep -q 'payloads removed by tracejoin label' "$work/info.txt" || fail "$log: header does not say the payloads were removed"
done
[ $n -eq 3 ] || fail "$n logs, expected 3 (two services and the load generator)"
grep -q '"generator": "label"' "$work/ds/manifest.json" || fail "manifest.json not written by label"
grep -q '"capture_drops"' "$work/ds/manifest.json" || fail "manifest.json lacks the capture's drop counters"

# every call joins the request it became on its callee
"$TJ" correlate --algo metadata "$work/ds" -o "$work/edges.csv" 2>/dev/null || fail "correlate"
"$TJ" score --labels "$work/ds/labels.csv" "$work/edges.csv" >"$work/score.txt" || fail "score"
grep -q '360 calls, 360 joined' "$work/score.txt" || fail "calls do not all join: $(grep '^logs' "$work/score.txt")"
# every built-in correlator's score on it, printed (never asserted: a
# figure, not a timed or tuned threshold)
for a in metadata regression classifier order-logit; do
	"$TJ" correlate --algo "$a" "$work/ds" -o "$work/e-$a.csv" 2>/dev/null || fail "correlate --algo $a"
	"$TJ" score --labels "$work/ds/labels.csv" "$work/e-$a.csv" >"$work/s-$a.txt" || fail "score $a"
	echo "score ci $a: $(grep '^edge ' "$work/s-$a.txt")"
done

# the event-loop config: an epoll front, two sequential calls per request
# queued on one shared connection (configs/ci-loop.cfg), run with its
# load's seed shifted (make dataset-real REAL_SEED=3): the config's
# --seed 9 must reach tj-load as 12, and the manifest must say so
grep -q -- '--seed 9 ' "$(dirname "$0")/../../datasets/workloads/configs/ci-loop.cfg" || fail "ci-loop.cfg no longer has --seed 9"
real_capture ci-loop "$work/loop" "$work/loop.txt" --seed-shift 3
grep -q 'ci-loop: tj-load ran with seed 12$' "$work/loop.txt" || fail "ci-loop: --seed-shift 3 did not reach tj-load as seed 12"
grep -q -- '--seed 12 ' "$work/loop/manifest.json" || fail "ci-loop: manifest does not record the shifted seed"
grep -q 'ci: tj-load ran with seed 7$' "$work/run.txt" || fail "ci: the config's own seed 7 did not reach tj-load"
grep -q 'load completed 120,' "$work/loop.txt" || fail "ci-loop: the load generator did not complete its 120 requests"
grep -q 'runtime error\|AddressSanitizer\|LeakSanitizer' "$work/loop.txt" && fail "ci-loop: sanitizer report from a workload program"
[ "$(awk -F, 'NR > 1 && $2 != ""' "$work/loop/labels.csv" | wc -l)" -eq 240 ] || fail "ci-loop: not 240 labeled parents"
for a in metadata regression classifier order-logit; do
	"$TJ" correlate --algo "$a" "$work/loop" -o "$work/l-$a.csv" 2>/dev/null || fail "ci-loop: correlate --algo $a"
	"$TJ" score --labels "$work/loop/labels.csv" "$work/l-$a.csv" >"$work/ls-$a.txt" || fail "ci-loop: score $a"
	echo "score ci-loop $a: $(grep '^edge ' "$work/ls-$a.txt")"
done
echo "ok: 120 requests, 360 calls labeled, no payload left, all joined; ci-loop 240 calls labeled"
