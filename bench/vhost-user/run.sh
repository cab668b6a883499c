#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# vub vs qemu-storage-daemon's vhost-user-blk export, side by side in one
# lab VM (Debian QEMU 7.2 front-end, guest RAM on a shared memfd): fio 4K
# randread/randwrite IOPS and 128K sequential read/write bandwidth on the
# same raw image, reported as vub/qsd ratios (target >= 1.0x).
#
#   bench/vhost-user/run.sh [--size 256M] [--runtime 10] [--out FILE]
#
# Needs the lab (tools/vm/lab) and fio on the host root (the guest uses it).
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${KMEMLAB_BIN:-$TOP/build/bin}
RESULTS=$TOP/build/results
SIZE=256M
RUNTIME=10
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
	--out) OUT=${2:?}; shift ;;
	-h | --help) sed -n '3,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument '$1'" "see $0 --help" ;;
	esac
	shift
done
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
truncate -s "$SIZE" "$img" || die "cannot create a $SIZE image in $TMP"
"$BIN/vub" --socket "$TMP/vub.sock" --file "$img" --queues 2 >"$TMP/vub.log" 2>&1 &
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
echo "vhost-user bench: booting the lab VM (TCG, slow); fio ${RUNTIME}s per job, 16 jobs" >&2
"$TOP/tools/vm/lab" run -p none -m "$mem" -t $((600 + 20 * RUNTIME)) \
	-c "$TOP/bench/vhost-user/guest-fio.sh $RUNTIME" \
	--qemu-arg -object --qemu-arg "memory-backend-memfd,id=mem,size=$mem,share=on" \
	--qemu-arg -machine --qemu-arg memory-backend=mem \
	--qemu-arg -chardev --qemu-arg "socket,id=vu0,path=$TMP/vub.sock" \
	--qemu-arg -device --qemu-arg "vhost-user-blk-pci,chardev=vu0,num-queues=2" \
	--qemu-arg -chardev --qemu-arg "socket,id=vu1,path=$TMP/qsd.sock" \
	--qemu-arg -device --qemu-arg "vhost-user-blk-pci,chardev=vu1,num-queues=2" ||
	die "the lab run failed" "see build/vm/last/serial.log"

python3 - "$RESULTS/vhost-user-bench" "$OUT" "$SIZE" "$RUNTIME" <<'PY'
import json, sys, os
d, out, size, runtime = sys.argv[1:5]
rows = [("randread", "4k", "read", "iops", "4K randread IOPS"),
        ("randwrite", "4k", "write", "iops", "4K randwrite IOPS"),
        ("read", "128k", "read", "bw", "128K seq read KiB/s"),
        ("write", "128k", "write", "bw", "128K seq write KiB/s")]
lines = ["vhost-user-blk back-ends, fio in a lab guest (QEMU 7.2 TCG, 2 vCPUs),",
         f"same {size} raw image, iodepth 16, O_DIRECT, {runtime}s per job, ABBA order, mean of 2",
         "",
         f"{'metric':<22} {'vub':>12} {'qsd':>12} {'vub/qsd':>8}  target"]
ok = True
for rw, bs, kind, field, label in rows:
    v = {}
    for who in ("vub", "qsd"):
        runs = []
        for n in (1, 2, 3, 4):
            p = os.path.join(d, f"{who}-{rw}-{bs}-{n}.json")
            if os.path.exists(p):
                with open(p) as f:
                    runs.append(json.load(f)["jobs"][0][kind][field])
        v[who] = sum(runs) / len(runs)  # mean of the two (ABBA) runs
    r = v["vub"] / v["qsd"] if v["qsd"] else float("inf")
    ok &= r >= 1.0
    lines.append(f"{label:<22} {v['vub']:>12.0f} {v['qsd']:>12.0f} {r:>7.2f}x  >= 1.0x {'ok' if r >= 1.0 else 'MISSED'}")
lines.append("")
lines.append("all targets met" if ok else "some targets missed")
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
