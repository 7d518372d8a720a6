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
# the project's own plugins load as before
plug=$(dirname "$TJ")/plugins/naive_recent.so
if [ -e "$plug" ]; then
	"$TJ" correlate --algo "$plug" "$work/ds" >/dev/null 2>&1 || fail "naive_recent.so refused"
fi
echo ok
