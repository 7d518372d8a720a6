#!/usr/bin/env bash
# tracejoin info and dump on a log written by bench/evlog-bench: whole,
# cut short, corrupted, foreign and too new; options and exit codes; the
# CSV round trip through import when import is built.
set -u
cd "${TJ_ROOT:-$(dirname "$0")/../..}"
TJ=${TJ:-$PWD/build/asan/tracejoin}
gen=${TJ_BUILD:-build/asan}/bench/evlog-bench
[ -x "$TJ" ] || { echo "SKIPPED: $TJ not built"; exit 77; }
[ -x "$gen" ] || { echo "SKIPPED: $gen not built"; exit 77; }
command -v jq >/dev/null || { echo "SKIPPED: jq not installed"; exit 77; }

work=$(mktemp -d /tmp/tj-info-dump.XXXXXX)
trap 'rm -rf "$work"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
expect_rc() { # want, description, command...
	local want=$1 what=$2; shift 2
	"$@" >"$work/out" 2>"$work/err"
	local rc=$?
	[ $rc -eq "$want" ] || { fail "$what: exit $rc, want $want"; sed 's/^/    /' "$work/err" | head -5; }
}

log=$work/a.evlog
B=131072   # the writer's events per block (lib/evlog.c)
N=300000   # two whole blocks and a short one
"$gen" $N "$log" >/dev/null || { echo "FAIL: evlog-bench could not write $log"; exit 1; }
size=$(stat -c %s "$log")

# --- a whole log ---
expect_rc 0 "info on a whole log" "$TJ" info "$log"
grep -q "integrity   ok" "$work/out" || fail "info does not say ok"
grep -q "events      $N" "$work/out" || fail "info does not count $N events"
expect_rc 0 "info --json" "$TJ" info --json "$log"
[ "$(jq '.[0].events' "$work/out")" = $N ] || fail "json events"
[ "$(jq -r '.[0].integrity' "$work/out")" = ok ] || fail "json integrity"
[ "$(jq '.[0].file_bytes' "$work/out")" = "$size" ] || fail "json file_bytes"
[ "$(jq '[.[0].events_by_type[]] | add' "$work/out")" = $N ] || fail "json types do not add up"
bpe=$(jq '.[0].bytes_per_event' "$work/out")
awk -v b="$bpe" 'BEGIN { exit !(b > 0 && b <= 12) }' || fail "bytes/event $bpe not in (0, 12]"
expect_rc 0 "info on stdin" sh -c "cat '$log' | '$TJ' info -"
grep -q "events      $N" "$work/out" || fail "info - does not count $N events"
expect_rc 0 "info on two logs" "$TJ" info --json "$log" "$log"
[ "$(jq length "$work/out")" = 2 ] || fail "json array of two"

expect_rc 0 "dump --csv" "$TJ" dump --csv "$log"
header='ts_ns,node,pid,tid,fd,sock,type,family,laddr,lport,raddr,rport,bytes,offset,payload_hex,flags,arg,stack_id,tcp_seq'
[ "$(head -n1 "$work/out")" = "$header" ] || fail "csv header: $(head -n1 "$work/out")"
[ "$(wc -l <"$work/out")" -eq $((N + 1)) ] || fail "csv rows: $(wc -l <"$work/out")"
cp "$work/out" "$work/a.csv"
# Every row has 19 fields, family ipv4, and a stream offset that grows.
awk -F, 'NR > 1 && (NF != 19 || $8 != "ipv4") { bad++ } END { exit bad > 0 }' "$work/a.csv" \
	|| fail "csv rows malformed"
expect_rc 0 "dump text" "$TJ" dump --limit 5 "$log"
[ "$(wc -l <"$work/out")" -eq 5 ] || fail "--limit 5 printed $(wc -l <"$work/out")"
grep -q " -> 10\." "$work/out" || fail "text lines lack addresses"
expect_rc 0 "dump --type accept" "$TJ" dump --csv --type accept "$log"
n_acc=$(jq '.[0].events_by_type.accept' <("$TJ" info --json "$log"))
[ "$(tail -n +2 "$work/out" | cut -d, -f7 | sort -u)" = accept ] || fail "--type accept let others through"
[ "$(tail -n +2 "$work/out" | wc -l)" -eq "$n_acc" ] || fail "--type accept count"
pid=$(sed -n 2p "$work/a.csv" | cut -d, -f3)
expect_rc 0 "dump --pid" "$TJ" dump --csv --pid "$pid" --type send,recv "$log"
[ "$(tail -n +2 "$work/out" | cut -d, -f3 | sort -u)" = "$pid" ] || fail "--pid filter"
expect_rc 0 "dump --node 1" "$TJ" dump --csv --node 1 --limit 3 "$log"
[ "$(wc -l <"$work/out")" -eq 4 ] || fail "--node 1 --limit 3"
expect_rc 0 "dump --node 2" "$TJ" dump --csv --node 2 "$log"
[ "$(wc -l <"$work/out")" -eq 1 ] || fail "--node 2 should print the header only"

# --- cut short: every whole block is read, the loss is reported, exit 3 ---
head -c $((size * 3 / 5)) "$log" >"$work/cut.evlog"
expect_rc 3 "info on a cut log" "$TJ" info "$work/cut.evlog"
grep -q "DAMAGED from offset" "$work/out" || fail "info on a cut log does not say DAMAGED"
grep -q "cut short" "$work/err" || fail "info on a cut log: no 'cut short' on stderr"
grep -q "at least $B events lost" "$work/err" || fail "cut log: loss of the cut block not reported"
expect_rc 3 "dump on a cut log" "$TJ" dump --csv "$work/cut.evlog"
rows=$(($(wc -l <"$work/out") - 1))
[ $((rows % B)) -eq 0 ] && [ $rows -gt 0 ] || fail "cut log: $rows rows, not whole blocks"
cmp -s <(head -n $((rows + 1)) "$work/a.csv") "$work/out" || fail "cut log: rows differ from the whole log's"

# --- a corrupted middle block: skipped, the rest read, exact loss ---
cp "$log" "$work/bad.evlog"
printf '\xff\xff\xff\xff' | dd of="$work/bad.evlog" bs=1 seek=$((size / 3)) conv=notrunc status=none
expect_rc 3 "info on a corrupted log" "$TJ" info --json "$work/bad.evlog"
[ "$(jq '.[0].events' "$work/out")" = $((N - B)) ] || fail "corrupted log: $(jq '.[0].events' "$work/out") events read"
[ "$(jq '.[0].damage.events_lost' "$work/out")" = $B ] || fail "corrupted log: loss"
[ "$(jq '.[0].damage.lost_exact' "$work/out")" = true ] || fail "corrupted log: loss not exact"
[ "$(jq '.[0].footer' "$work/out")" = true ] || fail "corrupted log: footer not reached"

# --- refusals ---
echo "not a log" >"$work/text.evlog"
expect_rc 1 "info on a text file" "$TJ" info "$work/text.evlog"
grep -q "$work/text.evlog: not an evlog" "$work/err" || fail "text file: message lacks path"
expect_rc 1 "dump on a missing file" "$TJ" dump "$work/missing.evlog"
grep -q "$work/missing.evlog" "$work/err" || fail "missing file: message lacks path"
: >"$work/empty.evlog"
expect_rc 1 "info on an empty file" "$TJ" info "$work/empty.evlog"
cp "$log" "$work/v2.evlog"
printf '\x02\x00\x00\x00' | dd of="$work/v2.evlog" bs=1 seek=8 conv=notrunc status=none
expect_rc 1 "info on a 2.0 log" "$TJ" info "$work/v2.evlog"
grep -q "evlog format version 2.0 is newer than this tracejoin (1.x)" "$work/err" \
	|| fail "2.0 log: $(cat "$work/err")"
head -c 20 "$log" >"$work/hdr.evlog"
expect_rc 3 "info on a log cut in its header" "$TJ" info "$work/hdr.evlog"
expect_rc 1 "info: one bad file among good" "$TJ" info "$log" "$work/text.evlog"

# --- usage ---
expect_rc 0 "info --help" "$TJ" info --help
grep -q "usage: tracejoin info" "$work/out" || fail "info --help text"
expect_rc 0 "dump --help" "$TJ" dump --help
grep -q -- "--csv" "$work/out" || fail "dump --help text"
expect_rc 2 "info with no file" "$TJ" info
expect_rc 2 "info --bogus" "$TJ" info --bogus "$log"
expect_rc 2 "dump --bogus" "$TJ" dump --bogus "$log"
expect_rc 2 "dump --type nosuch" "$TJ" dump --type nosuch "$log"
expect_rc 2 "dump --pid x" "$TJ" dump --pid x "$log"
expect_rc 2 "dump --limit 0" "$TJ" dump --limit 0 "$log"
expect_rc 2 "dump --sock -1" "$TJ" dump --sock -1 "$log"
expect_rc 2 "dump --node 4294967296" "$TJ" dump --node 4294967296 "$log"
expect_rc 2 "dump --limit" "$TJ" dump "$log" --limit
expect_rc 2 "dump two files" "$TJ" dump "$log" "$log"

# --- CSV round trip, when import is built ---
if "$TJ" import --help >/dev/null 2>&1; then
	expect_rc 0 "import --format csv" "$TJ" import --format csv "$work/a.csv" -o "$work/back.evlog"
	expect_rc 0 "dump of the imported log" "$TJ" dump --csv "$work/back.evlog"
	cmp -s "$work/a.csv" "$work/out" || fail "dump --csv | import --format csv | dump --csv differs"
else
	echo "note: import not built, CSV round trip not checked"
fi

[ $fails -eq 0 ] || { echo "$fails checks failed"; exit 1; }
echo "info/dump: all checks passed"
