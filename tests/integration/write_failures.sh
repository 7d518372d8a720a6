#!/usr/bin/env bash
# A failed write fails (issue #21): stdout on /dev/full is exit 1 with the
# reason for every command that prints, and a full disk (a tiny tmpfs)
# leaves no half-written output (the old file stays, or nothing).
set -u
TJ=${TJ:-build/asan/tracejoin}
. "$(dirname "$0")/lib.sh"

work=$(mktemp -d /tmp/tj-writefail.XXXXXX)
trap 'umount "$work/small" 2>/dev/null; rm -rf "$work"' EXIT
cd "$work" || exit 1

# full CMD...: stdout to /dev/full must be exit 1 and say why.
full() {
	local out rc
	out=$("$@" 2>&1 >/dev/full); rc=$?
	[ $rc -eq 1 ] || fail "'$*' >/dev/full exited $rc, want 1: $out"
	grep -q "No space left on device" <<<"$out" || fail "'$*' >/dev/full: no reason given: $out"
}

"$TJ" gen --scenario fanout --requests 20 -o ds >/dev/null 2>&1 || fail "gen"
full "$TJ" help
full "$TJ" --help
full "$TJ" --version
full "$TJ" correlate --help
full "$TJ" gen --list
full "$TJ" gen --print fanout
full "$TJ" correlate --list
full "$TJ" correlate --algo metadata ds
full "$TJ" correlate --algo classifier --traces ds
full "$TJ" features ds
full "$TJ" info ds/node-1.evlog
full "$TJ" dump ds/node-1.evlog
full "$TJ" score --labels ds/labels.csv ds/labels.csv
full "$TJ" gen --scenario fanout --requests 5 -o ds2
[ -e ds2/manifest.json ] || fail "gen's dataset is whole even when its summary line could not be printed"
# -o /dev/full: a device is written in place, and its failure is exit 1 too
out=$("$TJ" correlate --algo metadata ds -o /dev/full 2>&1); rc=$?
[ $rc -eq 1 ] || fail "correlate -o /dev/full exited $rc: $out"
out=$("$TJ" features ds -o /dev/full 2>&1); rc=$?
[ $rc -eq 1 ] || fail "features -o /dev/full exited $rc: $out"

# A tiny file system: every command fails with exit 1, names the file,
# and leaves what was there before (or nothing), no temporary file.
mkdir small
mount -t tmpfs -o size=16k tmpfs small || skip "cannot mount a tmpfs"
echo precious >small/e.csv
# gen runs out of room midway: no half dataset
"$TJ" gen --scenario fanout --requests 2000 -o small/g >/dev/null 2>err; rc=$?
[ $rc -eq 1 ] || fail "gen onto a full disk exited $rc: $(cat err)"
grep -q "No space left" err || fail "gen: no reason given: $(cat err)"
[ -e small/g ] && fail "gen left a partial dataset: $(ls small/g)"
# then a disk already full
dd if=/dev/zero of=small/fill bs=1k count=64 2>/dev/null
"$TJ" correlate --algo metadata ds -o small/e.csv --force >/dev/null 2>err; rc=$?
[ $rc -eq 1 ] || fail "correlate onto a full disk exited $rc: $(cat err)"
grep -q "small/e.csv" err || fail "no file named: $(cat err)"
[ "$(cat small/e.csv)" = precious ] || fail "correlate lost the old file on a full disk"
"$TJ" features ds -o small/f.csv >/dev/null 2>err; rc=$?
[ $rc -eq 1 ] || fail "features onto a full disk exited $rc: $(cat err)"
[ -e small/f.csv ] && fail "features left a partial file"
"$TJ" train --algo classifier ds -o small/m.model >/dev/null 2>err; rc=$?
[ $rc -eq 1 ] || fail "train onto a full disk exited $rc: $(cat err)"
[ -e small/m.model ] && fail "train left a model file on a full disk"
rm -f small/fill
left=$(ls -A small | grep -v '^e.csv$')
[ -z "$left" ] || fail "left on the full disk: $left"
echo ok
