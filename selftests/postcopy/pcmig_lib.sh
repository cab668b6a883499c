#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Shared helpers for the pcmig shell selftests: TAP output, the pcmig
# binary, a scratch directory, and cleanup that stops only the processes
# the test started (by pid).

KSFT_PASS=0
KSFT_FAIL=1
KSFT_SKIP=4

tap_n=0
tap_fail=0
PIDS=()

here=$(dirname "$(readlink -f "$0")")
repo=${KMEMLAB_DIR:-$(readlink -f "$here/../..")}
PCMIG=${PCMIG:-}
for c in "${KMEMLAB_BIN:-}/pcmig" "$repo/build/bin/pcmig"; do
	[ -z "$PCMIG" ] && [ -x "$c" ] && PCMIG=$c
done

tap_header() { echo "TAP version 13"; echo "1..$1"; }
ok() { tap_n=$((tap_n + 1)); echo "ok $tap_n $*"; }
not_ok() { tap_n=$((tap_n + 1)); tap_fail=1; echo "not ok $tap_n $*"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else not_ok "$name"; fi; }
skip_all() { echo "TAP version 13"; echo "1..0 # SKIP $*"; exit $KSFT_SKIP; }
diag() { echo "# $*"; }

need_env() {
	[ "$(id -u)" = 0 ] || skip_all "needs root (userfaultfd, netns)"
	[ -n "$PCMIG" ] || skip_all "pcmig not built: run make -C tools/postcopy"
	python3 -c 1 2>/dev/null || skip_all "python3 needed to read --json reports"
}

WORK=$(mktemp -d /tmp/pcmig-test.XXXXXX)

start_bg() {	# start_bg VAR cmd...: run in background, remember the pid
	local var=$1; shift
	"$@" &
	eval "$var=$!"
	PIDS+=("$!")
}

cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill -9 "$p" 2>/dev/null
	done
	wait 2>/dev/null
	[ -n "${CLEANUP_EXTRA:-}" ] && eval "$CLEANUP_EXTRA"
	rm -rf "$WORK"
}
trap cleanup EXIT

# json FILE KEY[.KEY]: print one field of a JSON report
json() {
	python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."):
    d = d[k]
print(str(d).lower() if isinstance(d, bool) else d)' "$1" "$2" 2>/dev/null
}

# ctl_field SOCK KEY: one field of a live status
ctl_field() {
	"$PCMIG" ctl "$1" status --json 2>/dev/null | python3 -c '
import json, sys
try:
    print(json.load(sys.stdin)[sys.argv[1]])
except Exception:
    print("?")' "$2"
}

# wait_file FILE SECONDS
wait_sock() {
	local i
	for i in $(seq 1 $(($2 * 10))); do
		[ -S "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

tap_exit() {
	[ $tap_fail = 0 ] && exit $KSFT_PASS
	exit $KSFT_FAIL
}

# In the lab VM (QEMU under TCG, several times slower) the default sizes
# shrink; PCMIG_SIZE etc. still override.
if [ -n "${KMEMLAB_BACKEND:-}" ]; then
	: "${PCMIG_SIZE:=64M}"
	: "${PCMIG_KILL_SIZE:=128M}"
fi
