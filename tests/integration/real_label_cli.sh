#!/usr/bin/env bash
# tracejoin label on the command line: help, usage errors (exit 2) and
# refused inputs (exit 1) with a message: a missing folder, a folder that
# is not a capture, a capture made without --payload, a synthetic dataset,
# an existing dataset without --force.  Runs everywhere (no BPF).
set -u
. "$(dirname "$0")/lib.sh"
TJ=${TJ:-build/asan/tracejoin}
work=$(mktemp -d /tmp/tj-label-cli.XXXXXX)
trap 'rm -rf "$work"' EXIT

"$TJ" label --help | grep -q 'traceparent' || fail "label --help"
expect_exit 2 "$TJ" label
expect_exit 2 "$TJ" label "$work"
expect_exit 2 "$TJ" label --bogus "$work" -o "$work/out"
expect_exit 2 "$TJ" label "$work" "$work" -o "$work/out"
expect_exit 2 "$TJ" label "$work" -o
expect_exit 1 "$TJ" label "$work/missing" -o "$work/out"
mkdir -p "$work/empty"
expect_exit 1 "$TJ" label "$work/empty" -o "$work/out"
err=$("$TJ" label "$work/empty" -o "$work/out" 2>&1); echo "$err" | grep -q 'node-\*.evlog' || fail "no-log message: $err"
mkdir -p "$work/junk" && echo 'hello' >"$work/junk/node-1.evlog"
expect_exit 1 "$TJ" label "$work/junk" -o "$work/out"

# a synthetic dataset: made by gen, refused as "not a capture"
"$TJ" gen --scenario threaded --load low --requests 20 -o "$work/gen" >/dev/null 2>&1 || fail "gen"
err=$("$TJ" label "$work/gen" -o "$work/out" 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$err" | grep -q 'not a capture' || fail "synthetic log: exit $rc: $err"

[ -d "$work/out" ] && [ -f "$work/out/labels.csv" ] && fail "a refused input left labels.csv"

# With BPF: a loopback capture with --payload labels; its dataset (no
# payload left) is refused as input; a second label needs --force.
if "$TJ" capture --check >/dev/null 2>&1; then
	bin=$(dirname "$TJ")/datasets/workloads
	port=$((20000 + $$ % 20000))
	mkdir -p "$work/cap"
	"$TJ" capture --payload 256 -o "$work/cap/node-1.evlog" -- bash -c "
		'$bin/tj-service' --role s --listen 127.0.0.1:$port --work-us 0 >'$work/svc.out' &
		for _ in \$(seq 100); do grep -q listening '$work/svc.out' && break; sleep 0.05; done
		'$bin/tj-load' --target 127.0.0.1:$port --requests 5 --clients 1 >/dev/null; rc=\$?
		kill \$!; wait; exit \$rc" 2>"$work/cap.err" || { cat "$work/cap.err"; fail "loopback capture"; }
	"$TJ" label "$work/cap" -o "$work/ds" 2>"$work/label.err" || { cat "$work/label.err"; fail "label"; }
	# loopback: the 5 calls of the load generator are roots (no service calls out)
	grep -q '5 calls: 5 labeled (0 with a parent' "$work/label.err" || fail "loopback labels: $(cat "$work/label.err")"
	expect_exit 2 "$TJ" label "$work/cap" -o "$work/ds"
	expect_exit 0 "$TJ" label -q "$work/cap" -o "$work/ds" --force
	err=$("$TJ" label "$work/ds" -o "$work/ds2" 2>&1); rc=$?
	[ $rc -eq 1 ] && echo "$err" | grep -q 'without payload' || fail "a log without payload: exit $rc: $err"
	expect_exit 2 "$TJ" label "$work/cap" -o "$work/cap"
	# a log cut short: labeled as far as it reads, exit 3, the cut named
	mkdir -p "$work/cut"
	size=$(stat -c %s "$work/cap/node-1.evlog")
	head -c $((size * 2 / 3)) "$work/cap/node-1.evlog" >"$work/cut/node-1.evlog"
	err=$("$TJ" label "$work/cut" -o "$work/cutds" 2>&1); rc=$?
	[ $rc -eq 3 ] || fail "a cut log: exit $rc, want 3: $err"
	echo "$err" | grep -q 'node-1.evlog' || fail "a cut log: the file is not named: $err"
	[ -f "$work/cutds/labels.csv" ] || fail "a cut log: no labels written"
	expect_exit 2 "$TJ" label "$work/cap" -o "$work/ds3" --params 'not json'
	[ -e "$work/ds3" ] && fail "a refused --params left a folder"
else
	echo "note: BPF unavailable here; the no-payload refusal is covered by unit/test_label"
fi
echo "ok: label refuses bad input cleanly"
