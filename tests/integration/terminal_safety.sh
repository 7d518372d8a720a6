#!/usr/bin/env bash
# No escape sequence from a file reaches the terminal (issue #21): info
# prints a crafted log's hostname escaped, and the error messages that
# echo field bytes (score, import, gen, features, correlate) escape them.
set -u
TJ=${TJ:-build/asan/tracejoin}
. "$(dirname "$0")/lib.sh"

work=$(mktemp -d /tmp/tj-terminal.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
esc=$'\x1b'

# clean WHAT FILE: FILE holds no control byte but newlines and tabs.
clean() {
	if LC_ALL=C grep -q '[[:cntrl:]]' <(tr -d '\n\t' <"$2"); then
		fail "$1 let a control byte through: $(cat -v "$2" | head -5)"
	fi
}

# a log whose hostname is an escape sequence (an xterm title, a colour)
sed 's/"serviceName": "\([a-z]*\)"/"serviceName": "\\u001b]0;pwned\\u0007\\u001b[31m\1"/' \
	"$TJ_ROOT/tests/fuzz/corpus/jaeger/rpc-chain.json" >evil.json
"$TJ" import --format jaeger evil.json -o ds >/dev/null 2>&1 || fail "import of the crafted trace"
"$TJ" info ds/node-1.evlog >out 2>&1 || fail "info on the crafted log"
grep -q 'hostname *\\x1b\]0;pwned\\x07' out || fail "info did not show the hostname escaped: $(cat -v out)"
clean "info" out
"$TJ" info --json ds/node-1.evlog >out 2>&1; clean "info --json" out

# labels with an escape sequence in a field
printf 'child,parent,score\n1:2:out:0%s[2J,,1\n' "$esc" >bad.csv
"$TJ" score --labels bad.csv bad.csv >/dev/null 2>err && fail "score accepted a bad key"
grep -q 'bad.csv' err || fail "score: no file named: $(cat -v err)"
clean "score's message" err
"$TJ" correlate --algo metadata ds -o "x${esc}[2J/e.csv" >/dev/null 2>err && fail "correlate into a missing folder"
clean "correlate's message" err

# an event CSV with an escape sequence in a number field
printf 'ts_ns,node,pid,tid,sock,type,bytes,family,laddr,lport,raddr,rport\n1%s[5m,1,1,1,1,send,1,inet,1.2.3.4,1,1.2.3.4,2\n' "$esc" >ev.csv
"$TJ" import --format csv ev.csv -o ev.evlog >/dev/null 2>err && fail "import accepted a bad row"
clean "import's message" err

# a scenario file with an escape sequence in a name
printf 'service a%s]0;x%s\n' "$esc" $'\a' >evil.scn
"$TJ" gen --scenario ./evil.scn -o g >/dev/null 2>err && fail "gen accepted a bad spec"
clean "gen's message" err

# a dataset folder name with an escape sequence, refused by features
"$TJ" features "no${esc}[2Jsuch" >/dev/null 2>err && fail "features read a missing dataset"
clean "features' message" err
echo ok
