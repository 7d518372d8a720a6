#!/bin/bash
# export-identity.sh REF NEW [DATASET...]: does a change to the export
# (or to the replay under it) keep every output byte the same?
#
# REF and NEW are two tracejoin binaries (say main's, copied aside, and
# this branch's build/tracejoin).  For every built-in gen scenario (1 500
# roots, load high, seed 1) and each DATASET given (with labels.csv, e.g.
# the 100 000-root threadpool dataset of export/README.md), both export
# every format (otlp, jaeger, perfetto) plain (--edges labels.csv), with
# --truth, with --traces 5, and with --algo metadata --truth, and the
# outputs are compared with cmp.  The version string in the OTLP scope is
# the one byte run allowed to differ (it names each binary's commit).
# A run that fails in one binary fails in the other with the same exit
# code.  Prints one line per difference and a count; exit 1 on any.
#
# TJ_IDENTITY_GEN=0: the DATASETs alone, no gen scenarios.
# Work folder: $TJ_IDENTITY_DIR (default: a fresh mktemp -d, removed at
# the end unless something differed).
set -u
if [ $# -lt 2 ] || [ ! -x "$1" ] || [ ! -x "$2" ]; then
	echo "usage: $0 REF_TRACEJOIN NEW_TRACEJOIN [DATASET...]" >&2
	exit 2
fi
ref=$1 new=$2
shift 2
for ds in "$@"; do
	[ -f "$ds/labels.csv" ] || { echo "$0: $ds: no labels.csv (not a dataset)" >&2; exit 2; }
done
work=${TJ_IDENTITY_DIR:-$(mktemp -d /tmp/export-identity.XXXXXX)}
mkdir -p "$work" || exit 2

unversion() { # the OTLP scope's version names the binary's commit
	sed 's/"name":"tracejoin","version":"[^"]*"/"name":"tracejoin","version":"V"/g' "$1"
}

sets=()
scenarios=$("$new" gen --list | awk '{print $1}')
[ "${TJ_IDENTITY_GEN:-1}" = 0 ] && scenarios=
for sc in $scenarios; do
	d=$work/ds-$sc
	if [ ! -f "$d/labels.csv" ]; then
		"$new" gen --scenario "$sc" --load high --seed 1 --requests 1500 -o "$d" \
			>/dev/null 2>"$work/gen.err" || { cat "$work/gen.err" >&2; exit 2; }
	fi
	sets+=("$d")
done
sets+=("$@")

variants=(plain truth traces5 metadata)
args_of() { # variant dataset
	case $1 in
	plain) echo "--edges $2/labels.csv" ;;
	truth) echo "--edges $2/labels.csv --truth $2/labels.csv" ;;
	traces5) echo "--edges $2/labels.csv --traces 5" ;;
	metadata) echo "--algo metadata --truth $2/labels.csv" ;;
	esac
}

n=0 bad=0
for d in "${sets[@]}"; do
	for fmt in otlp jaeger perfetto; do
		for v in "${variants[@]}"; do
			# shellcheck disable=SC2046  # the arguments are paths without spaces
			"$ref" export --format "$fmt" $(args_of "$v" "$d") "$d" -o - \
				>"$work/ref.out" 2>"$work/ref.err"; rr=$?
			# shellcheck disable=SC2046
			"$new" export --format "$fmt" $(args_of "$v" "$d") "$d" -o - \
				>"$work/new.out" 2>"$work/new.err"; rn=$?
			n=$((n + 1))
			what="$(basename "$d") $fmt $v"
			if [ $rr -ne $rn ]; then
				echo "DIFFERS: $what: exit $rr (ref) vs $rn (new): $(head -c 300 "$work/new.err")"
				bad=$((bad + 1))
			elif ! cmp -s "$work/ref.out" "$work/new.out" &&
			     ! cmp -s <(unversion "$work/ref.out") <(unversion "$work/new.out"); then
				echo "DIFFERS: $what: $(cmp <(unversion "$work/ref.out") <(unversion "$work/new.out") 2>&1 | head -1)"
				bad=$((bad + 1))
			fi
		done
	done
done
echo "export-identity: $n exports compared, $bad differ"
if [ $bad -eq 0 ] && [ -z "${TJ_IDENTITY_DIR:-}" ]; then
	rm -rf "$work"
fi
[ $bad -eq 0 ]
