#!/usr/bin/env bash
# The default correlator's speed and memory against log length (issue
# #15: >= 2 M events per CPU second on 100 000-root high-load datasets,
# memory flat in log length).  Generates each scenario at high load with
# ROOTS root requests for every ROOTS given (seed 1), runs
# `tracejoin correlate` without --algo on it and prints the figures its
# last stderr line gives: events, events per CPU second, peak resident
# set.  Peak memory that does not grow from the smallest to the largest
# size is "flat".  The datasets are made in a temporary folder and
# removed.  bench/RESULTS.md quotes one run.
#
#   bench/default-scale.sh [--tj BIN] [--scenarios a,b] [ROOTS...]
#   (defaults: build/tracejoin; async,fanout,mn-pool; 25000 100000)
set -u
tj=build/tracejoin
scenarios=async,fanout,mn-pool
while [ $# -gt 0 ]; do
	case $1 in
	--tj) tj=${2:?--tj needs a path}; shift 2 ;;
	--scenarios) scenarios=${2:?--scenarios needs a list}; shift 2 ;;
	-h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) echo "$0: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
done
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(25000 100000)
for n in "${sizes[@]}"; do
	case $n in
	''|*[!0-9]*|0) echo "$0: ROOTS '$n': a whole number > 0 expected" >&2; exit 2 ;;
	esac
done
[ -x "$tj" ] || { echo "$0: no tracejoin at $tj (make first, or --tj BIN)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dflt=$("$tj" correlate --list | awk '$2 == "(default)" { print $1 }')
printf '%-10s %8s %10s %8s %8s   (default: %s)\n' scenario roots events Mev/s MB "$dflt"
for s in ${scenarios//,/ }; do
	for n in "${sizes[@]}"; do
		"$tj" gen --scenario "$s" --load high --seed 1 --requests "$n" -o "$tmp/ds" --force \
			>/dev/null 2>"$tmp/gen.err" ||
			{ echo "$0: gen $s $n: $(tail -1 "$tmp/gen.err")" >&2; exit 1; }
		"$tj" correlate "$tmp/ds" -o /dev/null --force 2>"$tmp/c.err" ||
			{ echo "$0: correlate $s $n: $(tail -1 "$tmp/c.err")" >&2; exit 1; }
		# "correlate: algo A, E events, M Mev/s, P MB peak"
		tail -n 1 "$tmp/c.err" | awk -v s="$s" -v n="$n" \
			'{ gsub(",", ""); printf "%-10s %8s %10s %8s %8s\n", s, n, $4, $6, $8 }'
		rm -rf "$tmp/ds"
	done
done
