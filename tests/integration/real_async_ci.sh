#!/usr/bin/env bash
# A short labeled real capture of event loops, in CI, with each
# correlator's score printed: datasets/workloads/configs/ci-async.cfg (an
# epoll gateway making two sequential, dependent calls per request over an
# idle-capped keepalive pool; an M:N back end whose steps hop between 3 OS
# threads), 300 requests.  The labels must cover every call the workload
# says it made, the M:N service's syscalls must come from several threads
# and its calls from other threads than their requests' reads, and every
# correlator must run and be scored.  The scores are printed, not judged:
# they are what issue 15 sets out to raise.  Skipped (with the reason)
# where BPF or network namespaces are unavailable.
set -u
. "$(dirname "$0")/lib.sh"
TJ=${TJ:-build/asan/tracejoin}
root=${TJ_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=$(dirname "$TJ")/datasets/workloads
[ -x "$bin/tj-service" ] || fail "no $bin/tj-service (make first)"
[ "$(id -u)" = 0 ] || skip "needs root (BPF, network namespaces)"
need_capture
work=$(mktemp -d /tmp/tj-real-async.XXXXXX)
trap 'rm -rf "$work"' EXIT

bash "$root/datasets/workloads/run-real.sh" --tj "$TJ" --bin "$bin" \
	--config "$root/datasets/workloads/configs/ci-async.cfg" --name ci-async \
	--out "$work/ds" >"$work/run.txt" 2>&1
rc=$?
cat "$work/run.txt"
[ $rc -eq 77 ] && exit 77
[ $rc -eq 0 ] || fail "run-real.sh exited $rc"
grep -q 'load completed 300,' "$work/run.txt" || fail "the load generator did not complete its 300 requests"
grep -q 'services made 900 calls' "$work/run.txt" || fail "not 2 calls per request at the gateway and 1 at auth"
grep -q 'labels: 900 with a parent, 300 roots' "$work/run.txt" || fail "labels do not cover the 900 calls"
grep -q 'runtime error\|AddressSanitizer\|LeakSanitizer' "$work/run.txt" && fail "sanitizer report from a workload program"
[ -f "$work/ds/unlabeled.csv" ] && fail "calls left unlabeled: $(head -3 "$work/ds/unlabeled.csv")"

# the M:N service (auth): its syscalls on several threads, and calls made
# on another thread than the one that read their request
auth=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["parameters"]["nodes"]["auth"]["node"])' \
	"$work/ds/manifest.json") || fail "manifest.json: no node id for auth"
"$TJ" dump --csv "$work/ds/node-$auth.evlog" >"$work/auth.csv" || fail "dump auth's log"
threads=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "tid") c = i; next }
	($7 == "send" || $7 == "recv") && $c != 0 { print $c }' "$work/auth.csv" | sort -u | wc -l)
[ "$threads" -ge 2 ] || fail "auth (--model mn --workers 3) moved bytes on $threads thread(s)"
# a request's first read and its call's first write, by key: join them
# through the labels (child,parent = call,request on auth's node)
awk -F, -v node="$auth" '
	FNR == 1 { f++; if (f == 2) for (i = 1; i <= NF; i++) { if ($i == "tid") ct = i; if ($i == "sock") cs = i; if ($i == "offset") co = i; if ($i == "type") cy = i } next }
	f == 1 { split($1, c, ":"); split($2, p, ":"); if (c[1] == node && $2 != "") { want[c[2] ":out:" c[4]] = p[2] ":in:" p[4] } next }
	f == 2 && ($cy == "send" || $cy == "recv") { k = $cs ":" ($cy == "send" ? "out" : "in") ":" $co; if (!(k in tid)) tid[k] = $ct }
	END { for (k in want) { n++; if (tid[k] != tid[want[k]]) hop++ } printf "%d %d\n", n, hop }
' "$work/ds/labels.csv" "$work/auth.csv" >"$work/hops.txt"
read -r n hop <"$work/hops.txt"
[ "$n" -eq 300 ] || fail "auth: $n labeled calls found in its log, expected 300"
[ "$hop" -gt 0 ] || fail "auth: every call on the thread that read its request (no M:N hop)"
echo "auth (M:N): $threads threads, $hop of $n calls on another thread than their request's read"

# every correlator, scored: printed for the log
# (the default, without --algo, where this build has one)
scored=0 want=4
for a in default metadata regression classifier nest; do
	args=(--algo "$a")
	[ "$a" = default ] && args=()
	if ! "$TJ" correlate "${args[@]}" "$work/ds" -o "$work/e-$a.csv" 2>"$work/c-$a.err"; then
		if [ "$a" = default ] && grep -q -- '--algo.*required' "$work/c-$a.err"; then
			echo "ci-async score: default    (none in this build: correlate needs --algo)"
			continue
		fi
		fail "correlate ${args[*]}: $(cat "$work/c-$a.err")"
	fi
	[ "$a" = default ] && want=5
	"$TJ" score --json --labels "$work/ds/labels.csv" "$work/e-$a.csv" >"$work/s-$a.json" ||
		fail "score $a"
	python3 - "$work/s-$a.json" "$a" <<-'PY' || fail "score $a: unreadable JSON"
	import json, sys
	s = json.load(open(sys.argv[1]))
	e = s["edges"]
	print("ci-async score: %-10s edge F1 %.3f  precision %.3f  recall %.3f  trace %.3f" % (
	      sys.argv[2], e["f1"], e["precision"], e["recall"], s["end_to_end"]["accuracy"]))
	PY
	scored=$((scored + 1))
done
[ $scored -eq $want ] || fail "$scored correlators scored, expected $want"
echo "ok: 300 requests, 900 calls labeled, M:N hops seen, $scored correlators scored"
