#!/usr/bin/env bash
# capture's output (issue #21, lib/outfile.h TJ_OUT_LOCK): two captures of
# one log cannot both run (the second is refused at once, even with
# --force, and the first's log reads clean); a capture whose command
# cannot run leaves no log and keeps the old one (with --netns, no
# folder it made); a dead run's
# FILE.partial is kept unless --force.  Skipped where BPF cannot load.
set -u
TJ=${TJ:-build/asan/tracejoin}
progs=${TJ_PROGRAMS:-$(dirname "$TJ")/tests/programs}
. "$(dirname "$0")/lib.sh"

need_capture

work=$(mktemp -d /tmp/tj-capture-out.XXXXXX)
pid1=
trap '[ -n "$pid1" ] && kill "$pid1" 2>/dev/null; rm -rf "$work"' EXIT
log=$work/same.evlog

# Two at once: the second is refused while the first runs.
"$TJ" capture --force -o "$log" --duration 3 >/dev/null 2>"$work/err1" &
pid1=$!
for _ in $(seq 50); do [ -e "$log.partial" ] && break; sleep 0.1; done
[ -e "$log.partial" ] || fail "the first capture did not start: $(cat "$work/err1")"
"$TJ" capture --force -o "$log" --duration 1 >/dev/null 2>"$work/err2"; rc=$?
[ $rc -eq 1 ] || fail "a second capture of the same log exited $rc: $(cat "$work/err2")"
grep -q "another process is writing it" "$work/err2" || fail "no clear message: $(cat "$work/err2")"
wait "$pid1"; rc=$?; pid1=
[ $rc -eq 0 ] || fail "the first capture exited $rc: $(cat "$work/err1")"
"$TJ" info "$log" >/dev/null 2>&1 || fail "the first capture's log is not clean"
[ -e "$log.partial" ] && fail "the first capture left $log.partial"

# A command that cannot run: no log, the old one kept byte for byte.
sum=$(sha256sum <"$log")
"$TJ" capture --force -o "$log" -- /nonexistent/cmd >/dev/null 2>"$work/err"; rc=$?
[ $rc -eq 1 ] || fail "capture -- /nonexistent/cmd exited $rc"
[ "$(sha256sum <"$log")" = "$sum" ] || fail "a capture that never started changed the old log"
"$TJ" capture -o "$work/new.evlog" -- /nonexistent/cmd >/dev/null 2>&1
[ -e "$work/new.evlog" ] && fail "a capture that never started left a log"
ls "$work" | grep -q 'partial\|tmp-' && fail "left behind: $(ls "$work")"

# A dead run's partial log is the user's data: kept unless --force.
cp "$log" "$work/dead.evlog.partial"
"$TJ" capture -o "$work/dead.evlog" --duration 1 >/dev/null 2>"$work/err"; rc=$?
[ $rc -eq 1 ] || fail "capture over a dead run's partial log exited $rc"
grep -q "did not finish" "$work/err" || fail "no clear message: $(cat "$work/err")"
cmp -s "$log" "$work/dead.evlog.partial" || fail "the dead run's partial log was changed"

# --netns: a folder the capture made and put no log in is not left behind
# (the command cannot run); a folder the user had stays, with its files
"$TJ" capture --netns -o "$work/nsdir" -- /nonexistent/cmd >/dev/null 2>"$work/err"; rc=$?
[ $rc -eq 1 ] || fail "capture --netns of a missing command exited $rc: $(cat "$work/err")"
[ -e "$work/nsdir" ] && fail "capture --netns left an empty folder behind"
mkdir "$work/mine" && echo keep >"$work/mine/notes"
"$TJ" capture --netns -o "$work/mine" -- /nonexistent/cmd >/dev/null 2>&1
[ "$(cat "$work/mine/notes" 2>/dev/null)" = keep ] || fail "capture --netns touched the user's folder"
mkdir "$work/empty"
"$TJ" capture --netns -o "$work/empty" -- /nonexistent/cmd >/dev/null 2>&1
[ -d "$work/empty" ] || fail "capture --netns removed a folder it did not make"
echo ok
