# SPDX-License-Identifier: GPL-2.0
#
# Shell helpers for kmemlab selftests, on top of the kernel's
# kselftest/ktap_helpers.sh (installed next to the tests by lib.mk).
#
#   . "$(dirname "$0")/../lib/kmemlab.sh"
#   km_require_root
#   ktap_print_header; ktap_set_plan 3
#   km_cleanup 'umount /mnt/x'      # run at exit, last registered first
#   ktap_test_pass "..." / ktap_test_fail "..." / ktap_test_skip "..."
#   km_finish                        # exit 0 pass, 1 any failure, 4 all skipped

KM_SELFTESTS=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=/dev/null
. "$KM_SELFTESTS/kselftest/ktap_helpers.sh"

KM_CLEANUP=()

km_run_cleanup() {
	local i

	for ((i = ${#KM_CLEANUP[@]} - 1; i >= 0; i--)); do
		eval "${KM_CLEANUP[i]}" >/dev/null 2>&1
	done
	KM_CLEANUP=()
}
trap km_run_cleanup EXIT

# km_cleanup CMD: undo a step at exit (also on failure), in reverse order.
km_cleanup() {
	KM_CLEANUP+=("$1")
}

# km_skip_all REASON: nothing in this test can run here.
km_skip_all() {
	ktap_print_header
	ktap_skip_all "$@"
	exit "$KSFT_SKIP"
}

km_require_root() {
	((EUID == 0)) || km_skip_all "needs root"
}

km_require_cmd() {
	local c

	for c in "$@"; do
		command -v "$c" >/dev/null || km_skip_all "'$c' not installed (make deps)"
	done
}

# km_require_backend B...: skip unless the lab's NVDIMM backend is one of B.
km_require_backend() {
	local b

	for b in "$@"; do
		[[ ${KMEMLAB_BACKEND:-} == "$b" ]] && return 0
	done
	km_skip_all "needs NVDIMM backend $* (this is '${KMEMLAB_BACKEND:-unknown}'; run with PMEM=$1)"
}

# km_check DESC CMD...: one TAP result from a command's status; its output
# goes to the log as diagnostics.
km_check() {
	local desc=$1 out rc

	shift
	out=$("$@" 2>&1)
	rc=$?
	[[ -n $out ]] && printf '%s\n' "$out" | sed 's/^/# /'
	if ((rc == 0)); then
		ktap_test_pass "$desc"
	else
		ktap_test_fail "$desc"
	fi
	return $rc
}

km_finish() {
	ktap_print_totals
	if ((KTAP_CNT_FAIL > 0 || KTAP_CNT_PASS + KTAP_CNT_SKIP != KSFT_NUM_TESTS)); then
		exit "$KSFT_FAIL"
	elif ((KTAP_CNT_PASS == 0 && KTAP_CNT_SKIP > 0)); then
		exit "$KSFT_SKIP"
	fi
	exit "$KSFT_PASS"
}
