#!/usr/bin/env bash
# capture --payload covers the message, not its first buffer: a program
# (tests/programs/http-writev.c) writes each HTTP request in 8 iovecs with
# writev and sendmsg (the traceparent header cut across three of them),
# the server reads it with readv into 16-byte pieces, the client reads the
# response with recvmsg into 4-byte pieces.  With both hook sets, every
# send's and receive's prefix must be the first N bytes of what it moved,
# across the pieces; `tracejoin label` then sees the 5 traceparents.
# Skipped where BPF cannot be loaded.
set -u
TJ=${TJ:-build/asan/tracejoin}
. "$(dirname "$0")/lib.sh"

need_capture
top=$(mktemp -d /tmp/tj-capture-payload-iov.XXXXXX)
trap 'rm -rf "$top"' EXIT
req() { # the request the program sends as number $1
	printf 'GET /r HTTP/1.1\r\nHost: localhost\r\ntraceparent: 00-4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a0%d-5b5b5b5b5b5b5b0%d-01\r\n\r\n' "$1" "$1"
}
reply='HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'
hex() { od -An -tx1 -v | tr -d ' \n'; }

# prefixes LOG TYPE: "bytes payload_hex" of each event of TYPE, in order
prefixes() {
	"$TJ" dump --csv "$1" | awk -F, -v t="$2" 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
		$c["type"] == t { print $c["bytes"], $c["payload_hex"] }'
}

for hooks in sock syscalls; do
	"$TJ" capture --check --hooks "$hooks" >/dev/null 2>&1 || { echo "note: --hooks $hooks cannot run here"; continue; }
	d="$top/$hooks"
	mkdir -p "$d/cap"
	"$TJ" capture --hooks "$hooks" --payload 256 -o "$d/cap/node-1.evlog" -- "$progs/http-writev" \
		>"$d/out" 2>"$d/err" || { cat "$d/err"; fail "$hooks: capture exited $?"; }
	grep -q '^ok 5$' "$d/out" || fail "$hooks: the program did not finish"
	grep -q ' 0 lost' "$d/err" || fail "$hooks: events were lost: $(cat "$d/err")"

	# Sends: 5 requests (writev, sendmsg) and 5 responses (writev), whole.
	prefixes "$d/cap/node-1.evlog" send >"$d/sends"
	: >"$d/want-sends"
	for i in 1 2 3 4 5; do
		r=$(req $i | hex)
		echo "$(( ${#r} / 2 )) $r" >>"$d/want-sends"
		r=$(printf "$reply" | hex)
		echo "$(( ${#r} / 2 )) $r" >>"$d/want-sends"
	done
	# As a multiset: the syscall hooks stamp a call at its exit, so a
	# client's send can be logged after the server's reply to it.
	diff <(sort "$d/want-sends") <(sort "$d/sends") >"$d/diff" || { cat "$d/diff"; fail "$hooks: send prefixes are not the whole messages"; }

	# Receives: each request in one readv (7 pieces), each response in
	# recvmsg calls of 16, 16 and 6 bytes.
	prefixes "$d/cap/node-1.evlog" recv >"$d/recvs"
	for i in 1 5; do
		r=$(req $i | hex)
		grep -qx "106 $r" "$d/recvs" || { cat "$d/recvs"; fail "$hooks: request $i not received whole in one readv prefix"; }
	done
	r=$(printf "$reply" | hex)
	[ "$(grep -cx "16 ${r:0:32}" "$d/recvs")" -eq 5 ] || { cat "$d/recvs"; fail "$hooks: recvmsg prefix (16 bytes, 4 pieces)"; }
	[ "$(grep -cx "16 ${r:32:32}" "$d/recvs")" -eq 5 ] || { cat "$d/recvs"; fail "$hooks: second recvmsg prefix"; }

	# label reads the traceparent of every call.
	"$TJ" label "$d/cap" -o "$d/ds" 2>"$d/label.err" || { cat "$d/label.err"; fail "$hooks: label"; }
	grep -q '5 calls: 5 labeled' "$d/label.err" || fail "$hooks: label did not see the 5 traceparents: $(cat "$d/label.err")"

	# --payload N cuts across pieces at N, not at a piece's end: 40 bytes
	# end inside the third iovec ("traceparent: 00-").
	"$TJ" capture --hooks "$hooks" --payload 40 -o "$d/short.evlog" -- "$progs/http-writev" -n 2 \
		>/dev/null 2>"$d/err" || { cat "$d/err"; fail "$hooks: capture --payload 40"; }
	r=$(req 1 | head -c 40 | hex)
	prefixes "$d/short.evlog" send | head -1 | grep -qx "106 $r" ||
		{ prefixes "$d/short.evlog" send; fail "$hooks: --payload 40 is not the first 40 bytes"; }
	r=$(req 2 | head -c 40 | hex)
	prefixes "$d/short.evlog" recv | grep -qx "106 $r" ||
		{ prefixes "$d/short.evlog" recv; fail "$hooks: --payload 40 on readv is not the first 40 bytes"; }
done
echo "capture_payload_iov: ok"
