#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# bench/spf/run.sh - spf_harness benchmarks, ratios in one boot:
#  1. observer overhead on anonymous-fault throughput: off vs fast vs exact
#     in one spf-bench process, interleaved (order rotated per repetition),
#     OBS_REPS repetitions; overhead = 1 - median of the per-repetition
#     ratios to "off" of the median page-touch time (timed in batches of
#     16, robust to a descheduled vCPU), and of wall-clock faults/s.
#     Target: fast <= 5%.
#  2. harness device with vs without ->map_pages: throughput ratio and
#     VMA-lock share
#  3. writer latency (munmap, mprotect, mremap, madvise DONTNEED) p50/p99
#     under fault load
#  4. every workload (anon, private/shared tmpfs, private/shared ext4 on a
#     loop device, THP off and on), 1 vs 2 threads
#  5. fault latency by outcome (spf-bench --latency): anon, cold-cache file
#     faults on ext4 on a virtio-blk scratch disk (the first unmounted
#     /dev/vdX; a loop device if none), swap-in from zram, the device
#     without ->map_pages; with and without a concurrent mprotect writer;
#     p50/p99/max per outcome and a PNG (gnuplot) next to the table
# Run in the lab:  flock /tmp/kmemlab-bench.lock make bench B=spf
#   (or: flock /tmp/kmemlab-bench.lock tools/vm/lab run -p none -t 1800 -c $PWD/bench/spf/run.sh)
# Output: a table on stdout and in $KMEMLAB_RESULTS/spf/bench-<time>.txt
set -euo pipefail

TOP=${KMEMLAB_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${KMEMLAB_BIN:-$TOP/build/bin}
OUTDIR=${KMEMLAB_RESULTS:-$TOP/build/results}/spf
REPS=${REPS:-12}		# sections 2-4
OBS_REPS=${OBS_REPS:-21}	# section 1 (the 5% target needs more)
DUR=${DUR:-0.3}
SIZE=${SIZE:-8M}
BENCH=$BIN/spf-bench
loaded= loopdev= mnt= vmnt= zram=

die() { echo "spf bench: error: $1" >&2; [[ -n ${2:-} ]] && echo "spf bench: hint: $2" >&2; exit 1; }

[[ -x $BENCH ]] || die "$BENCH not built" "make -C $TOP/tools/spf"
command -v python3 >/dev/null || die "python3 not found" "install python3 (Debian: apt-get install python3)"
tmp=$(mktemp -d)
cleanup() {
	[[ -n $zram ]] && { swapoff /dev/zram0; echo 1 >/sys/block/zram0/reset; }
	[[ -n $vmnt ]] && umount "$vmnt" && rmdir "$vmnt"
	[[ -n $mnt ]] && umount "$mnt" && rmdir "$mnt"
	[[ -n $loopdev ]] && losetup -d "$loopdev"
	[[ -n $loaded ]] && rmmod spf_harness
	rm -rf "$tmp"
}
trap cleanup EXIT
if [[ ! -e /dev/spf_harness ]]; then
	modprobe spf_harness 2>/dev/null || insmod "$TOP/mm/spf/spf_harness.ko" ||
		die "cannot load spf_harness" "build it: make modules"
	loaded=1
fi
mkdir -p "$OUTDIR"
out=$OUTDIR/bench-$(date +%Y%m%d-%H%M%S).txt
load_before=$(cat /proc/loadavg)

# ext4 on a loop block device (not 9p, not tmpfs) for the *-ext4 workloads
modprobe loop 2>/dev/null || true
truncate -s 320M "$tmp/ext4.img"
loopdev=$(losetup -f --show "$tmp/ext4.img") || die "losetup failed" "the loop driver is needed (modprobe loop)"
mkfs.ext4 -q -F "$loopdev" || die "mkfs.ext4 $loopdev failed" "install e2fsprogs"
mnt=$(mktemp -d /mnt/spf-ext4.XXXXXX)
mount -t ext4 "$loopdev" "$mnt" || { rmdir "$mnt"; mnt=; die "cannot mount ext4 on $loopdev"; }

# section 5: ext4 on a virtio-blk scratch disk (make bench boots with one),
# and swap on zram for the swap-in workload
vdisk=
for d in /dev/vd[a-z]; do
	[[ -b $d ]] && ! grep -q "^$d " /proc/mounts && ! grep -q "^$d " /proc/swaps && { vdisk=$d; break; }
done
lat_ext4=$mnt lat_disk="a loop device (no scratch disk: make bench boots with --disk)"
if [[ -n $vdisk ]]; then
	vmnt=$(mktemp -d /mnt/spf-vd.XXXXXX)
	if mkfs.ext4 -q -F "$vdisk" && mount -t ext4 "$vdisk" "$vmnt"; then
		lat_ext4=$vmnt lat_disk="$vdisk (virtio-blk)"
	else
		rmdir "$vmnt"; vmnt=
	fi
fi
lat_wl=anon,cold-ext4,dev
if grep -q '^/dev/' /proc/swaps; then
	lat_wl+=,swapin
elif modprobe zram num_devices=1 2>/dev/null && [[ -e /sys/block/zram0 ]] &&
     echo 256M >/sys/block/zram0/disksize && mkswap /dev/zram0 >/dev/null &&
     swapon /dev/zram0; then
	zram=1 lat_wl+=,swapin
else
	echo "spf bench: no swap (zram): section 5 without swapin" >&2
fi
png=$OUTDIR/latency-$(date +%Y%m%d-%H%M%S).png

common=(-q --json -s "$SIZE" -d "$DUR" -r "$REPS")
echo "spf bench: 1/5 observer overhead ($OBS_REPS reps)" >&2
"$BENCH" -q --json -s "$SIZE" -d "$DUR" -r "$OBS_REPS" -w anon --thp off \
	-o off,fast,exact >"$tmp/obs.json"
echo "spf bench: 2/5 device map_pages vs none" >&2
"$BENCH" "${common[@]}" -w dev,dev-mp -o exact >"$tmp/dev.json"
echo "spf bench: 3/5 writers" >&2
"$BENCH" "${common[@]}" -w anon --thp off -W none,munmap,mprotect,mremap,dontneed \
	-o fast >"$tmp/writer.json"
echo "spf bench: 4/5 workloads x threads, THP off and on" >&2
"$BENCH" "${common[@]}" -w anon,private-tmpfs,shared-tmpfs,private-ext4,shared-ext4 \
	--tmpdir /dev/shm --ext4-dir "$mnt" --thp off -t 1,2 -o fast >"$tmp/wl-thpoff.json"
"$BENCH" "${common[@]}" -w anon --thp on -t 1,2 -o fast >"$tmp/wl-thpon.json"
echo "spf bench: 5/5 latency by outcome ($lat_wl)" >&2
"$BENCH" "${common[@]}" -w "$lat_wl" --ext4-dir "$lat_ext4" -W none,mprotect \
	-o fast --latency --plot "$png" >"$tmp/lat.json"
load_after=$(cat /proc/loadavg)

python3 - "$tmp" "$REPS" "$OBS_REPS" "$DUR" "$SIZE" "$(uname -r)" "$(nproc)" "$load_before" "$load_after" "$lat_disk" "$png" <<'PY' | tee "$out"
import json, statistics, sys
tmp, reps, oreps, dur, size, kver, ncpu, lb, la, lat_disk, png = sys.argv[1:]
def load(p):
    return json.load(open(p))
def res(doc):
    return {(r["workload"], r["threads"], r["writer"], r["observer"]): r for r in doc["results"]}
print(f"# spf_harness benchmarks: kernel {kver}, {ncpu} vCPUs (TCG), {reps} interleaved reps ({oreps} for section 1) x {dur}s, {size}/thread, medians")
print(f"# guest loadavg before: {lb}; after: {la}")
print()
print(f"## 1. observer overhead (anon faults, THP off, 1 thread; one process, modes interleaved, {oreps} reps)")
print("# overhead = 1 - median of per-rep paired ratios to off; ns/touch = median time per page touch")
print("# (timed in batches of 16, so batches where the host descheduled the vCPU fall out);")
print("# the wall-clock faults/s ratio is shown too but is at the mercy of the host load")
o = res(load(f"{tmp}/obs.json"))
print(f"{'mode':<6} {'ns/touch':>9} {'overhead':>9} {'p25..p75 ratio':>15} {'faults/s':>9} {'wall_ovh':>9} {'p25..p75 wall':>15} {'vma%':>6} {'viol':>5}")
for m in ("off", "fast", "exact"):
    r = o[("anon", 1, "none", m)]
    if m == "off":
        print(f"{m:<6} {r['touch_ns']:>9.0f} {0:>8.1f}% {'-':>15} {r['faults_per_s']:>9.0f} {0:>8.1f}% {'-':>15} {'-':>6} {'-':>5}")
        continue
    q = statistics.quantiles(r["ratio_vs_off_reps"], n=4)
    qw = statistics.quantiles(r["ratio_vs_off_wall_reps"], n=4)
    print(f"{m:<6} {r['touch_ns']:>9.0f} {100 * (1 - r['ratio_vs_off']):>8.1f}% {q[0]:>7.3f}..{q[2]:<6.3f} "
          f"{r['faults_per_s']:>9.0f} {100 * (1 - r['ratio_vs_off_wall']):>8.1f}% {qw[0]:>7.3f}..{qw[2]:<6.3f} "
          f"{r['vma_lock_pct']:>6.1f} {r['violations']:>5.0f}")
print()
print("## 2. harness device: ->map_pages vs none (observer exact)")
d = res(load(f"{tmp}/dev.json"))
mp, no = d[("dev-mp", 1, "none", "exact")], d[("dev", 1, "none", "exact")]
print(f"{'device':<14} {'faults/s':>10} {'vma_lock%':>10} {'retry/1000':>11}")
for n, r in (("map_pages", mp), ("no map_pages", no)):
    print(f"{n:<14} {r['faults_per_s']:>10.0f} {r['vma_lock_pct']:>10.1f} {r['retries_per_1000']:>11.1f}")
pr = statistics.median(a / b for a, b in zip(mp["faults_per_s_reps"], no["faults_per_s_reps"]) if b)
pn = statistics.median(b / a for a, b in zip(mp["touch_ns_reps"], no["touch_ns_reps"]) if a)
print(f"throughput ratio map_pages/none (median of paired reps): wall {pr:.3f}, per-touch time {pn:.3f}")
print()
print("## 3. writer latency under anon fault load (1 fault thread, observer fast)")
w = res(load(f"{tmp}/writer.json"))
base = w[("anon", 1, "none", "fast")]
print(f"{'writer':<9} {'p50_us':>9} {'p99_us':>9} {'ops/s':>8} {'fault_ratio':>12} {'vma_lock%':>10} {'abort/k':>8}")
for wr in ("munmap", "mprotect", "mremap", "dontneed"):
    r = w[("anon", 1, wr, "fast")]
    fr = statistics.median(a / b for a, b in zip(r["faults_per_s_reps"], base["faults_per_s_reps"]) if b)
    print(f"{wr:<9} {r['writer_p50_us']:>9.1f} {r['writer_p99_us']:>9.1f} {r['writer_ops_per_s']:>8.0f} {fr:>12.3f} {r['vma_lock_pct']:>10.1f} {r['aborts_per_1000']:>8.1f}")
print()
print("## 4. workloads, 1 -> 2 threads (faults/s, observer fast; ext4 on a loop device)")
s = res(load(f"{tmp}/wl-thpoff.json"))
s.update({(k[0] + "+thp", *k[1:]): v for k, v in res(load(f"{tmp}/wl-thpon.json")).items()})
print(f"{'workload':<14} {'thp':<4} {'1 thread':>10} {'2 threads':>10} {'ratio':>6} {'vma%(1)':>8} {'vma%(2)':>8} {'retry/k(2)':>11}")
for wl in ("anon", "anon+thp", "private-tmpfs", "shared-tmpfs", "private-ext4", "shared-ext4"):
    a, b = s[(wl, 1, "none", "fast")], s[(wl, 2, "none", "fast")]
    name, thp = (wl[:-4], "on") if wl.endswith("+thp") else (wl, "off")
    ratio = statistics.median(y / x for x, y in zip(a["faults_per_s_reps"], b["faults_per_s_reps"]) if x)
    print(f"{name:<14} {thp:<4} {a['faults_per_s']:>10.0f} {b['faults_per_s']:>10.0f} {ratio:>6.2f} {a['vma_lock_pct']:>8.1f} {b['vma_lock_pct']:>8.1f} {b['retries_per_1000']:>11.1f}")
print()
print(f"## 5. fault latency by outcome (observer fast + latency, 1 fault thread, all reps; cold-ext4 on {lat_disk})")
print("# from the fault's start (page_fault_user) to its last handle_mm_fault() pass; p50/p99")
print("# interpolated within log2 buckets (a factor of 2); check: histogram faults == completed passes")
print(f"# plot: {png}")
print(f"{'workload':<10} {'writer':<9} {'outcome':<15} {'faults':>8} {'p50_us':>9} {'p99_us':>9} {'max_us':>10} {'check':>6}")
for r in load(f"{tmp}/lat.json")["results"]:
    l = r["latency"]
    chk = "ok" if l["histogram_faults"] == l["completed_user_passes"] and not l["lost"] else "BAD"
    for k, v in l.items():
        if isinstance(v, dict) and v["faults"]:
            print(f"{r['workload']:<10} {r['writer']:<9} {k:<15} {v['faults']:>8} {v['p50_us']:>9.1f} {v['p99_us']:>9.1f} {v['max_us']:>10.1f} {chk:>6}")
PY
echo "spf bench: results in $out" >&2
