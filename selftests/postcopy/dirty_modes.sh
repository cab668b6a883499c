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
# must arrive checksummed and verified.
source "$(dirname "$(readlink -f "$0")")/pcmig_lib.sh"
need_env

SIZE=${PCMIG_SIZE_DIRTY:-64M}
tap_header 3
for mode in wp-async soft-dirty; do
	d=$WORK/$mode
	mkdir -p "$d"
	sums=
	[ $mode = wp-async ] && sums=--page-checksums
	start_bg dst "$PCMIG" dest --size "$SIZE" --listen "unix:$d/d.sock" \
		--threads 1 --linger 0 --run-after 0.3 --json --quiet $sums \
		>"$d/dst.json" 2>"$d/dst.err"
	wait_sock "$d/d.sock" 10
	timeout 120 "$PCMIG" source --size "$SIZE" --connect "unix:$d/d.sock" \
		--threads 2 --rounds 4 --switch-pages 0 --dirty $mode --json \
		--quiet $sums >"$d/src.json" 2>"$d/src.err"
	rc=$?
	if grep -q "no dirty tracking" "$d/src.err"; then
		kill -9 "$dst" 2>/dev/null
		wait "$dst" 2>/dev/null
		tap_n=$((tap_n + 1))
		echo "ok $tap_n $mode # SKIP $(sed -n 's/.*error: //p' "$d/src.err")"
		continue
	fi
	for i in $(seq 1 50); do kill -0 "$dst" 2>/dev/null || break; sleep 0.2; done
	kill -9 "$dst" 2>/dev/null
	wait "$dst" 2>/dev/null; rc_dst=$?
	diag "$mode: rounds $(json "$d/src.json" precopy_rounds), last round dirtied $(json "$d/src.json" dirty_last_round), source writes $(json "$d/src.json" workload.writes)"
	check "$mode: precopy rounds under writes, digests and workload checks agree" \
		[ $rc = 0 -a $rc_dst = 0 -a \
		  "$(json "$d/src.json" dirty_tracking)" = $mode -a \
		  "$(json "$d/src.json" precopy_rounds)" -ge 2 -a \
		  "$(json "$d/src.json" digest_source)" = "$(json "$d/dst.json" digest_destination)" -a \
		  "$(json "$d/dst.json" workload.errors)" = 0 -a \
		  "$(json "$d/src.json" workload.writes)" -gt 0 ]
	if [ -n "$sums" ]; then
		diag "$mode: pages sent $(json "$d/src.json" pages_sent), checksummed $(json "$d/src.json" pages_checksummed), verified $(json "$d/dst.json" pages_checksummed)"
		# zero pages travel without content (no checksum)
		check "$mode: --page-checksums: pages sent with checksums, all verified" \
			[ "$(json "$d/src.json" pages_checksummed)" -gt 0 -a \
			  "$(json "$d/dst.json" pages_checksummed)" -gt 0 -a \
			  "$(json "$d/dst.json" rejected_frames)" = 0 ]
	fi
done
tap_exit
