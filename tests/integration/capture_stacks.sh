#!/usr/bin/env bash
# capture --stack: a program whose sends and receives happen in functions
# with known names (tests/programs/tcp-stacks.c) is traced; after it has
# exited, `dump --stacks` must name those functions in the frames of its
# send and recv events, from the memory map the log keeps.  The same
# program stripped, deleted, or replaced by another file after capture
# shows file+offset frames, never an error.  A log without stacks reads as
# before.  Skipped where BPF cannot be loaded.
set -u
TJ=${TJ:-build/asan/tracejoin}
. "$(dirname "$0")/lib.sh"

need_capture
command -v strip >/dev/null || skip "no strip (binutils) to make a stripped binary"

top=$(mktemp -d /tmp/tj-capture-stacks.XXXXXX)
trap 'rm -rf "$top"' EXIT
cp "$progs/tcp-stacks" "$top/prog"
cp "$progs/tcp-stacks" "$top/prog-stripped"
strip "$top/prog-stripped"

# capture NAME [--stack...]: trace $top/NAME into $top/NAME.evlog
capture() {
	local name=$1
	shift
	"$TJ" capture "$@" -o "$top/$name.evlog" -- "$top/$name" >"$top/$name.out" \
		2>"$top/$name.err" || { cat "$top/$name.err"; fail "capture of $name exited $?"; }
	grep -q '^ok 5$' "$top/$name.out" || fail "$name did not finish its exchange"
	grep -q ' 0 lost' "$top/$name.err" || fail "events were lost tracing $name"
}

# frames_of LOG TYPE: the frames printed under the first event of TYPE
frames_of() {
	awk -v t="$2" '
	/^ *#[0-9]+ / { if (inside) print; next }
	{ if (done) exit; inside = ($0 ~ (" " t " ")); if (inside) done = 1 }' "$1"
}

# 1. Symbolised, after the process is gone.
capture prog --stack
grep -q ' 0 events without a stack' "$top/prog.err" || { cat "$top/prog.err"; fail "events without a stack"; }
"$TJ" dump --stacks "$top/prog.evlog" >"$top/prog.txt" 2>"$top/dump.err" ||
	{ cat "$top/dump.err"; fail "dump --stacks exited $?"; }
frames_of "$top/prog.txt" send >"$top/send.txt"
frames_of "$top/prog.txt" recv >"$top/recv.txt"
[ -s "$top/send.txt" ] || { head -20 "$top/prog.txt"; fail "no frames under the first send"; }
grep -q "tj_test_send_marker+0x[0-9a-f]* ($top/prog)" "$top/send.txt" ||
	{ cat "$top/send.txt"; fail "the send's stack does not name tj_test_send_marker"; }
grep -q "main+0x" "$top/send.txt" || { cat "$top/send.txt"; fail "the send's stack misses main"; }
# The server's receive runs in its own thread: recv marker, then serve.
grep -q "tj_test_recv_marker+0x" "$top/recv.txt" ||
	{ cat "$top/recv.txt"; fail "the recv's stack does not name tj_test_recv_marker"; }
grep -q "serve+0x" "$top/recv.txt" || { cat "$top/recv.txt"; fail "the recv's stack misses serve"; }
grep -q "tj_test_recv_marker" "$top/send.txt" && fail "the send's stack names the recv marker"
# Every send and recv of the program has a stack id; equal call sites
# share one: the client's 5 sends have a single id.
"$TJ" dump --csv "$top/prog.evlog" >"$top/prog.csv" || fail "dump --csv failed"
awk -F, 'NR > 1 && ($7 == "send" || $7 == "recv") && $18 == 0 { bad = 1 } END { exit bad }' \
	"$top/prog.csv" || fail "a send or recv has no stack id"
n=$(grep -c ' send .* stack ' "$top/prog.txt")
[ "$n" -eq 10 ] || fail "want 10 sends with stacks, got $n"
"$TJ" info "$top/prog.evlog" >/dev/null || fail "info cannot read a log with a stacks block"
# correlate --traces: each call and request with the frames it came from.
"$TJ" correlate -a metadata --traces "$top/prog.evlog" >"$top/traces.txt" 2>/dev/null ||
	fail "correlate --traces failed on a log with stacks"
grep -A1 '^call ' "$top/traces.txt" | grep -q '^  site [0-9a-f]* at .*tj_test_send_marker+0x' ||
	{ head "$top/traces.txt"; fail "correlate --traces does not show the call's stack"; }
grep -A1 '^  request ' "$top/traces.txt" | grep -q '^    site [0-9a-f]* at .*tj_test_recv_marker+0x' ||
	{ head "$top/traces.txt"; fail "correlate --traces does not show the request's stack"; }
# Call sites: one for the 5 calls, another for the 5 requests, and the
# same two in a second run of the program (another address layout).
sites() { awk '/^ *site /{ print $2 }' "$1" | sort | uniq -c | awk '{ print $1, $2 }'; }
sites "$top/traces.txt" >"$top/sites1.txt"
[ "$(wc -l <"$top/sites1.txt")" -eq 2 ] && [ "$(awk '{ s += $1 } END { print s }' "$top/sites1.txt")" -eq 10 ] ||
	{ cat "$top/sites1.txt"; fail "want 2 call sites of 5 messages each"; }
cp "$top/prog" "$top/prog2"
capture prog2 --stack
"$TJ" correlate -a metadata --traces "$top/prog2.evlog" >"$top/traces2.txt" 2>/dev/null ||
	fail "correlate --traces failed on the second run"
sites "$top/traces2.txt" >"$top/sites2.txt"
cmp -s "$top/sites1.txt" "$top/sites2.txt" ||
	{ paste "$top/sites1.txt" "$top/sites2.txt"; fail "call sites moved between runs"; }

# 2. Stripped: no symbol for the program's own frames, file+offset instead.
capture prog-stripped --stack
"$TJ" dump --stacks "$top/prog-stripped.evlog" >"$top/stripped.txt" || fail "dump --stacks of the stripped capture failed"
frames_of "$top/stripped.txt" send >"$top/send-stripped.txt"
grep -q "tj_test_send_marker" "$top/send-stripped.txt" && fail "a stripped binary was symbolised"
grep -q "^ *#[0-9]* $top/prog-stripped+0x[0-9a-f]*$" "$top/send-stripped.txt" ||
	{ cat "$top/send-stripped.txt"; fail "stripped frames are not file+offset"; }

# 3. The binary deleted after capture: file+offset.
cp "$top/prog.evlog" "$top/gone.evlog"
rm "$top/prog"
"$TJ" dump --stacks "$top/gone.evlog" >"$top/gone.txt" || fail "dump --stacks with the binary gone failed"
frames_of "$top/gone.txt" send | grep -q "^ *#[0-9]* $top/prog+0x[0-9a-f]*$" ||
	fail "frames of a deleted binary are not file+offset"

# 4. Another file at the same path (another build id): not trusted.
cp "$(type -P true)" "$top/prog" || fail "cannot copy true"
"$TJ" dump --stacks "$top/gone.evlog" >"$top/replaced.txt" || fail "dump --stacks with the binary replaced failed"
frames_of "$top/replaced.txt" send >"$top/send-replaced.txt"
grep -q "^ *#[0-9]* $top/prog+0x[0-9a-f]*$" "$top/send-replaced.txt" ||
	{ cat "$top/send-replaced.txt"; fail "a replaced binary's frames are not file+offset"; }

# 5. Kernel stacks: kernel frames named from kallsyms.
cp "$progs/tcp-stacks" "$top/prog"
capture prog --stack=kernel --force
"$TJ" dump --stacks "$top/prog.evlog" >"$top/kernel.txt" || fail "dump --stacks (kernel) failed"
frames_of "$top/kernel.txt" send | grep -q '\[kernel\]' || fail "no kernel frames with --stack=kernel"
frames_of "$top/kernel.txt" send | grep -q 'tj_test_send_marker' && fail "user frames with --stack=kernel"

# 6. Without --stack: no ids, and dump --stacks says so without failing.
capture prog --force
"$TJ" dump --stacks "$top/prog.evlog" >"$top/none.txt" 2>"$top/none.err" || fail "dump --stacks of a log without stacks failed"
grep -q 'no stacks in this log' "$top/none.err" || fail "dump --stacks did not say the log has no stacks"
grep -q '^ *#0 ' "$top/none.txt" && fail "frames printed for a log without stacks"

# 7. Refusals.
expect_exit 2 "$TJ" capture --stack=bogus -o "$top/x.evlog" -- true
expect_exit 2 "$TJ" dump --stacks --csv "$top/prog.evlog"
expect_exit 2 "$TJ" dump --stacks -
echo "capture_stacks: ok"
