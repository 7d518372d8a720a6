#!/usr/bin/env bash
# capture onto a full disk (a 4 KiB tmpfs): it must end with exit 1 and a
# message naming the file and the cause, and leave a log that info and
# dump read as far as it goes and call damaged (exit 3), not a crash.
# Skipped where BPF cannot be loaded (or tmpfs cannot be mounted).
set -u
TJ=${TJ:-build/asan/tracejoin}
. "$(dirname "$0")/lib.sh"

need_capture

work=$(mktemp -d /tmp/tj-capture-full.XXXXXX)
trap 'umount "$work/small" 2>/dev/null; rm -rf "$work"' EXIT
mkdir "$work/small"
mount -t tmpfs -o size=4k tmpfs "$work/small" || { echo "SKIPPED: cannot mount a tmpfs"; exit 77; }

"$TJ" capture -o "$work/small/log.evlog" --payload 256 -- "$progs/tcp-pingpong" -c 4 -r 60 \
	>/dev/null 2>"$work/err"; rc=$?
cat "$work/err"
[ $rc -eq 1 ] || fail "capture on a full disk exited $rc, expected 1"
grep -q "log.evlog: .*No space left on device" "$work/err" || fail "no clear message about the full disk"
[ "$(grep -c 'No space left' "$work/err")" -eq 1 ] || fail "the failure is reported more than once"

"$TJ" info "$work/small/log.evlog" >"$work/info" 2>&1; rc=$?
cat "$work/info"
[ $rc -eq 3 ] || fail "info on the cut log exited $rc, expected 3 (damaged)"
grep -q "node" "$work/info" || fail "info did not read the header"
"$TJ" dump "$work/small/log.evlog" >/dev/null 2>&1; rc=$?
[ $rc -eq 3 ] || fail "dump on the cut log exited $rc, expected 3"
echo ok
