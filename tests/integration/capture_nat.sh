#!/usr/bin/env bash
# Calls through address translation (issue 19): a client namespace reaches
# a server namespace through a router namespace that rewrites addresses
# with nftables, as a Kubernetes Service or an L4 load balancer does:
#   dnat:      the client dials a virtual address, the router DNATs it to
#              the server (the server sees the client's own address);
#   dnat+snat: the router also masquerades the client's address.
# Each setup is captured with and without --tag (one log per namespace),
# and the cross-node join (correlate --traces) is counted against the
# workload's own count of requests (connections x requests each):
#   --tag: every call joined, by tag, in both setups;
#   no tag, dnat: every call joined by the client's address (fallback);
#   no tag, dnat+snat: none joined, and each call reported with a reason.
# Skipped, saying why, where BPF, --tag, namespaces or nft are missing.
set -u
TJ=${TJ:-build/asan/tracejoin}
progs=${TJ_PROGRAMS:-$(dirname "$TJ")/tests/programs}
. "$(dirname "$0")/lib.sh"
fail() { echo "FAIL: $*"; exit 1; }

need_capture --tag
command -v ip >/dev/null || { echo "SKIPPED: ip (iproute2) is not installed"; exit 77; }
command -v nft >/dev/null || { echo "SKIPPED: nft (nftables, make deps) is not installed"; exit 77; }

work=$(mktemp -d /tmp/tj-capture-nat.XXXXXX)
cli=tjnatC$$ mid=tjnatM$$ srv=tjnatS$$ cap_pid=
cleanup() {
	[ -n "$cap_pid" ] && kill "$cap_pid" 2>/dev/null && wait "$cap_pid" 2>/dev/null
	for ns in "$cli" "$mid" "$srv"; do ip netns del "$ns" 2>/dev/null; done
	[ -n "${TJ_KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

# 10.78.1.0/24 client side, 10.78.2.0/24 server side, 10.78.9.9 the
# virtual address: they exist only inside the namespaces made here.
for ns in "$cli" "$mid" "$srv"; do
	ip netns add "$ns" || { echo "SKIPPED: cannot create network namespaces"; exit 77; }
	ip -n "$ns" link set lo up
done
ip link add "tjnc$$" netns "$cli" type veth peer name "tjnm$$" netns "$mid" || fail "veth cli"
ip link add "tjns$$" netns "$srv" type veth peer name "tjno$$" netns "$mid" || fail "veth srv"
ip -n "$cli" addr add 10.78.1.2/24 dev "tjnc$$" && ip -n "$cli" link set "tjnc$$" up &&
	ip -n "$cli" route add default via 10.78.1.1 || fail "namespace $cli setup"
ip -n "$srv" addr add 10.78.2.2/24 dev "tjns$$" && ip -n "$srv" link set "tjns$$" up &&
	ip -n "$srv" route add default via 10.78.2.1 || fail "namespace $srv setup"
ip -n "$mid" addr add 10.78.1.1/24 dev "tjnm$$" && ip -n "$mid" link set "tjnm$$" up &&
	ip -n "$mid" addr add 10.78.2.1/24 dev "tjno$$" && ip -n "$mid" link set "tjno$$" up ||
	fail "namespace $mid setup"
ip netns exec "$mid" sysctl -qw net.ipv4.ip_forward=1 || fail "forwarding in $mid"
ino_c=$(stat -L -c %i "/run/netns/$cli") ino_s=$(stat -L -c %i "/run/netns/$srv")
port=7781 conns=4 reqs=5
want=$((conns * reqs))

# nat_rules SNAT(0|1): the router's ruleset, replacing the last one.
nat_rules() {
	local snat=""
	[ "$1" = 1 ] && snat="oifname \"tjno$$\" masquerade;"
	ip netns exec "$mid" nft -f - <<NFT || fail "nft in $mid"
flush ruleset
table ip tjnat {
	chain pre { type nat hook prerouting priority -100; ip daddr 10.78.9.9 tcp dport $port dnat to 10.78.2.2:$port; }
	chain post { type nat hook postrouting priority 100; $snat }
}
NFT
}

# run_case NAME SNAT(0|1) TAG(0|1): capture one workload; its join line
# in $work/NAME.join, the traces in $work/NAME.traces.
run_case() {
	local name=$1 tag=""
	[ "$3" = 1 ] && tag=--tag
	nat_rules "$2"
	"$TJ" capture $tag --netns --port $port -o "$work/$name" 2>"$work/$name.capture" &
	cap_pid=$!
	for _ in $(seq 200); do grep -q recording "$work/$name.capture" && break; sleep 0.1; done
	grep -q recording "$work/$name.capture" || { cat "$work/$name.capture"; fail "$name: capture did not start"; }
	# The server listens after capture started: its SYNs are kept (--tag).
	ip netns exec "$srv" "$progs/tcp-pingpong" server -a 10.78.2.2 -p $port -c $conns >"$work/$name.server" &
	local srvpid=$!
	for _ in $(seq 100); do grep -q '^port' "$work/$name.server" && break; sleep 0.05; done
	ip netns exec "$cli" "$progs/tcp-pingpong" client -a 10.78.9.9 -p $port -c $conns -r $reqs \
		>"$work/$name.client" || fail "$name: client failed"
	wait $srvpid || fail "$name: server failed"
	[ "$(grep -c '^connect' "$work/$name.client")" -eq $conns ] || fail "$name: the client did not make $conns connections"
	kill -INT "$cap_pid"
	wait "$cap_pid" || fail "$name: capture failed: $(cat "$work/$name.capture")"
	cap_pid=
	grep -q ' 0 lost' "$work/$name.capture" || fail "$name: events were lost"
	local lc="$work/$name/node-$ino_c.evlog" ls="$work/$name/node-$ino_s.evlog"
	[ -s "$lc" ] && [ -s "$ls" ] || fail "$name: no log for $cli or $srv: $(ls "$work/$name")"
	"$TJ" correlate --algo metadata --traces "$lc" "$ls" >"$work/$name.traces" 2>"$work/$name.err" ||
		fail "$name: correlate: $(cat "$work/$name.err")"
	grep '^# .* trees; join:' "$work/$name.traces" >"$work/$name.join" || fail "$name: no join line"
	echo "$name: $(sed 's/^# [0-9]* trees; //' "$work/$name.join")"
	[ "$3" = 1 ] && grep -- '--tag:' "$work/$name.capture"
	return 0
}

# expect NAME JOINED BY_TAG BY_ADDR UNJOINED
expect() {
	local j="$work/$1.join"
	grep -q "join: $2 of $want calls joined across nodes ($3 by capture --tag, $4 by client address" "$j" ||
		fail "$1: want $2 of $want joined ($3 by tag, $4 by address): $(cat "$j")"
	local n
	n=$(grep -c '^# unjoined' "$work/$1.traces")
	[ "$n" -eq "$5" ] || fail "$1: $n calls reported unjoined, want $5"
}

run_case dnat-tag 0 1
expect dnat-tag $want $want 0 0
grep -q "$conns SYNs tagged" "$work/dnat-tag.capture" || fail "dnat-tag: SYN count: $(cat "$work/dnat-tag.capture")"
# A TAG per accepted connection, in the server's log only.
[ "$("$TJ" dump --type tag "$work/dnat-tag/node-$ino_s.evlog" | grep -c ' tag ')" -eq $conns ] ||
	fail "dnat-tag: want $conns tag events in the server's log"

run_case dnat-notag 0 0
expect dnat-notag $want 0 $want 0

run_case snat-tag 1 1
expect snat-tag $want $want 0 0

run_case snat-notag 1 0
expect snat-notag 0 0 0 $want
grep '^# unjoined' "$work/snat-notag.traces" | grep -qv 'no captured server end' &&
	fail "snat-notag: an unjoined call with another reason: $(grep '^# unjoined' "$work/snat-notag.traces" | head -3)"

echo "capture_nat: all checks passed"
