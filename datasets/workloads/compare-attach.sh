#!/usr/bin/env bash
# compare-attach.sh: every correlator on each real config captured after
# the load warmed every pool (make dataset-real REAL_ATTACH=1: DIR/NAME)
# and on the same run captured from its start (DIR/NAME-from-start, or
# --start DIR2/NAME), as a Markdown table: calls labeled and joined across
# nodes, edge F1, and the difference attached - from start in points.
#   compare-attach.sh --attach DIR [--start DIR2] [--tj TRACEJOIN] [--model FILE] [CONFIG...]
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
tj=$root/build/tracejoin model=$root/models/default.model start= attach=
while [ $# -gt 0 ]; do
	case $1 in
	--tj) tj=$2; shift 2 ;;
	--start) start=$2; shift 2 ;;
	--attach) attach=$2; shift 2 ;;
	--model) model=$2; shift 2 ;;
	-h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) echo "compare-attach.sh: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
done
[ -n "$attach" ] || { echo "compare-attach.sh: --attach is required" >&2; exit 2; }
configs=("$@")
[ ${#configs[@]} -gt 0 ] || configs=(thread-new pool-keepalive epoll-shared epoll-shared-open fanout nginx-proxy)
work=$(mktemp -d /tmp/tj-compare-attach.XXXXXX)
trap 'rm -rf "$work"' EXIT

score() { # dataset algo -> "calls joined f1 accuracy" (f1, accuracy in %)
	local p=()
	[ "$2" = classifier ] && p=(--param "model=$model")
	"$tj" correlate --algo "$2" "${p[@]}" "$1" -o "$work/e.csv" 2>/dev/null || { echo "- - - -"; return; }
	"$tj" score --json --labels "$1/labels.csv" "$work/e.csv" 2>/dev/null | python3 -c '
import json, sys
s = json.load(sys.stdin)
j = s.get("join") or {}
e = s["edges"]
f = lambda x: "-" if x is None else "%.1f" % (100 * x)
print(j.get("calls", "-"), j.get("joined", "-"), f(e["f1"]), f(e["accuracy"]))' ||
		echo "- - - -"
}

echo "| config | correlator | calls start / attached | joined start / attached | F1 % start | F1 % attached | diff |"
echo "|---|---|---:|---:|---:|---:|---:|"
for c in "${configs[@]}"; do
	for a in metadata regression classifier; do
		ref=$attach/$c-from-start
		[ -n "$start" ] && ref=$start/$c
		if [ ! -f "$ref/labels.csv" ] || [ ! -f "$attach/$c/labels.csv" ]; then
			echo "| $c | $a | not made |||||"
			continue
		fi
		read -r sc sj sf sa <<<"$(score "$ref" $a)"
		read -r ac aj af aa <<<"$(score "$attach/$c" $a)"
		d=$(awk -v x="$sf" -v y="$af" 'BEGIN { if (x == "-" || y == "-") print "-"; else printf "%+.1f", y - x }')
		echo "| $c | $a | $sc / $ac | $sj / $aj | $sf | $af | $d |"
	done
done
