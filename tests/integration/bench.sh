#!/usr/bin/env bash
# tracejoin bench: the quick suite runs end to end, writes every output,
# gives the same accuracy figures twice (reproducible), --compare reads
# two results folders, and bad options are refused.
set -u
. "$(dirname "$0")/lib.sh"
tj=$TJ_RELEASE   # optimised build: this runs the benchmark itself
tmp=$(mktemp -d /tmp/tj-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

run_bench() { # out-dir, extra args...
	local out=$1; shift
	"$tj" bench --quick --work "$tmp/ds" -o "$out" "$@" >"$out.stdout" 2>"$out.stderr"
}

run_bench "$tmp/a" || fail "bench --quick failed: $(tail -5 "$tmp/a.stderr")"
for f in results.csv results.json report.md commands.txt; do
	[ -s "$tmp/a/$f" ] || fail "bench wrote no $f"
done
grep -q '^bench: .* 0 failed' "$tmp/a.stdout" || fail "bench summary missing: $(tail -3 "$tmp/a.stdout")"
# Every built-in correlator on every scenario of gen --list.
nscn=$("$tj" gen --list | wc -l)
nalg=$("$tj" correlate --list | grep -c '^[a-z]')
rows=$(($(wc -l <"$tmp/a/results.csv") - 1))
[ "$rows" -eq $((nscn * nalg)) ] || fail "results.csv has $rows rows, want $nscn x $nalg"
# No empty accuracy figure on synthetic data.
awk -F, 'NR > 1 && ($11 == "" || $14 == "") { bad = 1 } END { exit bad }' "$tmp/a/results.csv" ||
	fail "a synthetic row has no F1 or trace accuracy"
if command -v gnuplot >/dev/null; then
	ls "$tmp/a/plots/"*.svg >/dev/null 2>&1 || fail "no plots written"
	ls "$tmp/a/plots/"*.png >/dev/null 2>&1 || fail "no PNG plots written"
fi
grep -q 'tracejoin gen --scenario' "$tmp/a/commands.txt" || fail "commands.txt lacks the gen commands"

# Reproducible: the accuracy columns (precision..trace_accuracy) agree.
run_bench "$tmp/b" --no-plots || fail "second bench failed"
cut -d, -f1-6,8-14 "$tmp/a/results.csv" >"$tmp/a.acc"
cut -d, -f1-6,8-14 "$tmp/b/results.csv" >"$tmp/b.acc"
diff "$tmp/a.acc" "$tmp/b.acc" >/dev/null || fail "accuracy differs between two runs: $(diff "$tmp/a.acc" "$tmp/b.acc" | head -5)"

"$tj" bench --compare "$tmp/a" "$tmp/b" >"$tmp/cmp" || fail "--compare failed"
grep -q 'REGRESSION(accuracy)' "$tmp/cmp" && fail "--compare found an accuracy regression between identical runs"
# The summary counts exactly the rows marked (only speed or memory can
# differ between identical runs), and every row is in both.
nmarked=$(grep -c 'REGRESSION(' "$tmp/cmp")
grep -qx "$nmarked regressions (accuracy beyond 0.01 absolute, speed or memory beyond 25%); 0 rows only in A, 0 only in B" "$tmp/cmp" ||
	fail "--compare summary is not '$nmarked regressions ...; 0 rows only in A, 0 only in B': $(tail -1 "$tmp/cmp")"
# A doctored result must show up as a regression.
awk -F, 'BEGIN { OFS = "," } NR == 2 { $11 = $11 - 0.5 } { print }' "$tmp/b/results.csv" >"$tmp/b/r.csv" &&
	mv "$tmp/b/r.csv" "$tmp/b/results.csv"
"$tj" bench --compare "$tmp/a" "$tmp/b" --fail-on-regression >"$tmp/cmp2"
[ $? -eq 1 ] || fail "--fail-on-regression did not fail on a regression"
grep -q 'REGRESSION(accuracy)' "$tmp/cmp2" || fail "--compare missed a doctored regression"
[ "$(grep -c 'REGRESSION(accuracy)' "$tmp/cmp2")" -eq 1 ] || fail "one doctored row, but not one accuracy regression"

# Bad input is refused with exit 2 (usage) or 1 (files).
expect_exit 2 "$tj" bench --loads extreme
expect_exit 2 "$tj" bench --scenarios no-such-scenario --work "$tmp/ds" -o "$tmp/c"
expect_exit 2 "$tj" bench --jobs 0
expect_exit 2 "$tj" bench --requests -5
expect_exit 2 "$tj" bench --threshold 7 --compare "$tmp/a" "$tmp/b"
expect_exit 2 "$tj" bench --compare "$tmp/a"
expect_exit 2 "$tj" bench --no-such-option
expect_exit 2 "$tj" bench --algo ./no-such-plugin.so
expect_exit 1 "$tj" bench --compare "$tmp/a" "$tmp/nonexistent"
echo "bench: ok"
