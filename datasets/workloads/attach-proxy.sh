#!/usr/bin/env bash
# attach-proxy.sh: issue #16's case, as a new user tries it.  On one node
# (a fresh network namespace, loopback only): nginx with one worker and
# an upstream keepalive pool in front of a keepalive back end
# (tj-service), 8 tj-load clients on keepalive connections; one second
# after the load starts, `tracejoin capture --payload 256` (the node's
# processes only), until the load ends.  Then the figures: requests whose
# first bytes capture saw (sends that begin with an HTTP method), calls
# the replay recognised among them, and what label and the join make of
# them.  Needs root, BPF and nginx; exit 0 when >= 99% of those requests
# are recognised as calls, 1 if not, 77 where it cannot run.
#
#   attach-proxy.sh [--tj TRACEJOIN] [--requests N] [--keep DIR]
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
tj=$root/build/tracejoin requests=60000 keep=
while [ $# -gt 0 ]; do
	case $1 in
	--tj) tj=$2; shift 2 ;;
	--requests) requests=$2; shift 2 ;;
	--keep) keep=$2; shift 2 ;;
	-h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "attach-proxy.sh: unknown option $1" >&2; exit 2 ;;
	esac
done
bin=$(dirname "$tj")/datasets/workloads
[ -x "$tj" ] && [ -x "$bin/tj-service" ] && [ -x "$bin/tj-load" ] || { echo "attach-proxy.sh: build first (make)" >&2; exit 2; }
check=$("$tj" capture --check 2>&1); rc=$?
[ $rc -eq 77 ] && { echo "SKIPPED: $check"; exit 77; }
[ $rc -eq 0 ] || { echo "attach-proxy.sh: $check" >&2; exit 1; }
command -v nginx >/dev/null || { echo "SKIPPED: nginx is not installed"; exit 77; }

ns=tjap$$ work=${keep:-$(mktemp -d /tmp/tj-attach-proxy.XXXXXX)} cpid=
mkdir -p "$work/cap" "$work/nginx"
cleanup() {
	[ -n "$cpid" ] && kill "$cpid" 2>/dev/null
	for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
	ip netns del "$ns" 2>/dev/null
	[ -n "$keep" ] || rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$ns" 2>/dev/null || { echo "SKIPPED: cannot create a network namespace"; exit 77; }
ip -n "$ns" link set lo up

cat >"$work/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 512; }
http {
    access_log off;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    upstream up { server 127.0.0.1:8081; keepalive 8; }
    server {
        listen 127.0.0.1:8080;
        location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; }
    }
}
EOF
ip netns exec "$ns" "$bin/tj-service" --role back --listen 127.0.0.1:8081 --model epoll --work-us 50 >"$work/back.out" 2>&1 &
ip netns exec "$ns" nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log" >"$work/nginx.out" 2>&1 &
for _ in $(seq 100); do ip netns exec "$ns" ss -Hltn 'sport = :8080' | grep -q . && break; sleep 0.05; done
ip netns exec "$ns" "$bin/tj-load" --target 127.0.0.1:8080 --requests "$requests" --clients 8 --seed 16 >"$work/load.out" 2>&1 &
lpid=$!
sleep 1
pids=()
for p in $(ip netns pids "$ns"); do pids+=(--pid "$p"); done
"$tj" capture --payload 256 "${pids[@]}" --node 1 -o "$work/cap/node-1.evlog" 2>"$work/capture.err" &
cpid=$!
for _ in $(seq 300); do grep -q recording "$work/capture.err" && break; sleep 0.02; done
wait $lpid || { cat "$work/load.out"; echo "attach-proxy.sh: the load failed" >&2; exit 1; }
sleep 0.2
kill -INT $cpid; wait $cpid; cpid=
cat "$work/capture.err" "$work/load.out"

seen=$("$tj" dump --csv --type send "$work/cap/node-1.evlog" | awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
	$col["payload_hex"] ~ /^(47455420|504f535420)/ { n++ } END { print n + 0 }')
"$tj" correlate --algo metadata "$work/cap" -o "$work/edges-raw.csv" 2>&1 | grep '^correlate'
"$tj" label "$work/cap" -o "$work/ds" 2>&1 | tee "$work/label.err"
calls=$(sed -n 's/.*); \([0-9]*\) calls: .*/\1/p' "$work/label.err")
"$tj" correlate --algo metadata "$work/ds" -o "$work/edges.csv" 2>/dev/null
"$tj" score --labels "$work/ds/labels.csv" "$work/edges.csv" | grep -E '^logs|accuracy' | head -3
awk -v a="${calls:-0}" -v b="$seen" 'BEGIN {
	printf "attach-proxy.sh: %d requests begun after capture start, %d recognised as calls (%.2f%%)\n", b, a, b ? 100 * a / b : 0
	exit !(b > 0 && a >= 0.99 * b) }'
