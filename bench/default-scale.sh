#!/usr/bin/env bash
# The default correlator's speed and memory against log length (issue
# #15: >= 2 M events per CPU second on 100 000-root high-load datasets,
# memory flat in log length).  Generates each scenario at high load with
# ROOTS root requests for every ROOTS given (seed 1), runs
# `tracejoin correlate` on it and prints the figures its last stderr line
# gives: events, events per CPU second, peak resident set.  Peak memory
# that does not grow from the smallest to the largest size is "flat".
# The datasets are made in a temporary folder and removed.
# bench/RESULTS.md quotes one run.
#
# Before/after: give --tj once per binary; every binary runs on the same
# generated dataset, in turn (A B A B ... over --rounds rounds, so a
# machine whose load drifts weighs on both alike), and the median of the
# rounds is printed per binary.  --algos runs named correlators instead
# of the default (`default` is the one without --algo): per method.
#
#   bench/default-scale.sh [--tj BIN]... [--algos a,b] [--rounds N]
#                          [--scenarios a,b] [ROOTS...]
#   (defaults: build/tracejoin; default; 1; async,fanout,mn-pool;
#    25000 100000)
set -u
tjs=()
scenarios=async,fanout,mn-pool
algos=default
rounds=1
while [ $# -gt 0 ]; do
	case $1 in
	--tj) tjs+=("${2:?--tj needs a path}"); shift 2 ;;
	--scenarios) scenarios=${2:?--scenarios needs a list}; shift 2 ;;
	--algos) algos=${2:?--algos needs a list}; shift 2 ;;
	--rounds) rounds=${2:?--rounds needs a number}; shift 2 ;;
	-h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) echo "$0: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
done
[ ${#tjs[@]} -gt 0 ] || tjs=(build/tracejoin)
case $rounds in
''|*[!0-9]*|0) echo "$0: --rounds '$rounds': a whole number > 0 expected" >&2; exit 2 ;;
esac
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(25000 100000)
for n in "${sizes[@]}"; do
	case $n in
	''|*[!0-9]*|0) echo "$0: ROOTS '$n': a whole number > 0 expected" >&2; exit 2 ;;
	esac
done
for tj in "${tjs[@]}"; do
	[ -x "$tj" ] || { echo "$0: no tracejoin at $tj (make first, or --tj BIN)" >&2; exit 2; }
done
for a in ${algos//,/ }; do
	[ "$a" = default ] || "${tjs[0]}" correlate --list | awk -v a="$a" '$1 == a { f = 1 } END { exit !f }' ||
		{ echo "$0: --algos: '$a' is no correlator of ${tjs[0]} (correlate --list)" >&2; exit 2; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dflt=$("${tjs[0]}" correlate --list | awk '$2 == "(default)" { print $1 }')
multi=$(( ${#tjs[@]} > 1 || rounds > 1 ))
if [ "$multi" = 1 ]; then
	for i in "${!tjs[@]}"; do echo "binary $((i + 1)): ${tjs[$i]}"; done
	printf '%-10s %8s %10s %-13s %6s %8s %8s   (medians of %s rounds; default: %s)\n' \
		scenario roots events algo binary Mev/s MB "$rounds" "$dflt"
else
	printf '%-10s %8s %10s %8s %8s   (default: %s)\n' scenario roots events Mev/s MB "$dflt"
fi
for s in ${scenarios//,/ }; do
	for n in "${sizes[@]}"; do
		"${tjs[0]}" gen --scenario "$s" --load high --seed 1 --requests "$n" -o "$tmp/ds" --force \
			>/dev/null 2>"$tmp/gen.err" ||
			{ echo "$0: gen $s $n: $(tail -1 "$tmp/gen.err")" >&2; exit 1; }
		: >"$tmp/runs"
		for r in $(seq "$rounds"); do
			for a in ${algos//,/ }; do
				for i in "${!tjs[@]}"; do
					opt=(); [ "$a" = default ] || opt=(--algo "$a")
					"${tjs[$i]}" correlate "${opt[@]}" "$tmp/ds" -o /dev/null --force 2>"$tmp/c.err" ||
						{ echo "$0: correlate $a $s $n (${tjs[$i]}): $(tail -1 "$tmp/c.err")" >&2; exit 1; }
					# "correlate: algo A, E events, M Mev/s, P MB peak"
					tail -n 1 "$tmp/c.err" | awk -v a="$a" -v b=$((i + 1)) \
						'{ gsub(",", ""); print a, b, $4, $6, $8 }' >>"$tmp/runs"
				done
			done
		done
		if [ "$multi" = 1 ]; then
			# the median over the rounds of each (algo, binary), in run order
			awk -v s="$s" -v n="$n" '
				{ k = $1 " " $2; if (!(k in cnt)) ord[++nk] = k
				  cnt[k]++; ev[k] = $3; v[k, cnt[k]] = $4; mb[k, cnt[k]] = $5 }
				function med(k, arr,   i, j, t, a, c) {
					c = cnt[k]; for (i = 1; i <= c; i++) a[i] = arr[k, i] + 0
					for (i = 2; i <= c; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) {
						t = a[j]; a[j] = a[j-1]; a[j-1] = t }
					return c % 2 ? a[(c + 1) / 2] : (a[c / 2] + a[c / 2 + 1]) / 2 }
				END { for (i = 1; i <= nk; i++) { k = ord[i]; split(k, p, " ")
					printf "%-10s %8s %10s %-13s %6s %8.2f %8.0f\n", s, n, ev[k], p[1], p[2],
						med(k, v), med(k, mb) } }' "$tmp/runs"
		else
			awk -v s="$s" -v n="$n" '{ printf "%-10s %8s %10s %8s %8s\n", s, n, $3, $4, $5 }' "$tmp/runs"
		fi
		rm -rf "$tmp/ds"
	done
done
