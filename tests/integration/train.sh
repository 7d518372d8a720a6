#!/usr/bin/env bash
# tracejoin train / features and the classifier correlator end to end, on
# small generated datasets: a deterministic model file that records its
# training data's hashes, a CSV of pairs that agrees with the labels, the
# correlator using the model, and every bad input refused cleanly.
set -u
TJ=${TJ:-build/asan/tracejoin}
fail() { echo "FAIL: $*"; exit 1; }
if ! "$TJ" gen --help >/dev/null 2>&1; then
	echo "SKIPPED: tracejoin gen is not built yet"
	exit 77
fi
if ! "$TJ" score --help >/dev/null 2>&1; then
	echo "SKIPPED: tracejoin score is not built yet"
	exit 77
fi
work=$(mktemp -d /tmp/tracejoin-train.XXXXXX)
trap 'rm -rf "$work"' EXIT

"$TJ" gen --scenario threaded --load low --seed 101 --requests 150 -o "$work/a" >/dev/null ||
	fail "gen a"
"$TJ" gen --scenario threaded --load high --seed 102 --requests 150 -o "$work/b" >/dev/null ||
	fail "gen b"
"$TJ" gen --scenario threaded --load medium --seed 201 --requests 150 -o "$work/t" >/dev/null ||
	fail "gen t"

# --- train: a model file, byte-identical when redone -----------------------
"$TJ" train --algo classifier "$work/a" "$work/b" --test "$work/t" -o "$work/m1.model" \
	2>"$work/train.log" || { cat "$work/train.log"; fail "train"; }
grep -q '^test clogit .*accuracy' "$work/train.log" || fail "no held-out accuracy printed"
"$TJ" train --algo classifier -q "$work/a" "$work/b" -o "$work/m2.model" || fail "train again"
cmp "$work/m1.model" "$work/m2.model" || fail "the same training gave another model file"
head -1 "$work/m1.model" | grep -qx 'tracejoin-model 1' || fail "no version line"
grep -q '^feature same_tid ' "$work/m1.model" || fail "feature list missing"
grep -q '^threshold ' "$work/m1.model" || fail "threshold missing"
want=$(sha256sum "$work/a/labels.csv" | cut -d' ' -f1)
grep -q "^dataset a labels.csv $want\$" "$work/m1.model" || fail "labels hash of a not recorded"
want=$(sha256sum "$work/b/node-1.evlog" | cut -d' ' -f1)
grep -q "^dataset b node-1.evlog $want\$" "$work/m1.model" || fail "log hash of b not recorded"
# Without a manifest the files are hashed themselves, with the same result.
cp -r "$work/a" "$work/a2" && rm "$work/a2/manifest.json"
"$TJ" train --algo classifier -q "$work/a2" -o "$work/m3.model" || fail "train without manifest"
want=$(sha256sum "$work/a2/labels.csv" | cut -d' ' -f1)
grep -q "^dataset a2 labels.csv $want\$" "$work/m3.model" || fail "hash without manifest"
# --features N: a model of the list's first N features, read back by this build
"$TJ" train --algo classifier -q --features 28 "$work/a" -o "$work/f28.model" || fail "train --features 28"
grep -q '^features 28$' "$work/f28.model" || fail "--features 28 did not write 28 features"
"$TJ" correlate --algo classifier --param model="$work/f28.model" "$work/t" -o "$work/f28.csv" 2>/dev/null ||
	fail "a 28-feature model is not read by this build"
# --features LIST: a selection (the first 27 and the queue order features)
# is written as one, only those lines, read back and used by the correlator
"$TJ" train --algo classifier -q --features 27,queue_rank,queue_head "$work/a" -o "$work/sel.model" ||
	fail "train --features 27,queue_rank,queue_head"
grep -qx 'selection 1' "$work/sel.model" || fail "a selection model does not say so"
grep -q '^features 29$' "$work/sel.model" || fail "--features 27,queue_rank,queue_head did not write 29 features"
grep -q '^feature queue_passed ' "$work/sel.model" && fail "a feature not selected was written"
[ "$(grep '^feature ' "$work/sel.model" | tail -2 | cut -d' ' -f2 | tr '\n' ' ')" = "queue_head queue_rank " ] ||
	fail "a selection is not written in the build's order"
"$TJ" correlate --algo classifier --param model="$work/sel.model" --explain "$work/t" -o "$work/sel.csv" \
	2>"$work/sel.err" || fail "a selection model is not read: $(cat "$work/sel.err")"
grep -q 'sel.model: clogit, 29 features' "$work/sel.err" || fail "explain does not count the selection: $(head -1 "$work/sel.err")"
# --self-fed: a round line, and the same file again when redone
"$TJ" train --algo classifier --self-fed 1 "$work/a" "$work/b" -o "$work/s1.model" 2>"$work/sf.log" ||
	{ cat "$work/sf.log"; fail "train --self-fed 1"; }
grep -q '^self-fed round 1: [0-9]* pairs added' "$work/sf.log" || fail "no self-fed round line: $(cat "$work/sf.log")"
"$TJ" train --algo classifier -q --self-fed 1 "$work/a" "$work/b" -o "$work/s2.model" || fail "train --self-fed again"
cmp "$work/s1.model" "$work/s2.model" || fail "the same self-fed training gave another model file"
"$TJ" train --algo classifier --fit both -q "$work/a" --test "$work/t" -o "$work/m4.model" ||
	fail "train --fit both"

# --- the correlator uses it ---------------------------------------------------
"$TJ" correlate --algo classifier --param model="$work/m1.model" "$work/t" \
	-o "$work/edges.csv" 2>"$work/corr.log" || { cat "$work/corr.log"; fail "correlate"; }
grep -q '^correlate: algo classifier' "$work/corr.log" || fail "no speed line"
calls=$(($(wc -l <"$work/t/labels.csv") - 1))
edges=$(($(wc -l <"$work/edges.csv") - 1))
[ "$calls" -eq "$edges" ] || fail "$edges edges for $calls calls"
"$TJ" score --labels "$work/t/labels.csv" "$work/edges.csv" >"$work/score.txt" || fail "score"
# threaded is the easy case: same thread in, same thread out
acc=$(sed -n 's/.*accuracy \([0-9.]*\) (.*calls).*/\1/p' "$work/score.txt" | head -1)
[ -n "$acc" ] || { cat "$work/score.txt"; fail "no accuracy in score output"; }
awk -v a="$acc" 'BEGIN { exit !(a >= 0.95) }' || fail "accuracy $acc on threaded"

# correlate --train fits on a labeled dataset first, with no model file
"$TJ" correlate --algo classifier --param model="$work/m1.model" --train "$work/a" "$work/t" \
	-o "$work/edges2.csv" 2>/dev/null || fail "correlate --train"
"$TJ" score --labels "$work/t/labels.csv" "$work/edges2.csv" >"$work/score2.txt" || fail "score 2"
acc=$(sed -n 's/.*accuracy \([0-9.]*\) (.*calls).*/\1/p' "$work/score2.txt" | head -1)
awk -v a="$acc" 'BEGIN { exit !(a >= 0.95) }' || fail "accuracy $acc after --train"

# --- features: one row per pair, labels agree with labels.csv -------------------
"$TJ" features "$work/a" -o "$work/f.csv" || fail "features"
head -1 "$work/f.csv" | grep -q '^dataset,call,candidate,label,call_truth,dt_start,' ||
	fail "features header: $(head -1 "$work/f.csv")"
rows=$(($(wc -l <"$work/f.csv") - 1))
[ "$rows" -gt 0 ] || fail "no feature rows"
# every call whose truth is a candidate has exactly one row labeled 1
awk -F, 'NR > 1 && $5 == "parent" { calls[$2] = 1; ones[$2] += $4 }
	NR > 1 && $4 != 0 && $4 != 1 { bad = 1 }
	END { for (c in calls) if (ones[c] != 1) bad = 1; exit bad }' "$work/f.csv" ||
	fail "a call with other than one true parent row"
# a positive row's pair must be in labels.csv
pair=$(awk -F, 'NR > 1 && $4 == 1 { gsub(/"/, ""); print $2 "," $3; exit }' "$work/f.csv")
grep -q "^$pair," "$work/a/labels.csv" || fail "positive pair $pair not in labels.csv"
"$TJ" features "$work/a" >"$work/f2.csv" || fail "features to stdout"
cmp "$work/f.csv" "$work/f2.csv" || fail "features differ between -o and stdout"

# --- refusals -----------------------------------------------------------------
expect() { # exit-code message-fragment command...
	local code=$1 frag=$2; shift 2
	"$@" >"$work/out" 2>"$work/err"
	local rc=$?
	[ $rc -eq "$code" ] || fail "exit $rc, not $code: $*: $(cat "$work/err")"
	grep -q -- "$frag" "$work/err" || fail "no '$frag' in: $(cat "$work/err")"
}
expect 2 "-o FILE is required" "$TJ" train --algo classifier "$work/a"
expect 2 "--algo is required" "$TJ" train "$work/a" -o "$work/x.model"
expect 2 "only --algo classifier" "$TJ" train --algo metadata "$work/a" -o "$work/x.model"
expect 2 "unknown option --bogus" "$TJ" train --bogus
expect 2 "--fit wants" "$TJ" train --algo classifier --fit tree "$work/a" -o "$work/x.model"
expect 2 "give --test" "$TJ" train --algo classifier --fit both "$work/a" -o "$work/x.model"
expect 2 "--lambda" "$TJ" train --algo classifier --lambda -1 "$work/a" -o "$work/x.model"
expect 2 "--max-cand" "$TJ" train --algo classifier --max-cand 0 "$work/a" -o "$work/x.model"
expect 2 "--self-fed wants a count 0..5, not '9'" "$TJ" train --algo classifier --self-fed 9 "$work/a" -o "$work/x.model"
expect 2 "--self-fed wants a count 0..5, not 'x'" "$TJ" train --algo classifier --self-fed x "$work/a" -o "$work/x.model"
expect 2 "--self-fed wants a count 0..5, not '1.5'" "$TJ" train --algo classifier --self-fed 1.5 "$work/a" -o "$work/x.model"
expect 2 "--features wants a count 1.." "$TJ" train --algo classifier --features 0 "$work/a" -o "$work/x.model"
expect 2 "--features wants a count 1.." "$TJ" train --algo classifier --features 999 "$work/a" -o "$work/x.model"
expect 2 "no feature 'queue_hed'" "$TJ" train --algo classifier --features 27,queue_hed "$work/a" -o "$work/x.model"
expect 2 "'queue_head' given twice" "$TJ" train --algo classifier --features queue_head,queue_head "$work/a" -o "$work/x.model"
expect 2 "--features wants" "$TJ" train --algo classifier --features , "$work/a" -o "$work/x.model"
[ ! -e "$work/x.model" ] || fail "a refused --features left a model file"
# a selection naming a feature this build lacks is refused, naming it
sed 's/^feature queue_rank /feature queue_rnk /' "$work/sel.model" >"$work/sel-bad.model"
expect 1 "queue_rnk" "$TJ" correlate --algo classifier --param model="$work/sel-bad.model" "$work/t"
[ ! -e "$work/x.model" ] || fail "a refused train left a model file"
expect 1 "cannot write in $work/nodir" "$TJ" train --algo classifier "$work/a" -o "$work/nodir/x.model"
expect 2 "no dataset given" "$TJ" features
expect 2 "unknown option --bogus" "$TJ" features --bogus "$work/a"
mkdir -p "$work/nolabels" && cp "$work/a"/node-*.evlog "$work/nolabels/"
expect 1 "nolabels: no labels.csv" "$TJ" train --algo classifier "$work/nolabels" -o "$work/x.model"
[ ! -e "$work/x.model" ] || fail "a failed train left a model file"
expect 1 "nolabels: no labels.csv" "$TJ" features "$work/nolabels" -o "$work/x.csv"
[ ! -e "$work/x.csv" ] || fail "a failed features run left a file"
expect 1 "not a dataset folder" "$TJ" train --algo classifier "$work/none" -o "$work/x.model"
printf 'child,parent,score\nbroken\n' >"$work/nolabels/labels.csv"
expect 1 "labels.csv" "$TJ" train --algo classifier "$work/nolabels" -o "$work/x.model"
# a model for another feature list or version is refused by name
sed 's/^feature same_tid /feature same_thread /' "$work/m1.model" >"$work/other.model"
expect 1 "same_thread" "$TJ" correlate --algo classifier --param model="$work/other.model" "$work/t"
sed '1s/.*/tracejoin-model 7/' "$work/m1.model" >"$work/v7.model"
expect 1 "version 7" "$TJ" correlate --algo classifier --param model="$work/v7.model" "$work/t"
head -c 300 "$work/m1.model" >"$work/cut.model"
expect 1 "cut.model" "$TJ" correlate --algo classifier --param model="$work/cut.model" "$work/t"
expect 2 "unknown param 'colour'" "$TJ" correlate --algo classifier --param colour=blue "$work/t"
# order-logit: the same code with models/order.model; its params refused by its name
expect 2 "order-logit: unknown param 'colour'" "$TJ" correlate --algo order-logit --param colour=blue "$work/t"
expect 2 "order-logit: param threshold=2 not in" "$TJ" correlate --algo order-logit --param threshold=2 "$work/t"
expect 2 "order-logit: param explain=3" "$TJ" correlate --algo order-logit --param explain=3 "$work/t"
"$TJ" correlate --algo order-logit "$work/t" -o "$work/ol.csv" 2>"$work/ol.err" || fail "order-logit: $(cat "$work/ol.err")"
[ "$(($(wc -l <"$work/ol.csv") - 1))" -eq "$calls" ] || fail "order-logit: not one edge per call"
"$TJ" correlate --algo order-logit --explain "$work/t" 2>&1 >/dev/null | grep -q 'order.model.*33 features' ||
	fail "order-logit --explain does not name order.model"
# order-align: order-logit's scores decided along queues; every call gets
# exactly one edge (the queued ones at the end of a step or at finish)
expect 2 "order-align: unknown param 'colour'" "$TJ" correlate --algo order-align --param colour=blue "$work/t"
expect 2 "order-align: param threshold=-1 not in" "$TJ" correlate --algo order-align --param threshold=-1 "$work/t"
expect 2 "order-align: param explain=2" "$TJ" correlate --algo order-align --param explain=2 "$work/t"
"$TJ" correlate --algo order-align "$work/t" -o "$work/oa.csv" 2>"$work/oa.err" || fail "order-align: $(cat "$work/oa.err")"
[ "$(cut -d, -f1 "$work/oa.csv" | sort | uniq | wc -l)" -eq "$(($(wc -l <"$work/oa.csv")))" ] ||
	fail "order-align: a call with two edges"
[ "$(cut -d, -f1 "$work/oa.csv" | sort)" = "$(cut -d, -f1 "$work/ol.csv" | sort)" ] ||
	fail "order-align: not the same calls as order-logit"
"$TJ" correlate --algo order-align --explain "$work/t" 2>&1 >/dev/null | grep -q 'order-align: [0-9]* queues' ||
	fail "order-align --explain does not show the queues' fitted moves"
# lookahead: order-align corrected by look-ahead links; its own params and
# the base's refused by name, one edge per call, and --explain names the
# signal that decided each call
for bad in base=metadata horizon_ms=0 horizon_ms=x links=some sync_share=2 explain=2; do
	expect 2 "lookahead: param ${bad%%=*}=" "$TJ" correlate --algo lookahead --param "$bad" "$work/t"
done
expect 2 "lookahead: unknown param 'colour'" "$TJ" correlate --algo lookahead --param colour=blue "$work/t"
expect 2 "param threshold=2 not in" "$TJ" correlate --algo lookahead --param threshold=2 "$work/t"
"$TJ" correlate --algo lookahead "$work/t" -o "$work/la.csv" 2>"$work/la.err" || fail "lookahead: $(cat "$work/la.err")"
[ "$(cut -d, -f1 "$work/la.csv" | sort)" = "$(cut -d, -f1 "$work/oa.csv" | sort)" ] ||
	fail "lookahead: not the same calls as order-align, once each"
"$TJ" correlate --algo lookahead --explain "$work/t" 2>"$work/la.x" >/dev/null || fail "lookahead --explain failed"
[ "$(grep -c '^lookahead: .* <- .* by \(base\|completion\|continuation\|conflict\) (base ' "$work/la.x")" -eq "$calls" ] ||
	fail "lookahead --explain does not say which signal decided each call"
echo "ok"
