#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# bench/spf/run.sh - spf_harness benchmarks, ratios in one boot:
#  1. observer overhead on anonymous-fault throughput: off vs fast vs exact,
#     interleaved, REPS repetitions, medians (target: fast <= 5%)
#  2. harness device with vs without ->map_pages: throughput ratio and
#     VMA-lock share
#  3. writer latency (munmap, mprotect) p50/p99 under fault load
#  4. 1 vs 2 thread scaling (anon, shared tmpfs)
# Run in the lab:  make run CMD=/work/main/bench/spf/run.sh
# Output: a table on stdout and in $KMEMLAB_RESULTS/spf/bench-<time>.txt
set -euo pipefail

TOP=${KMEMLAB_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${KMEMLAB_BIN:-$TOP/build/bin}
OUTDIR=${KMEMLAB_RESULTS:-$TOP/build/results}/spf
REPS=${REPS:-10}
DUR=${DUR:-1}
SIZE=${SIZE:-16M}
BENCH=$BIN/spf-bench
loaded=

die() { echo "spf bench: error: $1" >&2; [[ -n ${2:-} ]] && echo "spf bench: hint: $2" >&2; exit 1; }

[[ -x $BENCH ]] || die "$BENCH not built" "make -C $TOP/tools/spf"
command -v python3 >/dev/null || die "python3 not found" "install python3 (Debian: apt-get install python3)"
if [[ ! -e /dev/spf_harness ]]; then
	modprobe spf_harness 2>/dev/null || insmod "$TOP/mm/spf/spf_harness.ko" ||
		die "cannot load spf_harness" "build it: make modules"
	loaded=1
fi
cleanup() { [[ -n $loaded ]] && rmmod spf_harness; rm -rf "$tmp"; }
tmp=$(mktemp -d)
trap cleanup EXIT
mkdir -p "$OUTDIR"
out=$OUTDIR/bench-$(date +%Y%m%d-%H%M%S).txt

# 1. observer overhead: one spf-bench per (rep, mode), modes interleaved
for ((r = 0; r < REPS; r++)); do
	echo "spf bench: observer overhead rep $((r + 1))/$REPS" >&2
	for m in off fast exact; do
		"$BENCH" -q --json -w anon --thp off -s "$SIZE" -d "$DUR" -r 1 \
			-o "$m" >>"$tmp/obs-$m.json"
	done
done
echo "spf bench: map_pages, writers, scaling ($REPS reps each)" >&2
"$BENCH" -q --json -w dev,dev-mp -s "$SIZE" -d "$DUR" -r "$REPS" -o exact >"$tmp/dev.json"
"$BENCH" -q --json -w anon --thp off -s "$SIZE" -d "$DUR" -r "$REPS" \
	-W none,munmap,mprotect -o fast >"$tmp/writer.json"
"$BENCH" -q --json -w anon,shared-tmpfs --tmpdir /tmp --thp off -s "$SIZE" \
	-d "$DUR" -r "$REPS" -t 1,2 -o fast >"$tmp/scale.json"

python3 - "$tmp" "$REPS" "$DUR" "$SIZE" "$(uname -r)" "$(nproc)" <<'PY' | tee "$out"
import json, statistics, sys
tmp, reps, dur, size, kver, ncpu = sys.argv[1:]
def load(p):
    return [json.loads(l) for l in open(p) if l.strip()]
def res(doc):
    return {(r["workload"], r["threads"], r["writer"]): r for r in doc["results"]}
print(f"# spf_harness benchmarks: kernel {kver}, {ncpu} CPUs, {reps} interleaved reps x {dur}s, {size}/thread, medians")
print()
print("## 1. observer overhead (anon faults/s, THP off, 1 thread)")
med = {}
for m in ("off", "fast", "exact"):
    v = [d["results"][0]["faults_per_s"] for d in load(f"{tmp}/obs-{m}.json")]
    med[m] = statistics.median(v)
print(f"{'mode':<8} {'faults/s':>12} {'ratio_vs_off':>13} {'overhead':>9}")
for m in ("off", "fast", "exact"):
    r = med[m] / med["off"]
    print(f"{m:<8} {med[m]:>12.0f} {r:>13.3f} {100 * (1 - r):>8.1f}%")
print()
print("## 2. harness device: ->map_pages vs none (observer exact)")
d = res(load(f"{tmp}/dev.json")[0])
mp, no = d[("dev-mp", 1, "none")], d[("dev", 1, "none")]
print(f"{'device':<14} {'faults/s':>12} {'vma_lock%':>10} {'retry/1000':>11}")
for n, r in (("map_pages", mp), ("no map_pages", no)):
    print(f"{n:<14} {r['faults_per_s']:>12.0f} {r['vma_lock_pct']:>10.1f} {r['retries_per_1000']:>11.1f}")
print(f"throughput ratio map_pages/none: {mp['faults_per_s'] / no['faults_per_s']:.3f}")
print()
print("## 3. writer latency under anon fault load (1 fault thread)")
w = res(load(f"{tmp}/writer.json")[0])
base = w[("anon", 1, "none")]["faults_per_s"]
print(f"{'writer':<9} {'p50_us':>9} {'p99_us':>9} {'ops/s':>8} {'fault_ratio':>12} {'vma_lock%':>10}")
for wr in ("munmap", "mprotect"):
    r = w[("anon", 1, wr)]
    print(f"{wr:<9} {r['writer_p50_us']:>9.1f} {r['writer_p99_us']:>9.1f} {r['writer_ops_per_s']:>8.0f} {r['faults_per_s'] / base:>12.3f} {r['vma_lock_pct']:>10.1f}")
print()
print("## 4. scaling 1 -> 2 threads (faults/s)")
s = res(load(f"{tmp}/scale.json")[0])
print(f"{'workload':<14} {'1 thread':>10} {'2 threads':>10} {'ratio':>6} {'vma_lock%(2)':>13}")
for wl in ("anon", "shared-tmpfs"):
    a, b = s[(wl, 1, "none")], s[(wl, 2, "none")]
    print(f"{wl:<14} {a['faults_per_s']:>10.0f} {b['faults_per_s']:>10.0f} {b['faults_per_s'] / a['faults_per_s']:>6.2f} {b['vma_lock_pct']:>13.1f}")
PY
echo "spf bench: results in $out" >&2
