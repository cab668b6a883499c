#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# sanitize.sh - the pcmig host tests again, with pcmig (and pcmig_frames)
# built with AddressSanitizer, LeakSanitizer and UBSan (build/asan/, made by
# `make -C selftests/postcopy`). A test passes only if it passes as usual
# and no sanitizer wrote a report: a memory error, an undefined-behaviour
# report or a leak at exit (which also turns a process's exit status into
# 23, failing the test that ran it).
source "$(dirname "$(readlink -f "$0")")/pcmig_lib.sh"
need_env

build=${KMEMLAB_BUILD:-$repo/build}
ASAN_PCMIG=$build/asan/bin/pcmig
ASAN_FRAMES=$build/asan/pcmig_frames
[ -x "$ASAN_PCMIG" ] && [ -x "$ASAN_FRAMES" ] ||
	skip_all "no sanitizer build: run make -C selftests/postcopy"
tests=(pcmig_frames cli.sh stall.sh replay.sh dos.sh integrity.sh)
tap_header ${#tests[@]}
export ASAN_OPTIONS="log_path=$WORK/san/asan:detect_leaks=1:abort_on_error=0"
export UBSAN_OPTIONS="log_path=$WORK/san/ubsan:print_stacktrace=1:halt_on_error=1"
for t in "${tests[@]}"; do
	rm -rf "$WORK/san"
	mkdir -p "$WORK/san"
	if [ $t = pcmig_frames ]; then
		timeout 300 "$ASAN_FRAMES" >"$WORK/out" 2>&1
	else
		PCMIG=$ASAN_PCMIG timeout 600 "$here/$t" >"$WORK/out" 2>&1
	fi
	rc=$?
	reports=$(find "$WORK/san" -type f | wc -l)
	grep -E '^(not ok|# )' "$WORK/out" | head -20
	for f in $(find "$WORK/san" -type f | head -3); do
		sed 's/^/# san: /' "$f" | head -25
	done
	check "$t under ASan/LSan/UBSan: passes, no sanitizer report" \
		[ $rc = 0 -a "$reports" = 0 ]
done
tap_exit
