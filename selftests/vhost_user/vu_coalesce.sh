#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# vub --coalesce (interrupt coalescing): a held call and the kick left
# unarmed meanwhile must never lose a wake-up. vu-check's event-idx-stream
# drives 20000 requests like a guest (kick only when avail_event asks,
# sleep on the call eventfd only) against vub with hold times from 10 to
# 200 us, at any rate (threshold 1 IOPS): every run must pass all checks,
# event-idx-stream among them (not skipped), and actually hold calls back.
# The negative control, vub --bug=coalesce-no-rearm (a held call released
# without looking at the ring again, so the kick stays unarmed), must make
# event-idx-stream stall, with vub reporting that it took the faulty path
# (a run where it never did is no catch). Bad values are
# refused with a hint. What coalescing saves a guest (interrupts and kicks
# per request) is measured by bench/vhost-user, not here: this front-end
# is no guest.
# shellcheck source=vu_lib.sh
. "$(dirname "$0")/vu_lib.sh"
vu_setup
vu_plan 7

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
	grep -Eq '^event-idx-stream +pass' "$VU_TMP/$name.txt" || ((rc |= 1))
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

# the negative control: the faulty path must be taken (vub says so on exit)
# before vu-check's failure counts; a run where it was not is retried
caught=0
for try in 1 2 3; do
	run "bug$try" --coalesce 10,1 --bug=coalesce-no-rearm
	hits=$(sed -n 's/.*deliberate bug coalesce-no-rearm: its faulty path taken \([0-9]*\) times.*/\1/p' \
		"$VU_TMP/bug$try.log")
	first=$(grep -Em1 '^[a-z-]+ +FAIL ' "$VU_TMP/bug$try.txt" | awk '{print $1}')
	echo "# --bug=coalesce-no-rearm run $try: exit $rc, faulty path taken ${hits:-?} times, first failure: ${first:-none}"
	if grep -q 'with deliberate bug coalesce-no-rearm' "$VU_TMP/bug$try.log" &&
	   ((${hits:-0} > 0)); then
		((rc != 0)) && [[ $first == event-idx-stream ]] && caught=1
		break
	fi
done
if ((caught)); then
	vu_ok "--bug=coalesce-no-rearm (active: faulty path taken $hits times) stalls event-idx-stream"
else
	vu_notok "--bug=coalesce-no-rearm stalls event-idx-stream (exit $rc, path taken ${hits:-0} times, first failure: ${first:-none})"
	grep -E 'FAIL|fail|passed' "$VU_TMP/bug$try.txt" | vu_diag
fi

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
