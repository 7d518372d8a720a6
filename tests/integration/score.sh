#!/usr/bin/env bash
# tracejoin score end to end: usage errors, bad inputs refused with the
# right exit code and message, figures on hand-written CSVs, and on a
# generated dataset (joins from its logs, damaged log -> exit 3).
set -u
TJ=${TJ:-build/tracejoin}
work=$(mktemp -d /tmp/tj-score.XXXXXX)
trap 'rm -rf "$work"' EXIT
fails=0

check() { # description, expected exit code, command...
	local what=$1 want=$2; shift 2
	"$@" >"$work/out" 2>"$work/err"
	local rc=$?
	if [ "$rc" != "$want" ]; then
		echo "FAIL: $what: exit $rc, wanted $want"; sed 's/^/  | /' "$work/out" "$work/err"
		fails=$((fails + 1))
		return 1
	fi
	return 0
}
has() { # file, text
	if ! grep -qF -- "$2" "$1"; then
		echo "FAIL: '$2' not in $1:"; sed 's/^/  | /' "$1"
		fails=$((fails + 1))
	fi
}

# --- usage ---------------------------------------------------------------
check "--help" 0 "$TJ" score --help && has "$work/out" "precision"
check "help score" 0 "$TJ" help score
check "unknown option" 2 "$TJ" score --bogus x.csv && has "$work/err" "unknown option --bogus"
check "no --labels" 2 "$TJ" score e.csv && has "$work/err" "--labels FILE is required"
check "no edges" 2 "$TJ" score --labels l.csv
check "both on stdin" 2 "$TJ" score --labels - - </dev/null
check "two edges files" 2 "$TJ" score --labels l.csv a.csv b.csv
check "--dataset missing" 2 "$TJ" score --labels l.csv --dataset "$work/nope" e.csv

# --- hand-written CSVs (no logs) -----------------------------------------
cat >"$work/labels.csv" <<'EOF'
child,parent,score
1:10:out:0,1:100:in:0,1
1:11:out:0,1:100:in:0,1
2:20:out:0,2:200:in:0,1
1:12:out:0,1:101:in:0,1
2:21:out:0,,1
EOF
printf 'child,parent,score\r\n1:10:out:0,1:100:in:0,0.9\r\n1:11:out:0,,0.2\r\n2:20:out:0,2:200:in:0,1\r\n1:12:out:0,1:101:in:0,0.5\r\n2:21:out:0,,1\r\n1:99:out:0,1:100:in:0,1\r\n' >"$work/edges.csv"
check "partial edges" 0 "$TJ" score --labels "$work/labels.csv" "$work/edges.csv"
has "$work/out" "precision 1.000  recall 0.750  F1 0.857  accuracy 0.800 (4/5 calls)"
has "$work/out" "1 edge with a child the labels do not know"
has "$work/out" "accuracy 0.667 (2/3 inbound requests"
has "$work/out" "trace     - (no logs"
check "edges from stdin" 0 "$TJ" score --labels "$work/labels.csv" - <"$work/edges.csv"
has "$work/out" "accuracy 0.800 (4/5 calls)"
check "json" 0 "$TJ" score --json --labels "$work/labels.csv" "$work/edges.csv"
has "$work/out" '"right_parent": 3'
has "$work/out" '"end_to_end": null'
check "--strict" 1 "$TJ" score --strict --labels "$work/labels.csv" "$work/edges.csv"
has "$work/err" "$work/edges.csv:7: child 1:99:out:0 is not in $work/labels.csv"
check "labels as edges" 0 "$TJ" score --labels "$work/labels.csv" "$work/labels.csv"
has "$work/out" "precision 1.000  recall 1.000  F1 1.000  accuracy 1.000 (5/5 calls)"
printf 'child,parent,score\n' >"$work/empty.csv"
check "empty edges" 0 "$TJ" score --labels "$work/labels.csv" "$work/empty.csv"
has "$work/out" "precision -  recall 0.000  F1 0.000  accuracy 0.200 (1/5 calls)"

# --- refused inputs --------------------------------------------------------
check "missing labels" 1 "$TJ" score --labels "$work/none.csv" "$work/edges.csv"
has "$work/err" "$work/none.csv: No such file or directory"
check "missing edges" 1 "$TJ" score --labels "$work/labels.csv" "$work/none.csv"
printf 'child,parent,score\n1:10:out:0,1:100:in:0,1\n1:11:out:0,1:100:in,1\n' >"$work/bad.csv"
check "bad row" 1 "$TJ" score --labels "$work/labels.csv" "$work/bad.csv"
has "$work/err" "$work/bad.csv:3:12: parent:"
printf 'child,parent,score\n1:10:out:0,1:100:in:0,1\n1:12:out:0,,1\n1:10:out:0,,1\n' >"$work/dup.csv"
check "duplicate child" 1 "$TJ" score --labels "$work/labels.csv" "$work/dup.csv"
has "$work/err" "appears twice (lines 2 and 4)"
: >"$work/zero.csv"
check "empty labels file" 1 "$TJ" score --labels "$work/zero.csv" "$work/edges.csv"
has "$work/err" "empty file"

# --- a generated dataset: joins from the logs --------------------------------
if ! "$TJ" gen --help >/dev/null 2>&1; then
	echo "SKIPPED: tracejoin gen is not built, the dataset part did not run ($fails failures before)"
	[ $fails -eq 0 ] && exit 77 || exit 1
fi
ds="$work/ds"
check "gen" 0 "$TJ" gen --scenario threaded --requests 60 --seed 3 -o "$ds" || exit 1
check "labels as edges, logs found beside the labels" 0 \
	"$TJ" score --labels "$ds/labels.csv" "$ds/labels.csv"
has "$work/out" "end-to-end accuracy 1.000 (60/60 roots"
has "$work/out" "logs      $ds:"
calls=$(($(wc -l <"$ds/labels.csv") - 1))
has "$work/out" "$calls of $calls calls joined across nodes"
check "metadata edges" 0 "$TJ" correlate --algo metadata -o "$work/meta.csv" "$ds"
check "score metadata" 0 "$TJ" score --json --labels "$ds/labels.csv" "$work/meta.csv"
has "$work/out" '"roots": 60'
# Every call predicted parentless: no entry trace can be right.
{ echo child,parent,score; tail -n +2 "$ds/labels.csv" | cut -d, -f1 | sed 's/$/,,1/'; } >"$work/none-edges.csv"
check "all parentless" 0 "$TJ" score --labels "$ds/labels.csv" "$work/none-edges.csv"
has "$work/out" "end-to-end accuracy 0.000 (0/60 roots"
has "$work/out" "recall 0.000"
# Labels elsewhere, logs named with --dataset.
cp "$ds/labels.csv" "$work/lab-only.csv"
check "no logs beside the labels" 0 "$TJ" score --labels "$work/lab-only.csv" "$ds/labels.csv"
has "$work/out" "logs      none"
check "--dataset" 0 "$TJ" score --labels "$work/lab-only.csv" --dataset "$ds" "$ds/labels.csv"
has "$work/out" "end-to-end accuracy 1.000 (60/60 roots"
# A log cut short: figures from what was read, exit 3.
log=$(ls "$ds"/node-*.evlog | head -n 1)
size=$(stat -c %s "$log")
truncate -s $((size * 2 / 3)) "$log"
check "damaged log" 3 "$TJ" score --labels "$ds/labels.csv" "$ds/labels.csv"
has "$work/out" "edge      precision 1.000"
has "$work/err" "damaged"

if [ $fails -ne 0 ]; then echo "$fails failures"; exit 1; fi
echo "score: all checks passed"
