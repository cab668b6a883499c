#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# bench/spf/overhead.sh - the observer's overhead on anonymous faults alone
# (bench/spf/run.sh section 1), for instruction-counted guest time:
#   LAB_CLOCK=icount tools/vm/lab run -p none -t 3600 -c $PWD/bench/spf/overhead.sh
# off, fast, exact in one spf-bench process (then again with --latency: its
# own off), interleaved,
# the order rotated every repetition, REPS (>= 41) paired repetitions; the
# overhead is 1 - the median of the per-repetition ratios to off of the
# median page-touch time, with the interquartile range of those ratios.
# Output: a table on stdout and in $KMEMLAB_RESULTS/spf/overhead-<time>.txt
set -euo pipefail

TOP=${KMEMLAB_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${KMEMLAB_BIN:-$TOP/build/bin}
OUTDIR=${KMEMLAB_RESULTS:-$TOP/build/results}/spf
REPS=${REPS:-41}
DUR=${DUR:-0.2}
SIZE=${SIZE:-4M}
loaded=

die() { echo "spf overhead: error: $1" >&2; [[ -n ${2:-} ]] && echo "spf overhead: hint: $2" >&2; exit 1; }
[[ -x $BIN/spf-bench ]] || die "$BIN/spf-bench not built" "make -C $TOP/tools/spf"
((REPS >= 41)) || die "REPS=$REPS: the 2% goal needs >= 41 paired repetitions" "REPS=41 or more"
tmp=$(mktemp -d)
cleanup() { [[ -n $loaded ]] && rmmod spf_harness; rm -rf "$tmp"; }
trap cleanup EXIT
if [[ ! -e /dev/spf_harness ]]; then
	modprobe spf_harness 2>/dev/null || insmod "$TOP/mm/spf/spf_harness.ko" ||
		die "cannot load spf_harness" "build it: make modules"
	loaded=1
fi
mkdir -p "$OUTDIR"
out=$OUTDIR/overhead-$(date +%Y%m%d-%H%M%S).txt
clock=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)
"$BIN/spf-bench" -q --json -s "$SIZE" -d "$DUR" -r "$REPS" -w anon --thp off \
	-o off,fast,exact >"$tmp/obs.json"
# the same with the latency histograms on (FAST then hooks handle_mm_fault's exit)
"$BIN/spf-bench" -q --json -s "$SIZE" -d "$DUR" -r "$REPS" -w anon --thp off \
	-o off,fast,exact --latency >"$tmp/lat.json"
python3 - "$tmp/obs.json" "$tmp/lat.json" "$REPS" "$DUR" "$SIZE" "$(uname -r)" "$clock" <<'PY' | tee "$out"
import json, statistics, sys
path, lpath, reps, dur, size, kver, clock = sys.argv[1:]
d = {r["observer"]: r for r in json.load(open(path))["results"]}
d.update({r["observer"] + "+lat": r for r in json.load(open(lpath))["results"] if r["observer"] != "off"})
print(f"# spf observer overhead, anonymous faults, THP off, 1 thread: kernel {kver}, clocksource {clock}")
print(f"# {reps} paired repetitions x {dur}s, {size}/iteration, off/fast/exact interleaved in one process")
print("# overhead = 1 - median of per-repetition ratios (off ns/touch / mode ns/touch); IQR of the ratios")
print(f"{'mode':<6} {'ns/touch':>9} {'overhead':>9} {'ratio p25':>10} {'p50':>7} {'p75':>7} {'IQR':>7} {'wall_ovh':>9}")
for m in ("off", "fast", "exact", "fast+lat", "exact+lat"):
    r = d[m]
    if m == "off":
        print(f"{m:<6} {r['touch_ns']:>9.1f} {'-':>9}")
        continue
    q = statistics.quantiles(r["ratio_vs_off_reps"], n=4)
    print(f"{m:<6} {r['touch_ns']:>9.1f} {100 * (1 - r['ratio_vs_off']):>8.2f}% {q[0]:>10.4f} {q[1]:>7.4f} {q[2]:>7.4f} "
          f"{q[2] - q[0]:>7.4f} {100 * (1 - r['ratio_vs_off_wall']):>8.2f}%")
PY
