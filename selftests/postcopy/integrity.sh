#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# integrity.sh - a bit flipped in transit never reaches the workload, and
# the report names the real cause.
#
# A relay between source and destination flips one bit in the content of
# the first page frame after 4 MiB (pcmig relay --flip-bit-after; it says
# so on stderr). The migration switches to postcopy at once, so every page
# travels once (no precopy round re-sends it) to a destination without a
# workload (nothing faults a page in before the stream brings it).
#   default          page checksums are on (no key needed): the frame is
#                    refused as "page checksum mismatch", the link
#                    recovers, the page comes again, memory is identical
#   --no-page-checksums  (the negative control: proves the flip lands)
#                    the page is placed; the final digest differs; both
#                    sides report "digest mismatch" first (before, the
#                    destination said "main channel: connection lost")
#   only the source without checksums: the destination refuses its plain
#                    pages and says why; both give up (--give-up-after):
#                    a link that fails as it comes up does not count as
#                    working (before, the source retried for ever)
source "$(dirname "$(readlink -f "$0")")/pcmig_lib.sh"
need_env

SIZE=${PCMIG_FLIP_SIZE:-16M}
tap_header 8

# run NAME SRC_ARGS DEST_ARGS
run() {
	local name=$1 sargs=$2 dargs=$3 s
	d=$WORK/$name
	mkdir -p "$d"
	start_bg dst "$PCMIG" dest --size "$SIZE" --listen "unix:$d/d.sock" \
		--workload none --quiet --json $dargs >"$d/dst.json" 2>"$d/dst.err"
	wait_sock "$d/d.sock" 30
	start_bg relay "$PCMIG_RELAY" relay --listen "unix:$d/r.sock" \
		--connect "unix:$d/d.sock" --flip-bit-after 4M 2>"$d/relay.err"
	wait_sock "$d/r.sock" 30
	start_bg s "$PCMIG" source --size "$SIZE" --connect "unix:$d/r.sock" \
		--threads 1 --bandwidth 4M --manual-switch --ctl "$d/src.ctl" \
		--quiet --json $sargs >"$d/src.json" 2>"$d/src.err"
	wait_sock "$d/src.ctl" 30
	"$PCMIG" ctl "$d/src.ctl" switchover >/dev/null
	wait "$s"
	src_rc=$?
	wait "$dst"
	dst_rc=$?
	kill "$relay" 2>/dev/null
	wait "$relay" 2>/dev/null
	diag "$name: source exit $src_rc ($(json "$d/src.json" last_error)), destination exit $dst_rc ($(json "$d/dst.json" last_error)), $(json "$d/dst.json" rejected_frames) rejected, memory identical: $(json "$d/dst.json" memory_identical)"
}

flipped() { grep -q 'flipped a bit' "$d/relay.err"; }
f() { json "$d/dst.json" "$1"; }

run default "" ""
caught() {
	flipped && [ "$(f rejected_frames)" = 1 ] &&
		[[ $(f last_error) == *"page checksum mismatch"* ]]
}
check "default: the flipped page is refused as a checksum mismatch (no key)" caught
check "default: the link recovers, migration completes, memory identical" \
	[ "$dst_rc" = 0 -a "$src_rc" = 0 -a "$(f memory_identical)" = true ]

run unchecked --no-page-checksums --no-page-checksums
landed() {
	flipped && [ "$dst_rc" = 1 ] && [ "$src_rc" = 1 ] &&
		[ "$(f memory_identical)" != true ]
}
check "--no-page-checksums: the flip landed (relay) and the migration failed" landed
dst_first() { [[ $(f last_error) == "digest mismatch"* ]]; }
check "--no-page-checksums: the destination names the digest first" dst_first
src_first() { [[ $(json "$d/src.json" last_error) == "digest mismatch"* ]]; }
check "--no-page-checksums: the source names the digest first" src_first

run mixed "--no-page-checksums --give-up-after 5s" "--give-up-after 5s"
check "plain pages to a checking destination: refused, it gives up (exit 3)" \
	[ "$dst_rc" = 3 -a "$(f gave_up)" = true ]
check "plain pages to a checking destination: the cause is named" \
	grep -q 'page without a checksum' "$d/dst.json"
check "the source gives up too: a link refused as it comes up is not working" \
	[ "$src_rc" = 3 ]
tap_exit
