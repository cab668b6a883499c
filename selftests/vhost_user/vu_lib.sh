# shellcheck shell=bash
# SPDX-License-Identifier: GPL-2.0
#
# Helpers for the vhost-user selftests: TAP 13 output, finding vub and
# vu-check, starting back-ends in a private temp dir and stopping exactly
# those processes (by pid) at exit.

VU_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VU_PIDS=()
VU_TMP=
VU_PLAN=0
VU_N=0
VU_PASS=0
VU_FAIL=0
VU_SKIP=0

vu_cleanup() {
	local p

	for p in "${VU_PIDS[@]}"; do
		kill "$p" 2>/dev/null
	done
	for p in "${VU_PIDS[@]}"; do
		wait "$p" 2>/dev/null
	done
	VU_PIDS=()
	[[ -n $VU_TMP && -d $VU_TMP ]] && rm -rf "$VU_TMP"
}
trap vu_cleanup EXIT

vu_skip_all() {
	echo "TAP version 13"
	echo "1..0 # SKIP $*"
	exit 4
}

vu_plan() {
	VU_PLAN=$1
	echo "TAP version 13"
	echo "1..$VU_PLAN"
}

vu_ok() {
	VU_N=$((VU_N + 1)); VU_PASS=$((VU_PASS + 1))
	echo "ok $VU_N $*"
}

vu_notok() {
	VU_N=$((VU_N + 1)); VU_FAIL=$((VU_FAIL + 1))
	echo "not ok $VU_N $*"
}

vu_skip() {
	local desc=$1

	shift
	VU_N=$((VU_N + 1)); VU_SKIP=$((VU_SKIP + 1))
	echo "ok $VU_N $desc # SKIP $*"
}

# vu_result DESC RC: one TAP line from a status
vu_result() {
	if (($2 == 0)); then vu_ok "$1"; else vu_notok "$1"; fi
}

vu_diag() {
	sed 's/^/# /'
}

vu_finish() {
	echo "# pass $VU_PASS fail $VU_FAIL skip $VU_SKIP of $VU_PLAN"
	if ((VU_FAIL > 0 || VU_N != VU_PLAN)); then
		exit 1
	elif ((VU_PASS == 0 && VU_SKIP > 0)); then
		exit 4
	fi
	exit 0
}

# find the built tools: the lab's KMEMLAB_BIN, build/bin next to the
# installed tests, or build/bin of the source tree
vu_setup() {
	local d

	for d in "${KMEMLAB_BIN:-}" "$VU_DIR/../../bin" "$VU_DIR/../../build/bin"; do
		if [[ -n $d && -x $d/vub && -x $d/vu-check ]]; then
			VUB=$(cd "$d" && pwd)/vub
			# shellcheck disable=SC2034 # used by the tests
			VU_CHECK=$(cd "$d" && pwd)/vu-check
			break
		fi
	done
	[[ -n ${VUB:-} ]] || vu_skip_all "vub/vu-check not built (make -C tools/vhost-user)"
	VU_TMP=$(mktemp -d /tmp/vhost_user.XXXXXX) || vu_skip_all "mktemp failed"
}

# vu_wait_socket PATH PID: wait up to 5 s for a listening socket
vu_wait_socket() {
	local i

	for ((i = 0; i < 100; i++)); do
		[[ -S $1 ]] && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

# vu_start_vub NAME ARGS...: vub on $VU_TMP/NAME.sock, log NAME.log;
# sets VU_LAST_PID
vu_start_vub() {
	local name=$1

	shift
	"$VUB" --socket "$VU_TMP/$name.sock" "$@" >"$VU_TMP/$name.log" 2>&1 &
	VU_LAST_PID=$!
	VU_PIDS+=("$VU_LAST_PID")
	vu_wait_socket "$VU_TMP/$name.sock" "$VU_LAST_PID"
}

# vu_stop PID: SIGTERM one of our processes and return its exit status
vu_stop() {
	local p rc keep=()

	kill "$1" 2>/dev/null
	wait "$1"
	rc=$?
	for p in "${VU_PIDS[@]}"; do
		[[ $p == "$1" ]] || keep+=("$p")
	done
	VU_PIDS=("${keep[@]}")
	return $rc
}

# vu_failed_checks JSON-FILE: names of failed checks, space separated
vu_failed_checks() {
	grep -o '"name":"[^"]*","result":"fail"' "$1" |
		sed 's/"name":"\([^"]*\)".*/\1/' | sort | tr '\n' ' ' | sed 's/ $//'
}
