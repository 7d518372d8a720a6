#!/bin/bash
# bench/recorder-bench's LOG and bench/recorder-same-log.sh: bad arguments
# refused with a message and no file made; an existing LOG refused and
# left as it was; a kept log readable, every event in it; the same build
# twice writes the same bytes, and a build that writes other bytes is
# caught (exit 1).
set -u
. "$(dirname "$0")/lib.sh"
B=${TJ_BUILD:-build/asan}
bench=$B/bench/recorder-bench
TJ=$B/tracejoin
[ -x "$bench" ] || fail "$bench not built"
tmp=$(mktemp -d /tmp/tj-recorder-same.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

for args in "0" "10 0" "10 257" "10 2 0" "10 2 -5" "10 2 500000 $tmp/a.evlog extra"; do
	# shellcheck disable=SC2086
	expect_exit 2 "$bench" $args
done
expect_exit 2 "$bench" 10 2 500000 ""
[ -z "$(ls -A "$tmp")" ] || fail "a refused run left files: $(ls "$tmp")"

expect_exit 0 "$bench" 20000 3 500000 "$tmp/a.evlog"
n=$("$TJ" info "$tmp/a.evlog" | awk '$1 == "events" {print $2; exit}')
[ "$n" = 20000 ] || fail "kept log holds '$n' events, want 20000: $("$TJ" info "$tmp/a.evlog")"
cp "$tmp/a.evlog" "$tmp/a.copy"
expect_exit 1 "$bench" 100 2 500000 "$tmp/a.evlog"
cmp -s "$tmp/a.evlog" "$tmp/a.copy" || fail "an existing LOG was changed"
[ -z "$(ls "$tmp" | grep -v -x -e a.evlog -e a.copy)" ] || fail "stray files: $(ls "$tmp")"

same=bench/recorder-same-log.sh
out=$("$same" "$bench" "$bench" 2>&1) || fail "the same build wrote different logs: $out"
[ "$(grep -c '^same log' <<<"$out")" -eq 6 ] || fail "not six streams compared: $out"
# A "build" that writes other bytes for the same stream: one CPU more.
cat >"$tmp/other" <<EOS
#!/bin/sh
exec "$PWD/$bench" "\$1" \$((\$2 + 1)) "\$3" "\$4"
EOS
chmod +x "$tmp/other"
expect_exit 1 "$same" "$bench" "$tmp/other"
expect_exit 2 "$same" "$bench"
expect_exit 2 "$same" "$bench" "$tmp/none"
echo "PASS: recorder-bench LOG and recorder-same-log.sh"
