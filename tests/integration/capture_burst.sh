#!/usr/bin/env bash
# bench/capture-burst, short: a paced burst of sends (sendmmsg: with the
# sock hooks one event per message) under capture.  With the default
# rings nothing may be lost or miscounted (`ok`, or `LOST` with every
# loss in the footer: the machine may be busy); with 4 KiB rings events
# are lost and each loss must be counted: the log's sends, receives and
# SOCKETs plus the footer's drops equal what the bench made (`LOST`, not
# `MISCOUNTED`).  Bad arguments are refused.  The throughput figure is
# the bench's to print, not checked here.  Skipped where BPF or the sock
# hooks are missing; root.
set -u
TJ=${TJ:-build/asan/tracejoin}
. "$(dirname "$0")/lib.sh"
burst=$(dirname "$TJ")/bench/capture-burst
[ -x "$burst" ] || fail "no $burst (make benches)"

expect_exit 2 "$burst" -r 0
expect_exit 2 "$burst" -s -1
expect_exit 2 "$burst" -T 99
expect_exit 2 "$burst" --no-such-option
expect_exit 2 "$burst" stray

need_capture
case $capture_check in *"hooks: sock"*) ;; *) skip "no sock hooks here: sendmmsg is one event per call" ;; esac

# The verdict ends the capture-burst: line (the data programs' cost follows).
verdict() { printf '%s\n' "$1" | grep '^capture-burst:' | sed 's/.*: //'; }

out=$("$burst" -t "$TJ" -r 200000 -s 1) || fail "capture-burst exited $?: $out"
echo "$out"
case $(verdict "$out") in ok|LOST) ;; *) fail "default rings: $out" ;; esac

out=$("$burst" -t "$TJ" -r 400000 -s 1 --ring-kb 4) || fail "capture-burst --ring-kb 4 exited $?: $out"
echo "$out"
case $(verdict "$out") in LOST) ;; *) fail "4 KiB rings lost nothing, or miscounted: $out" ;; esac
echo "ok: burst recorded whole with the default rings, every loss counted with 4 KiB rings"
