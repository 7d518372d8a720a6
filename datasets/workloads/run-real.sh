#!/usr/bin/env bash
# run-real.sh: one labeled real capture.  Every node of a workload config
# runs in its own network namespace, all joined by veth pairs to a bridge
# in a hub namespace (so each call crosses a real link between two
# nodes); `tracejoin capture --netns --payload 256 -- ...` records every
# node while the load generator sends a fixed number of requests; then
# `tracejoin label` writes the dataset.  Needs root and BPF.
#
#   run-real.sh --config FILE --name NAME --out DATASET_DIR [--tj TRACEJOIN]
#               [--bin WORKLOADS_DIR] [--work DIR] [--keep-capture] [--attach]
#               [--seed-shift N]
#
# --seed-shift N: the load generator's --seed S becomes S + N (its default
# seed 1 when the config gives none), so a held-out capture can use another
# request sequence; 0 (the default) runs the config as written.  The
# manifest's node args carry the seed used.
#
# --attach: capture is started on the running services instead (only
# their processes: --pid), while a reference capture of the same run from
# its start is labeled into OUT-from-start; after the load has run for ATTACH_WARM_S
# seconds (default 0.5: every pool warm), with the load's --requests
# multiplied by ATTACH_MULT (default 2 for an open loop, 8 for a closed
# one) so that most of it comes after, for at most ATTACH_MAX_S seconds
# (default 20; requests not sent by then are no failure, errors are);
# the connections it sees predate it.  The
# workload's own totals include the calls before capture, so instead of
# them the check is: every call the capture recognises is labeled (but
# those made for a request cut by capture start, whose parent is not a
# request), and the recognised calls are at least 99% of the requests
# whose first bytes the capture saw (sends that begin with an HTTP method).
#
# Config: one node per line (# comments):
#   node NAME service TJ-SERVICE-OPTIONS   (--call PEER names another node)
#   node NAME nginx UPSTREAM KEEPALIVE [AUTH] (reverse proxy, keepalive
#        pools; with AUTH an auth_request subrequest to AUTH first, then
#        the request to UPSTREAM from the subrequest's completion)
#   node NAME nodejs TJ-NODE-SERVICE-OPTIONS (Node.js event loop, keepalive agent)
#   node NAME go TJ-GO-SERVICE-OPTIONS     (Go net/http, M:N scheduler)
#   node NAME load TJ-LOAD-OPTIONS         (--target PEER; exactly one)
#   uncaptured NAME                        (that node runs but its log is left
#                                          out: a service outside the captured
#                                          set; calls to it keep their labels)
# Prints the counts of the load generator and services, and checks that
# the labels cover every call they made: exit 0 when they do, 1 if not,
# 77 (with "SKIPPED: reason") where BPF, namespaces, nginx, node or the
# Go service (built only where golang-go is installed) are missing.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
tj=$root/build/tracejoin bin= config= name= out= work= keep=0 attach=0 seed_shift=0
while [ $# -gt 0 ]; do
	case $1 in
	--tj) tj=$2; shift 2 ;;
	--bin) bin=$2; shift 2 ;;
	--config) config=$2; shift 2 ;;
	--name) name=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--work) work=$2; shift 2 ;;
	--keep-capture) keep=1; shift ;;
	--attach) attach=1; shift ;;
	--seed-shift) seed_shift=${2:-}; shift 2 ;;
	-h|--help) sed -n '2,46p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "run-real.sh: unknown option $1" >&2; exit 2 ;;
	esac
done
[ -n "$config" ] && [ -n "$name" ] && [ -n "$out" ] || { echo "run-real.sh: --config, --name and --out are required" >&2; exit 2; }
[ -f "$config" ] || { echo "run-real.sh: $config: no such file" >&2; exit 2; }
case $seed_shift in ''|*[!0-9]*) echo "run-real.sh: --seed-shift '$seed_shift': expected a whole number >= 0" >&2; exit 2 ;; esac
[ ${#seed_shift} -le 9 ] || { echo "run-real.sh: --seed-shift '$seed_shift': too large" >&2; exit 2; }
bin=${bin:-$(dirname "$tj")/datasets/workloads}
[ -x "$bin/tj-service" ] && [ -x "$bin/tj-load" ] || { echo "run-real.sh: no tj-service/tj-load in $bin (make first)" >&2; exit 2; }
[ -x "$tj" ] || { echo "run-real.sh: $tj: not found (make first)" >&2; exit 2; }
tj=$(realpath "$tj") bin=$(realpath "$bin")

check=$("$tj" capture --check 2>&1); rc=$?
if [ $rc -eq 77 ]; then echo "SKIPPED: $check"; exit 77; fi
[ $rc -eq 0 ] || { echo "run-real.sh: capture --check: $check" >&2; exit 1; }
command -v ip >/dev/null || { echo "SKIPPED: ip (iproute2) is not installed"; exit 77; }

# ---- the config ----
names=() kinds=() args=() uncaptured=()
while read -r kw n k rest; do
	case $kw in ''|'#'*) continue ;; esac
	if [ "$kw" = uncaptured ]; then uncaptured+=("$n"); continue; fi
	[ "$kw" = node ] || { echo "run-real.sh: $config: expected 'node NAME KIND ...' or 'uncaptured NAME', got '$kw'" >&2; exit 2; }
	case $k in service|nginx|load|nodejs|go) ;; *) echo "run-real.sh: $config: node $n: unknown kind '$k'" >&2; exit 2 ;; esac
	if [ "$k" = load ] && [ "$seed_shift" -ne 0 ]; then
		# --seed S -> --seed S+N; tj-load's default seed is 1
		case " $rest " in *" --seed "*) ;; *) rest="$rest --seed 1" ;; esac
		rest=$(echo "$rest" | awk -v d="$seed_shift" '{ for (k = 2; k <= NF; k++)
			if ($(k - 1) == "--seed") $k = $k + d; print }')
	fi
	names+=("$n") kinds+=("$k") args+=("$rest")
done <"$config"
n=${#names[@]}
[ "$n" -ge 2 ] && [ "$n" -le 40 ] || { echo "run-real.sh: $config: 2 to 40 nodes, not $n" >&2; exit 2; }
loads=0
for k in "${kinds[@]}"; do [ "$k" = load ] && loads=$((loads + 1)); done
[ $loads -eq 1 ] || { echo "run-real.sh: $config: exactly one load node, not $loads" >&2; exit 2; }
for k in "${kinds[@]}"; do
	if [ "$k" = nginx ] && ! command -v nginx >/dev/null; then
		echo "SKIPPED: nginx is not installed (apt-get install nginx)"; exit 77
	fi
	if [ "$k" = nodejs ] && ! command -v node >/dev/null; then
		echo "SKIPPED: node is not installed (apt-get install nodejs)"; exit 77
	fi
	if [ "$k" = go ] && [ ! -x "$bin/tj-go-service" ]; then
		echo "SKIPPED: no $bin/tj-go-service (golang-go is not installed: apt-get install golang-go, then make)"; exit 77
	fi
done
ip_of() { # node name -> its address
	local i
	for i in "${!names[@]}"; do
		[ "${names[$i]}" = "$1" ] && { echo "10.79.$subnet.$((i + 2))"; return 0; }
	done
	echo "run-real.sh: $config: no node named '$1'" >&2
	return 1
}
# --call NAME -> --call NAME=ADDR:8080; --target NAME -> --target ADDR:8080
resolve() {
	local out_args=() prev= a
	for a in $1; do
		if [ "$prev" = --call ]; then a="$a=$(ip_of "$a"):8080" || return 1
		elif [ "$prev" = --target ]; then a="$(ip_of "$a"):8080" || return 1
		fi
		out_args+=("$a") prev=$a
	done
	echo "${out_args[*]}"
}

# ---- namespaces ----
id=$$
subnet=$((id % 200 + 20))
work=${work:-$(mktemp -d /tmp/tj-real.XXXXXX)}
mkdir -p "$work"
cap=$work/capture
hub=tjrh$id
nss=()
cleanup() {
	local ns pid
	for ns in "${nss[@]}" "$hub"; do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
		ip netns del "$ns" 2>/dev/null
	done
	[ $keep -eq 1 ] || rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$hub" 2>/dev/null || { echo "SKIPPED: cannot create network namespaces"; exit 77; }
ip -n "$hub" link add br0 type bridge && ip -n "$hub" link set br0 up && ip -n "$hub" link set lo up ||
	{ echo "run-real.sh: bridge in $hub" >&2; exit 1; }
for i in "${!names[@]}"; do
	ns=tjr$id-$i
	ip netns add "$ns" || { echo "run-real.sh: netns $ns" >&2; exit 1; }
	nss+=("$ns")
	ip link add "tjrv$i-$id" netns "$ns" type veth peer name "tjrh$i-$id" netns "$hub" &&
		ip -n "$hub" link set "tjrh$i-$id" master br0 up &&
		ip -n "$ns" addr add "10.79.$subnet.$((i + 2))/24" dev "tjrv$i-$id" &&
		ip -n "$ns" link set "tjrv$i-$id" up && ip -n "$ns" link set lo up ||
		{ echo "run-real.sh: veth of node ${names[$i]}" >&2; exit 1; }
done

# ---- the inner script: run under capture, which follows its children ----
inner=$work/inner.sh
{
	echo 'set -u'
	echo 'pids=() fail=0'
	echo "cd '$work'"
	for i in "${!names[@]}"; do
		ns=${nss[$i]} nm=${names[$i]} a=${args[$i]} addr=$(ip_of "${names[$i]}")
		case ${kinds[$i]} in
		service|nodejs|go)
			r=$(resolve "$a") || exit 2
			case ${kinds[$i]} in
			service) prog="'$bin/tj-service'" ;;
			nodejs) prog="node '$here/tj-node-service.js'" ;;
			go) prog="'$bin/tj-go-service'" ;;
			esac
			echo "ip netns exec $ns $prog --role $nm --listen $addr:8080 $r >'$work/$nm.out' 2>&1 &"
			echo "pids+=(\$!)"
			echo "for _ in \$(seq 200); do grep -q listening '$work/$nm.out' && break; sleep 0.05; done"
			echo "grep -q listening '$work/$nm.out' || { cat '$work/$nm.out'; exit 1; }"
			;;
		nginx)
			set -- $a
			up=$(ip_of "$1") || exit 2
			auth_up= auth_req= auth_loc=
			if [ -n "${3:-}" ]; then # a subrequest per request, before the proxied one
				auth=$(ip_of "$3") || exit 2
				auth_up="upstream authup { server $auth:8080; keepalive ${2:-4}; }"
				auth_req="auth_request /_auth;"
				auth_loc="location = /_auth { internal; proxy_pass http://authup/$3; proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_pass_request_body off; proxy_set_header Content-Length \"\"; }"
			fi
			mkdir -p "$work/nginx-$nm"
			cat >"$work/nginx-$nm/nginx.conf" <<-EOF
			worker_processes 1;
			daemon off;
			pid $work/nginx-$nm/nginx.pid;
			error_log $work/nginx-$nm/error.log warn;
			events { worker_connections 512; }
			http {
			    access_log off;
			    client_body_temp_path $work/nginx-$nm/body;
			    proxy_temp_path $work/nginx-$nm/proxy;
			    fastcgi_temp_path $work/nginx-$nm/fastcgi;
			    uwsgi_temp_path $work/nginx-$nm/uwsgi;
			    scgi_temp_path $work/nginx-$nm/scgi;
			    upstream up { server $up:8080; keepalive ${2:-4}; }
			    $auth_up
			    server {
			        listen $addr:8080;
			        $auth_loc
			        location / {
			            $auth_req
			            proxy_pass http://up;
			            proxy_http_version 1.1;
			            proxy_set_header Connection "";
			        }
			    }
			}
			EOF
			echo "ip netns exec $ns nginx -p '$work/nginx-$nm' -c '$work/nginx-$nm/nginx.conf' -e '$work/nginx-$nm/error.log' >'$work/$nm.out' 2>&1 &"
			echo "pids+=(\$!)"
			echo "for _ in \$(seq 200); do ip netns exec $ns ss -Hltn 'sport = :8080' | grep -q . && break; sleep 0.05; done"
			;;
		esac
	done
	for i in "${!names[@]}"; do
		[ "${kinds[$i]}" = load ] || continue
		r=$(resolve "${args[$i]}") || exit 2
		if [ $attach -eq 1 ]; then
			# more requests, and capture told when the pools are warm
			# an open loop (--rate) runs its time again, a closed loop
			# (fast) eight times, so that capture, which takes a second
			# or two to start, still sees most of it
			m=${ATTACH_MULT:-}
			[ -n "$m" ] || case " $r " in *" --rate "*) m=2 ;; *) m=8 ;; esac
			# and at most ATTACH_MAX_S (20) seconds: a slow closed loop
			# stops sending then, which is no failure here
			r=$(echo "$r" | awk -v m="$m" -v t="${ATTACH_MAX_S:-20}" '{ for (k = 1; k <= NF; k++) {
				if ($(k - 1) == "--requests") $k = $k * m
				if ($(k - 1) == "--max-seconds" && $k > t) $k = t } print }')
			echo "ip netns exec ${nss[$i]} '$bin/tj-load' $r >'$work/${names[$i]}.out' 2>&1 &"
			echo "lp=\$!"
			echo "sleep ${ATTACH_WARM_S:-0.5}; touch '$work/warm'"
			echo "for _ in \$(seq 600); do [ -e '$work/go' ] && break; sleep 0.05; done"
			echo "wait \$lp || grep -q '(0 errors' '$work/${names[$i]}.out' || fail=1"
		else
			echo "ip netns exec ${nss[$i]} '$bin/tj-load' $r >'$work/${names[$i]}.out' 2>&1 || fail=1"
		fi
	done
	# configs list leaves first: stopping in reverse order stops the front
	# (nearest the load generator) first, so no call is cut
	echo 'for ((k = ${#pids[@]} - 1; k >= 0; k--)); do kill -TERM ${pids[$k]} 2>/dev/null; wait ${pids[$k]} || fail=1; done'
	echo "echo \$fail >'$work/inner.status'"
	echo 'exit $fail'
} >"$inner"

if [ $attach -eq 0 ]; then
	"$tj" capture --netns --payload 256 -o "$cap" -- bash "$inner" 2>"$work/capture.err"
	crc=$?
else
	# The services and the load first, untraced; capture once the pools
	# are warm; SIGINT once the workload is done.
	# A reference capture of the same run from its start (--netns, the
	# usual way) goes on meanwhile: OUT-from-start, scored beside OUT
	# (compare-attach.sh), so that the comparison is of one run's traffic.
	"$tj" capture --netns --payload 256 -o "$work/capture-ref" -- bash "$inner" \
		>"$work/inner.err" 2>"$work/capture-ref.err" &
	ipid=$!
	for _ in $(seq 600); do [ -e "$work/warm" ] && break; sleep 0.05; done
	[ -e "$work/warm" ] || { cat "$work/inner.err"; echo "run-real.sh: the workload did not start" >&2; exit 1; }
	# only the workload's processes (other traffic on this machine is not
	# the dataset's): every process in the nodes' namespaces, nginx's
	# workers included
	pidargs=()
	for ns in "${nss[@]}"; do
		for p in $(ip netns pids "$ns"); do pidargs+=(--pid "$p"); done
	done
	"$tj" capture --netns --payload 256 "${pidargs[@]}" -o "$cap" 2>"$work/capture.err" &
	cpid=$!
	for _ in $(seq 300); do grep -q recording "$work/capture.err" && break; sleep 0.02; done
	touch "$work/go"
	wait $ipid
	rrc=$?
	kill -INT $cpid
	wait $cpid
	crc=$?
	[ $rrc -eq 0 ] || { cat "$work/capture-ref.err"; echo "run-real.sh: the reference capture failed" >&2; exit 1; }
	mkdir -p "$(dirname "$out")" || exit 1
	"$tj" label "$work/capture-ref" -o "$out-from-start" --force --workload "$name" \
		--params "{\"config\":\"$name\",\"reference_of\":\"attached\"}" 2>"$work/label-ref.err" ||
		{ cat "$work/label-ref.err"; echo "run-real.sh: label of the reference capture failed" >&2; exit 1; }
	sed 's/^/  from start: /' "$work/label-ref.err"
fi
cat "$work/capture.err" >&2
for i in "${!names[@]}"; do
	[ -f "$work/${names[$i]}.out" ] && sed "s/^/  ${names[$i]}: /" "$work/${names[$i]}.out"
done
[ $crc -eq 0 ] && [ "$(cat "$work/inner.status" 2>/dev/null)" = 0 ] ||
	{ echo "run-real.sh: the workload or capture failed (capture exit $crc)" >&2; exit 1; }

# ---- counts: what the workload says it did ----
completed=0 calls=0 proxied=0 joined=0 load_seed=
for i in "${!names[@]}"; do
	f=$work/${names[$i]}.out
	case ${kinds[$i]} in
	load) completed=$(sed -n 's/^tj-load: completed \([0-9]*\) of.*/\1/p' "$f")
		load_seed=$(sed -n 's/^tj-load: completed .*, seed \([0-9]*\)$/\1/p' "$f") ;;
	service|nodejs|go)
		c=$(sed -n 's/.* made \([0-9]*\) calls.*/\1/p' "$f"); calls=$((calls + ${c:-0}))
		j=$(sed -n 's/.* \([0-9]*\) calls joined.*/\1/p' "$f"); joined=$((joined + ${j:-0})) ;;
	nginx) # one proxied call per request, two with an auth subrequest
		set -- ${args[$i]}
		if [ -n "${3:-}" ]; then proxied=$((proxied + 2)); else proxied=$((proxied + 1)); fi ;;
	esac
done
echo "run-real.sh: $name: tj-load ran with seed ${load_seed:-?}"
# each proxy forwards every request (one proxy in front, as configs
# have it); a pipelined call written in the same run of bytes as the call
# before it is part of that call's message: one label for both
expect_parent=$((calls - joined + proxied * completed))

nodes_json=$(for i in "${!names[@]}"; do
	ino=$(stat -L -c %i "/run/netns/${nss[$i]}")
	printf '"%s":{"node":%s,"kind":"%s","args":"%s"}\n' "${names[$i]}" "$ino" "${kinds[$i]}" "${args[$i]}"
done | paste -sd, -)
mkdir -p "$(dirname "$out")" || exit 1
# A node outside the captured set: its log goes, as if no capture ran there.
for u in "${uncaptured[@]}"; do
	found=
	for i in "${!names[@]}"; do
		[ "${names[$i]}" = "$u" ] || continue
		[ "${kinds[$i]}" = load ] && { echo "run-real.sh: $config: the load node cannot be uncaptured" >&2; exit 2; }
		found=1
		rm -f "$cap/node-$(stat -L -c %i "/run/netns/${nss[$i]}").evlog"
	done
	[ -n "$found" ] || { echo "run-real.sh: $config: uncaptured '$u' is no node" >&2; exit 2; }
done
params="{\"config\":\"$name\",\"nodes\":{$nodes_json},\"load_completed\":$completed,\"service_calls\":$calls,\"calls_joined\":$joined,\"payload_prefix\":256}"
"$tj" label "$cap" -o "$out" --force --workload "$name" --params "$params" 2>"$work/label.err"
lrc=$?
cat "$work/label.err"
[ $lrc -eq 0 ] || { echo "run-real.sh: label failed (exit $lrc)" >&2; exit 1; }
with_parent=$(sed -n 's/.* labeled (\([0-9]*\) with a parent.*/\1/p' "$work/label.err")
roots=$(sed -n 's/.* \([0-9]*\) roots).*/\1/p' "$work/label.err")
if [ $attach -eq 1 ]; then
	# Requests whose first bytes capture saw: sends that begin with an
	# HTTP method (GET/POST/PUT/HEAD), on every node.
	seen=0
	for f in "$cap"/node-*.evlog; do
		k=$("$tj" dump --csv --type send "$f" | awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
			$col["payload_hex"] ~ /^(47455420|504f535420|50555420|4845414420)/ { n++ } END { print n + 0 }')
		seen=$((seen + k))
	done
	calls_seen=$(sed -n 's/.*); \([0-9]*\) calls: .*/\1/p' "$work/label.err")
	labeled=$(sed -n 's/.* calls: \([0-9]*\) labeled .*/\1/p' "$work/label.err")
	pcut=$(sed -n 's/.* \([0-9]*\) calls made for a cut request.*/\1/p' "$work/label.err")
	pcut=${pcut:-0}
	pct=$(awk -v a="$calls_seen" -v b="$seen" 'BEGIN { printf "%.2f", b ? 100 * a / b : 0 }')
	echo "run-real.sh: $name (attached): $seen requests begun after capture start, $calls_seen recognised as calls ($pct%)," \
		"$labeled labeled ($with_parent with a parent, $roots roots), $pcut made for a request cut by capture start"
	[ $((labeled + pcut)) = "$calls_seen" ] && awk -v a="$calls_seen" -v b="$seen" 'BEGIN { exit !(b > 0 && a >= 0.99 * b) }' || {
		echo "run-real.sh: $name: attached capture below target" >&2; exit 1; }
	exit 0
fi
echo "run-real.sh: $name: load completed $completed, services made $calls calls (+$((proxied * completed)) proxied, $joined joined to the call before);" \
	"labels: $with_parent with a parent, $roots roots"
[ "$with_parent" = "$expect_parent" ] && [ "$roots" = "$completed" ] || {
	echo "run-real.sh: $name: labels do not cover the workload's calls" >&2; exit 1; }
exit 0
