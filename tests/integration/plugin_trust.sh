#!/usr/bin/env bash
# Plugins are loaded safely (issue #21, correlate/plugin_trust.h): a
# plugin file or folder that someone other than root or the caller could
# have written is refused with the reason before dlopen() runs a line of
# it (its constructor never runs), unless --trust-plugin.
set -u
TJ=${TJ:-build/asan/tracejoin}
. "$(dirname "$0")/lib.sh"
command -v cc >/dev/null || skip "no C compiler to build a test plugin"

work=$(mktemp -d /tmp/tj-plugin-trust.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
"$TJ" gen --scenario fanout --requests 5 -o "$work/ds" >/dev/null 2>&1 || fail "gen"

# A library whose constructor leaves a mark: loading it is running it.
cat >"$work/evil.c" <<EOF
#include <stdio.h>
__attribute__((constructor)) static void run(void)
{
	FILE *f = fopen("$work/ran", "w");
	if (f) fclose(f);
}
EOF
cc -shared -fPIC -o "$work/evil.so" "$work/evil.c" || fail "cannot build the test plugin"

# refused WORDS SO: exit 2, WORDS in the message, the constructor never ran.
refused() {
	local out rc
	out=$("$TJ" correlate --algo "$2" "$work/ds" 2>&1 >/dev/null); rc=$?
	[ $rc -eq 2 ] || fail "--algo $2 exited $rc, want 2: $out"
	grep -qF -- "$1" <<<"$out" || fail "--algo $2: no '$1' in: $out"
	[ -e "$work/ran" ] && fail "--algo $2: the plugin's constructor ran before it was refused"
	return 0
}

# a world-writable sticky folder (a /tmp) with another user's plugin
mkdir -m 1777 "$work/shared"
cp "$work/evil.so" "$work/shared/evil.so"
chmod 666 "$work/shared/evil.so"
refused "writable by everyone" "$work/shared/evil.so"
chmod 644 "$work/shared/evil.so"
if id nobody >/dev/null 2>&1 && chown nobody "$work/shared/evil.so" 2>/dev/null; then
	refused "owned by another user" "$work/shared/evil.so"
fi
# a plugin of ours in a folder others may write in (not sticky)
mkdir -m 777 "$work/open"
cp "$work/evil.so" "$work/open/evil.so" && chmod 644 "$work/open/evil.so"
chmod 777 "$work/open"
refused "the folder is writable by everyone" "$work/open/evil.so"
mkdir -m 775 "$work/group"
cp "$work/evil.so" "$work/group/evil.so" && chmod 644 "$work/group/evil.so"
chmod 775 "$work/group"
refused "writable by its group" "$work/group/evil.so"
# a file of ours, group-writable
cp "$work/evil.so" "$work/gw.so" && chmod 664 "$work/gw.so"
refused "writable by its group" "$work/gw.so"

# ours, in safe folders: loaded (and refused only as not a tracejoin plugin)
chmod 644 "$work/evil.so"
out=$("$TJ" correlate --algo "$work/evil.so" "$work/ds" 2>&1 >/dev/null)
grep -q "exports no symbol" <<<"$out" || fail "a safe plugin was not loaded: $out"
[ -e "$work/ran" ] || fail "the safe plugin did not run"
rm -f "$work/ran"
# --trust-plugin: the user takes it on
out=$("$TJ" correlate --trust-plugin --algo "$work/open/evil.so" "$work/ds" 2>&1 >/dev/null)
grep -q "exports no symbol" <<<"$out" || fail "--trust-plugin did not load it: $out"
[ -e "$work/ran" ] || fail "--trust-plugin: the plugin did not run"
# export --algo and bench --algo: the same rule, the same --trust-plugin
rm -f "$work/ran"
out=$("$TJ" export --format otlp --algo "$work/open/evil.so" "$work/ds" -o "$work/x.json" 2>&1); rc=$?
[ $rc -eq 2 ] || fail "export --algo of an open folder's plugin exited $rc, want 2: $out"
grep -q "the folder is writable by everyone" <<<"$out" || fail "export: no reason: $out"
[ -e "$work/ran" ] && fail "export: the plugin's constructor ran before it was refused"
out=$("$TJ" bench --only metadata --scenarios fanout --loads low --requests 20 --no-found \
	--no-plots --work "$work/bw" -o "$work/b1" --algo "$work/open/evil.so" 2>&1); rc=$?
[ $rc -eq 2 ] || fail "bench --algo of an open folder's plugin exited $rc, want 2: $out"
grep -q "the folder is writable by everyone" <<<"$out" || fail "bench: no reason: $out"
[ -e "$work/ran" ] && fail "bench: the plugin's constructor ran before it was refused"
[ -e "$work/b1" ] && fail "bench made a results folder for a refused plugin"
plug=$(dirname "$TJ")/plugins/naive_recent.so
if [ -e "$plug" ]; then
	cp "$plug" "$work/open/naive_recent.so" && chmod 644 "$work/open/naive_recent.so"
	expect_exit 2 "$TJ" export --format otlp --algo "$work/open/naive_recent.so" "$work/ds" -o "$work/x.json"
	"$TJ" export --format otlp --trust-plugin --algo "$work/open/naive_recent.so" \
		"$work/ds" -o "$work/x.json" >/dev/null 2>&1 || fail "export --trust-plugin refused the plugin"
	[ -s "$work/x.json" ] || fail "export --trust-plugin wrote nothing"
	"$TJ" bench --only metadata --scenarios fanout --loads low --requests 20 --no-found \
		--no-plots --work "$work/bw" -o "$work/b2" --trust-plugin \
		--algo "$work/open/naive_recent.so" >/dev/null 2>"$work/berr" ||
		fail "bench --trust-plugin failed: $(tail -n 5 "$work/berr")"
	grep -q "naive_recent" "$work/b2/results.csv" || fail "bench --trust-plugin did not score the plugin"
	grep -q -- "--trust-plugin --algo $work/open/naive_recent.so" "$work/b2/commands.txt" ||
		fail "bench's correlate runs were not given --trust-plugin"
fi
expect_exit 2 "$TJ" export --format otlp --trust-plugin --edges /dev/null "$work/ds" -o "$work/y.json"

# the project's own plugins load as before
plug=$(dirname "$TJ")/plugins/naive_recent.so
if [ -e "$plug" ]; then
	"$TJ" correlate --algo "$plug" "$work/ds" >/dev/null 2>&1 || fail "naive_recent.so refused"
fi
echo ok
