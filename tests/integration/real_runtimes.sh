#!/usr/bin/env bash
# The real-runtime workload services alone, on loopback (no BPF, no root):
# tj-node-service.js (Node.js) and tj-go-service (Go) refuse bad options
# with exit 2 and a message naming the option; chained on loopback
# (tj-load -> node gateway, chained calls -> go catalog, parallel calls ->
# tj-service store) they answer every request, propagate traceparent (no
# downstream sees a request without one), survive malformed requests, and
# print their counts and exit 0 on SIGTERM.  Skipped where node or the Go
# service is missing (golang-go not installed).
set -u
. "$(dirname "$0")/lib.sh"
TJ=${TJ:-build/asan/tracejoin}
root=${TJ_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=$(dirname "$TJ")/datasets/workloads
node_svc=$root/datasets/workloads/tj-node-service.js
go_svc=$bin/tj-go-service
[ -x "$bin/tj-service" ] && [ -x "$bin/tj-load" ] || fail "no workload programs in $bin"
command -v node >/dev/null || skip "node is not installed (apt-get install nodejs)"
[ -x "$go_svc" ] || skip "no $go_svc (golang-go is not installed: apt-get install golang-go, then make)"
work=$(mktemp -d /tmp/tj-runtimes.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# bad options: exit 2, the message names what was wrong
refused() { # pattern command...: exit 2 and a message matching pattern
	local pat=$1 err rc
	shift
	err=$("$@" 2>&1 >/dev/null); rc=$?
	[ $rc -eq 2 ] || fail "'$*' exited $rc, want 2: $err"
	grep -q -- "$pat" <<<"$err" || fail "'$*': message does not name '$pat': $err"
}
for svc in "node $node_svc" "$go_svc"; do
	refused '--role and --listen' $svc --role x
	refused '--listen' $svc --role x --listen 127.0.0.1:99999
	refused '--listen' $svc --role x --listen localhost:80
	refused '--call' $svc --role x --listen 127.0.0.1:1 --call nobody
	refused '--call' $svc --role x --listen 127.0.0.1:1 --call a=1.2.3.4
	refused '--calls' $svc --role x --listen 127.0.0.1:1 --calls fibers
	refused '--work-us' $svc --role x --listen 127.0.0.1:1 --work-us -5
	refused '--resp-bytes' $svc --role x --listen 127.0.0.1:1 --resp-bytes 70000
	refused '--bogus' $svc --role x --listen 127.0.0.1:1 --bogus
	refused '--seed' $svc --role x --listen 127.0.0.1:1 --seed
	refused "'stray'" $svc --role x --listen 127.0.0.1:1 stray
	$svc --help | grep -q -- '--calls chain|parallel' || fail "$svc --help"
done
refused '--max-sockets' node "$node_svc" --role x --listen 127.0.0.1:1 --max-sockets 0
refused '--max-conns' "$go_svc" --role x --listen 127.0.0.1:1 --max-conns 0
refused '--threads' "$go_svc" --role x --listen 127.0.0.1:1 --threads 65

base=$((23000 + $$ % 20000))
start() { # name out-file command...
	local name=$1 out=$2; shift 2
	"$@" >"$out" 2>&1 &
	pids+=($!)
	for _ in $(seq 200); do grep -q listening "$out" && return 0; sleep 0.05; done
	cat "$out"; fail "$name did not start"
}
stop() { # pid out-file: SIGTERM, exit 0, counts printed
	kill -TERM "$1"; wait "$1" || { cat "$2"; fail "$2: exited non-zero after SIGTERM"; }
	grep -q 'served .* made .* calls' "$2" || { cat "$2"; fail "$2: no counts line"; }
	grep -q 'Sanitizer\|runtime error\|panic' "$2" && { cat "$2"; fail "$2: crash report"; }
	return 0
}
start store "$work/store.out" "$bin/tj-service" --role store --listen 127.0.0.1:$base --model epoll --work-us 100
p_store=${pids[-1]}
start catalog "$work/catalog.out" "$go_svc" --role catalog --listen 127.0.0.1:$((base + 1)) \
	--calls parallel --max-conns 2 --threads 2 --work-us 100 \
	--call store=127.0.0.1:$base --call store=127.0.0.1:$base
p_cat=${pids[-1]}
start gateway "$work/gateway.out" node "$node_svc" --role gateway --listen 127.0.0.1:$((base + 2)) \
	--calls chain --max-sockets 2 --work-us 50 \
	--call catalog=127.0.0.1:$((base + 1)) --call store=127.0.0.1:$base
p_gw=${pids[-1]}

# malformed requests: answered or closed, never fatal
trap '' PIPE
for port in $((base + 1)) $((base + 2)); do
	{ printf 'HELLO\r\n\r\n' >&3; timeout 5 cat <&3 >/dev/null; } 3<>/dev/tcp/127.0.0.1/$port
	{ printf 'GET / HTTP/1.1\r\nContent-Length: -4\r\n\r\n' >&3; timeout 5 cat <&3 >/dev/null; } 3<>/dev/tcp/127.0.0.1/$port
done

"$bin/tj-load" --target 127.0.0.1:$((base + 2)) --requests 200 --clients 4 --seed 3 --max-seconds 30 \
	>"$work/load.out" 2>&1 || { cat "$work/load.out"; fail "tj-load through node and go"; }
grep -q 'completed 200 of 200' "$work/load.out" || fail "not every request completed: $(cat "$work/load.out")"
stop $p_gw "$work/gateway.out"
stop $p_cat "$work/catalog.out"
stop $p_store "$work/store.out"
cat "$work/gateway.out" "$work/catalog.out" "$work/store.out"
grep -q 'served 200 requests (0 without traceparent), made 400 calls (0 failed)' "$work/gateway.out" ||
	fail "node gateway: not 2 calls for each of 200 requests"
grep -q 'served 200 requests (0 without traceparent), made 400 calls (0 failed)' "$work/catalog.out" ||
	fail "go catalog: not 2 calls for each of 200 requests, or traceparent lost"
grep -q 'served 600 requests (0 without traceparent)' "$work/store.out" ||
	fail "store: not 600 requests all with traceparent"
grep -q ', [1-9][0-9]* bad requests' "$work/gateway.out" || fail "node gateway did not count the malformed requests"
echo "ok: node and go services refuse bad options, serve, propagate, survive junk"
