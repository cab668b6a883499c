#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# dirty_modes.sh - precopy dirty tracking in both modes with the workload
# rewriting pages during precopy: userfaultfd WP_ASYNC + PAGEMAP_SCAN and
# the soft-dirty fallback. Several precopy rounds run, so a page dirtied
# after it was sent and not re-sent would reach the destination stale: the
# destination workload's generation check and the digest compare catch it.
# A mode the kernel lacks (soft-dirty needs CONFIG_MEM_SOFT_DIRTY, absent
# on some host kernels) is skipped with the reason. The wp-async run also
# uses per-page checksums (--page-checksums on both sides): every page
# must arrive checksummed and verified: as many verified as were sent.
#
# Negative control: the source's --broken-dirty test switch drops every
# page dirty tracking finds after the first round (proven active: the
# report says "wp-async-broken" and counts the dropped pages). The same
# checks must then fail: pages written after they were sent reach the
# destination stale.
source "$(dirname "$(readlink -f "$0")")/pcmig_lib.sh"
need_env

SIZE=${PCMIG_SIZE_DIRTY:-64M}
tap_header 4

# run_mode MODE EXTRA_SOURCE_ARGS: sets rc rc_dst d; 1 when the mode is missing
run_mode() {
	local mode=$1 extra=$2
	d=$WORK/$mode$extra
	mkdir -p "$d"
	sums=
	[ $mode = wp-async ] && sums=--page-checksums
	start_bg dst "$PCMIG" dest --size "$SIZE" --listen "unix:$d/d.sock" \
		--threads 1 --linger 0 --run-after 0.3 --json --quiet $sums \
		>"$d/dst.json" 2>"$d/dst.err"
	wait_sock "$d/d.sock" 10
	timeout 120 "$PCMIG" source --size "$SIZE" --connect "unix:$d/d.sock" \
		--threads 2 --rounds 4 --switch-pages 0 --dirty $mode --json \
		--quiet $sums $extra >"$d/src.json" 2>"$d/src.err"
	rc=$?
	if grep -q "no dirty tracking" "$d/src.err"; then
		kill -9 "$dst" 2>/dev/null
		wait "$dst" 2>/dev/null
		return 1
	fi
	for i in $(seq 1 50); do kill -0 "$dst" 2>/dev/null || break; sleep 0.2; done
	kill -9 "$dst" 2>/dev/null
	wait "$dst" 2>/dev/null; rc_dst=$?
	return 0
}

# every check of a mode's run
mode_ok() {
	[ $rc = 0 -a $rc_dst = 0 -a \
	  "$(json "$d/src.json" dirty_tracking)" = "$1" -a \
	  "$(json "$d/src.json" precopy_rounds)" -ge 2 -a \
	  "$(json "$d/src.json" digest_source)" = "$(json "$d/dst.json" digest_destination)" -a \
	  "$(json "$d/dst.json" workload.errors)" = 0 -a \
	  "$(json "$d/src.json" workload.writes)" -gt 0 ]
}

for mode in wp-async soft-dirty; do
	if ! run_mode $mode ""; then
		tap_n=$((tap_n + 1))
		echo "ok $tap_n $mode # SKIP $(sed -n 's/.*error: //p' "$d/src.err")"
		continue
	fi
	diag "$mode: rounds $(json "$d/src.json" precopy_rounds), last round dirtied $(json "$d/src.json" dirty_last_round), source writes $(json "$d/src.json" workload.writes)"
	check "$mode: precopy rounds under writes, digests and workload checks agree" \
		mode_ok $mode
	if [ -n "$sums" ]; then
		diag "$mode: pages sent $(json "$d/src.json" pages_sent), checksummed $(json "$d/src.json" pages_checksummed); page frames read $(json "$d/dst.json" page_frames_read), verified $(json "$d/dst.json" pages_checksummed)"
		# zero pages travel without content (no checksum). Every page
		# frame the destination read was verified; it stops reading at
		# completion, so a few sent (duplicates in flight) may be unread
		check "$mode: --page-checksums: every page frame read was verified, none refused" \
			[ "$(json "$d/dst.json" pages_checksummed)" -gt 0 -a \
			  "$(json "$d/dst.json" page_frames_read)" = "$(json "$d/dst.json" pages_checksummed)" -a \
			  "$(json "$d/src.json" pages_checksummed)" -ge "$(json "$d/dst.json" pages_checksummed)" -a \
			  "$(json "$d/src.json" failures)" = 0 -a \
			  "$(json "$d/dst.json" rejected_frames)" = 0 ]
	fi
done

# negative control: a dirty tracker that forgets what it found
run_mode wp-async --broken-dirty
mode=wp-async
diag "broken: tracking $(json "$d/src.json" dirty_tracking), dropped $(json "$d/src.json" dirty_dropped) dirty pages; source rc $rc, dest rc $rc_dst, dest workload errors $(json "$d/dst.json" workload.errors); $(json "$d/dst.json" last_error)"
active=0
[ "$(json "$d/src.json" dirty_tracking)" = wp-async-broken ] &&
	[ "$(json "$d/src.json" dirty_dropped)" -gt 0 ] && active=1
caught=0
mode_ok $mode || caught=1
check "negative control: --broken-dirty (active: dropped pages) is caught" \
	[ $active = 1 -a $caught = 1 ]
tap_exit
