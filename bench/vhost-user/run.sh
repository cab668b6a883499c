#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# vub vs qemu-storage-daemon's vhost-user-blk export, side by side in one
# lab VM (Debian QEMU 7.2 front-end, guest RAM on a shared memfd): fio 4K
# randread/randwrite IOPS and 128K sequential read/write bandwidth on the
# same raw image, reported as vub/qsd ratios (target >= 1.0x).
#
#   bench/vhost-user/run.sh [--size 256M] [--runtime 4] [--reps 8] [--vcpus 1]
#                           [--order both] [--vub-args ARGS] [--out FILE]
#
# vub runs with --coalesce 200 (interrupt coalescing, see vub --help) unless
# --vub-args says otherwise (--vub-args '' for vub's defaults); qsd with its
# defaults. The vub options used are in the report.
#
# Device position matters at this precision (swapping the two disks' PCI
# order moved randread from 0.79x to 0.99x), so the bench boots twice, vub's
# disk first, then qsd's, each boot running half of the reps; every pair
# of runs is from one boot. --order vub-first|qsd-first: one boot only.
#
# The guest has one vCPU by default: with the lab's two, on a 2-CPU host
# under multi-threaded TCG, single runs varied up to 100x (63 to 11607
# IOPS) with completion stalls of 0.5-3 s for both back-ends; with one,
# 1.4-2.4x, and no completion took over 34 ms.
#
# Each workload runs --reps times per back-end, interleaved (ABBA blocks);
# the ratio is the median of the ratios of adjacent vub/qsd runs (robust to
# the drift of a shared host's load); the table also gives the median
# values, the host load (uptime) before and after and each back-end's CPU
# time per request. Run it under the team's bench lock:
#   flock /tmp/kmemlab-bench.lock bench/vhost-user/run.sh
# Needs the lab (tools/vm/lab) and fio on the host root (the guest uses it).
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${KMEMLAB_BIN:-$TOP/build/bin}
RESULTS=$TOP/build/results
SIZE=256M
RUNTIME=4
REPS=8
VCPUS=1
VUB_ARGS='--coalesce 200'
ORDER=both
OUT=$RESULTS/vhost-user-bench.txt

die() {
	echo "vhost-user bench: error: $1" >&2
	[[ -n ${2:-} ]] && echo "vhost-user bench: hint: $2" >&2
	exit 1
}

while (($#)); do
	case $1 in
	--size) SIZE=${2:?}; shift ;;
	--runtime) RUNTIME=${2:?}; shift ;;
	--reps) REPS=${2:?}; shift ;;
	--vcpus) VCPUS=${2:?}; shift ;;
	--vub-args) VUB_ARGS=${2?}; shift ;;
	--order) ORDER=${2:?}; shift ;;
	--out) OUT=${2:?}; shift ;;
	-h | --help) sed -n '3,31p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument '$1'" "see $0 --help" ;;
	esac
	shift
done
case $ORDER in
both) boots=(vub-first qsd-first) ;;
vub-first | qsd-first) boots=("$ORDER") ;;
*) die "--order $ORDER: unknown" "use both (default), vub-first or qsd-first" ;;
esac
if [[ ! $REPS =~ ^[1-9][0-9]*$ ]] || ((REPS % ${#boots[@]})); then
	die "--reps $REPS: need a positive multiple of ${#boots[@]}" "each boot runs an equal share"
fi
[[ $VCPUS =~ ^[12]$ ]] || die "--vcpus $VCPUS: the lab guest has 1 or 2 vCPUs" "use --vcpus 1 (default) or 2"
[[ -x $BIN/vub ]] || die "$BIN/vub not built" "make -C tools/vhost-user"
[[ -x $TOP/tools/vm/lab ]] || die "no lab (tools/vm/lab)" "build the lab first"
command -v qemu-storage-daemon >/dev/null ||
	die "qemu-storage-daemon not installed" "apt-get install qemu-system-common"
command -v fio >/dev/null || die "fio not installed" "apt-get install fio"

TMP=$(mktemp -d /tmp/vu-bench.XXXXXX)
PIDS=()
cleanup() {
	local p

	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$TMP"
}
trap cleanup EXIT

img=$TMP/disk.img
# fully written (no holes: no first-write allocation cost for whichever
# back-end runs first) and in the host page cache for both
head -c "$(numfmt --from=iec "$SIZE")" /dev/urandom >"$img" ||
	die "cannot create a $SIZE image in $TMP"
# both back-ends use the host page cache (vub: buffered I/O; qsd: the file
# driver's default cache.direct=off, aio=threads), 2 queues each
# shellcheck disable=SC2086 # VUB_ARGS: options, split
"$BIN/vub" --socket "$TMP/vub.sock" --file "$img" --queues 2 $VUB_ARGS \
	>"$TMP/vub.log" 2>&1 &
PIDS+=($!)
qemu-storage-daemon --blockdev driver=file,node-name=f,filename="$img" \
	--export type=vhost-user-blk,id=e,node-name=f,addr.type=unix,addr.path="$TMP/qsd.sock",writable=on,num-queues=2 \
	>"$TMP/qsd.log" 2>&1 &
PIDS+=($!)
for s in vub qsd; do
	for ((i = 0; i < 100; i++)); do
		[[ -S $TMP/$s.sock ]] && break
		sleep 0.05
	done
	[[ -S $TMP/$s.sock ]] || die "$s did not create its socket: $(cat "$TMP/$s.log")"
done

rm -rf "$RESULTS/vhost-user-bench"
mem=1G
load_before=$(uptime)
per=$((REPS / ${#boots[@]}))
disk() {	# disk vub|qsd: QEMU arguments of that back-end's disk
	printf '%s\n' --qemu-arg -chardev --qemu-arg "socket,id=$1,path=$TMP/$1.sock" \
		--qemu-arg -device --qemu-arg "vhost-user-blk-pci,chardev=$1,num-queues=2"
}
for boot in "${boots[@]}"; do
	if [[ $boot == vub-first ]]; then
		mapfile -t disks < <(disk vub; disk qsd)
	else
		mapfile -t disks < <(disk qsd; disk vub)
	fi
	echo "vhost-user bench: booting the lab VM ($boot; TCG, slow); fio ${RUNTIME}s per run, $((8 * per)) runs" >&2
	"$TOP/tools/vm/lab" run -p none -m "$mem" -t $((600 + 8 * per * (RUNTIME + 3))) \
		-c "$TOP/bench/vhost-user/guest-fio.sh $RUNTIME $per $boot" \
		--qemu-arg -object --qemu-arg "memory-backend-memfd,id=mem,size=$mem,share=on" \
		--qemu-arg -machine --qemu-arg memory-backend=mem \
		--qemu-arg -smp --qemu-arg "$VCPUS" "${disks[@]}" ||
		die "the lab run ($boot) failed" "see build/vm/last/serial.log"
done
load_after=$(uptime)
# CPU time (user + system, all threads, clock ticks) each back-end used
cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
cpu_vub=$(cpu "${PIDS[0]}") cpu_qsd=$(cpu "${PIDS[1]}")
kill -TERM "${PIDS[0]}" && wait "${PIDS[0]}"
vubstats=$(grep -h 'vub: exiting' "$TMP/vub.log")

python3 - "$RESULTS/vhost-user-bench" "$OUT" "$SIZE" "$RUNTIME" "$REPS" \
	"$load_before" "$load_after" "$(nproc)" "$vubstats" "$cpu_vub" "$cpu_qsd" \
	"$(getconf CLK_TCK)" "$VCPUS" "${boots[*]}" "$VUB_ARGS" <<'PY'
import json, sys, os, statistics
d, out, size, runtime, reps, lb, la, ncpu, vubstats = sys.argv[1:10]
cpu = {"vub": int(sys.argv[10]), "qsd": int(sys.argv[11])}
hz = int(sys.argv[12])
vcpus = sys.argv[13]
vub_args = sys.argv[15] or "(none: defaults)"
boots = sys.argv[14].split()
ios = {"vub": 0, "qsd": 0}
job_ios = {}
irqs = ["", "guest interrupts per request (virtio-blk queues, ramp time not in the",
        "request count):"]
reps = int(reps)
rows = [("randread", "4k", "read", "iops", "4K randread IOPS"),
        ("randwrite", "4k", "write", "iops", "4K randwrite IOPS"),
        ("read", "128k", "read", "bw", "128K seq read KiB/s"),
        ("write", "128k", "write", "bw", "128K seq write KiB/s")]
lines = [f"vhost-user-blk back-ends, fio in a lab guest (QEMU 7.2 TCG, {vcpus} vCPU(s)),",
         f"same {size} raw image (fully written, in the host page cache; both",
         "back-ends buffered), 2 queues each, libaio iodepth 16, O_DIRECT in the",
         f"guest, {runtime}s per run (+1s ramp), {reps} runs per back-end interleaved",
         "(ABBA, then one unmeasured run); vub/qsd = median of the ratios of",
         "adjacent runs;",
         f"boots: {', '.join(boots)} (disk order on the PCI bus; each boot half the runs)",
         f"vub options: {vub_args}; qsd: defaults",
         f"host: {ncpu} CPUs; load before: {lb.strip()}",
         f"                 load after:  {la.strip()}",
         f"{vubstats.strip()}",
         "",
         f"{'metric':<22} {'vub':>10} {'qsd':>10} {'vub/qsd':>8} {'pairs<1':>8}  target"]
detail = ["", "runs in order (n-backend: value); pair ratios"]
ok = True
for rw, bs, kind, field, label in rows:
    runs = []	# (boot, n, backend, value): pairs never span boots
    for bi, boot in enumerate(boots):
        p = os.path.join(d, boot, f"{rw}-{bs}.json")
        if not os.path.exists(p):
            continue
        with open(p) as f:
            for job in json.load(f)["jobs"]:
                # the unmeasured last run (on vub's disk) still counts
                # in vub's requests, CPU time and interrupts
                n, who = (job["jobname"].split("-") if job["jobname"] != "pad"
                          else (None, "vub"))
                if n is not None:
                    runs.append((bi, int(n), who, job[kind][field]))
                ios[who] += job["read"]["total_ios"] + job["write"]["total_ios"]
                job_ios[(rw, who)] = job_ios.get((rw, who), 0) + \
                    job["read"]["total_ios"] + job["write"]["total_ios"]
    runs.sort()
    v = {w: statistics.median([x for _, _, who, x in runs if who == w] or [0])
         for w in ("vub", "qsd")}
    pairs = []
    for i in range(0, len(runs) - 1, 2):
        a, b = runs[i], runs[i + 1]
        if a[0] != b[0]:
            continue
        pv = a[3] if a[2] == "vub" else b[3]
        pq = a[3] if a[2] == "qsd" else b[3]
        if pq:
            pairs.append(pv / pq)
    r = statistics.median(pairs) if pairs else 0
    below = sum(1 for x in pairs if x < 1.0)
    ok &= r >= 1.0
    lines.append(f"{label:<22} {v['vub']:>10.0f} {v['qsd']:>10.0f} {r:>7.2f}x {below:>4}/{len(pairs):<3}  >= 1.0x {'ok' if r >= 1.0 else 'MISSED'}")
    # guest interrupts per request, per back-end (whole invocation)
    try:
        irq = {}
        for w in ("vub", "qsd"):
            tot = 0
            for boot in boots:
                bd = os.path.join(d, boot)
                name = open(os.path.join(bd, f"{w}.virtio")).read().strip()
                for k, sign in (("irq1", 1), ("irq0", -1)):
                    for line in open(os.path.join(bd, f"{rw}-{bs}.{k}")):
                        f = line.split()
                        if f and f[-1].startswith(name + "-"):
                            tot += sign * sum(int(x) for x in f[1:] if x.isdigit())
            n = job_ios.get((rw, w), 0)
            irq[w] = tot / n if n else 0
        irqs.append(f"  {label}: vub {irq['vub']:.2f}, qsd {irq['qsd']:.2f}")
    except (OSError, KeyError):
        pass
    detail.append(f"{label}: " + " ".join(f"{boots[bi][:3]}{n}-{who}:{x:.0f}" for bi, n, who, x in runs))
    detail.append(f"  pairs: " + " ".join(f"{x:.2f}" for x in pairs))
lines.append("")
lines.append("all targets met" if ok else "some targets missed")
lines.append("")
lines.append("back-end CPU time per request (user + system, all threads, whole run")
lines.append("incl. boot; requests = fio total_ios without ramp time):")
for who in ("vub", "qsd"):
    us = cpu[who] / hz * 1e6 / ios[who] if ios[who] else 0
    lines.append(f"  {who}: {cpu[who] / hz:.1f} s for {ios[who]} requests = {us:.1f} us/request")
lines += irqs
lines += detail
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
