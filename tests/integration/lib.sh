# Shared helpers of the integration scripts (sourced, not run).
# $TJ: sanitizer build of tracejoin; $TJ_RELEASE: optimised build.

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
