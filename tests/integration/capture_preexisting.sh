#!/usr/bin/env bash
# capture of connections opened before capture started: a client/server
# pair does one request per connection, pauses, capture starts on its pid,
# the rest runs.  Each socket's first event must be SOCKET; its sends and
# receives must be the tail of the program's own account, with offsets
# that are TCP sequence numbers (flag seq_offset): the program's offset
# plus one constant per side and direction, and the same constant at both
# ends of a direction (client out = server in), so keys join.  The log
# begins with the start-up scan, which names the program's listener, and
# info counts the sockets by side.
# TJ_CAPTURE_HOOKS picks capture's hooks (sock by default; the
# *_syscalls test runs this one with syscalls).
# Skipped where BPF cannot be loaded; must run as root here.
set -u
TJ=${TJ:-build/asan/tracejoin}
hooks=${TJ_CAPTURE_HOOKS:-sock}
. "$(dirname "$0")/lib.sh"

need_capture --hooks "$hooks"

work=$(mktemp -d /tmp/tj-capture-pre.XXXXXX)
pp= cap=
trap '[ -n "$cap" ] && kill $cap 2>/dev/null; [ -n "$pp" ] && kill $pp 2>/dev/null; rm -rf "$work"' EXIT

"$progs/tcp-pingpong" -c 2 -r 4 -w "$work/go" >"$work/prog.txt" 2>"$work/prog.err" &
pp=$!
for _ in $(seq 100); do grep -q paused "$work/prog.err" && break; sleep 0.05; done
grep -q paused "$work/prog.err" || fail "the program did not pause"
"$TJ" capture --hooks "$hooks" --pid $pp -o "$work/log.evlog" 2>"$work/capture.err" &
cap=$!
for _ in $(seq 200); do grep -q recording "$work/capture.err" && break; sleep 0.1; done
grep -q recording "$work/capture.err" || { cat "$work/capture.err"; fail "capture did not start"; }
touch "$work/go"
wait $pp || fail "the program failed"
pp=
kill -INT $cap; wait $cap || fail "capture exited $?"
cap=
cat "$work/capture.err"
"$TJ" dump --csv "$work/log.evlog" >"$work/log.csv" || fail "dump"
"$TJ" info "$work/log.evlog" >"$work/info.txt"
grep -q preexisting "$work/info.txt" || fail "info does not say preexisting sockets are included"
grep -q 'mid-stream  4 sockets open before capture: 2 server side, 2 client side, 0 side unknown' \
	"$work/info.txt" || { cat "$work/info.txt"; fail "info does not count the sockets by side"; }
lport=$(awk '$1 == "accept" { print $3; exit }' "$work/prog.txt")
awk -F, -v p="$lport" 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
	$col["type"] == "listen" && $col["lport"] == p { l++ } $col["type"] == "scan" { s++ }
	END { exit !(l == 1 && s == 1) }' "$work/log.csv" || fail "the start-up scan does not name listener port $lport"

# Each socket (side) starts with a SOCKET event.
awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
	$col["type"] == "state" || $col["type"] == "listen" || $col["type"] == "scan" { next }
	!($col["sock"] in first) { first[$col["sock"]] = $col["type"]; n++ }
	END { for (s in first) if (first[s] != "socket") { print "socket " s " starts with " first[s]; bad = 1 }
	      if (n != 4) { print n " sockets, expected 4"; bad = 1 }; exit bad }' "$work/log.csv" ||
	fail "preexisting sockets are not announced"

# The log's sends/receives per side and direction are the tail of the
# program's, shifted by one sequence base (mod 2^32: offsets go on past a
# wrap); a direction's base is the same at both ends.
awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
	$col["type"] == "send" || $col["type"] == "recv" {
		if ($col["flags"] != 32) { print "flags " $col["flags"] > "/dev/stderr"; exit 1 }
		print $col["type"], $col["tid"], $col["lport"], $col["rport"], $col["bytes"], $col["offset"] }' \
	"$work/log.csv" >"$work/log.txt" || fail "preexisting sockets' events are not flagged seq_offset (32)"
grep -E '^(send|recv) ' "$work/prog.txt" >"$work/progio.txt"
awk '
FNR == 1 { f++ }
f == 1 { k = $1 " " $3 " " $4; pn[k]++; p[k, pn[k]] = $2 " " $5; po[k, pn[k]] = $6; next }
{ k = $1 " " $3 " " $4; ln[k]++; l[k, ln[k]] = $2 " " $5; lo[k, ln[k]] = $6 }
END {
	for (k in ln) {
		skip = pn[k] - ln[k]
		if (skip < 1) { print k ": log has " ln[k] " calls, program " pn[k] " (expected fewer)"; bad = 1; continue }
		base[k] = (lo[k, 1] - po[k, skip + 1]) % 4294967296
		for (i = 1; i <= ln[k]; i++) {
			if (l[k, i] != p[k, skip + i]) { print k " #" i ": log " l[k, i] ", program " p[k, skip + i]; bad = 1 }
			if (lo[k, i] - po[k, skip + i] != lo[k, 1] - po[k, skip + 1]) { print k " #" i ": offset " lo[k, i] ", program " po[k, skip + i] ", not one base"; bad = 1 }
		}
		m++
	}
	if (m != 8) { print m " side/directions, expected 8"; bad = 1 }
	for (k in ln) {
		split(k, w, " ")
		if (w[1] != "send") continue
		peer = "recv " w[3] " " w[2]
		if (!(peer in base)) { print k ": no peer " peer; bad = 1; continue }
		if (base[k] != base[peer]) { print k ": base " base[k] ", peer " peer " base " base[peer]; bad = 1 }
		j++
	}
	if (j != 4) { print j " directions paired, expected 4"; bad = 1 }
	exit bad
}' "$work/progio.txt" "$work/log.txt" || fail "offsets of preexisting sockets are not shared sequence numbers"
echo "ok: $(wc -l <"$work/log.txt") calls on 4 preexisting sockets, sequence offsets shared by both ends"
