#!/usr/bin/env bash
# bench/export-identity.sh: refuses bad input (exit 2), finds one binary
# identical to itself on a given dataset, and finds a binary whose export
# differs by one byte (exit 1, the export named).
set -u
TJ=${TJ:-build/tracejoin}
. "$(dirname "$0")/lib.sh"
script=$(dirname "$0")/../../bench/export-identity.sh
work=$(mktemp -d /tmp/tj-expid.XXXXXX)
trap 'rm -rf "$work"' EXIT
TJ=$(realpath "$TJ")

"$TJ" gen --scenario async --load medium --seed 3 --requests 60 -o "$work/ds" >/dev/null 2>&1 ||
	fail "gen failed"
mkdir -p "$work/empty"
expect_exit 2 bash "$script"
expect_exit 2 bash "$script" "$TJ"
expect_exit 2 bash "$script" "$TJ" "$work/no-such-tracejoin"
expect_exit 2 bash "$script" "$TJ" "$TJ" "$work/empty"
err=$(bash "$script" "$TJ" "$TJ" "$work/empty" 2>&1); [[ $err == *"$work/empty"* ]] ||
	fail "message does not name the folder: $err"

# identical: the dataset alone, every format and variant
out=$(TJ_IDENTITY_GEN=0 TJ_IDENTITY_DIR="$work/id" bash "$script" "$TJ" "$TJ" "$work/ds" 2>&1) ||
	fail "one binary against itself differs: $out"
echo "$out"
[[ $out == *"export-identity: 12 exports compared, 0 differ"* ]] ||
	fail "expected 12 exports (3 formats x 4 variants), none differing: $out"

# a binary whose jaeger export has one byte more
cat >"$work/tj-other" <<EOS
#!/usr/bin/env bash
"$TJ" "\$@"; rc=\$?
[[ " \$* " == *" jaeger "* ]] && printf x
exit \$rc
EOS
chmod +x "$work/tj-other"
out=$(TJ_IDENTITY_GEN=0 TJ_IDENTITY_DIR="$work/d2" bash "$script" "$TJ" "$work/tj-other" "$work/ds" 2>&1)
rc=$?
[ $rc -eq 1 ] || fail "a differing binary: exit $rc, expected 1: $out"
[[ $out == *"DIFFERS: ds jaeger plain"* ]] || fail "the differing export is not named: $out"
[[ $out == *"4 differ"* ]] || fail "expected the 4 jaeger exports to differ: $out"
echo "export_identity: ok"
