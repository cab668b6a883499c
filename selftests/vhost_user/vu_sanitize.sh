#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# vub and vu-check built with ASan + UBSan (no recovery: the first report
# ends the program; build/bin/vub-san, vu-check-san, made by make with
# clang) against each other: vu-check's conformance run (2 queues) and its
# malformed run. Any sanitizer report or exit other than 0 fails. vu-check's
# memcpy(&m.p, NULL, 0) in vc_raw() (issue 17) was such a report in the
# malformed run.
# shellcheck source=vu_lib.sh
. "$(dirname "$0")/vu_lib.sh"
vu_setup
bin=$(dirname "$VUB")
[[ -x $bin/vub-san && -x $bin/vu-check-san ]] ||
	vu_skip_all "vub-san/vu-check-san not built: they need clang and libclang-rt-14-dev (make deps; make)"
VUB=$bin/vub-san
vu_plan 3

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1
img=$VU_TMP/disk.img
truncate -s 64M "$img"
reports() {
	grep -Ec 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$@"
}

vu_start_vub san --file "$img" --queues 2
pid=$VU_LAST_PID
timeout 240 "$bin/vu-check-san" --socket "$VU_TMP/san.sock" >"$VU_TMP/check.txt" 2>&1
rc=$?
n=$(reports "$VU_TMP/check.txt")
vu_result "vu-check-san passes against vub-san, no sanitizer report (exit $rc, $n reports)" \
	$((rc != 0 || n != 0))
((rc == 0 && n == 0)) || grep -E -A15 'ERROR|runtime error|FAIL' "$VU_TMP/check.txt" | head -40 | vu_diag

timeout 240 "$bin/vu-check-san" --socket "$VU_TMP/san.sock" --malformed >"$VU_TMP/mal.txt" 2>&1
rc=$?
n=$(reports "$VU_TMP/mal.txt")
vu_result "vu-check-san --malformed against vub-san, no sanitizer report (exit $rc, $n reports)" \
	$((rc != 0 || n != 0))
((rc == 0 && n == 0)) || grep -E -A15 'ERROR|runtime error|FAIL' "$VU_TMP/mal.txt" | head -40 | vu_diag

vu_stop "$pid"
rc=$?
n=$(reports "$VU_TMP/san.log")
vu_result "vub-san exits cleanly on SIGTERM with no sanitizer report, leaks included (exit $rc, $n reports)" \
	$((rc != 0 || n != 0))
((rc == 0 && n == 0)) || grep -E -A20 'ERROR|runtime error' "$VU_TMP/san.log" | head -40 | vu_diag
vu_finish
