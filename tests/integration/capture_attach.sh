#!/usr/bin/env bash
# capture started on running services (issue #16): two network
# namespaces joined by veth; in A a load generator (keepalive clients)
# and a front service with a keepalive pool to a back end in B, all
# running and the pool used before capture starts.  Then, during
# capture, a second back end starts listening in B (a listener opened
# after capture start), is called, and stops (a listener closed during
# capture).  Every service listens on one port P, which capture filters
# on (--port), so other traffic of the machine stays out.  Checks:
#  - the start-up scan is in both logs and names the listeners of each;
#  - every socket open before capture gets its side (info: 0 unknown);
#  - the two node logs' keys join: every call joined, none to an
#    uncaptured peer, ambiguous or unjoinable, but at most one a
#    connection open before capture whose server end saw the call's
#    request as its first (cut) message;
#  - labels complete: every recognised call is labeled, and every request
#    whose first bytes capture saw is a call, but for at most one first
#    message per connection open before capture (cut, and counted so).
# TJ_CAPTURE_HOOKS picks capture's hooks (sock by default).
# Skipped where BPF or network namespaces are missing; root.
set -u
TJ=${TJ:-build/asan/tracejoin}
hooks=${TJ_CAPTURE_HOOKS:-sock}
. "$(dirname "$0")/lib.sh"
bin=${TJ_WORKLOADS:-$(dirname "$TJ")/datasets/workloads}
[ -x "$bin/tj-service" ] && [ -x "$bin/tj-load" ] || fail "no workload programs in $bin"

need_capture --hooks "$hooks"
command -v ip >/dev/null || skip "ip (iproute2) is not installed"

work=$(mktemp -d /tmp/tj-capture-attach.XXXXXX)
nsa=tjatA$$ nsb=tjatB$$ cap_pid=
cleanup() {
	[ -n "$cap_pid" ] && kill "$cap_pid" 2>/dev/null && wait "$cap_pid" 2>/dev/null
	for ns in "$nsa" "$nsb"; do
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
		ip netns del "$ns" 2>/dev/null
	done
	[ -n "${TJ_KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$nsa" && ip netns add "$nsb" || skip "cannot create network namespaces"
ip link add "tjaa$$" netns "$nsa" type veth peer name "tjab$$" netns "$nsb" || fail "veth"
ip -n "$nsa" addr add 10.78.0.1/24 dev "tjaa$$" && ip -n "$nsa" link set "tjaa$$" up &&
	ip -n "$nsa" link set lo up || fail "namespace $nsa setup"
ip -n "$nsb" addr add 10.78.0.2/24 dev "tjab$$" && ip -n "$nsb" link set "tjab$$" up &&
	ip -n "$nsb" link set lo up || fail "namespace $nsb setup"
ip -n "$nsb" addr add 10.78.0.3/24 dev "tjab$$" || fail "second address"
ino_a=$(stat -L -c %i "/run/netns/$nsa") ino_b=$(stat -L -c %i "/run/netns/$nsb")
P=$((17000 + $$ % 2000))

start() { # ns out-file args...: a tj-service, once it listens
	local ns=$1 out=$2
	shift 2
	ip netns exec "$ns" "$bin/tj-service" "$@" >"$out" 2>&1 &
	for _ in $(seq 200); do grep -q listening "$out" && return 0; sleep 0.05; done
	cat "$out"
	fail "tj-service $* did not start"
}
start "$nsb" "$work/back.out" --role back --listen 10.78.0.2:$P --model epoll --work-us 100
back=$!
start "$nsa" "$work/front.out" --role front --listen 10.78.0.1:$P --model pool --workers 2 \
	--conn pool --pool-size 2 --call back=10.78.0.2:$P --work-us 100
front=$!
# 4 keepalive clients; the pool and their connections are used at once
ip netns exec "$nsa" "$bin/tj-load" --target 10.78.0.1:$P --requests 4000 --clients 4 \
	--rate 500 --seed 3 >"$work/load.out" 2>&1 &
load=$!
sleep 0.5

"$TJ" capture --hooks "$hooks" --netns --payload 256 --port $P -o "$work/cap" 2>"$work/capture.err" &
cap_pid=$!
for _ in $(seq 300); do grep -q recording "$work/capture.err" && break; sleep 0.05; done
grep -q recording "$work/capture.err" || { cat "$work/capture.err"; fail "capture did not start"; }
kill -0 $load 2>/dev/null || fail "the load ended before capture started: nothing predates it"

# A listener opened after capture start (its connections are seen from
# their accept), called, and closed before capture ends.
start "$nsb" "$work/back2.out" --role back2 --listen 10.78.0.3:$P --model thread --work-us 50
back2=$!
ip netns exec "$nsa" "$bin/tj-load" --target 10.78.0.3:$P --requests 30 --clients 2 --seed 4 \
	>"$work/load2.out" 2>&1 || { cat "$work/load2.out"; fail "second load"; }
kill -TERM $back2; wait $back2 || fail "back2 did not stop cleanly"

wait $load || { cat "$work/load.out"; fail "the load failed"; }
kill -TERM $front; wait $front
kill -TERM $back; wait $back
sleep 0.1
kill -INT "$cap_pid"; wait "$cap_pid"; rc=$?
cap_pid=
cat "$work/capture.err"
[ $rc -eq 0 ] || fail "capture exited $rc"
grep -q ' 0 lost' "$work/capture.err" || fail "events were lost"
grep -q 'start-up scan: ' "$work/capture.err" || fail "capture did not say what its start-up scan found"

log_a="$work/cap/node-$ino_a.evlog" log_b="$work/cap/node-$ino_b.evlog"
[ -f "$log_a" ] && [ -f "$log_b" ] || fail "logs: $(ls "$work/cap")"
"$TJ" dump --csv "$log_a" >"$work/a.csv" && "$TJ" dump --csv "$log_b" >"$work/b.csv" || fail "dump"
listeners() { awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
	$col["type"] == "listen" { print $col["laddr"] ":" $col["lport"] }' "$1" | sort | paste -sd' '; }
[ "$(listeners "$work/a.csv")" = "10.78.0.1:$P" ] || fail "node A's scan: $(listeners "$work/a.csv")"
[ "$(listeners "$work/b.csv")" = "10.78.0.2:$P" ] || fail "node B's scan: $(listeners "$work/b.csv")"
grep -q ",accept,ipv4,10.78.0.3,$P," "$work/b.csv" || fail "no accept on the listener opened during capture"

for l in "$log_a" "$log_b"; do
	"$TJ" info "$l" >"$work/info.txt" || fail "info $l"
	grep -q 'mid-stream .* 0 side unknown' "$work/info.txt" || { cat "$work/info.txt"; fail "$l: sockets of unknown side"; }
done
"$TJ" info "$log_a" | grep -q 'mid-stream  10 sockets open before capture: 4 server side, 6 client side' ||
	{ "$TJ" info "$log_a"; fail "node A: not 4 server (front) and 6 client (load, pool) sockets"; }
"$TJ" info "$log_b" | grep -q 'mid-stream  2 sockets open before capture: 2 server side, 0 client side' ||
	{ "$TJ" info "$log_b"; fail "node B: not 2 server sockets (the pool's far end)"; }

# only this test's two logs (other namespaces' traffic on port P, if any, is not ours)
mkdir "$work/mine" && cp "$log_a" "$log_b" "$work/mine/" || fail "copy"
"$TJ" label "$work/mine" -o "$work/ds" 2>"$work/label.err" || { cat "$work/label.err"; fail "label"; }
cat "$work/label.err"
calls=$(sed -n 's/.*); \([0-9]*\) calls: .*/\1/p' "$work/label.err")
labeled=$(sed -n 's/.* calls: \([0-9]*\) labeled .*/\1/p' "$work/label.err")
cut=$(sed -n 's/.*before capture: \([0-9]*\) first messages cut.*/\1/p' "$work/label.err")
unknown=$(sed -n 's/.* calls made for a cut request, \([0-9]*\) requests on sockets of unknown.*/\1/p' "$work/label.err")
[ -n "$calls" ] && [ "$calls" -gt 300 ] || fail "only ${calls:-no} calls recognised"
pcut=$(sed -n 's/.* \([0-9]*\) calls made for a cut request.*/\1/p' "$work/label.err")
[ $((labeled + ${pcut:-0})) = "$calls" ] || fail "labels incomplete: $labeled of $calls calls (${pcut:-0} for a cut request)"
[ "${pcut:-0}" -le 4 ] || fail "$pcut calls made for a cut request: more than one per front connection"
[ "$unknown" = 0 ] || fail "$unknown requests on sockets of unknown side"
# every request whose first bytes were seen is a call, but the cut ones:
# at most one per connection open before capture (4 load + 2 pool)
seen=0
for f in "$work/a.csv" "$work/b.csv"; do
	k=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
		$col["type"] == "send" && $col["payload_hex"] ~ /^(47455420|504f535420)/ { n++ } END { print n + 0 }' "$f")
	seen=$((seen + k))
done
[ $((seen - calls)) -ge 0 ] && [ $((seen - calls)) -le 6 ] ||
	fail "$seen requests begun during capture, $calls recognised as calls (cut: $cut)"
# Every client here sends a request and reads its response before the
# next: two requests on a socket with no receive between them mean a
# receive went unseen, and that socket's receive offsets are off from
# there on (hooks that recorded before all were attached, #17).
for f in "$work/a.csv" "$work/b.csv"; do
	gaps=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
		$col["bytes"] <= 0 { next }
		$col["type"] == "recv" { last[$col["sock"]] = "recv" }
		$col["type"] == "send" && $col["payload_hex"] ~ /^(47455420|504f535420)/ {
			if (last[$col["sock"]] == "request") { n++; print "socket " $col["sock"] " at " $col["ts_ns"] > "/dev/stderr" }
			last[$col["sock"]] = "request" }
		END { print n + 0 }' "$f")
	[ "$gaps" = 0 ] || fail "$f: $gaps requests follow another on their socket with no receive seen between"
done

"$TJ" correlate --algo metadata "$work/ds" -o "$work/edges.csv" 2>"$work/corr.err" || { cat "$work/corr.err"; fail "correlate"; }
"$TJ" score --json --labels "$work/ds/labels.csv" "$work/edges.csv" >"$work/score.json" || fail "score"
# Every call joins, but where the two ends' first messages differ: a
# call whose request the server end saw as its first message (cut there,
# so no request) finds no request at its offset; at most one per
# connection open before capture (4 load + 2 pool).
read -r jcalls joined nopeer amb miss skipped <<<"$(python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))["join"]
print(j["calls"], j["joined"], j["no_peer"], j["ambiguous"], j["offset_misses"], j["skipped"])' "$work/score.json")"
echo "join: $jcalls calls, $joined joined, $nopeer to uncaptured peers, $amb ambiguous, $miss offset misses, $skipped skipped"
[ "$jcalls" = "$calls" ] && [ "$nopeer" = 0 ] && [ "$amb" = 0 ] && [ "$skipped" = 0 ] &&
	[ "$miss" -le 6 ] && [ $((joined + miss)) = "$calls" ] ||
	fail "the node logs' keys do not join: $(cat "$work/score.json" | head -20)"
echo "ok: $calls calls recognised of $seen begun during capture ($cut cut by its start), $labeled labeled (${pcut:-0} made for a cut request), $joined joined across nodes $ino_a and $ino_b"
