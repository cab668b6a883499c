#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# pcmig benchmark: one run, everything measured side by side, ratios.
#
#   bench/postcopy/run.sh                     (host)
#   tools/vm/lab run -p none -c bench/postcopy/run.sh
#
#  - postcopy fault latency over TCP loopback (a thread touching missing
#    pages, touch -> return) vs the floor measured in the same run: a 4 KiB
#    TCP loopback round trip + a local userfaultfd fault resolved with
#    UFFDIO_COPY (also vs the strict floor RTT + the UFFDIO_COPY ioctl);
#    p99 reported; goal p50 <= 1.5x floor; pcmig faults and floor samples
#    are taken in 10 interleaved rounds (pooled p50s, per-round ratios);
#  - background throughput: the postcopy stream of the region vs a plain
#    TCP loopback stream of the same size; goal >= 0.5;
#  - new connection -> postcopy-active after a failure; goal <= 1 s.
#
# Env: SIZE (default 1G; 256M in the VM), SAMPLES (default 20000),
# KMEMLAB_RESULTS (default build/results). Writes postcopy-bench-<where>.md.
set -u
KDIR=${KMEMLAB_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${KMEMLAB_BIN:-$KDIR/build/bin}/pcmig-bench
RES=${KMEMLAB_RESULTS:-$KDIR/build/results}
WHERE=${KMEMLAB_BACKEND:+vm}
WHERE=${WHERE:-host}
if [ "$WHERE" = vm ]; then SIZE=${SIZE:-256M}; else SIZE=${SIZE:-1G}; fi
SAMPLES=${SAMPLES:-20000}

if [ ! -x "$BIN" ]; then
	echo "postcopy-bench: error: $BIN not built" >&2
	echo "postcopy-bench: hint: make -C tools/postcopy" >&2
	exit 1
fi
mkdir -p "$RES"
OUT=$RES/postcopy-bench-$WHERE.md
load_before=$(uptime)
"$BIN" --size "$SIZE" --samples "$SAMPLES" --output "$OUT" || exit 1
{
	echo
	echo "kernel $(uname -r), $(nproc) CPUs, $(date -u +%Y-%m-%dT%H:%MZ)"
	echo "host load before: $load_before"
	echo "host load after:  $(uptime)"
} >>"$OUT"
cat "$OUT"
