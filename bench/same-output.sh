#!/usr/bin/env bash
# Is a speed change really "no output change"?  Runs two tracejoin
# binaries, OLD and NEW, with every built-in correlator (or --algos) on
# the same datasets and compares, byte for byte, the edges (-o) and the
# --explain stderr (its last line, the timing, removed; a correlator with
# nothing to explain is compared without --explain; a default model's
# folder, which is the source tree a binary was built in, is left out),
# exit codes included.
# Datasets: every built-in scenario of `OLD gen --list` at low, medium and
# high load (seed 1, --roots root requests; made by OLD in a temporary
# folder), then each DIR given: a dataset (it holds a manifest.json or
# node-*.evlog) or a folder of datasets (e.g. /tmp/s5-final-real,
# build/datasets/traceweaver).  Prints one line per difference and the
# count; exit 0 when every pair is identical, 1 when one differs, 2 on
# bad arguments.  --keep DIR keeps the differing outputs there.
#
#   bench/same-output.sh [--algos a,b] [--roots N] [--no-gen] [--jobs N]
#                        [--keep DIR] OLD NEW [DIR...]
#   (defaults: every correlator of `OLD correlate --list`; 2000; 2)
set -u
algos=
roots=2000
gen=1
jobs=2
keep=
while [ $# -gt 0 ]; do
	case $1 in
	--algos) algos=${2:?--algos needs a list}; shift 2 ;;
	--roots) roots=${2:?--roots needs a number}; shift 2 ;;
	--no-gen) gen=0; shift ;;
	--jobs) jobs=${2:?--jobs needs a number}; shift 2 ;;
	--keep) keep=${2:?--keep needs a folder}; shift 2 ;;
	-h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) echo "$0: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
done
for v in "roots:$roots" "jobs:$jobs"; do
	case ${v#*:} in
	''|*[!0-9]*|0) echo "$0: --${v%%:*} '${v#*:}': a whole number > 0 expected" >&2; exit 2 ;;
	esac
done
[ $# -ge 2 ] || { echo "$0: OLD and NEW binaries expected (--help)" >&2; exit 2; }
old=$1 new=$2
shift 2
for tj in "$old" "$new"; do
	[ -x "$tj" ] || { echo "$0: no tracejoin at '$tj'" >&2; exit 2; }
done
old=$(realpath "$old") new=$(realpath "$new")
known=$("$old" correlate --list | awk '/^[a-z]/ { print $1 }')
[ -n "$algos" ] || algos=$(echo $known | tr ' ' ,)
for a in ${algos//,/ }; do
	echo "$known" | grep -qx -- "$a" ||
		{ echo "$0: --algos: '$a' is no correlator of $old (correlate --list)" >&2; exit 2; }
done
is_dataset() { [ -f "$1/manifest.json" ] || compgen -G "$1/node-*.evlog" >/dev/null; }
sets=()
for d in "$@"; do
	if [ ! -d "$d" ]; then
		echo "$0: '$d': no such folder" >&2; exit 2
	elif is_dataset "$d"; then
		sets+=("$(realpath "$d")")
	else
		n0=${#sets[@]}
		for s in "$d"/*/; do is_dataset "$s" && sets+=("$(realpath "$s")"); done
		[ ${#sets[@]} -gt "$n0" ] || { echo "$0: '$d': no dataset in it" >&2; exit 2; }
	fi
done
if [ -n "$keep" ]; then
	mkdir -p "$keep" || exit 2
	keep=$(realpath "$keep")
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ "$gen" = 1 ]; then
	for sc in $("$old" gen --list | awk '{ print $1 }'); do
		for load in low medium high; do
			"$old" gen --scenario "$sc" --load "$load" --seed 1 --requests "$roots" \
				-o "$tmp/gen/$sc-$load" >/dev/null 2>"$tmp/gen.err" ||
				{ echo "$0: gen $sc $load failed:" >&2; cat "$tmp/gen.err" >&2; exit 2; }
			sets+=("$tmp/gen/$sc-$load")
		done
	done
fi
[ ${#sets[@]} -gt 0 ] || { echo "$0: no datasets (--no-gen and no DIR)" >&2; exit 2; }

# one BIN ALGO DATASET OUT: edges in OUT.csv, stderr (exit code last) in OUT.err
one() {
	local bin=$1 a=$2 d=$3 o=$4 rc
	"$bin" correlate --algo "$a" "$d" -o "$o.csv" --explain 2>"$o.err"
	rc=$?
	if grep -q "has nothing to explain" "$o.err"; then
		"$bin" correlate --algo "$a" "$d" -o "$o.csv" 2>"$o.err"
		rc=$?
	fi
	sed -i '/^correlate: algo .* events, .* Mev\/s, .* peak$/d' "$o.err"
	# a model's folder is the build's source tree: binaries built in two
	# checkouts print two paths for one model file
	sed -i 's#model /[^ ]*/models/#model models/#g' "$o.err"
	echo "rc=$rc" >>"$o.err"
}
pair() {
	local a=$1 d=$2 tag
	tag=$(echo "$d" | tr / _)-$a
	one "$old" "$a" "$d" "$tmp/out/$tag.old"
	one "$new" "$a" "$d" "$tmp/out/$tag.new"
	if cmp -s "$tmp/out/$tag.old.csv" "$tmp/out/$tag.new.csv" 2>/dev/null &&
	   cmp -s "$tmp/out/$tag.old.err" "$tmp/out/$tag.new.err"; then
		echo "same $a $d"
	else
		echo "DIFF $a $d"
		[ -z "$keep" ] || cp "$tmp/out/$tag".* "$keep"/ 2>/dev/null
	fi
	rm -f "$tmp/out/$tag".*
}
export -f one pair
export old new tmp keep
mkdir -p "$tmp/out"
for d in "${sets[@]}"; do
	for a in ${algos//,/ }; do printf '%s\0%s\0' "$a" "$d"; done
done | xargs -0 -n 2 -P "$jobs" bash -c 'pair "$0" "$1"' >"$tmp/summary"
grep '^DIFF' "$tmp/summary"
total=$(wc -l <"$tmp/summary")
same=$(grep -c '^same' "$tmp/summary")
echo "identical: $same of $total (correlators: $algos; datasets: ${#sets[@]})"
if [ "$same" != "$total" ]; then
	echo "$0: $((total - same)) of $total outputs differ between $old and $new" >&2
	exit 1
fi
