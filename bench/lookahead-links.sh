#!/usr/bin/env bash
# Teacher-forced precision of each look-ahead link (correlate/lookahead.h)
# on labeled datasets: `correlate --algo lookahead --param links=all
# --explain` prints every link it could make; the labels say whether it
# is right.  A completion link (call X, request P) is right when X's true
# parent is P; a continuation link (X, Y) when X and Y have the same true
# parent (whatever the correlator decided: teacher-forced).  Split by
# whether X was synchronous (its writer read nothing before its reply) and
# whether the linked write was the handler's first; and the continuations
# queue-select's judge keeps (handoff=1) against those it drops, written on
# the socket the reply freed by an asynchronous caller's own thread (the FIFO hand-off:
# lookahead.h, no_handoff).  correlate/ASYNC.md,
# "Look-ahead signals", has the table this prints.
#
#   bench/lookahead-links.sh [--tj BIN] DATASET...
set -u
tj=build/tracejoin
if [ "${1:-}" = --tj ]; then
	tj=$2
	shift 2
fi
[ $# -ge 1 ] || { echo "usage: $0 [--tj BIN] DATASET..." >&2; exit 2; }
[ -x "$tj" ] || { echo "$0: no tracejoin at $tj (make first, or --tj BIN)" >&2; exit 2; }
for d in "$@"; do
	[ -f "$d/labels.csv" ] || { echo "$0: $d: no labels.csv (not a labeled dataset)" >&2; exit 2; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '%-20s %6s | %-14s %-14s %-14s | %-14s %-14s %-14s | %-14s %-14s\n' dataset calls \
	"compl all" "compl sync" "compl 1st" "cont all" "cont sync 1st" "cont same-sock" \
	"cont kept" "cont hand-off"
for d in "$@"; do
	"$tj" correlate --algo lookahead --param links=all --explain "$d" -o /dev/null --force \
		2>"$tmp/x" >/dev/null || { echo "$0: $d: correlate failed: $(tail -1 "$tmp/x")" >&2; exit 1; }
	awk -F'[ ,=]' -v name="$(basename "$d")" '
	FNR == NR { if (FNR > 1) { lab[$1] = $2; calls++ } next }
	function add(k, ok) { n[k]++; r[k] += ok }
	function cell(k) { return n[k] ? sprintf("%5d %.3f", n[k], r[k] / n[k]) : sprintf("%5d     -", 0) }
	$2 == "link" && $3 == "completion" {
		ok = lab[$4] == $5
		add("ca", ok)
		if ($7 == 1) add("cs", ok)
		if ($9 == 0) add("c1", ok)
	}
	$2 == "link" && $3 == "continuation" {
		ok = lab[$4] == lab[$5]
		add("na", ok)
		if ($7 == 1 && $9 == 0) add("ns", ok)
		if ($13 == 1) add("nx", ok)
		add($13 == 1 && $7 == 0 && $15 == 1 ? "nh" : "nk", ok)
	}
	END {
		printf "%-20s %6d | %-14s %-14s %-14s | %-14s %-14s %-14s | %-14s %-14s\n", name, calls,
			cell("ca"), cell("cs"), cell("c1"), cell("na"), cell("ns"), cell("nx"),
			cell("nk"), cell("nh")
	}' "$d/labels.csv" "$tmp/x"
done
