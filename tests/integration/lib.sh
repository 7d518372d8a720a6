# Shared helpers of the integration scripts (sourced, not run).
# $TJ: sanitizer build of tracejoin; $TJ_RELEASE: optimised build.

# The programs the capture tests trace, built beside $TJ (set $TJ before
# sourcing this file) unless TJ_PROGRAMS names them.
progs=${TJ_PROGRAMS:-$(dirname "${TJ:-build/asan/tracejoin}")/tests/programs}

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

skip() {
	echo "SKIPPED: $*"
	exit 77
}

# expect_exit CODE COMMAND...: the command must exit with CODE and, when
# CODE is not 0, print a message on stderr (never crash silently).
expect_exit() {
	local want=$1 got err
	shift
	err=$("$@" 2>&1 >/dev/null)
	got=$?
	[ "$got" -eq "$want" ] || fail "'$*' exited $got, want $want: $err"
	if [ "$want" -ne 0 ] && [ -z "$err" ]; then
		fail "'$*' exited $got without a message on stderr"
	fi
	return 0
}

# need_capture [ARGS...]: where `tracejoin capture --check ARGS` says
# capture cannot run here, print its reason and skip the script (exit 77);
# fail where the check itself fails.  Its output stays in $capture_check.
need_capture() {
	local rc
	capture_check=$("$TJ" capture --check "$@" 2>&1); rc=$?
	if [ $rc -eq 77 ]; then echo "$capture_check"; exit 77; fi
	[ $rc -eq 0 ] || fail "capture --check $*: $capture_check"
	return 0
}
