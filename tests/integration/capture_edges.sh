#!/usr/bin/env bash
# capture at the corners of a socket's life (tests/programs/tcp-edges.c),
# with both hook sets: a refused connect is a CONNECT with the error and
# the port asked for; a MSG_PEEK receive is not recorded and does not
# shift the offsets; shutdown(SHUT_WR) is a SHUTDOWN with how = 1; the EOF
# is a 0-byte receive; UDP and unix sockets leave no event; both closes
# are there.  With --hooks sock, a socket closed by the process exit (no
# close() call) gets its CLOSE too (fd -1); the syscall hooks see no call
# and record none, which this test also pins down.
# Skipped where BPF cannot be loaded; must run as root here.
set -u
TJ=${TJ:-build/asan/tracejoin}
. "$(dirname "$0")/lib.sh"

need_capture

work=$(mktemp -d /tmp/tj-capture-edges.XXXXXX)
trap 'rm -rf "$work"' EXIT

for hooks in sock syscalls; do
	if ! why=$("$TJ" capture --check --hooks $hooks); then
		echo "$why (this hook set is not tested here)"
		continue
	fi
	"$TJ" capture --hooks $hooks -o "$work/$hooks.evlog" -- "$progs/tcp-edges" \
		>"$work/prog.txt" 2>"$work/err" || { cat "$work/err"; fail "$hooks: capture exited $?"; }
	grep -q ' 0 lost' "$work/err" || { cat "$work/err"; fail "$hooks: events were lost"; }
	"$TJ" dump --csv "$work/$hooks.evlog" >"$work/log.csv" || fail "$hooks: dump"
	read -r _ rport errno < <(grep '^refused ' "$work/prog.txt")
	read -r _ cp sp < <(grep '^conn ' "$work/prog.txt")
	[ -n "$rport" ] && [ -n "$sp" ] || fail "the program said too little"

	# The log in the program's words: one line per event of interest.
	awk -F, -v cp="$cp" -v sp="$sp" -v rp="$rport" -v hooks="$hooks" '
	NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
	{
		t = $col["type"]; lp = $col["lport"]; r = $col["rport"]; err = int($col["flags"] / 2) % 2
		if (t == "connect" && err) print "refused", r, -$col["bytes"]
		else if (t == "send" || t == "recv") print t, lp, r, $col["bytes"], $col["offset"]
		else if (t == "shutdown") print t, lp, r, $col["arg"]
		else if (t == "close" && $col["fd"] == -1) print "exit-close", $col["sock"]
		else if (t == "close" && lp == sp) print t, sp, cp
		else if (t == "close" && r == sp) print t, cp, sp  # a closed socket may have lost its local port
		if ($col["family"] != "ipv4" && t != "lost") print "not ipv4:", $0
	}' "$work/log.csv" | sort >"$work/from-log.txt"
	grep -v '^conn \|^exit ' "$work/prog.txt" | sort >"$work/from-prog.txt"
	grep -v '^exit-close ' "$work/from-log.txt" >"$work/from-log-main.txt"
	if ! diff "$work/from-prog.txt" "$work/from-log-main.txt" >"$work/diff"; then
		cat "$work/diff"
		fail "$hooks: the log differs from the program's account (< program, > log)"
	fi

	# The connection the exit closes: its client socket's id.
	exitsock=$(awk -F, -v p="$(awk '$1 == "exit" { print $2; exit }' "$work/prog.txt")" '
		NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
		$col["type"] == "connect" && $col["lport"] == p { print $col["sock"]; exit }' "$work/log.csv")
	[ -n "$exitsock" ] || fail "$hooks: no CONNECT of the connection left open"
	if [ $hooks = sock ]; then
		grep -q "^exit-close $exitsock\$" "$work/from-log.txt" ||
			fail "sock: the socket the exit closed has no CLOSE with fd -1"
	else
		grep -q '^exit-close ' "$work/from-log.txt" &&
			fail "syscalls: a CLOSE without a close() call"
	fi
	echo "ok (--hooks $hooks): refused connect, peek, shutdown, EOF, closes; UDP and unix left out"
done
