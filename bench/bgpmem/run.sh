#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# bgpmem vs nd_pmem on the same namespace, one VM boot, reported as ratios.
#
#   tools/vm/lab run -p e820 -c bench/bgpmem/run.sh     (or -p nfit)
#
# Workloads (fio, O_DIRECT on the block device; psync on an ext4 -o dax
# file): 4 KiB randread, 4 KiB randwrite, 128 KiB sequential read and
# write, 4 KiB random read/write on a DAX file. Three configurations,
# interleaved A/B/C per repetition to spread TCG noise, median of REPS:
#   nd_pmem, bgpmem, bgpmem with 10,000 poison records outside the I/O area.
# Goals: bgpmem >= 0.97x nd_pmem; poisoned >= 0.95x clean bgpmem.
#
# Env: REPS (default 3), RUNTIME seconds per fio run (default 3),
# KMEMLAB_RESULTS (results dir). Writes bgpmem-bench-<backend>.md there.

set -u
KDIR=${KMEMLAB_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
RES=${KMEMLAB_RESULTS:-/tmp}
BACKEND=${KMEMLAB_BACKEND:-unknown}
REPS=${REPS:-3}
RUNTIME=${RUNTIME:-3}
CTL=${KMEMLAB_BIN:-$KDIR/build/bin}/bgpmemctl
MNT=/mnt/bgpmem-bench
OUT=$RES/bgpmem-bench-$BACKEND.md
WORK=$(mktemp -d /tmp/bgpmem-bench.XXXXXX)

die() {
	echo "bgpmem-bench: error: $1" >&2
	[[ -n ${2:-} ]] && echo "bgpmem-bench: hint: $2" >&2
	exit 1
}

command -v fio >/dev/null || die "fio not found" "apt-get install fio on the host"
[[ -x $CTL ]] || die "$CTL not built" "make tools"
modprobe nd_pmem 2>/dev/null
[[ -d /sys/module/bgpmem ]] || modprobe bgpmem 2>/dev/null ||
	insmod "$KDIR/drivers/pmem/bgpmem.ko" || die "cannot load bgpmem"
ns=$(cd /sys/bus/nd/devices && ls -d namespace*.* | head -1)
[[ -n $ns ]] || die "no pmem namespace" "boot the lab with -p e820 or -p nfit"
target=$ns
if [[ $BACKEND == nfit ]]; then
	# QEMU NFIT raw namespaces have no struct pages: fsdax for the DAX job
	"$CTL" unbind "$ns" >/dev/null 2>&1
	ndctl create-namespace -f -e "$ns" -m fsdax --map=mem >/dev/null ||
		die "ndctl create-namespace -m fsdax failed"
	target=$(cat /sys/bus/nd/devices/$ns/holder)
fi

# the block device of $target under driver $1
use() {
	local d

	if [[ $1 == bgpmem ]]; then
		"$CTL" bind "$target" >/dev/null || die "bind $target to bgpmem failed"
	else
		"$CTL" unbind "$target" >/dev/null || die "bind $target to nd_pmem failed"
	fi
	for d in /sys/block/*; do
		if [[ $(readlink -f "$d/device") == */$target ]]; then
			echo "/dev/${d##*/}"
			return
		fi
	done
	die "no block device for $target"
}

# fio NAME DEV-or-FILE ARGS... -> bytes/s
fio_bw() {
	local name=$1 file=$2

	shift 2
	fio --name="$name" --filename="$file" --runtime="$RUNTIME" --time_based \
		--output-format=json "$@" >"$WORK/fio.json" 2>"$WORK/fio.err" ||
		{ cat "$WORK/fio.err" >&2; echo 0; return; }
	python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
print(j["read"]["bw_bytes"] + j["write"]["bw_bytes"])' "$WORK/fio.json"
}

BLK_JOBS=(
	"randread4k|--rw=randread --bs=4k"
	"randwrite4k|--rw=randwrite --bs=4k"
	"seqread128k|--rw=read --bs=128k"
	"seqwrite128k|--rw=write --bs=128k"
)
COMMON="--direct=1 --ioengine=psync --size=256M --offset=0"

# 10,000 records, every other 4 KiB block from 430 MiB (outside the I/O)
poison_10k() {
	local dev=$1 n

	"$CTL" -q inject "$dev" 430M 4K 10000 8K >/dev/null || die "inject failed"
	n=$(cat "/sys/block/${dev##*/}/bgpmem/records")
	[[ $n -ge 10000 ]] || die "only $n records after injecting 10,000"
}

declare -A bw
run_config() {
	local cfg=$1 drv=$2 rep=$3 dev job name args

	dev=$(use "$drv")
	[[ -n $dev ]] || die "no block device for $target under $drv"
	mkdir -p "$MNT"
	# a fresh fs first; the poison goes in after mkfs, where the fs is empty
	mkfs.ext4 -q -F -b 4096 "$dev" || die "mkfs.ext4 $dev failed"
	mount -o dax "$dev" "$MNT" || die "mount -o dax $dev failed"
	[[ $cfg == poisoned ]] && poison_10k "$dev"
	bw[$cfg,daxfile,$rep]=$(fio_bw daxfile "$MNT/f" --rw=randrw --bs=4k \
		--ioengine=psync --size=64M)
	umount "$MNT"
	for job in "${BLK_JOBS[@]}"; do
		name=${job%%|*}
		args=${job#*|}
		# shellcheck disable=SC2086
		bw[$cfg,$name,$rep]=$(fio_bw "$name" "$dev" $COMMON $args)
	done
	if [[ $cfg == poisoned ]]; then
		# unload drops the records and the injection store
		"$CTL" unbind "$target" >/dev/null
		rmmod bgpmem && { modprobe bgpmem 2>/dev/null ||
			insmod "$KDIR/drivers/pmem/bgpmem.ko"; }
	fi
}

CONFIGS=(nd_pmem bgpmem poisoned)
drv_of() { [[ $1 == nd_pmem ]] && echo nd_pmem || echo bgpmem; }

for ((rep = 1; rep <= REPS; rep++)); do
	for cfg in "${CONFIGS[@]}"; do
		echo "bgpmem-bench: rep $rep/$REPS: $cfg" >&2
		run_config "$cfg" "$(drv_of "$cfg")" "$rep"
	done
done

median() {
	printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'
}

{
	echo "# bgpmem vs nd_pmem, backend $BACKEND, $(uname -r)"
	echo
	echo "fio, O_DIRECT psync on the block device (256 MiB at offset 0) and"
	echo "4 KiB randrw on a 64 MiB ext4 -o dax file; ${RUNTIME}s per run,"
	echo "median of $REPS interleaved repetitions; QEMU TCG, so only ratios"
	echo "mean anything. poisoned = bgpmem with 10,000 poison records outside"
	echo "the I/O area."
	echo
	echo "| workload | nd_pmem MiB/s | bgpmem MiB/s | poisoned MiB/s | bgpmem/nd_pmem (>= 0.97) | poisoned/bgpmem (>= 0.95) |"
	echo "|---|---|---|---|---|---|"
	for name in randread4k randwrite4k seqread128k seqwrite128k daxfile; do
		declare -A m=()
		for cfg in "${CONFIGS[@]}"; do
			vals=()
			for ((rep = 1; rep <= REPS; rep++)); do
				vals+=("${bw[$cfg,$name,$rep]:-0}")
			done
			m[$cfg]=$(median "${vals[@]}")
		done
		python3 - "$name" "${m[nd_pmem]}" "${m[bgpmem]}" "${m[poisoned]}" <<'EOF'
import sys
name, nd, bg, po = sys.argv[1], *map(float, sys.argv[2:])
mib = lambda v: v / 2**20
r1 = bg / nd if nd else 0
r2 = po / bg if bg else 0
ok = lambda r, t: f"{r:.3f} {'ok' if r >= t else 'BELOW'}"
print(f"| {name} | {mib(nd):.1f} | {mib(bg):.1f} | {mib(po):.1f} | "
      f"{ok(r1, 0.97)} | {ok(r2, 0.95)} |")
EOF
	done
} >"$OUT"

"$CTL" unbind "$target" >/dev/null 2>&1
rmmod bgpmem 2>/dev/null
rm -rf "$WORK"
rmdir "$MNT" 2>/dev/null
cat "$OUT"
echo "bgpmem-bench: results in $OUT" >&2
