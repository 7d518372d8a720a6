#!/usr/bin/env bash
# The workload programs alone, on loopback (no BPF, no root): for each
# concurrency model and connection policy, tj-service answers tj-load's
# requests (closed and open loop) through a downstream, refuses malformed
# requests (bad request line, a head over 8 KiB, a bad Content-Length,
# bytes then EOF) without falling over, counts them, and exits 0 on
# SIGTERM with no sanitizer report.  Bad options exit 2.
set -u
. "$(dirname "$0")/lib.sh"
TJ=${TJ:-build/asan/tracejoin}
bin=$(dirname "$TJ")/datasets/workloads
[ -x "$bin/tj-service" ] && [ -x "$bin/tj-load" ] || fail "no workload programs in $bin"
work=$(mktemp -d /tmp/tj-workloads.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

expect_exit 2 "$bin/tj-service" --role x
expect_exit 2 "$bin/tj-service" --role x --listen 127.0.0.1:99999
expect_exit 2 "$bin/tj-service" --role x --listen 127.0.0.1:1 --model fibers
expect_exit 2 "$bin/tj-service" --role x --listen 127.0.0.1:1 --call nobody
expect_exit 2 "$bin/tj-service" --role x --listen 127.0.0.1:1 --pool-size 0
expect_exit 2 "$bin/tj-service" --role x --listen 127.0.0.1:1 --bogus
expect_exit 2 "$bin/tj-service" --role x --listen 127.0.0.1:1 --idle-cap
expect_exit 2 "$bin/tj-service" --role x --listen 127.0.0.1:1 --conn shared --idle-cap
expect_exit 2 "$bin/tj-service" --role x --listen 127.0.0.1:1 --conn pipelined
expect_exit 2 "$bin/tj-service" --role x --listen 127.0.0.1:1 --model pool --conn pipelined
expect_exit 2 "$bin/tj-service" --role x --listen 127.0.0.1:1 --model mn --workers 0
expect_exit 2 "$bin/tj-service" --role x --listen 127.0.0.1:1 --conn piped
"$bin/tj-service" --role x --listen 127.0.0.1:1 --conn pipelined 2>&1 | grep -q 'needs --model epoll or mn' ||
	fail "tj-service --conn pipelined with a blocking model: no reason given"
"$bin/tj-service" --role x --listen 127.0.0.1:1 --idle-cap 2>&1 | grep -q 'idle-cap needs --conn pool' ||
	fail "tj-service --idle-cap without a pool: no reason given"
expect_exit 2 "$bin/tj-load"
expect_exit 2 "$bin/tj-load" --target 127.0.0.1:1 --requests 0
expect_exit 2 "$bin/tj-load" --target 127.0.0.1:1 --rate -5
expect_exit 2 "$bin/tj-load" --target localhost:80
"$bin/tj-service" --help | grep -q -- '--model' || fail "tj-service --help"
"$bin/tj-load" --help | grep -q -- '--rate' || fail "tj-load --help"

base=$((21000 + $$ % 10000)) # below the ephemeral ports (32768-60999) clients take
start() { # out-file args...
	local out=$1; shift
	"$bin/tj-service" "$@" >"$out" 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do grep -q listening "$out" && return 0; sleep 0.05; done
	cat "$out"; fail "tj-service $* did not start"
}
stop() { # pid out-file: SIGTERM, exit 0, no sanitizer report
	kill -TERM "$1"; wait "$1" || { cat "$2"; fail "tj-service exited non-zero after SIGTERM"; }
	grep -q 'Sanitizer\|runtime error' "$2" && { cat "$2"; fail "sanitizer report"; }
	return 0
}
junk() { # port: four malformed requests, each on its own connection
	local port=$1 big
	big=$(head -c 9000 /dev/zero | tr '\0' 'a')
	trap '' PIPE # the service may close before the oversized head is written
	{ printf 'HELLO\r\n\r\n' >&3; cat <&3 >/dev/null; } 3<>/dev/tcp/127.0.0.1/$port
	{ printf 'GET / HTTP/1.1\r\nX: %s\r\n\r\n' "$big" >&3; cat <&3 >/dev/null; } 3<>/dev/tcp/127.0.0.1/$port
	{ printf 'GET / HTTP/1.1\r\nContent-Length: -4\r\n\r\n' >&3; cat <&3 >/dev/null; } 3<>/dev/tcp/127.0.0.1/$port
	{ printf 'GET / HTTP/1.1\r\nHost: x' >&3; } 3<>/dev/tcp/127.0.0.1/$port
	sleep 0.2
}

# pair NAME BACK-MODEL CLIENTS FRONT-OPTIONS...: a back end and a front
# calling it twice per request; 40 requests in a closed loop of CLIENTS,
# 20 in an open loop, malformed ones, 5 more; both exit clean on SIGTERM
# with the counts every request accounts for.  Sets $joined (the front's
# pipelined calls written in the message of the call before).
i=0
pair() {
	local name=$1 back=$2 clients=$3 bp fp bpid fpid
	shift 3
	i=$((i + 1))
	bp=$((base + 2 * i)) fp=$((base + 2 * i + 1))
	start "$work/b$i" --role back --listen 127.0.0.1:$bp --model $back --work-us 50
	bpid=${pids[-1]}
	start "$work/f$i" --role front --listen 127.0.0.1:$fp "$@" \
		--call b=127.0.0.1:$bp --call b=127.0.0.1:$bp --work-us 50
	fpid=${pids[-1]}
	"$bin/tj-load" --target 127.0.0.1:$fp --requests 40 --clients $clients --seed $i >"$work/l$i" ||
		{ cat "$work/l$i" "$work/f$i"; fail "$name: closed loop"; }
	"$bin/tj-load" --target 127.0.0.1:$fp --requests 20 --rate 400 --conn new >"$work/o$i" ||
		{ cat "$work/o$i"; fail "$name: open loop"; }
	(junk $fp) 2>/dev/null
	"$bin/tj-load" --target 127.0.0.1:$fp --requests 5 --clients 1 >/dev/null ||
		fail "$name: not serving after malformed requests"
	stop $fpid "$work/f$i"
	stop $bpid "$work/b$i"
	grep -q 'served 65 requests (0 without traceparent), made 130 calls (0 failed), 4 bad requests' "$work/f$i" ||
		{ cat "$work/f$i"; fail "$name: front counts"; }
	grep -q 'served 130 requests (0 without traceparent)' "$work/b$i" ||
		{ cat "$work/b$i"; fail "$name: back counts"; }
	joined=$(sed -n 's/.* \([0-9]*\) calls joined.*/\1/p' "$work/f$i")
}

for model in thread pool epoll; do
	for conn in new pool shared; do
		pair "$model/$conn" $model 4 --model $model --conn $conn --pool-size 2 --parallel
		[ "$joined" = 0 ] || fail "$model/$conn: $joined calls joined without pipelining"
	done
done
# the M:N model with every policy, pipelining, idle-capped pools (calls in
# turn: the second written from the first one's reply); pipelined calls
# sent behind another are counted as joined, and only they
for combo in "mn new" "mn pool" "mn shared" "mn pipelined" "epoll pipelined" \
	"thread pool --idle-cap" "pool pool --idle-cap" "epoll pool --idle-cap" "mn pool --idle-cap"; do
	set -- $combo
	pair "$combo" epoll 8 --model $1 --workers 3 --conn $2 ${3:-} --pool-size 1
	if [ "$2" = pipelined ]; then
		[ "${joined:-0}" -gt 0 ] || fail "$combo: 8 clients, one connection, and no call pipelined behind another"
	else
		[ "$joined" = 0 ] || fail "$combo: $joined calls joined without pipelining"
	fi
done
echo "ok: 4 models x 3 policies, pipelining and idle-capped pools, closed and open loop, malformed requests refused"
