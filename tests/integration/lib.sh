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

# expect_msg CODE FRAGMENT COMMAND...: the command must exit with CODE and
# say FRAGMENT on stderr.
expect_msg() {
	local want=$1 frag=$2 got err
	shift 2
	err=$("$@" 2>&1 >/dev/null)
	got=$?
	[ "$got" -eq "$want" ] || fail "'$*' exited $got, want $want: $err"
	grep -q -- "$frag" <<<"$err" || fail "'$*': no '$frag' in: $err"
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

# real_capture CONFIG OUT LOG [RUN-REAL-OPTIONS...]: the labeled real capture of
# datasets/workloads/configs/CONFIG.cfg into the dataset folder OUT by
# run-real.sh (root: BPF, network namespaces), its output printed and kept
# in LOG.  Skips (exit 77) where it needs root or run-real.sh skips;
# fails where run-real.sh fails (labels not covering the workload's calls).
real_capture() {
	local root=${TJ_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
	local bin rc
	bin=$(dirname "$TJ")/datasets/workloads
	[ -x "$bin/tj-service" ] || fail "no $bin/tj-service (make first)"
	[ "$(id -u)" = 0 ] || skip "needs root (BPF, network namespaces)"
	bash "$root/datasets/workloads/run-real.sh" --tj "$TJ" --bin "$bin" \
		--config "$root/datasets/workloads/configs/$1.cfg" --name "$1" --out "$2" "${@:4}" >"$3" 2>&1
	rc=$?
	cat "$3"
	[ $rc -eq 77 ] && exit 77
	[ $rc -eq 0 ] || fail "run-real.sh $1 exited $rc"
	return 0
}
