#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Negative checks: each deliberate defect of vub must make vu-check fail,
# and exactly at the checks that cover it.
#   disable-on-set-features (rust-vmm vhost-user-backend < 0.12: rings
#     disabled by SET_FEATURES) -> log-all-on, log-all-off
#   no-dirty-log -> dirty-log
#   reset-owner-discards (RESET_OWNER resets the rings, the interpretation
#     the spec warns "would lead to bugs") -> reset-owner
#   reset-device-ignored (RESET_DEVICE leaves the rings running)
#     -> reset-device
#   inflight-no-repair (a ring resumed from an inflight region resubmits
#     its last batch although it reached the used ring) -> inflight
# A failure counts only if vub says on exit that it took the faulty path.
# shellcheck source=vu_lib.sh
. "$(dirname "$0")/vu_lib.sh"
vu_setup
vu_plan 10

img=$VU_TMP/disk.img
truncate -s 64M "$img"

check_bug() {
	local bug=$1 want=$2 rc failed hits

	if ! vu_start_vub "$bug" --file "$img" "--bug=$bug"; then
		vu_notok "vub --bug=$bug starts"
		vu_notok "vu-check pins --bug=$bug on: $want"
		return
	fi
	timeout 120 "$VU_CHECK" --socket "$VU_TMP/$bug.sock" --json \
		>"$VU_TMP/$bug.json" 2>"$VU_TMP/$bug.err"
	rc=$?
	failed=$(vu_failed_checks "$VU_TMP/$bug.json")
	vu_stop "$VU_LAST_PID"
	# the bug mode was loaded and its faulty path taken (vub's exit line)
	hits=$(sed -n "s/.*deliberate bug $bug: its faulty path taken \([0-9]*\) times.*/\1/p" \
		"$VU_TMP/$bug.log")
	echo "# --bug=$bug: exit $rc, faulty path taken ${hits:-?} times, failed checks: ${failed:-none}"
	vu_result "vu-check fails against vub --bug=$bug, which was active (exit $rc, faulty path taken ${hits:-0} times)" \
		$((rc != 1 || ${hits:-0} == 0))
	if [[ $failed == "$want" ]]; then
		vu_ok "vu-check pins --bug=$bug on: $want"
	else
		vu_notok "vu-check pins --bug=$bug on: $want (got: ${failed:-none})"
	fi
}

check_bug disable-on-set-features "log-all-off log-all-on"
grep -q deviating "$VU_TMP/disable-on-set-features.json" ||
	echo "# note: no 'deviating' diagnosis in the report"
check_bug no-dirty-log "dirty-log"
check_bug reset-owner-discards "reset-owner"
check_bug reset-device-ignored "reset-device"
check_bug inflight-no-repair "inflight"
vu_finish
