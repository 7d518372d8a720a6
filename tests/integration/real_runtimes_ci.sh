#!/usr/bin/env bash
# A labeled real capture of the real runtimes in CI (root): a Node.js
# event-loop gateway with chained calls over keepalive agents and a Go
# service on the M:N scheduler (datasets/workloads/configs/runtimes-ci.cfg),
# each node in its own network namespace, captured with --payload and
# labeled.  run-real.sh checks that the labels cover every call the
# services say they made (this is where the span-id rule of the Node and
# Go services, and the labeler's reading of Go's 1-byte first read, are
# checked); the calls must join across nodes; the correlators' scores on
# it are printed (not asserted: bench/ and compare-real.sh hold targets).
# Skipped where BPF, namespaces, node or the Go service are missing.
set -u
. "$(dirname "$0")/lib.sh"
TJ=${TJ:-build/asan/tracejoin}
work=$(mktemp -d /tmp/tj-runtimes-ci.XXXXXX)
trap 'rm -rf "$work"' EXIT

real_capture runtimes-ci "$work/ds" "$work/run.txt"
grep -q 'load completed 120,' "$work/run.txt" || fail "the load generator did not complete its 120 requests"
grep -q 'services made 480 calls' "$work/run.txt" || fail "not 2 + 2 calls per request"
grep -q 'labels: 480 with a parent, 120 roots' "$work/run.txt" || fail "labels do not give every call its parent"
[ -f "$work/ds/unlabeled.csv" ] && fail "calls left unlabeled: $(head -3 "$work/ds/unlabeled.csv")"
grep -q 'runtime error\|AddressSanitizer\|LeakSanitizer\|panic:' "$work/run.txt" && fail "crash report from a workload program"

"$TJ" correlate --algo metadata "$work/ds" -o "$work/edges.csv" 2>/dev/null || fail "correlate"
"$TJ" score --labels "$work/ds/labels.csv" "$work/edges.csv" >"$work/score.txt" || fail "score"
grep -q '600 calls, 600 joined' "$work/score.txt" || fail "calls do not all join: $(grep '^logs' "$work/score.txt")"
for a in metadata regression classifier issue-fifo; do
	"$TJ" correlate --algo $a "$work/ds" -o "$work/e-$a.csv" 2>/dev/null || { echo "$a: correlate failed"; continue; }
	f1=$("$TJ" score --json --labels "$work/ds/labels.csv" "$work/e-$a.csv" |
		python3 -c 'import json,sys; print("%.1f" % (100 * json.load(sys.stdin)["edges"]["f1"]))')
	echo "runtimes-ci: $a edge F1 $f1 %"
done
# what the calling threads last received: one row per calling service
python3 "${TJ_ROOT:-.}/datasets/workloads/call-triggers.py" --tj "$TJ" "$work/ds" >"$work/triggers.md" ||
	fail "call-triggers.py"
cat "$work/triggers.md"
grep -q '^| gateway | nodejs | 240 |' "$work/triggers.md" || fail "call-triggers.py: no row of the node gateway's 240 calls"
grep -q '^| catalog | go | 240 |' "$work/triggers.md" || fail "call-triggers.py: no row of the go catalog's 240 calls"
# with a correlator's edges: per node, right share by the call's position
python3 "${TJ_ROOT:-.}/datasets/workloads/call-triggers.py" --tj "$TJ" --edges "$work/e-metadata.csv" \
	"$work/ds" >"$work/pos.md" || fail "call-triggers.py --edges"
cat "$work/pos.md"
grep -q '^| node | call 1 right % | call 2 right % |$' "$work/pos.md" || fail "call-triggers.py --edges: no table by position"
grep -q '^| gateway | [0-9.]* | [0-9.]* |$' "$work/pos.md" || fail "call-triggers.py --edges: no gateway row"
printf 'not,edges\n1,2\n' >"$work/bad.csv"
expect_exit 1 python3 "${TJ_ROOT:-.}/datasets/workloads/call-triggers.py" --tj "$TJ" --edges "$work/bad.csv" "$work/ds"
expect_exit 1 python3 "${TJ_ROOT:-.}/datasets/workloads/call-triggers.py" --tj "$TJ" --edges
expect_exit 1 python3 "${TJ_ROOT:-.}/datasets/workloads/call-triggers.py" --tj "$TJ" "$work/nowhere"
expect_exit 1 python3 "${TJ_ROOT:-.}/datasets/workloads/call-triggers.py" --tj "$TJ"
# configs naming what does not exist are refused, naming it (exit 2)
bad_config() { # pattern config-lines...
	local pat=$1 err rc
	shift
	printf '%s\n' "$@" >"$work/bad.cfg"
	err=$(bash "${TJ_ROOT:-.}/datasets/workloads/run-real.sh" --tj "$TJ" --bin "$(dirname "$TJ")/datasets/workloads" \
		--config "$work/bad.cfg" --name bad --out "$work/bad-ds" 2>&1); rc=$?
	[ $rc -eq 2 ] || fail "bad config ($*): exit $rc, want 2: $err"
	grep -q -- "$pat" <<<"$err" || fail "bad config ($*): message does not name '$pat': $err"
	[ -e "$work/bad-ds" ] && fail "bad config ($*): a dataset was written"
	return 0
}
bad_config "no node named 'nobody'" 'node gw service --model epoll' 'node px nginx gw 4 nobody' 'node load load --target px --requests 5'
bad_config "no node named 'nobody'" 'node gw nodejs --call nobody' 'node load load --target gw --requests 5'
bad_config "no node named 'nobody'" 'node gw go --call nobody' 'node load load --target gw --requests 5'
bad_config "unknown kind 'python'" 'node gw python app.py' 'node load load --target gw --requests 5'
echo "ok: node + go capture, 600 calls labeled and joined"
