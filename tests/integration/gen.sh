#!/usr/bin/env bash
# tracejoin gen from the command line: --list and --print, byte-identical
# datasets for one seed (cmp), a spec file from outside the tree, refusals
# of bad options and bad specs (file:line: reason, exit 1 or 2), --force,
# and the whole default suite generated quickly by the release build.
set -u
. "$(dirname "$0")/lib.sh"
tj=${TJ:?}
rel=${TJ_RELEASE:-$tj}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# --list: one line per built-in, every promised scenario there
"$tj" gen --list > "$tmp/list" || fail "gen --list failed"
for s in threaded threadpool keepalive async async-keepalive fanout deep-chain \
	 multinode-skew noisy lossy proxy-chain pipelined mn-pool async-timer; do
	grep -q "^$s " "$tmp/list" || fail "gen --list lacks $s"
done
[ "$(wc -l < "$tmp/list")" -eq "$(ls "$TJ_ROOT"/datasets/gen/scenarios/*.scn | wc -l)" ] ||
	fail "gen --list and datasets/gen/scenarios/ disagree"
"$tj" gen --help | grep -q -- '--scenario' || fail "gen --help"

# built-ins are embedded: --print gives the file back, from any directory
(cd / && "$tj" gen --print keepalive) > "$tmp/keepalive.scn" || fail "gen --print"
cmp -s "$tmp/keepalive.scn" "$TJ_ROOT/datasets/gen/scenarios/keepalive.scn" ||
	fail "--print keepalive differs from datasets/gen/scenarios/keepalive.scn"

# same spec and seed: the same bytes, whatever the output folder
(cd "$tmp" && "$tj" gen --scenario async-keepalive --load high --seed 4 --requests 300 -o a > a.out) ||
	fail "gen a failed"
grep -Eq '^gen: [0-9]+ events, 300 roots, [0-9.]+ s, [0-9.]+ Mev/s$' "$tmp/a.out" ||
	fail "gen's last line: $(cat "$tmp/a.out")"
"$tj" gen -s async-keepalive -l high --seed 4 -n 300 -o "$tmp/b/deeper" > /dev/null || fail "gen b failed"
for f in node-1.evlog node-2.evlog labels.csv manifest.json; do
	cmp "$tmp/a/$f" "$tmp/b/deeper/$f" || fail "$f differs between two runs of one seed"
done
"$tj" gen -s async-keepalive -l high --seed 5 -n 300 -o "$tmp/c" > /dev/null || fail "gen c failed"
cmp -s "$tmp/a/labels.csv" "$tmp/c/labels.csv" && fail "seeds 4 and 5 gave the same labels"
grep -q '"scenario": "async-keepalive"' "$tmp/a/manifest.json" || fail "manifest lacks the scenario"
(cd "$tmp/a" && for f in node-1.evlog node-2.evlog labels.csv; do
	want=$(sha256sum "$f" | cut -d' ' -f1)
	grep -q "\"$want\"" manifest.json || fail "manifest's sha256 of $f is wrong"
done) || exit 1

# an existing dataset needs --force; --force replaces it whole
expect_exit 1 "$tj" gen -s threaded -n 10 -o "$tmp/a"
touch "$tmp/a/node-9.evlog"
"$tj" gen -s threaded -n 10 -o "$tmp/a" --force > /dev/null || fail "--force failed"
[ -e "$tmp/a/node-9.evlog" ] && fail "--force left a stale node log"

# a spec file, with a numeric load; and a bad one, named by file and line
"$tj" gen --print threaded | sed 's/^requests 3000/requests 50/' > "$tmp/mine.scn"
"$tj" gen -s "$tmp/mine.scn" --load 33.5 -o "$tmp/m" > "$tmp/m.out" || fail "spec file refused"
grep -q ' 50 roots' "$tmp/m.out" || fail "the spec's requests were not used"
grep -q '"rate": 33.5' "$tmp/m/manifest.json" || fail "numeric --load not in the manifest"
printf 'node 1\nservice a node 1 port 80 model threads\n' > "$tmp/bad.scn"
err=$("$tj" gen -s "$tmp/bad.scn" -o "$tmp/x" 2>&1 >/dev/null)
[ $? -eq 1 ] || fail "bad spec: wrong exit"
echo "$err" | grep -q "bad.scn:2: unknown model 'threads'" || fail "bad spec message: $err"
# the runtime models' settings: refused where they do not apply, by line
printf 'node 1\nservice a node 1 port 80 model async\n  \nservice b node 1 port 81 model pool callback-cost 80us\n' > "$tmp/bad2.scn"
err=$("$tj" gen -s "$tmp/bad2.scn" -o "$tmp/x" 2>&1 >/dev/null)
[ $? -eq 1 ] || fail "callback-cost on pool: wrong exit"
echo "$err" | grep -q "bad2.scn:4: 'callback-cost' applies to model node" || fail "callback-cost message: $err"
printf 'node 1\nservice a node 1 port 80 model node stall 5ms\n' > "$tmp/bad3.scn"
err=$("$tj" gen -s "$tmp/bad3.scn" -o "$tmp/x" 2>&1 >/dev/null)
[ $? -eq 1 ] || fail "stall alone: wrong exit"
echo "$err" | grep -q "bad3.scn:2: 'stall' and 'stall-every' go together" || fail "stall message: $err"
# the real captures' mirrors (node, goroutine, stalls) generate
for m in node-parallel node-chain go-mn; do
	"$tj" gen -s "$TJ_ROOT/datasets/workloads/configs/$m.scn" -n 100 -o "$tmp/mirror-$m" > /dev/null ||
		fail "mirror $m.scn refused"
done
expect_exit 1 "$tj" gen -s "$tmp/missing.scn" -o "$tmp/x"
expect_exit 1 "$tj" gen -s /dev/null -o "$tmp/x"
"$tj" gen -s "$tmp/missing.scn" -o "$tmp/x" 2>&1 | grep -q "missing.scn: No such file" || fail "missing spec: message"
# a spec that cannot be read (a folder) is a read error naming it, not an empty spec
mkdir -p "$tmp/dir.scn"
expect_exit 1 "$tj" gen -s "$tmp/dir.scn" -o "$tmp/x"
"$tj" gen -s "$tmp/dir.scn" -o "$tmp/x" 2>&1 | grep -q "dir.scn: read error" || fail "unreadable spec: message"
[ ! -e "$tmp/x" ] || fail "a refused spec left an output folder"

# usage errors: exit 2 with a message
expect_exit 2 "$tj" gen
expect_exit 2 "$tj" gen -o "$tmp/x"
expect_exit 2 "$tj" gen -s threaded
expect_exit 2 "$tj" gen -s nosuch -o "$tmp/x"
expect_exit 2 "$tj" gen -s threaded -l extreme -o "$tmp/x"
expect_exit 2 "$tj" gen -s threaded -l -3 -o "$tmp/x"
expect_exit 2 "$tj" gen -s threaded --seed x1 -o "$tmp/x"
expect_exit 2 "$tj" gen -s threaded -n 0 -o "$tmp/x"
expect_exit 2 "$tj" gen -s threaded -n 5 -d 3 -o "$tmp/x"
expect_exit 2 "$tj" gen -s threaded -d nan -o "$tmp/x"
expect_exit 2 "$tj" gen -s threaded --bogus -o "$tmp/x"
expect_exit 2 "$tj" gen -s threaded -o "$tmp/x" extra
expect_exit 2 "$tj" gen --print nosuch
expect_exit 1 "$tj" gen -s threaded -n 5 -o /proc/forbidden/x

# --stacks: the logs carry call sites, dump names them, and the same seed
# still gives the same bytes
"$tj" gen -s threaded -n 30 --stacks -o "$tmp/st1" > /dev/null || fail "gen --stacks"
"$tj" gen -s threaded -n 30 --stacks -o "$tmp/st2" > /dev/null || fail "gen --stacks again"
cmp -s "$tmp/st1/node-1.evlog" "$tmp/st2/node-1.evlog" || fail "gen --stacks: not deterministic"
"$tj" dump --stacks "$tmp/st1/node-1.evlog" | grep -q 'gen:svc_web_ep_page_call[0-9]*_db' ||
	fail "gen --stacks: no call-step site in dump --stacks"
"$tj" dump --stacks "$tmp/st1/node-1.evlog" | grep -q 'gen:svc_web_ep_page_handle' ||
	fail "gen --stacks: no handler site in dump --stacks"

# the default suite: every scenario at every load, quickly (release build)
start=$SECONDS
while read -r s _; do
	for l in low medium high; do
		"$rel" gen -s "$s" -l "$l" -n 2000 -o "$tmp/suite/$s-$l" > /dev/null ||
			fail "suite: $s $l failed"
	done
done < "$tmp/list"
echo "suite of $(ls "$tmp/suite" | wc -l) datasets in $((SECONDS - start)) s"
echo "PASS"
