#!/usr/bin/env bash
# Training at scale (`bench --plan --train`, what models/train-default.sh
# runs for `make models`): gen jobs over scenarios x loads x seeds and a
# train job per model on the union of its datasets give the model, byte
# for byte, that generating the same datasets and training on them by
# hand gives; a failing train job is named; bad input is refused.
set -u
. "$(dirname "$0")/lib.sh"
tj=$TJ_RELEASE
tmp=$(mktemp -d /tmp/tj-train.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
spec=$(ls "$(dirname "$0")/../../models/train-scenarios/"*.scn | head -1)
base="async deep-chain"
req=100

# by hand, as models/train-default.sh did before plans
sets=() base_sets=()
for s in $base "$spec"; do
	for l in low medium; do
		for seed in 101 102; do
			d="$tmp/hand/$(basename "$s" .scn)-$l-s$seed"
			"$tj" gen --scenario "$s" --load "$l" --seed "$seed" --requests "$req" -o "$d" >/dev/null ||
				fail "gen $s $l $seed"
			sets+=("$d")
			case " $base " in *" $s "*) base_sets+=("$d") ;; esac
		done
	done
done
"$tj" train --algo classifier --fit clogit --features 27 "${base_sets[@]}" -o "$tmp/hand/default.model" \
	2>/dev/null || fail "train default by hand"
"$tj" train --algo classifier --fit clogit --self-fed 1 --features 33 "${sets[@]}" -o "$tmp/hand/order.model" \
	2>/dev/null || fail "train order by hand"

# the same as a training plan
out=$("$tj" bench --plan "$tmp/p" --seeds 101,102 --scenarios "async,deep-chain,$spec" \
	--loads low,medium --requests $req \
	--train "default.model=--algo classifier --fit clogit --features 27" --train-on "default.model=async,deep-chain" \
	--train "order.model=--algo classifier --fit clogit --self-fed 1 --features 33") || fail "--plan --train: $out"
echo "$out" | grep -q "^bench: planned 14 jobs" || fail "want 12 gen and 2 train jobs: $out"
[ "$(awk -F'\t' '$2 == "train" { print $1 }' "$tmp/p/plan/jobs.tsv" | paste -sd' ')" = "train--default.model train--order.model" ] ||
	fail "train jobs: $(cut -f1,2 "$tmp/p/plan/jobs.tsv")"
[ "$(awk -F'\t' '$1 == "train--default.model" { print $3 }' "$tmp/p/plan/jobs.tsv" | tr ',' '\n' | wc -l)" -eq 8 ] ||
	fail "default.model's train job does not need its 8 datasets"
"$tj" bench --run "$tmp/p" 2>"$tmp/run.err" || fail "--run: $(tail -3 "$tmp/run.err")"
"$tj" bench --collect "$tmp/p" >"$tmp/coll.out" 2>&1 || fail "--collect: $(cat "$tmp/coll.out")"
grep -q "^bench: model order.model: $tmp/p/models/order.model" "$tmp/coll.out" || fail "collect: $(cat "$tmp/coll.out")"
for m in default.model order.model; do
	cmp "$tmp/hand/$m" "$tmp/p/models/$m" || fail "$m differs from the one trained by hand"
done
# what make models runs, on the same small suite: the same bytes
sed -e 's/^base=.*/base="async,deep-chain"/' -e 's/^scenarios="\$base,.*/scenarios="$base"/' \
	-e "s|\"\$here\"/train-scenarios/\*.scn|$spec|" -e 's/--loads low,medium,high/--loads low,medium/' \
	"$(dirname "$0")/../../models/train-default.sh" >"$tmp/train.sh"
grep -q "for f in $spec; do" "$tmp/train.sh" || fail "could not shrink train-default.sh: $(grep 'for f' "$tmp/train.sh")"
TJ_MODEL_REQUESTS=$req bash "$tmp/train.sh" "$tj" "$tmp/mm" "$tmp/out" >/dev/null 2>&1 || fail "models/train-default.sh failed"
for m in default.model order.model; do
	cmp "$tmp/hand/$m" "$tmp/out/$m" || fail "train-default.sh's $m differs from the one trained by hand"
done

# a failing train job is named by run and collect, exit 1
"$tj" bench --plan "$tmp/f" --seeds 101 --scenarios async --loads low --requests 60 \
	--train "x.model=--algo nosuch" >/dev/null || fail "plan of a failing train job"
expect_exit 1 "$tj" bench --run "$tmp/f"
"$tj" bench --collect "$tmp/f" >"$tmp/f.out" 2>&1 && fail "collect of a failed train exited 0"
grep -q "failed train--x.model: exit 2" "$tmp/f.out" || fail "collect does not name the failed train: $(cat "$tmp/f.out")"

# bad input, refused naming the argument, no plan written
for bad in "--train nomodel" "--train x=" "--train a/b=--fit clogit" "--train-on x=async" \
	   "--scenarios async --train x=--fit --algo metadata" "--scenarios nosuch.scn --train x=--fit" \
	   "--train x=--fit"; do
	# shellcheck disable=SC2086
	expect_exit 2 "$tj" bench --plan "$tmp/bad" --requests 60 $bad
done
"$tj" bench --plan "$tmp/bad" --train nomodel 2>&1 | grep -q -- "--train nomodel: want NAME=" || fail "--train: message"
"$tj" bench --plan "$tmp/bad" --scenarios async --train x=--fit --train-on x=fanout 2>&1 |
	grep -q -- "--train-on x=fanout: no planned scenario" || fail "--train-on: message"
expect_exit 2 "$tj" bench --plan "$tmp/bad" --scenarios async --train x=--fit --train-on x=fanout
[ ! -e "$tmp/bad" ] || fail "a refused plan left files"
expect_exit 2 "$tj" bench --run "$tmp/p" --train x=--fit
# make models' switch for the runtimes' specs: 0 or 1, else refused, nothing made
TJ_MODEL_RUNTIMES=yes bash "$(dirname "$0")/../../models/train-default.sh" "$tj" "$tmp/rt" "$tmp/rt-out" \
	>/dev/null 2>"$tmp/rt.err" && fail "TJ_MODEL_RUNTIMES=yes accepted"
grep -q "TJ_MODEL_RUNTIMES=yes: 0 or 1" "$tmp/rt.err" || fail "TJ_MODEL_RUNTIMES: message: $(cat "$tmp/rt.err")"
[ ! -e "$tmp/rt" ] && [ ! -e "$tmp/rt-out" ] || fail "a refused TJ_MODEL_RUNTIMES left files"
echo "bench_grid_train: ok"
