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

base=$((21000 + $$ % 20000))
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

i=0
for model in thread pool epoll; do
	for conn in new pool shared; do
		i=$((i + 1))
		bp=$((base + 2 * i)) fp=$((base + 2 * i + 1))
		start "$work/b$i" --role back --listen 127.0.0.1:$bp --model $model --work-us 50
		bpid=${pids[-1]}
		start "$work/f$i" --role front --listen 127.0.0.1:$fp --model $model --conn $conn \
			--pool-size 2 --parallel --call b=127.0.0.1:$bp --call b=127.0.0.1:$bp --work-us 50
		fpid=${pids[-1]}
		"$bin/tj-load" --target 127.0.0.1:$fp --requests 40 --clients 4 --seed $i >"$work/l$i" ||
			{ cat "$work/l$i" "$work/f$i"; fail "$model/$conn: closed loop"; }
		"$bin/tj-load" --target 127.0.0.1:$fp --requests 20 --rate 400 --conn new >"$work/o$i" ||
			{ cat "$work/o$i"; fail "$model/$conn: open loop"; }
		(junk $fp) 2>/dev/null
		"$bin/tj-load" --target 127.0.0.1:$fp --requests 5 --clients 1 >/dev/null ||
			fail "$model/$conn: not serving after malformed requests"
		stop $fpid "$work/f$i"
		stop $bpid "$work/b$i"
		grep -q 'served 65 requests (0 without traceparent), made 130 calls (0 failed), 4 bad requests' "$work/f$i" ||
			{ cat "$work/f$i"; fail "$model/$conn: front counts"; }
		grep -q 'served 130 requests (0 without traceparent)' "$work/b$i" ||
			{ cat "$work/b$i"; fail "$model/$conn: back counts"; }
	done
done
# the M:N model with every policy, pipelining, idle-capped pools: the
# same counts; pipelined calls sent behind another are counted as joined
for combo in "mn new" "mn pool" "mn shared" "mn pipelined" "epoll pipelined" \
	"thread pool --idle-cap" "pool pool --idle-cap" "epoll pool --idle-cap" "mn pool --idle-cap"; do
	set -- $combo
	model=$1 conn=$2 extra=${3:-}
	i=$((i + 1))
	bp=$((base + 2 * i)) fp=$((base + 2 * i + 1))
	start "$work/b$i" --role back --listen 127.0.0.1:$bp --model epoll --work-us 50
	bpid=${pids[-1]}
	start "$work/f$i" --role front --listen 127.0.0.1:$fp --model $model --workers 3 --conn $conn \
		$extra --pool-size 1 --call b=127.0.0.1:$bp --call b=127.0.0.1:$bp --work-us 50
	fpid=${pids[-1]}
	"$bin/tj-load" --target 127.0.0.1:$fp --requests 60 --clients 8 --seed $i >"$work/l$i" ||
		{ cat "$work/l$i" "$work/f$i"; fail "$combo: closed loop"; }
	(junk $fp) 2>/dev/null
	"$bin/tj-load" --target 127.0.0.1:$fp --requests 5 --clients 1 >/dev/null ||
		fail "$combo: not serving after malformed requests"
	stop $fpid "$work/f$i"
	stop $bpid "$work/b$i"
	grep -q 'served 65 requests (0 without traceparent), made 130 calls (0 failed), 4 bad requests' "$work/f$i" ||
		{ cat "$work/f$i"; fail "$combo: front counts"; }
	grep -q 'served 130 requests (0 without traceparent)' "$work/b$i" ||
		{ cat "$work/b$i"; fail "$combo: back counts"; }
	j=$(sed -n 's/.* \([0-9]*\) calls joined.*/\1/p' "$work/f$i")
	if [ "$conn" = pipelined ]; then
		[ "${j:-0}" -gt 0 ] || { cat "$work/f$i"; fail "$combo: 8 clients, one connection, and no call pipelined behind another"; }
	else
		[ "$j" = 0 ] || { cat "$work/f$i"; fail "$combo: calls joined without pipelining"; }
	fi
done
echo "ok: 4 models x 3 policies, pipelining and idle-capped pools, closed and open loop, malformed requests refused"
