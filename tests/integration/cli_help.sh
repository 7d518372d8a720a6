#!/usr/bin/env bash
# The dispatcher answers help for every command (cli/main.c): `COMMAND
# --help`, `COMMAND -h` anywhere before "--", and `help COMMAND` print the
# same text on stdout and exit 0; what follows "--" is capture's COMMAND's.
set -u
. "$(dirname "$0")/lib.sh"
tj=${TJ:-build/tracejoin}

cmds=$("$tj" help | awk '/^commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 }')
[ "$(echo "$cmds" | wc -w)" -ge 11 ] || fail "tracejoin help lists too few commands: $cmds"
for c in $cmds; do
	long=$("$tj" "$c" --help) || fail "$c --help exited $?"
	case "$long" in "usage: tracejoin $c"*) ;; *) fail "$c --help does not start with its usage: ${long:0:60}" ;; esac
	[ "$("$tj" "$c" -h)" = "$long" ] || fail "$c -h differs from $c --help"
	[ "$("$tj" help "$c")" = "$long" ] || fail "help $c differs from $c --help"
	# anywhere before "--", even after an option the command would refuse
	[ "$("$tj" "$c" --no-such-option --help)" = "$long" ] || fail "$c --no-such-option --help"
	# nothing of it on stderr
	[ -z "$("$tj" "$c" --help 2>&1 >/dev/null)" ] || fail "$c --help wrote on stderr"
done

# After "--" the arguments are capture's COMMAND's: no help, capture's own
# refusal (no -o) instead.
expect_exit 2 "$tj" capture -- true --help
[ -z "$("$tj" capture -- true --help 2>/dev/null)" ] || fail "capture -- true --help printed its help"

expect_exit 2 "$tj" help no-such-command
"$tj" help no-such-command 2>&1 | grep -q "no such command 'no-such-command'" || fail "help no-such-command: message"
expect_exit 2 "$tj" no-such-command --help
echo "cli_help: ok"
