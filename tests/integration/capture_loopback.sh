#!/usr/bin/env bash
# capture, exactly: a threaded loopback client/server (keepalive, partial
# reads, write/send/sendmsg/writev/sendmmsg, read/recv/recvmsg/readv/
# recvmmsg), over IPv4 and over IPv6, is traced with
# `capture --hooks H -- COMMAND` for both hook sets; every connect,
# accept, send, recv and close of the log must match the program's own
# account (thread, ports, bytes, stream offset), one for one, and each
# connection must have one socket id per side.  With --hooks sock a
# sendmmsg is one send per message (the program says so with -m) and an
# accept is seen at the socket's first use: its thread must be the one
# that first reads or writes the socket, and it carries the inferred flag.
# Skipped where BPF cannot be loaded; must run as root here.
set -u
TJ=${TJ:-build/asan/tracejoin}
. "$(dirname "$0")/lib.sh"

need_capture

top=$(mktemp -d /tmp/tj-capture-loopback.XXXXXX)
trap 'rm -rf "$top"' EXIT
conns=4 reqs=6

one_run() { # ADDR HOOKS
	local addr=$1 hooks=$2 work="$top/$1-$2" per_msg=
	mkdir "$work"
	[ "$hooks" = sock ] && per_msg=-m

	"$TJ" capture --hooks "$hooks" -o "$work/log.evlog" -- "$progs/tcp-pingpong" -a "$addr" \
		-c $conns -r $reqs $per_msg \
		>"$work/prog.txt" 2>"$work/capture.err" || { cat "$work/capture.err"; fail "capture exited $?"; }
	cat "$work/capture.err"
	grep -q ' 0 lost' "$work/capture.err" || fail "events were lost"
	[ "$(stat -c %a "$work/log.evlog")" = 600 ] || fail "log mode is not 0600"
	"$TJ" dump --csv "$work/log.evlog" >"$work/log.csv" || fail "dump --csv failed"
	"$TJ" info "$work/log.evlog" | grep -q "options .*\[hooks $hooks\]" ||
		fail "the log's options do not say [hooks $hooks]"

	# The log, reduced to what the program can know, in the program's words.
	awk -F, '
	NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
	{
		t = $col["type"]; tid = $col["tid"]; lp = $col["lport"]; rp = $col["rport"]
		if (t == "send" || t == "recv")
			print t, tid, lp, rp, $col["bytes"], $col["offset"]
		else if (t == "connect" || t == "accept" || t == "close")
			print t, tid, lp, rp
	}' "$work/log.csv" | sort >"$work/from-log.txt"
	sort "$work/prog.txt" >"$work/from-prog.txt"
	if [ "$hooks" = sock ]; then
		# The accepting thread is not seen, the first user is: check
		# that, then compare accepts without their thread.
		awk -F, '
		NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
		$col["type"] == "accept" {
			if (int($col["flags"] / 16) % 2 != 1) { print "accept without the inferred flag"; bad = 1 }
			want[$col["sock"]] = $col["tid"]; next }
		($col["type"] == "send" || $col["type"] == "recv") && ($col["sock"] in want) {
			if ($col["tid"] != want[$col["sock"]]) { print "accept tid " want[$col["sock"]] " is not the first user " $col["tid"]; bad = 1 }
			delete want[$col["sock"]] }
		END { exit bad }' "$work/log.csv" || fail "inferred accepts are wrong"
		for f in from-log from-prog; do
			awk '$1 == "accept" { $2 = "-" } { print }' "$work/$f.txt" | sort >"$work/$f.tmp"
			mv "$work/$f.tmp" "$work/$f.txt"
		done
	fi

	n=$(wc -l <"$work/from-prog.txt")
	[ "$n" -gt $((conns * reqs * 4)) ] || fail "the program said too little ($n lines)"
	[ "$(grep -c '^connect ' "$work/from-prog.txt")" -eq $conns ] || fail "program: not $conns connects"
	[ "$(grep -c '^accept ' "$work/from-prog.txt")" -eq $conns ] || fail "program: not $conns accepts"
	# Partial reads must really be there: reads shorter than the message.
	grep -q '^recv [0-9]* [0-9]* [0-9]* 300 ' "$work/from-prog.txt" || fail "no partial server reads"
	if ! diff "$work/from-prog.txt" "$work/from-log.txt" >"$work/diff.txt"; then
		head -40 "$work/diff.txt"
		fail "the log differs from the program's account (< program, > log)"
	fi

	# One socket id per connection side, and each connect pairs with one
	# accept on the reversed ports.
	awk -F, '
	NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
	$col["type"] == "state" || $col["lport"] == 0 { next }
	{
		side = $col["lport"] " " $col["rport"]; s = $col["sock"]
		if ((side in sock) && sock[side] != s) { print "side " side ": sockets " sock[side] " and " s; bad = 1 }
		if ((s in side_of) && side_of[s] != side) { print "socket " s ": sides " side_of[s] " and " side; bad = 1 }
		sock[side] = s; side_of[s] = side
		if ($col["type"] == "connect") conn[side] = 1
		if ($col["type"] == "accept") acc[$col["rport"] " " $col["lport"]] = 1
	}
	END {
		for (c in conn) { if (!(c in acc)) { print "connect " c " has no accept"; bad = 1 }; n++ }
		for (a in acc) if (!(a in conn)) { print "accept of " a " has no connect"; bad = 1 }
		if (n == 0) { print "no connects"; bad = 1 }
		exit bad
	}' "$work/log.csv" || fail "socket ids or connect/accept pairs are wrong"

	# Nothing but the traced program: every event with a pid is its.
	pids=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
		$col["pid"] != 0 { print $col["pid"] }' "$work/log.csv" | sort -u | wc -l)
	[ "$pids" -eq 1 ] || fail "events of $pids processes, expected only the command's"
	# Addresses as the program used them (IPv4 stays IPv4, ::1 stays IPv6).
	bad=$(awk -F, -v a="$addr" 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
		$col["type"] != "state" && ($col["laddr"] != a || $col["raddr"] != a) { n++ } END { print n + 0 }' \
		"$work/log.csv")
	[ "$bad" -eq 0 ] || fail "$bad events without address $addr"
	echo "ok ($addr, --hooks $hooks): $n calls of the program matched the log exactly"
}

for hooks in sock syscalls; do
	if ! why=$("$TJ" capture --check --hooks $hooks); then
		echo "$why (this hook set is not tested here)"
		continue
	fi
	one_run 127.0.0.1 $hooks
	one_run ::1 $hooks
done
