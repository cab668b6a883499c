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
# from selftests/postcopy (source tree) or build/selftests/postcopy
for c in "${KMEMLAB_BIN:-}/pcmig" "$here/../../build/bin/pcmig" \
	 "$here/../../bin/pcmig"; do
	[ -z "$PCMIG" ] && [ -x "$c" ] && PCMIG=$c
done

# the relay may come from another build (e.g. testing an older pcmig)
PCMIG_RELAY=${PCMIG_RELAY:-$PCMIG}

tap_header() { echo "TAP version 13"; echo "1..$1"; }
ok() { tap_n=$((tap_n + 1)); echo "ok $tap_n $*"; }
not_ok() { tap_n=$((tap_n + 1)); tap_fail=1; echo "not ok $tap_n $*"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else not_ok "$name"; fi; }
skip_all() { echo "TAP version 13"; echo "1..0 # SKIP $*"; exit $KSFT_SKIP; }
diag() { echo "# $*"; }

need_env() {
	[ "$(id -u)" = 0 ] || skip_all "needs root (userfaultfd, netns)"
	[ -n "$PCMIG" ] || skip_all "pcmig not built: run make -C tools/postcopy"
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

# json FILE KEY[.KEY]: one field of a pcmig --json report. The reports are
# flat one-line objects (plus "workload":{...} whose keys are unique), so
# sed does it, without a python start-up per field (slow under TCG).
jfield() {
	local k=${1##*.}
	sed -n -e "s/.*\"$k\":\"\([^\"]*\)\".*/\1/p" \
	       -e "t" -e "s/.*\"$k\":\([^,}]*\).*/\1/p" | head -1
}

json() {
	[ -s "$1" ] || return 1
	jfield "$2" <"$1"
}

# ctl_field SOCK KEY: one field of a live status
ctl_field() {
	local v
	v=$("$PCMIG" ctl "$1" status --json 2>/dev/null | jfield "$2")
	echo "${v:-?}"
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
# shrink; PCMIG_SIZE etc. still override. `make check` runs the area's
# host_tests with KMEMLAB_BACKEND=host: those are not in the VM.
in_vm() { [ -n "${KMEMLAB_BACKEND:-}" ] && [ "$KMEMLAB_BACKEND" != host ]; }
if in_vm; then
	: "${PCMIG_SIZE:=64M}"
	: "${PCMIG_KILL_SIZE:=128M}"
fi
