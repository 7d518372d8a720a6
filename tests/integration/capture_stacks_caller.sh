#!/usr/bin/env bash
# capture --stack names the function that called a libc wrapper: libc's
# write() and read() keep no frame, so the frame-pointer unwinder alone
# goes from write+0x.. to the caller's caller.  tests/programs/libc-caller
# writes from tj_test_writer and reads in tj_test_reader through libc,
# single-threaded and then with a second thread (glibc's other path, with
# a stack frame of its own); with both hook sets, every send's stack must
# have tj_test_writer right after the wrapper, every recv's
# tj_test_reader, after the process is gone.  Skipped where BPF cannot
# be loaded.
set -u
TJ=${TJ:-build/asan/tracejoin}
. "$(dirname "$0")/lib.sh"

need_capture
top=$(mktemp -d /tmp/tj-capture-stacks-caller.XXXXXX)
trap 'rm -rf "$top"' EXIT

for hooks in sock syscalls; do
	"$TJ" capture --check --hooks "$hooks" >/dev/null 2>&1 || { echo "note: --hooks $hooks cannot run here"; continue; }
	log="$top/$hooks.evlog"
	"$TJ" capture --hooks "$hooks" --stack -o "$log" -- "$progs/libc-caller" -n 3 \
		>"$top/out" 2>"$top/err" || { cat "$top/err"; fail "$hooks: capture exited $?"; }
	grep -qx 'ok 3 3' "$top/out" || fail "$hooks: the program did not finish"
	grep -q ' 0 lost' "$top/err" || fail "$hooks: events were lost"
	"$TJ" dump --stacks "$log" >"$top/$hooks.txt" 2>"$top/dump.err" ||
		{ cat "$top/dump.err"; fail "$hooks: dump --stacks exited $?"; }
	# "type frame0 caller next" per send and recv, file names dropped.
	# The caller is the frame after the wrapper, or after a sanitizer's
	# interceptor (an ASan build's program calls write through one).
	awk '/ (send|recv) .* stack / { t = $8; getline a; getline b; getline c
		split(a, x, " "); split(b, y, " "); split(c, z, " ")
		if (y[2] ~ /^__interceptor_/) { y[2] = z[2]; getline c; split(c, z, " ") }
		print t, x[2], y[2], z[2] }' "$top/$hooks.txt" >"$top/frames"
	[ "$(grep -c '^send ' "$top/frames")" -eq 12 ] || { cat "$top/frames"; fail "$hooks: want 12 sends with stacks"; }
	[ "$(grep -c '^recv ' "$top/frames")" -eq 12 ] || { cat "$top/frames"; fail "$hooks: want 12 recvs with stacks"; }
	awk '$1 == "send" && $3 !~ /^tj_test_writer\+0x/ { bad = 1 } END { exit bad }' "$top/frames" ||
		{ cat "$top/frames"; fail "$hooks: a send's stack does not name tj_test_writer after the wrapper"; }
	awk '$1 == "recv" && $3 !~ /^tj_test_reader\+0x/ { bad = 1 } END { exit bad }' "$top/frames" ||
		{ cat "$top/frames"; fail "$hooks: a recv's stack does not name tj_test_reader after the wrapper"; }
	# The caller is inserted once: the frame after it is the exchange.
	awk '$4 !~ /^exchange\+0x/ { bad = 1 } END { exit bad }' "$top/frames" ||
		{ cat "$top/frames"; fail "$hooks: exchange does not follow the caller"; }
	# Both wrapper paths were taken (single-threaded, cancellable).
	[ "$(awk '$1 == "send" { print $2 }' "$top/frames" | sort -u | wc -l)" -eq 2 ] ||
		{ cat "$top/frames"; fail "$hooks: want both of write's paths"; }
done
echo "capture_stacks_caller: ok"
