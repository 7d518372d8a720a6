#!/usr/bin/env bash
# capture_attach with capture --hooks syscalls: the same checks on the syscall
# tracepoint data path.
TJ_CAPTURE_HOOKS=syscalls exec bash "$(dirname "$0")/capture_attach.sh"
