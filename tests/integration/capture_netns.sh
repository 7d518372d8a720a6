#!/usr/bin/env bash
# capture --netns: two network namespaces joined by a veth pair, a client
# in one and a server in the other, captured machine-wide with one log per
# namespace.  Each log must hold only its side, and every message (a run
# of bytes in one direction) of the client must join a message of the
# server by reversed addresses and ports, stream offset and size, and the
# other way round.  Also checks that SIGINT leaves complete logs.
# TJ_CAPTURE_HOOKS picks capture's hooks (sock by default; the
# *_syscalls test runs this one with syscalls).
# Skipped where BPF cannot be loaded; must run as root here.
set -u
TJ=${TJ:-build/asan/tracejoin}
hooks=${TJ_CAPTURE_HOOKS:-sock}
. "$(dirname "$0")/lib.sh"

need_capture --hooks "$hooks"
command -v ip >/dev/null || { echo "SKIPPED: ip (iproute2) is not installed"; exit 77; }

work=$(mktemp -d /tmp/tj-capture-netns.XXXXXX)
nsa=tjcapA$$ nsb=tjcapB$$ cap_pid=
cleanup() {
	[ -n "$cap_pid" ] && kill "$cap_pid" 2>/dev/null && wait "$cap_pid" 2>/dev/null
	ip netns del "$nsa" 2>/dev/null
	ip netns del "$nsb" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

# 10.77.0.0/24 lives only on this veth pair, inside namespaces made here.
ip netns add "$nsa" && ip netns add "$nsb" || { echo "SKIPPED: cannot create network namespaces"; exit 77; }
ip link add "tjva$$" netns "$nsa" type veth peer name "tjvb$$" netns "$nsb" || fail "veth"
ip -n "$nsa" addr add 10.77.0.1/24 dev "tjva$$" && ip -n "$nsa" link set "tjva$$" up &&
	ip -n "$nsa" link set lo up || fail "namespace $nsa setup"
ip -n "$nsb" addr add 10.77.0.2/24 dev "tjvb$$" && ip -n "$nsb" link set "tjvb$$" up &&
	ip -n "$nsb" link set lo up || fail "namespace $nsb setup"
ino_a=$(stat -L -c %i "/run/netns/$nsa") ino_b=$(stat -L -c %i "/run/netns/$nsb")
port=7700 conns=3 reqs=5

"$TJ" capture --hooks "$hooks" --netns --port $port -o "$work/logs" 2>"$work/capture.err" &
cap_pid=$!
for _ in $(seq 200); do grep -q recording "$work/capture.err" && break; sleep 0.1; done
grep -q recording "$work/capture.err" || { cat "$work/capture.err"; fail "capture did not start"; }

ip netns exec "$nsb" "$progs/tcp-pingpong" server -a 10.77.0.2 -p $port -c $conns >"$work/server.txt" &
srv=$!
for _ in $(seq 100); do grep -q '^port' "$work/server.txt" && break; sleep 0.05; done
ip netns exec "$nsa" "$progs/tcp-pingpong" client -a 10.77.0.2 -p $port -c $conns -r $reqs \
	>"$work/client.txt" || fail "client failed"
wait $srv || fail "server failed"

kill -INT "$cap_pid"
wait "$cap_pid"; rc=$?
cap_pid=
cat "$work/capture.err"
[ $rc -eq 0 ] || fail "capture exited $rc after SIGINT"
grep -q ' 0 lost' "$work/capture.err" || fail "events were lost"

log_a="$work/logs/node-$ino_a.evlog" log_b="$work/logs/node-$ino_b.evlog"
[ -f "$log_a" ] || fail "no log for namespace $nsa ($log_a); have: $(ls "$work/logs")"
[ -f "$log_b" ] || fail "no log for namespace $nsb ($log_b)"
"$TJ" dump --csv "$log_a" >"$work/a.csv" || fail "dump $log_a"
"$TJ" dump --csv "$log_b" >"$work/b.csv" || fail "dump $log_b"

count() { awk -F, -v t="$2" 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
	$col["type"] == t { n++ } END { print n + 0 }' "$1"; }
[ "$(count "$work/a.csv" connect)" -eq $conns ] || fail "client node: not $conns connects"
[ "$(count "$work/a.csv" accept)" -eq 0 ] || fail "client node has accepts"
[ "$(count "$work/b.csv" accept)" -eq $conns ] || fail "server node: not $conns accepts"
[ "$(count "$work/b.csv" connect)" -eq 0 ] || fail "server node has connects"
awk -F, -v n="$ino_a" 'NR > 1 && $2 != n { bad = 1 } END { exit bad }' "$work/a.csv" ||
	fail "client log events do not carry node $ino_a"

# Messages of a log: maximal runs of one direction on one socket, named
# by the connection as seen from the peer (reversed), offset and size.
# "peer" prints them from the other side's point of view, so the client's
# out messages must equal the server's in messages, and so on.
messages() {
	awk -F, -v flip="$2" '
	NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
	($col["type"] == "send" || $col["type"] == "recv") && $col["bytes"] > 0 {
		s = $col["sock"]; d = ($col["type"] == "send") ? "out" : "in"
		if (cur[s] != d) {
			if (cur[s] != "") print key[s], size[s]
			cur[s] = d; size[s] = 0
			l = $col["laddr"] ":" $col["lport"]; r = $col["raddr"] ":" $col["rport"]
			if (flip) key[s] = (d == "out" ? "in" : "out") " " r " " l " " $col["offset"]
			else key[s] = d " " l " " r " " $col["offset"]
		}
		size[s] += $col["bytes"]
	}
	END { for (s in cur) print key[s], size[s] }' "$1" | sort
}
messages "$work/a.csv" 0 >"$work/a.msgs"
messages "$work/b.csv" 1 >"$work/b.msgs"
nmsg=$(wc -l <"$work/a.msgs")
[ "$nmsg" -eq $((conns * reqs * 2)) ] || fail "client: $nmsg messages, expected $((conns * reqs * 2))"
grep -q '^out 10.77.0.1:[0-9]* 10.77.0.2:7700 0 ' "$work/a.msgs" || fail "client messages lack addresses"
if ! diff "$work/a.msgs" "$work/b.msgs" >"$work/diff.txt"; then
	head -20 "$work/diff.txt"
	fail "client and server messages do not join (< client, > server as seen by the client)"
fi
echo "ok: $nmsg messages joined across nodes $ino_a and $ino_b"
