#!/usr/bin/env bash
# compare-real.sh: every correlator on each labeled real capture and on
# its synthetic mirror (configs/NAME.scn: the same graph, models, policies,
# sizes and service times, at the rate the real run measured), as a
# Markdown table: edge F1, precision, recall, parented-call accuracy
# (share of the calls labeled with a parent whose predicted parent is
# right), service accuracy, trace accuracy.  datasets/real/README.md keeps a run of it.
#   compare-real.sh [--tj TRACEJOIN] [--real DIR] [--model FILE] [CONFIG...]
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
tj=$root/build/tracejoin real=$root/datasets/real model=$root/models/default.model
while [ $# -gt 0 ]; do
	case $1 in
	--tj) tj=$2; shift 2 ;;
	--real) real=$2; shift 2 ;;
	--model) model=$2; shift 2 ;;
	-h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) echo "compare-real.sh: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
done
configs=("$@")
[ ${#configs[@]} -gt 0 ] || configs=(thread-new pool-keepalive epoll-shared epoll-shared-open fanout nginx-proxy epoll-chain pipelined mn-pool node-chain node-parallel go-mn nginx-auth)
work=$(mktemp -d /tmp/tj-compare.XXXXXX)
trap 'rm -rf "$work"' EXIT

pct() { awk -v x="$1" 'BEGIN { if (x == "null" || x == "") print "-"; else printf "%.1f", 100 * x }'; }
row() { # dataset-dir label
	local d=$1 what=$2 a p
	for a in default metadata regression classifier; do
		p=(--algo $a)
		[ $a = classifier ] && p+=(--param "model=$model")
		[ $a = default ] && p=() # without --algo, where this build has a default
		if ! "$tj" correlate "${p[@]}" "$d" -o "$work/e.csv" 2>"$work/c.err"; then
			[ $a = default ] && grep -q -- '--algo.*required' "$work/c.err" && continue
			echo "| $what | $a | correlate failed ||||||"
			continue
		fi
		"$tj" score --json --labels "$d/labels.csv" "$work/e.csv" >"$work/s.json" 2>/dev/null ||
			{ echo "| $what | $a | score failed ||||||"; continue; }
		python3 - "$work/s.json" "$what" "$a" <<-'EOF'
		import json, sys
		s = json.load(open(sys.argv[1]))
		f = lambda x: "-" if x is None else "%.1f" % (100 * x)
		e = s["edges"]
		par = e["right_parent"] / e["true_parent"] if e["true_parent"] else None
		print("| %s | %s | %s | %s | %s | %s | %s | %s |" % (sys.argv[2], sys.argv[3], f(e["f1"]),
		      f(e["precision"]), f(e["recall"]), f(par), f(s["per_service"]["accuracy"]),
		      f(s["end_to_end"]["accuracy"])))
		EOF
	done
}

echo "| dataset | correlator | F1 % | precision % | recall % | parented % | service % | trace % |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
for c in "${configs[@]}"; do
	[ -f "$real/$c/labels.csv" ] || { echo "| $c (real) | not made: make dataset-real |||||||"; continue; }
	row "$real/$c" "$c (real)"
	"$tj" gen --scenario "$here/configs/$c.scn" --load medium --requests 1000 --seed 1 \
		-o "$work/$c" --force >/dev/null 2>&1 || { echo "| $c (gen) | gen failed |||||||"; continue; }
	row "$work/$c" "$c (gen mirror)"
done
