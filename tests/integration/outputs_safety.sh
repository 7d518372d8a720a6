#!/usr/bin/env bash
# Outputs never destroy a user's file (issue #21, lib/outfile.h): an
# output that is one of the inputs is refused before anything is read,
# an existing output is replaced only with --force, a failed run leaves
# the old file byte for byte (or nothing), a symlink keeps being a link.
set -u
TJ=${TJ:-build/asan/tracejoin}
. "$(dirname "$0")/lib.sh"

work=$(mktemp -d /tmp/tj-outputs.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1

# same_bytes FILE: FILE still holds what `keep FILE` saw.
keep() { sha256sum "$1" >"$1.sum.$$" 2>/dev/null || fail "keep $1"; }
same_bytes() {
	[ -e "$1" ] || fail "$1 is gone"
	sha256sum -c --quiet "$1.sum.$$" >/dev/null 2>&1 || fail "$1 was changed"
	rm -f "$1.sum.$$"
}
# no_litter DIR: no temporary file left behind in DIR.
no_litter() {
	local l
	l=$(find "$1" -maxdepth 1 \( -name '*.tmp-*' -o -name '*.partial' -o -name '.tracejoin-new-*' \) | head -1)
	[ -z "$l" ] || fail "left behind: $l"
}
# refused CODE WORDS COMMAND...: exit CODE with WORDS in the message.
refused() {
	local want=$1 words=$2 out rc
	shift 2
	out=$("$@" 2>&1 >/dev/null); rc=$?
	[ $rc -eq "$want" ] || fail "'$*' exited $rc, want $want: $out"
	grep -qF -- "$words" <<<"$out" || fail "'$*': no '$words' in: $out"
}

"$TJ" gen --scenario fanout --requests 20 -o ds >/dev/null 2>&1 || fail "gen"
cp ds/node-1.evlog node-1.evlog
cp ds/node-2.evlog node-2.evlog

# 1. correlate -o one of its inputs, in any spelling: refused, the capture kept.
keep node-1.evlog
refused 1 "is also an input" "$TJ" correlate --algo metadata node-1.evlog node-2.evlog -o node-1.evlog
refused 1 "is also an input" "$TJ" correlate --algo metadata node-1.evlog node-2.evlog -o ./node-1.evlog --force
ln node-1.evlog hard.evlog
refused 1 "is also an input" "$TJ" correlate --algo metadata hard.evlog node-2.evlog -o "$work/node-1.evlog" --force
same_bytes node-1.evlog

# an existing file: kept without --force, kept when the run fails even with it
echo precious >e.csv
keep e.csv
refused 1 "exists (--force replaces it)" "$TJ" correlate --algo metadata ds -o e.csv
refused 1 "/nonexist" "$TJ" correlate --algo metadata /nonexist -o e.csv --force
same_bytes e.csv
no_litter .

# -o a symlink: its target replaced only with --force, the link stays a link
ln -s e.csv link.csv
keep e.csv
refused 1 "exists" "$TJ" correlate --algo metadata ds -o link.csv
refused 1 "/nonexist" "$TJ" correlate --algo metadata /nonexist -o link.csv --force
same_bytes e.csv
[ -L link.csv ] || fail "the link was removed"
"$TJ" correlate --algo metadata ds -o link.csv --force 2>/dev/null || fail "correlate -o link --force"
[ -L link.csv ] || fail "the link was replaced by a file"
head -1 e.csv | grep -q '^child,parent,score$' || fail "the link's target was not written"
# a dangling symlink is not followed (it could point anywhere)
ln -s "$work/nowhere.csv" dangling.csv
refused 1 "symlink to nothing" "$TJ" correlate --algo metadata ds -o dangling.csv --force
[ -e nowhere.csv ] && fail "a dangling symlink was followed"

# 2. features: a missing input, or the dataset's own labels, never cost a file
echo precious >f.csv
keep f.csv
refused 1 "/nonexist" "$TJ" features /nonexist -o f.csv --force
refused 1 "exists" "$TJ" features ds -o f.csv
same_bytes f.csv
keep ds/labels.csv
refused 1 "input dataset" "$TJ" features ds -o ds/labels.csv --force
same_bytes ds/labels.csv
# nothing on stdout (not even the CSV header) when an input is missing
out=$("$TJ" features /nonexist 2>/dev/null)
[ -z "$out" ] || fail "features printed before failing: $out"
out=$("$TJ" correlate --algo metadata /nonexist 2>/dev/null)
[ -z "$out" ] || fail "correlate printed before failing: $out"

# train: the same rules for the model file; a failure leaves no 0-byte model
echo precious >m.model
keep m.model
refused 1 "exists" "$TJ" train --algo classifier ds -o m.model
refused 1 "is part of the input dataset" "$TJ" train --algo classifier ds -o ds/labels.csv --force
mkdir -p nolabels && cp ds/node-*.evlog nolabels/
"$TJ" train --algo classifier nolabels -o new.model >/dev/null 2>&1 && fail "train without labels succeeded"
[ -e new.model ] && fail "a failed train left a model file"
same_bytes m.model
no_litter .

# 3. import: its own input as output is refused before it is read
printf 'ts_ns,node,pid,tid,sock,type,bytes,family,laddr,lport,raddr,rport\n' >x.csv
keep x.csv
refused 1 "is also an input" "$TJ" import --format csv x.csv -o x.csv --force
same_bytes x.csv
mkdir -p src && printf '{"data":[]}\n' >src/a.json
refused 1 "is also an input" "$TJ" import --format jaeger src -o src --force
[ -e src/manifest.json ] && fail "import wrote into its own input folder"

# datasets: an existing one replaced only with --force, and whole or not at all
keep ds/node-1.evlog
refused 1 "already holds a dataset" "$TJ" gen --scenario fanout --requests 5 -o ds
same_bytes ds/node-1.evlog
echo mine >ds/README
"$TJ" gen --scenario fanout --requests 5 -o ds --force >/dev/null 2>&1 || fail "gen --force"
[ "$(cat ds/README)" = mine ] || fail "gen --force removed a file that is not the dataset's"
no_litter ds
no_litter .

# bench's commands.txt and plots/*.gp go through the same discipline: a
# symlink to nothing there is not followed (no file made where it points),
# and no temporary file is left
mkdir -p b1/plots
ln -s "$PWD/gone.txt" b1/commands.txt
"$TJ" bench --only metadata --scenarios fanout --loads low --requests 20 --no-found \
	--no-plots --work bw -o b1 >/dev/null 2>err; rc=$?
[ $rc -eq 1 ] || fail "bench with commands.txt a dangling symlink exited $rc"
grep -q "commands.txt: a symlink to nothing" err || fail "bench: no reason: $(cat err)"
[ -e gone.txt ] && fail "bench followed a dangling commands.txt symlink"
no_litter b1
if command -v gnuplot >/dev/null; then
	mkdir -p b2/plots
	ln -s "$PWD/gone.gp" b2/plots/fanout.gp
	"$TJ" bench --only metadata --scenarios fanout --loads low --requests 20 --no-found \
		--work bw -o b2 >/dev/null 2>err || fail "bench with a dangling .gp link: $(cat err)"
	grep -q "fanout.gp: a symlink to nothing" err || fail "bench plots: no reason: $(cat err)"
	[ -e gone.gp ] && fail "bench followed a dangling plots/fanout.gp symlink"
	grep -q "^# tracejoin" b2/commands.txt || fail "bench wrote no commands.txt"
	no_litter b2/plots
	no_litter b2
fi
echo ok
