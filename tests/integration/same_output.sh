#!/usr/bin/env bash
# bench/same-output.sh: refuses bad input naming it, finds one binary
# identical to itself (generated scenarios and a given dataset), and
# finds a binary whose edges differ (exit 1, the pair named).
set -u
TJ=${TJ:-build/tracejoin}
. "$(dirname "$0")/lib.sh"
script=$(dirname "$0")/../../bench/same-output.sh
work=$(mktemp -d /tmp/tj-sameout.XXXXXX)
trap 'rm -rf "$work"' EXIT
TJ=$(realpath "$TJ")

"$TJ" gen --scenario async --load medium --seed 3 --requests 60 -o "$work/ds" >/dev/null 2>&1 ||
	fail "gen failed"
mkdir -p "$work/empty"
expect_exit 2 bash "$script" "$TJ"
expect_exit 2 bash "$script" "$TJ" "$work/no-such-tracejoin"
expect_exit 2 bash "$script" --algos bogus "$TJ" "$TJ"
expect_exit 2 bash "$script" --roots 0 "$TJ" "$TJ"
expect_exit 2 bash "$script" --jobs x "$TJ" "$TJ"
expect_exit 2 bash "$script" --no-gen "$TJ" "$TJ" "$work/no-such-dir"
expect_exit 2 bash "$script" --no-gen "$TJ" "$TJ" "$work/empty"
expect_exit 2 bash "$script" --no-gen "$TJ" "$TJ"
expect_exit 2 bash "$script" --bogus
err=$(bash "$script" --algos bogus "$TJ" "$TJ" 2>&1); [[ $err == *"'bogus'"* ]] ||
	fail "message does not name the correlator: $err"
err=$(bash "$script" --no-gen "$TJ" "$TJ" "$work/empty" 2>&1); [[ $err == *"$work/empty"* ]] ||
	fail "message does not name the folder: $err"

# identical: every generated scenario (tiny) and the dataset given, two correlators
out=$(bash "$script" --roots 20 --algos metadata,nest "$TJ" "$TJ" "$work/ds" 2>"$work/err") ||
	fail "one binary against itself differs: $out $(cat "$work/err")"
echo "$out"
[[ $out == "identical: "*" of "* ]] || fail "no count printed: $out"
n=$(echo "$out" | sed -n 's/^identical: \([0-9]*\) of \([0-9]*\).*/\1 \2/p')
set -- $n
[ "$1" = "$2" ] && [ "$1" -gt 2 ] || fail "expected every pair identical and more than the given dataset: $out"

# a binary whose edges differ: its last edge dropped
cat >"$work/tj-other" <<EOS
#!/usr/bin/env bash
"$TJ" "\$@"; rc=\$?
for ((i = 1; i < \$#; i++)); do
	[ "\${!i}" = -o ] && { j=\$((i + 1)); sed -i '\$d' "\${!j}"; }
done
exit \$rc
EOS
chmod +x "$work/tj-other"
expect_exit 1 bash "$script" --no-gen --algos metadata --keep "$work/kept" "$TJ" "$work/tj-other" "$work/ds"
out=$(bash "$script" --no-gen --algos metadata "$TJ" "$work/tj-other" "$work/ds" 2>/dev/null)
[[ $out == *"DIFF metadata $work/ds"* ]] || fail "the differing pair is not named: $out"
ls "$work/kept"/*metadata.new.csv >/dev/null 2>&1 || fail "--keep kept nothing"
echo "same_output: ok"
