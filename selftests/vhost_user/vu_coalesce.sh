#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# vub --coalesce (interrupt coalescing): a held call and the kick left
# unarmed meanwhile must never lose a wake-up. vu-check's event-idx-stream
# drives 20000 requests like a guest (kick only when avail_event asks,
# sleep on the call eventfd only) against vub with hold times from 10 to
# 200 us, at any rate (threshold 1 IOPS): every run must pass all checks
# and actually hold calls back. A deliberately broken build (a held call
# released without re-arming the kick) stalls this check. Bad values are
# refused with a hint. What coalescing saves a guest (interrupts and kicks
# per request) is measured by bench/vhost-user, not here: this front-end
# is no guest.
# shellcheck source=vu_lib.sh
. "$(dirname "$0")/vu_lib.sh"
vu_setup
vu_plan 6

img=$VU_TMP/disk.img
truncate -s 64M "$img"

# run NAME ARGS...: vu-check against a fresh vub ARGS; sets rc, held
run() {
	local name=$1 pid

	shift
	held=0
	if ! vu_start_vub "$name" --file "$img" --queues 2 "$@"; then
		rc=2
		vu_diag <"$VU_TMP/$name.log"
		return
	fi
	pid=$VU_LAST_PID
	timeout 120 "$VU_CHECK" --socket "$VU_TMP/$name.sock" \
		>"$VU_TMP/$name.txt" 2>&1
	rc=$?
	vu_stop "$pid"
	held=$(sed -n 's/.*calls (\([0-9]*\) held back).*/\1/p' "$VU_TMP/$name.log")
}

run plain
vu_result "vu-check passes against vub without --coalesce (exit $rc)" $rc

for us in 10 20 50 200; do
	run "c$us" --coalesce "$us,1"
	if ((rc == 0 && ${held:-0} > 0)); then
		vu_ok "--coalesce $us,1: all checks pass, $held calls held back"
	else
		vu_notok "--coalesce $us,1: all checks pass, calls held back (exit $rc, held ${held:-?})"
		grep -E 'FAIL|passed' "$VU_TMP/c$us.txt" | vu_diag
	fi
done

bad=0
for arg in 0 100001 abc 200,0 '200,' ,5 200,100000001 200,1,2 -5; do
	out=$(timeout 5 "$VUB" --socket "$VU_TMP/x.sock" --file "$img" \
		--coalesce "$arg" 2>&1)
	rc=$?
	if ((rc != 2)) || ! grep -q 'hint:' <<<"$out" || [[ -e $VU_TMP/x.sock ]]; then
		echo "# vub --coalesce '$arg': rc $rc, output: $out"
		bad=1
	fi
done
vu_result "vub rejects bad --coalesce values with an error and a hint" $bad
vu_finish
