#!/usr/bin/env bash
# Runs every test: cmocka unit binaries, integration scripts, fuzz
# targets on their seed corpus.  A test that exits 77 was skipped and must
# say why on its output; the run fails only on failures.
#   TJ_BUILD          sanitizer build folder (unit tests, tracejoin, fuzzers)
#   TJ_RELEASE_BUILD  optimised build folder (for integration tests that time)
#   TJ_FUZZ_BUILD     fuzzer build folder (fuzzbin/fuzz_* inside)
#   TJ_FUZZ_SECONDS   seconds per fuzz target (default 30 under CI, else 5)
#   TJ_TESTS          a pattern: only tests whose name matches
set -u
cd "$(dirname "$0")/.."
build=${TJ_BUILD:-build/asan}
export TJ_BUILD=$build
export TJ="$PWD/$build/tracejoin"
export TJ_RELEASE="$PWD/${TJ_RELEASE_BUILD:-build}/tracejoin"
export TJ_ROOT="$PWD"
# the real consumers of the exports (make consumers): node_modules, chromium
export TJ_CONSUMERS="${TJ_CONSUMERS:-${TJ_RELEASE_BUILD:-build}/consumers}"
case $TJ_CONSUMERS in /*) ;; *) TJ_CONSUMERS="$PWD/$TJ_CONSUMERS" ;; esac
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
if [ -n "${CI:-}" ]; then fuzz_s=${TJ_FUZZ_SECONDS:-30}; else fuzz_s=${TJ_FUZZ_SECONDS:-5}; fi
filter=${TJ_TESTS:-}
logdir=$(mktemp -d /tmp/tracejoin-tests.XXXXXX)
passed=0 failed=0 skipped=0
failures=()

run_one() { # name, command...
	local name=$1; shift
	if [ -n "$filter" ] && [[ "$name" != *$filter* ]]; then return; fi
	local log="$logdir/${name//\//_}.log" start=$SECONDS rc
	"$@" >"$log" 2>&1 </dev/null
	rc=$?
	local took=$((SECONDS - start))
	if [ $rc -eq 0 ]; then
		passed=$((passed + 1)); printf 'PASS  %-45s %3ds\n' "$name" "$took"
	elif [ $rc -eq 77 ]; then
		skipped=$((skipped + 1))
		printf 'SKIPPED %-43s %s\n' "$name" "$(grep -m1 -i 'skip' "$log" || echo 'no reason given')"
	else
		failed=$((failed + 1)); failures+=("$name")
		printf 'FAIL  %-45s (exit %d)\n' "$name" "$rc"
		tail -n 40 "$log" | sed 's/^/    | /'
	fi
}

for t in "$build"/tests/test_*; do
	[ -x "$t" ] && run_one "unit/$(basename "$t")" "$t"
done
for t in tests/integration/*.sh; do
	[ "$(basename "$t")" = lib.sh ] && continue # sourced by the others
	[ -f "$t" ] && run_one "integration/$(basename "$t" .sh)" bash "$t"
done
for f in "${TJ_FUZZ_BUILD:-build/fuzz}"/fuzzbin/fuzz_*; do
	[ -x "$f" ] || continue
	name=$(basename "$f")
	corpus=tests/fuzz/corpus/${name#fuzz_}
	# libFuzzer exits 77 on a finding by default, which would read as
	# "skipped" here: a crash, leak or timeout must fail, and the input
	# that made it is kept beside the test's log.
	run_one "fuzz/$name" bash -c "work=\$(mktemp -d) && cp -r '$corpus'/. \"\$work\"/ 2>/dev/null; '$f' -max_total_time=$fuzz_s -timeout=10 -rss_limit_mb=2048 -error_exitcode=1 -timeout_exitcode=1 -artifact_prefix='$logdir/$name-' \"\$work\"; rc=\$?; rm -rf \"\$work\"; exit \$rc"
done

echo
if [ ${#failures[@]} -gt 0 ]; then echo "failed: ${failures[*]} (logs in $logdir)"; fi
echo "$passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ]
