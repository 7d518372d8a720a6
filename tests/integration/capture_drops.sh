#!/usr/bin/env bash
# capture with a ring buffer too small for the load (4 KiB, 256-byte
# payloads): losses must be counted the same way everywhere (capture's
# exit line, the footer as info shows it, the LOST markers' sum), and the
# events that did arrive must still carry the right stream offsets: each
# is in the program's own account, since offsets are kept in the kernel.
# Skipped where BPF cannot be loaded; must run as root here.
set -u
TJ=${TJ:-build/asan/tracejoin}
. "$(dirname "$0")/lib.sh"

need_capture

work=$(mktemp -d /tmp/tj-capture-drops.XXXXXX)
trap 'rm -rf "$work"' EXIT
# The default hooks; with the sock hooks a sendmmsg is a send per message.
per_msg=; case $capture_check in *"hooks: sock"*) per_msg=-m ;; esac
"$TJ" capture -o "$work/log.evlog" --ring-kb 4 --payload 256 -- "$progs/tcp-pingpong" -c 4 -r 12 $per_msg \
	>"$work/prog.txt" 2>"$work/err" || { cat "$work/err"; fail "capture exited $?"; }
cat "$work/err"
said=$(sed -n 's/.* events, \([0-9]*\) lost (ring buffer full \([0-9]*\), map full \([0-9]*\)).*/\1 \2 \3/p' "$work/err")
[ -n "$said" ] || fail "no loss count at exit"
set -- $said
lost=$1
[ "$lost" -eq $(($2 + $3)) ] || fail "lost $lost is not the sum of its reasons"
"$TJ" info "$work/log.evlog" >"$work/info" || fail "info"
grep -q "drops *ringbuf $2 map $3 " "$work/info" || { cat "$work/info"; fail "footer drops differ from the exit line"; }
"$TJ" dump --csv "$work/log.evlog" >"$work/log.csv" || fail "dump"
markers=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
	$col["type"] == "lost" { n += $col["bytes"] } END { print n + 0 }' "$work/log.csv")
[ "$markers" -eq "$lost" ] || fail "LOST markers add up to $markers, not $lost"

awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
	$col["type"] == "send" || $col["type"] == "recv" {
		print $col["type"], $col["tid"], $col["lport"], $col["rport"], $col["bytes"], $col["offset"] }' \
	"$work/log.csv" | sort >"$work/log.txt"
sort "$work/prog.txt" >"$work/prog.sorted"
n=$(wc -l <"$work/log.txt")
[ "$n" -gt 0 ] || fail "no send/recv arrived at all"
missing=$(comm -23 "$work/log.txt" "$work/prog.sorted" | wc -l)
[ "$missing" -eq 0 ] || { comm -23 "$work/log.txt" "$work/prog.sorted" | head; fail "$missing logged calls are not in the program's account (wrong offsets?)"; }
if [ "$lost" -eq 0 ]; then
	echo "ok, but nothing was lost this time: only the no-loss path was checked"
else
	echo "ok: $lost lost and counted alike; $n calls arrived, each with its true offset"
fi
