#!/usr/bin/env bash
# capture's command line: every bad argument is refused with a one-line
# message naming it and exit 2, before anything is loaded (these checks
# run everywhere); where BPF can be loaded, also: no overwrite without
# --force, a command that cannot run, a cgroup/pid filter that names
# nothing, --payload prefixes, --duration, and SIGTERM.
set -u
TJ=${TJ:-build/asan/tracejoin}
progs=${TJ_PROGRAMS:-$(dirname "$TJ")/tests/programs}
fail() { echo "FAIL: $*"; exit 1; }
# wait_recording ERRFILE: until capture says it records (its signals are
# blocked from then on; a SIGINT before that is lost, since a background
# job of a script ignores SIGINT).  A loaded machine can take long to
# verify the programs: up to 120 s, then fail rather than hang.
wait_recording() {
	for _ in $(seq 1200); do grep -q recording "$1" && return 0; sleep 0.1; done
	fail "capture did not start recording in 120 s: $(cat "$1")"
}
work=$(mktemp -d /tmp/tj-capture-cli.XXXXXX)
trap '[ -n "${cg2:-}" ] && rmdir "$cg2/tjcap$$" 2>/dev/null; rm -rf "$work"' EXIT

# refused ARGS... : exit 2, one line on stderr that names the culprit
refused() {
	local want=$1; shift
	"$TJ" capture "$@" >"$work/out" 2>"$work/err"; local rc=$?
	[ $rc -eq 2 ] || fail "capture $*: exit $rc, expected 2 ($(cat "$work/err"))"
	[ "$(wc -l <"$work/err")" -eq 1 ] || fail "capture $*: not one line: $(cat "$work/err")"
	grep -q -- "$want" "$work/err" || fail "capture $*: message lacks '$want': $(cat "$work/err")"
}
refused "-o FILE is required"
refused "--bogus" -o "$work/x.evlog" --bogus
refused "--port 0" -o "$work/x.evlog" --port 0
refused "--port 70000" -o "$work/x.evlog" --port 70000
refused "--port http" -o "$work/x.evlog" --port http
refused "--port +80" -o "$work/x.evlog" --port +80
refused "--port  80" -o "$work/x.evlog" --port " 80"
refused "--payload 257" -o "$work/x.evlog" --payload 257
refused "--payload -1" -o "$work/x.evlog" --payload -1
refused "--duration 0" -o "$work/x.evlog" --duration 0
refused "--duration soon" -o "$work/x.evlog" --duration soon
refused "--node x" -o "$work/x.evlog" --node x
refused "--pid 0" -o "$work/x.evlog" --pid 0
refused "--ring-kb 5" -o "$work/x.evlog" --ring-kb 5
refused "--ring-kb 2" -o "$work/x.evlog" --ring-kb 2
refused "--hooks kprobes" -o "$work/x.evlog" --hooks kprobes
refused "needs a value" -o "$work/x.evlog" --hooks
refused "--tag=yes" -o "$work/x.evlog" --tag=yes
refused "-o FILE is required" --tag
refused "needs a value" -o "$work/x.evlog" --pid
refused "exclude each other" -o "$work/x.evlog" --netns --node 3
refused "exclude each other" -o "$work/x.evlog" --pid 1 -- true
refused "after --" -o "$work/x.evlog" true
refused "no command after --" -o "$work/x.evlog" --
refused "both write to stdout" -o - -- true
refused "no such process" -o "$work/x.evlog" --pid 2147483647
refused "--cgroup $work/none" -o "$work/x.evlog" --cgroup "$work/none"
refused "not a cgroup v2" -o "$work/x.evlog" --cgroup "$work"
[ ! -e "$work/x.evlog" ] || fail "a refused capture left a file"
"$TJ" capture --help | grep -q -- '--netns' || fail "--help does not document --netns"
"$TJ" capture --help | grep -q -- '--tag' || fail "--help does not document --tag"

check=$("$TJ" capture --check 2>&1); rc=$?
if [ $rc -eq 77 ]; then echo "argument checks passed; the rest: $check"; exit 77; fi
[ $rc -eq 0 ] || fail "capture --check: $check"

# No overwrite without --force; the file is left as it was.
echo precious >"$work/keep.evlog"
"$TJ" capture -o "$work/keep.evlog" --duration 0.1 2>"$work/err" && fail "overwrote without --force"
grep -q exists "$work/err" || fail "overwrite refusal says: $(cat "$work/err")"
[ "$(cat "$work/keep.evlog")" = precious ] || fail "the refused file changed"

# A command that cannot run is an error, and leaves a valid empty log.
"$TJ" capture -o "$work/nocmd.evlog" -- "$work/no-such-command" 2>"$work/err" && fail "ran a missing command"
grep -q "cannot run" "$work/err" || fail "missing command: $(cat "$work/err")"

# --payload keeps the first bytes: each client request begins with its
# 4-byte big-endian length, then 'q's (0x71).
"$TJ" capture -o "$work/pl.evlog" --payload 8 -- "$progs/tcp-pingpong" -c 1 -r 2 \
	>/dev/null 2>"$work/err" || fail "payload capture: $(cat "$work/err")"
"$TJ" dump --csv "$work/pl.evlog" >"$work/pl.csv" || fail "dump"
awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
	$col["type"] == "send" && $col["offset"] == 0 && $col["rport"] != 0 { print $col["payload_hex"] }' \
	"$work/pl.csv" | sort >"$work/pl.txt"
grep -qx '0000006471717171' "$work/pl.txt" || fail "no request payload 00000064 71717171: $(cat "$work/pl.txt")"
awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
	$col["type"] == "send" && length($col["payload_hex"]) != 16 { bad = 1 } END { exit bad }' \
	"$work/pl.csv" || fail "a send without an 8-byte payload"
[ "$(stat -c %a "$work/pl.evlog")" = 600 ] || fail "log mode is not 0600"

# SIGTERM (like SIGINT) ends with a complete log, footer included.
"$TJ" capture -o "$work/term.evlog" 2>"$work/err" &
pid=$!
wait_recording "$work/err"
kill -TERM $pid
wait $pid || fail "capture exited $? after SIGTERM: $(cat "$work/err")"
"$TJ" info "$work/term.evlog" >"$work/info" || fail "info after SIGTERM: $(cat "$work/info")"

# --cgroup: only processes of that cgroup v2 folder.  Two runs of the
# workload, one inside a fresh cgroup; the log must hold only that one.
cg2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
if [ -n "$cg2" ] && mkdir "$cg2/tjcap$$" 2>/dev/null; then
	"$TJ" capture -o "$work/cg.evlog" --cgroup "$cg2/tjcap$$" 2>"$work/err" &
	cap=$!
	wait_recording "$work/err"
	sh -c "echo \$\$ > '$cg2/tjcap$$/cgroup.procs' && exec '$progs/tcp-pingpong' -c 1 -r 2" >/dev/null &
	inside=$!
	"$progs/tcp-pingpong" -c 1 -r 2 >/dev/null
	wait $inside
	kill -INT $cap; wait $cap || fail "--cgroup capture exited $?: $(cat "$work/err")"
	rmdir "$cg2/tjcap$$"
	pids=$("$TJ" dump --csv "$work/cg.evlog" | awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
		$col["pid"] != 0 { print $col["pid"] }' | sort -u | tr '\n' ' ')
	[ "$pids" = "$inside " ] || fail "--cgroup: events of pids '$pids', expected only $inside"
else
	echo "note: no cgroup v2 hierarchy to test --cgroup with"
fi

# --duration stops by itself.
timeout 20 "$TJ" capture -o "$work/dur.evlog" --duration 0.5 2>"$work/err" || fail "--duration: exit $?"
echo ok
