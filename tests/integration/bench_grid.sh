#!/usr/bin/env bash
# tracejoin bench --plan/--run/--collect: a small grid (2 scenarios x
# 2 seeds) through the local executor gives the figures `bench` gives for
# the same datasets; a killed job is rerun alone with the same result; a
# failing job is named by collect and its exit status; GNU parallel with
# two runners sharing the plan collects byte-identical accuracy columns;
# bad input is refused and leaves the plan as it was.
set -u
. "$(dirname "$0")/lib.sh"
tj=$TJ_RELEASE
tmp=$(mktemp -d /tmp/tj-grid.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
scn=$("$tj" gen --list | awk 'NR <= 2 { print $1 }' | paste -sd,)
nalg=$("$tj" correlate --list | grep -c '^[a-z]')
grid="--quick --seeds 1-2 --scenarios $scn --requests 120"
acc() { cut -d, -f1-6,8-14 "$1/results/results.csv"; }

# ---- plan ----
out=$("$tj" bench --plan "$tmp/g" $grid) || fail "--plan failed: $out"
echo "$out" | grep -q "^bench: planned $((2 * 2 * (2 + nalg))) jobs in [0-9.]* s" ||
	fail "--plan summary: $out"
grep -q $'^gen--.*\tgen\t-\t' "$tmp/g/plan/jobs.tsv" || fail "no gen job in the plan"
grep -q $'^score--.*\tscore\tcor--' "$tmp/g/plan/jobs.tsv" || fail "a score job does not depend on its correlate job"
# one score job a dataset, after every correlate of it
[ "$(awk -F'\t' '$2 == "score" { n++ } END { print n }' "$tmp/g/plan/jobs.tsv")" -eq 4 ] ||
	fail "want one score job per dataset"
# every job asks an engine for memory and CPUs; --mem overrides a kind
awk -F'\t' 'NR > 2 && ($12 < 256 || $13 != 1) { bad = 1 } END { exit bad }' "$tmp/g/plan/jobs.tsv" ||
	fail "a job without its memory or CPUs"
"$tj" bench --plan "$tmp/r" $grid --mem correlate:regression=3000 --mem score=777 --cpus gen=2 >/dev/null ||
	fail "--plan with --mem/--cpus"
awk -F'\t' '$2 == "correlate" && $11 == "regression" && $12 != 3000 { bad = 1 }
	$2 == "correlate" && $11 != "regression" && $12 == 3000 { bad = 1 }
	$2 == "score" && $12 != 777 { bad = 1 } $2 == "gen" && $13 != 2 { bad = 1 }
	END { exit bad }' "$tmp/r/plan/jobs.tsv" || fail "--mem/--cpus not in the plan"
cp "$tmp/g/plan/jobs.tsv" "$tmp/plan.keep"
expect_exit 1 "$tj" bench --plan "$tmp/g" $grid
cmp -s "$tmp/plan.keep" "$tmp/g/plan/jobs.tsv" || fail "a refused --plan changed the plan"
# a bad --seeds is a usage error naming it (make_plan fails before it
# has filled the plan: freeing that plan must be safe)
for bad in 5-1 x 0-20000; do
	err=$("$tj" bench --plan "$tmp/bad" --seeds "$bad" 2>&1 >/dev/null)
	rc=$?
	[ "$rc" -eq 2 ] || fail "--seeds $bad exited $rc, want 2: $err"
	echo "$err" | grep -q -- "--seeds $bad: want" || fail "--seeds $bad: message: $err"
	[ ! -e "$tmp/bad/plan/jobs.tsv" ] || fail "--seeds $bad wrote a plan"
done

# ---- run local + collect ----
"$tj" bench --run "$tmp/g" --executor local 2>"$tmp/run.err" || fail "--run local: $(tail -3 "$tmp/run.err")"
"$tj" bench --collect "$tmp/g" --no-plots >"$tmp/collect.out" 2>&1 || fail "--collect: $(tail -3 "$tmp/collect.out")"
grep -q "collected $((4 * nalg)) results ($((2 * nalg)) cells) in [0-9.]* s: 0 failed, 0 missing" \
	"$tmp/collect.out" || fail "collect summary: $(tail -1 "$tmp/collect.out")"
for f in results.csv cells.csv report.md results.json report.html; do
	[ -s "$tmp/g/results/$f" ] || fail "collect wrote no $f"
done
[ "$(($(wc -l <"$tmp/g/results/cells.csv") - 1))" -eq $((2 * nalg)) ] || fail "cells.csv rows"
# two seeds: every cell has a mean and an interval, and one best per scenario
awk -F, 'NR > 1 && ($4 != 2 || $5 == "" || $6 == "nan") { bad = 1 } END { exit bad }' \
	"$tmp/g/results/cells.csv" || fail "a cell lacks its mean or CI: $(cat "$tmp/g/results/cells.csv")"
[ "$(grep -c ',best$' "$tmp/g/results/cells.csv")" -eq 2 ] || fail "want one best per scenario"
grep -q '±' "$tmp/g/results/report.md" || fail "report.md shows no interval"

# the same datasets through plain `bench` score the same (make bench's path)
first=${scn%%,*}
"$tj" bench --quick --no-found --scenarios "$first" --requests 120 --seed 1 --no-plots \
	--work "$tmp/ds" -o "$tmp/plain" >/dev/null 2>&1 || fail "plain bench failed"
cut -d, -f1-6,8-14 "$tmp/plain/results.csv" | sort >"$tmp/plain.acc"
acc "$tmp/g" | grep -E "^(group,|\"synthetic\",\"$first-medium-s1\",)" | sort >"$tmp/grid1.acc"
diff "$tmp/plain.acc" "$tmp/grid1.acc" >"$tmp/d" || fail "grid and bench differ: $(head -5 "$tmp/d")"
# `bench` (make bench) is that plan run locally and collected: its folder
# holds the results only, commands.txt every job's command
[ "$(ls "$tmp/plain" | paste -sd' ')" = "commands.txt drilldown report.html report.md results.csv results.json" ] ||
	fail "bench left more than its results: $(ls "$tmp/plain")"
grep -q "^tracejoin bench --score-set .*/$first-medium-s1-r120 --name $first-medium-s1 " "$tmp/plain/commands.txt" ||
	fail "commands.txt lacks the score job"
[ "$(grep -c '^tracejoin correlate ' "$tmp/plain/commands.txt")" -eq "$nalg" ] || fail "commands.txt: correlate jobs"
ls "$tmp/plain/drilldown/$first-medium-s1--"*.json >/dev/null || fail "bench wrote no drill-down"
grep -q '^| '"$first"' | medium | ' "$tmp/plain/report.md" || fail "report.md lacks the table"
"$tj" bench --quick --no-found --scenarios "$first" --requests 120 --seed 1 --no-plots --keep-edges \
	--work "$tmp/ds" -o "$tmp/keep" >/dev/null 2>&1 || fail "bench --keep-edges failed"
[ "$(ls "$tmp/keep/edges" | wc -l)" -eq "$nalg" ] || fail "--keep-edges kept $(ls "$tmp/keep/edges" | wc -l) files"
[ ! -e "$tmp/keep/status" ] && [ ! -e "$tmp/keep/plan" ] || fail "--keep-edges kept the run's files"
# a dataset that fails: named, exit 1, the plan kept; rerun alone once fixed
mkdir "$tmp/nologs" && cp "$tmp/ds/$first-medium-s1-r120/labels.csv" "$tmp/nologs/"
"$tj" bench --quick --no-found --scenarios "$first" --requests 120 --no-plots --work "$tmp/ds" \
	-o "$tmp/bf" -d "$tmp/nologs" >"$tmp/bf.out" 2>"$tmp/bf.err" && fail "bench with a failing dataset exited 0"
grep -q "failed [^ ]* on nologs: job cor--nologs--[^ ]* failed: exit" "$tmp/bf.err" ||
	fail "bench does not name the failed job: $(head -3 "$tmp/bf.err")"
grep -q "bench: 2 datasets x $nalg correlators in [0-9]* s, $nalg failed" "$tmp/bf.out" ||
	fail "bench summary: $(tail -1 "$tmp/bf.out")"
[ -e "$tmp/bf/plan/jobs.tsv" ] || fail "a failed bench did not keep its plan"
cp "$tmp/ds/$first-medium-s1-r120/"*.evlog "$tmp/ds/$first-medium-s1-r120/manifest.json" "$tmp/nologs/"
"$tj" bench --run "$tmp/bf" 2>"$tmp/bf.err" || fail "rerun of a failed bench: $(tail -3 "$tmp/bf.err")"
"$tj" bench --collect "$tmp/bf" --no-plots >/dev/null 2>&1 || fail "collect of a rerun bench"
[ "$(grep -c '"nologs"' "$tmp/bf/results.csv")" -eq "$nalg" ] || fail "the rerun dataset's rows"
grep '"nologs"' "$tmp/bf/results.csv" | grep -q 'failed' && fail "a rerun row still failed"

# ---- a job killed midway is rerun alone, with the same result ----
acc "$tmp/g" >"$tmp/local.acc"
victim=$(awk -F'\t' '$2 == "correlate" { print $1; exit }' "$tmp/g/plan/jobs.tsv")
vout=$(awk -F'\t' -v id="$victim" '$1 == id { print $4 }' "$tmp/g/plan/jobs.tsv")
score=score--$(awk -F'\t' -v id="$victim" '$1 == id { print $5 }' "$tmp/g/plan/jobs.tsv")
rm -f "$tmp/g/status/$victim.done" "$tmp/g/status/$score.done"
echo "half a file" >"$vout"    # what a killed correlate leaves
expect_exit 1 "$tj" bench --collect "$tmp/g" --no-plots
"$tj" bench --collect "$tmp/g" --no-plots 2>&1 | grep -q "missing [^ ]* on [^ ]*: job $victim not run" ||
	fail "collect does not name the missing job"
touch -d '2000-01-01' "$tmp/g/status/"*.done
"$tj" bench --run "$tmp/g" 2>"$tmp/run.err" || fail "rerun: $(tail -3 "$tmp/run.err")"
newer=$(find "$tmp/g/status" -name '*.done' -newermt '2001-01-01' | sort | xargs -n1 basename | paste -sd' ')
[ "$newer" = "$victim.done $score.done" ] || fail "the rerun redid more than the killed job: $newer"
"$tj" bench --collect "$tmp/g" --no-plots >/dev/null 2>&1 || fail "collect after the rerun"
acc "$tmp/g" | cmp -s - "$tmp/local.acc" || fail "the rerun changed the figures"

# ---- a failing job: named by run and collect, exit 1 ----
"$tj" bench --plan "$tmp/f" --quick --seeds 1 --scenarios "$first" --requests 60 \
	--algo regression --param regression:nosuchparam=1 >/dev/null || fail "plan with --param"
expect_exit 1 "$tj" bench --run "$tmp/f"
"$tj" bench --collect "$tmp/f" --no-plots >"$tmp/f.out" 2>&1 && fail "collect of a failed job exited 0"
grep -q "failed regression@nosuchparam=1 on $first-medium-s1: job cor--$first-medium-s1--regression@nosuchparam=1 failed: exit 2" \
	"$tmp/f.out" || fail "collect does not name the failed job: $(head -3 "$tmp/f.out")"
grep -q 'job cor--[^,]* failed: exit 2' "$tmp/f/results/results.csv" || fail "results.csv lacks the failure"

# ---- GNU parallel: two runners (two "hosts") share one plan ----
if command -v parallel >/dev/null; then
	"$tj" bench --plan "$tmp/p" $grid >/dev/null || fail "plan for parallel"
	"$tj" bench --run "$tmp/p" --executor parallel -j 1 2>"$tmp/p1.err" & p1=$!
	"$tj" bench --run "$tmp/p" --executor parallel -j 1 2>"$tmp/p2.err" || fail "parallel runner 2: $(tail -3 "$tmp/p2.err")"
	wait $p1 || fail "parallel runner 1: $(tail -3 "$tmp/p1.err")"
	"$tj" bench --collect "$tmp/p" --no-plots >/dev/null 2>&1 || fail "collect after parallel"
	acc "$tmp/p" | sed "s|$tmp/p|X|g" >"$tmp/par.acc"
	sed "s|$tmp/g|X|g" "$tmp/local.acc" | cmp -s - "$tmp/par.acc" ||
		fail "parallel and local differ: $(diff <(sed "s|$tmp/g|X|g" "$tmp/local.acc") "$tmp/par.acc" | head -4)"
else
	echo "note: GNU parallel missing (make grid-engines): its part skipped"
fi

# ---- bad input is refused, naming the argument ----
for bad in "--seeds 5-1" "--seeds x" "--loads huge" "--scenarios nope" "--param nocolon" \
	   "--algo nosuch" "--requests 0"; do
	expect_exit 2 "$tj" bench --plan "$tmp/bad" $bad
	"$tj" bench --plan "$tmp/bad" $bad 2>&1 | grep -q -- "${bad%% *}" || fail "$bad: message does not name it"
done
[ ! -e "$tmp/bad" ] || fail "a refused plan left files"
expect_exit 2 "$tj" bench --run "$tmp/g" --executor nope
expect_exit 2 "$tj" bench --run "$tmp/g" --collect "$tmp/g"
expect_exit 2 "$tj" bench --job "$tmp/g" no-such-job
expect_exit 1 "$tj" bench --run "$tmp/nothing"
expect_exit 1 "$tj" bench --collect "$tmp/nothing"
mkdir -p "$tmp/m/plan" && printf '# tracejoin bench plan 2\njust\tthree\tfields\n' >"$tmp/m/plan/jobs.tsv"
expect_exit 1 "$tj" bench --run "$tmp/m"
"$tj" bench --run "$tmp/m" 2>&1 | grep -q 'jobs.tsv:2: not 14 tab-separated fields' || fail "malformed plan: message"
# a plan of another version (the first grid format) is refused, naming the version it wants
mkdir -p "$tmp/v1/plan" && printf '# id\tkind\tdeps\toutput\tstdout\tdataset\tscenario\tload\tseed\tcorrelator\tcommand\n' >"$tmp/v1/plan/jobs.tsv"
for what in --run --collect; do
	expect_exit 1 "$tj" bench $what "$tmp/v1"
	"$tj" bench $what "$tmp/v1" 2>&1 | grep -q "jobs.tsv:1: not a plan of this tracejoin (want the line '# tracejoin bench plan 2')" ||
		fail "$what: an old plan's message"
done
expect_exit 1 "$tj" bench --job "$tmp/v1" gen--x
# options of --plan elsewhere, and bad resources
expect_exit 2 "$tj" bench --run "$tmp/g" --seeds 1-3
for bad in "--mem gen" "--mem gen=0" "--mem nosuch=5" "--mem correlate:=5" "--cpus score=x" "--mem score=99999999"; do
	expect_exit 2 "$tj" bench --plan "$tmp/bad" $bad
	"$tj" bench --plan "$tmp/bad" $bad 2>&1 | grep -q -- "${bad%% *} ${bad#* }: want" || fail "$bad: message does not name it"
done
[ ! -e "$tmp/bad" ] || fail "a refused plan left files"
# --score-set (a plan's score job) refuses what it cannot score, naming it
expect_exit 2 "$tj" bench --score-set "$tmp/g/data/x" --name x -o "$tmp/ss"
expect_exit 2 "$tj" bench --score-set "$tmp/g/data/x" --name x -o "$tmp/ss" "$tmp/y--a.csv"
"$tj" bench --score-set "$tmp/g/data/x" --name x -o "$tmp/ss" "$tmp/y--a.csv" 2>&1 | grep -q "y--a.csv: want a file named x--CORRELATOR.csv" ||
	fail "--score-set: a misnamed edges file: message"
ds1=$(ls "$tmp/g/data" | head -1)
expect_exit 1 "$tj" bench --score-set "$tmp/g/data/$ds1" --name "$ds1" -o "$tmp/ss" "$tmp/$ds1--nosuch.csv"
"$tj" bench --score-set "$tmp/g/data/$ds1" --name "$ds1" -o "$tmp/ss" "$tmp/$ds1--nosuch.csv" 2>&1 |
	grep -q "scoring $tmp/$ds1--nosuch.csv" || fail "--score-set: a missing edges file is not named"
[ ! -e "$tmp/ss/$ds1--nosuch.json" ] || fail "--score-set wrote a score for a missing file"
echo "bench_grid: ok"
