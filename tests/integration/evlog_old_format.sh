#!/usr/bin/env bash
# Logs written by an older tracejoin still read, event for event: the
# committed 1.2 logs in tests/data/evlog-1.2 (events block type 1, written
# before the 1.3 events coding) dump to the CSV they dumped to then.
set -u
cd "${TJ_ROOT:-$(dirname "$0")/../..}"
TJ=${TJ:-$PWD/build/asan/tracejoin}
. tests/integration/lib.sh
[ -x "$TJ" ] || skip "$TJ not built"

work=$(mktemp -d /tmp/tj-evlog-old.XXXXXX)
trap 'rm -rf "$work"' EXIT
data=tests/data/evlog-1.2
for log in "$data"/*.evlog; do
	name=$(basename "$log" .evlog)
	"$TJ" info "$log" >"$work/info" 2>&1 || fail "info $log failed: $(cat "$work/info")"
	grep -q "format      evlog 1.2" "$work/info" || fail "$log: not read as a 1.2 log"
	grep -q "integrity   ok" "$work/info" || fail "$log: not ok"
	"$TJ" dump --csv "$log" >"$work/$name.csv" || fail "dump --csv $log failed"
	cmp -s "$work/$name.csv" "$data/$name.csv" ||
		fail "$log: events differ from $data/$name.csv: $(diff "$work/$name.csv" "$data/$name.csv" | head -5)"
	# Written again by this tracejoin (import), the same events come back.
	"$TJ" import --format csv "$work/$name.csv" -o "$work/$name.evlog" >/dev/null ||
		fail "import of $name.csv failed"
	"$TJ" dump --csv "$work/$name.evlog" >"$work/$name.again.csv" || fail "dump of the new $name failed"
	cmp -s "$work/$name.again.csv" "$data/$name.csv" || fail "$name: rewritten log reads differently"
done
# The stacks block of an old log still names its frames.
"$TJ" dump --stacks "$data/noisy-stacks.evlog" >"$work/stacks" || fail "dump --stacks failed"
grep -q '#0 \[gen:svc_web_accept\]' "$work/stacks" || fail "old log's stacks not read"
echo "ok: $(ls "$data"/*.evlog | wc -l) old logs read as they were written"
