#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# bgpmem vs nd_pmem, one VM boot, reported as ratios.
#
#   make bench B=bgpmem, which runs
#   LAB_NVDIMM_DIR=/dev/shm LAB_CLOCK=icount \
#	tools/vm/lab run -p nfit -c bench/bgpmem/run.sh
#
# On instruction-counted guest time (-icount) one repetition's figures
# repeat within 0.5 %; under the lab's default multi-threaded TCG they vary
# by up to 1.5x and the defaults below resolve nothing (use REPS=9
# RUNTIME=3 there and expect +-10 %).
#
# The NFIT region (labels) is split into three equal fsdax namespaces:
#   A on nd_pmem, B and C on bgpmem.
# All three are bound at once, so every repetition runs each workload on A,
# B and C back to back (seconds apart): under TCG on a shared host that is
# the only way the ratios mean something.
#
# REPS repetitions run with no poison anywhere; then 10,000 poison records
# go onto C outside the I/O area and REPS more repetitions run. C's
# position in the NVDIMM (its host pages) is the same in both phases, so
# "C/B poisoned" over "C/B clean" is the records' cost with the position
# cancelled out: the goal's "its own no-poison figure".
#
# Workloads (fio): O_DIRECT psync on the block device (48 MiB after the
# file system): 4 KiB randread, 4 KiB randwrite, 128 KiB sequential read and
# write; and 4 KiB randrw on a file of an ext4 -o dax file system.
# Goals: B >= 0.97x A; C with records >= 0.95x C without. Medians of the
# per-repetition ratios.
#
# Env: REPS (default 3), RUNTIME seconds per fio run (default 1), PERM,
# KMEMLAB_RESULTS (results dir). Writes bgpmem-bench-<backend>.md there.

set -u
KDIR=${KMEMLAB_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
RES=${KMEMLAB_RESULTS:-/tmp}
BACKEND=${KMEMLAB_BACKEND:-unknown}
REPS=${REPS:-3}
RUNTIME=${RUNTIME:-1}
CTL=${KMEMLAB_BIN:-$KDIR/build/bin}/bgpmemctl
# layout of each device: ext4 in [0, 24M), block I/O in [24M, 72M),
# poison (C only) in [76M, 156M)
FS_SIZE=24M
IO_AT=24M
IO_SIZE=48M
POISON_AT=76M
OUT=$RES/bgpmem-bench-$BACKEND.md
WORK=$(mktemp -d /tmp/bgpmem-bench.XXXXXX)
MNT=$WORK/mnt

die() {
	echo "bgpmem-bench: error: $1" >&2
	[[ -n ${2:-} ]] && echo "bgpmem-bench: hint: $2" >&2
	exit 1
}

command -v fio >/dev/null || die "fio not found" "apt-get install fio on the host"
command -v ndctl >/dev/null || die "ndctl not found" "apt-get install ndctl on the host"
[[ -x $CTL ]] || die "$CTL not built" "make tools"
[[ $BACKEND == nfit ]] ||
	die "needs the nfit backend (a labelled region to split in three)" \
	    "tools/vm/lab run -p nfit -c bench/bgpmem/run.sh"
modprobe nd_pmem 2>/dev/null

# three fsdax namespaces, all on nd_pmem while bgpmem is not loaded
rmmod bgpmem 2>/dev/null
ndctl destroy-namespace -f all >/dev/null 2>&1
if [[ $(ndctl list -R | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["available_size"])') == 0 ]]; then
	# a label-less region (the lab's default): give it labels
	if ! { ndctl disable-region all >/dev/null &&
	       ndctl init-labels -f all >/dev/null &&
	       ndctl enable-region all >/dev/null; }; then
		die "cannot initialise labels" "boot the lab with label-size set (default)"
	fi
fi
avail=$(ndctl list -R | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["available_size"])')
size=$(( avail / 3 / (16 << 20) * (16 << 20) ))
[[ $size -ge $((128 << 20)) ]] || die "region too small: $avail bytes"
ns=()
for _ in 0 1 2; do
	n=$(ndctl create-namespace -r region0 -m fsdax --map=mem -s "$size" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["dev"])') ||
		die "ndctl create-namespace failed"
	ns+=("$n")
done
# PERM="i j k": namespaces i, j, k (in creation order, i.e. NVDIMM offset)
# play A, B and C; default "0 1 2". Another order separates a device's
# position in the NVDIMM from its role.
read -r -a perm <<<"${PERM:-0 1 2}"
ns=("${ns[${perm[0]}]}" "${ns[${perm[1]}]}" "${ns[${perm[2]}]}")
modprobe bgpmem 2>/dev/null || insmod "$KDIR/drivers/pmem/bgpmem.ko" ||
	die "cannot load bgpmem"
"$CTL" bind "${ns[1]}" >/dev/null || die "bind ${ns[1]} failed"
"$CTL" bind "${ns[2]}" >/dev/null || die "bind ${ns[2]} failed"

blockdev_of() {
	local holder d

	holder=$(cat "/sys/bus/nd/devices/$1/holder")
	for d in /sys/block/*; do
		if [[ $(readlink -f "$d/device") == */$holder ]]; then
			echo "/dev/${d##*/}"
			return
		fi
	done
}
A=$(blockdev_of "${ns[0]}")
B=$(blockdev_of "${ns[1]}")
C=$(blockdev_of "${ns[2]}")
[[ $A == /dev/pmem* && $B == /dev/bgpmem* && $C == /dev/bgpmem* ]] ||
	die "unexpected devices: A=$A B=$B C=$C"

declare -A fsdir
for x in A B C; do
	dev=${!x}
	mkdir -p "$MNT/$x"
	mkfs.ext4 -q -F -b 4096 -E nodiscard "$dev" "$FS_SIZE" ||
		die "mkfs.ext4 $dev failed"
	fsdir[$x]=$MNT/$x
done
# Touch the block I/O area of each device once before measuring: the first
# write to a page of the NVDIMM's backing file costs the host a page fault
# and allocation, which would otherwise land on whichever device runs
# first in repetition 1.
for x in A B C; do
	dd if=/dev/zero of="${!x}" bs=1M seek=$((${IO_AT%M})) count=$((${IO_SIZE%M})) \
		oflag=direct status=none || die "prefill of ${!x} failed"
done
# the poison goes in after mkfs and the clean phase, beyond anything the
# jobs touch
poison_c() {
	local recs

	"$CTL" -q inject "$C" "$POISON_AT" 4K 10000 8K >/dev/null || die "inject failed"
	recs=$(cat "/sys/block/${C##*/}/bgpmem/records")
	[[ $recs -ge 10000 ]] || die "only $recs records on $C"
}

# One fio process per repetition and phase (process start-up under TCG
# over 9p costs more than a run): every job stonewalled, so they run one
# after the other, in the order written. The A/B/C order rotates per
# repetition so that no device always runs first.
# jobfile PHASE REP -> job file on stdout
jobfile() {
	local phase=$1 rep=$2 job name args x i order

	echo "[global]"
	echo "ioengine=psync"
	echo "runtime=$RUNTIME"
	echo "time_based"
	order=(A B C)
	order=("${order[@]:$((rep % 3))}" "${order[@]:0:$((rep % 3))}")
	for job in "${JOBS[@]}"; do
		name=${job%%|*}
		args=${job#*|}
		[[ $phase == dax && $name != daxfile ]] && continue
		[[ $phase == blk && $name == daxfile ]] && continue
		for x in "${order[@]}"; do
			echo "[$name-$x]"
			echo "stonewall"
			if [[ $phase == dax ]]; then
				echo "filename=${fsdir[$x]}/f"
				echo "size=16M"
			else
				echo "filename=${!x}"
				echo "direct=1"
				echo "offset=$IO_AT"
				echo "size=$IO_SIZE"
			fi
			for i in $args; do
				echo "${i#--}"
			done
		done
	done
}

# run a job file, record bytes/s per job into bw[X,name,rep]
run_phase() {
	local phase=$1 rep=$2 line

	jobfile "$phase" "$rep" >"$WORK/$phase.fio"
	fio --output-format=json "$WORK/$phase.fio" >"$WORK/fio.json" \
		2>"$WORK/fio.err" || { cat "$WORK/fio.err" >&2; die "fio failed"; }
	while read -r line; do
		bw[${line% *},$rep]=${line##* }
	done < <(python3 -c '
import json, sys
for j in json.load(open(sys.argv[1]))["jobs"]:
    name, dev = j["jobname"].rsplit("-", 1)
    bw = j["read"]["bw_bytes"] + j["write"]["bw_bytes"]
    print("%s,%s %d" % (dev, name, bw))' \
		"$WORK/fio.json")
}

JOBS=(
	"randread4k|--rw=randread --bs=4k"
	"randwrite4k|--rw=randwrite --bs=4k"
	"seqread128k|--rw=read --bs=128k"
	"seqwrite128k|--rw=write --bs=128k"
	"daxfile|--rw=randrw --bs=4k"
)
declare -A bw
for ((rep = 1; rep <= 2 * REPS; rep++)); do
	phase=clean
	if ((rep > REPS)); then
		((rep == REPS + 1)) && poison_c
		phase="C poisoned"
	fi
	echo "bgpmem-bench: repetition $rep/$((2 * REPS)) ($phase)" >&2
	run_phase blk "$rep"
	for x in A B C; do
		mount -o dax "${!x}" "${fsdir[$x]}" || die "mount -o dax ${!x} failed"
	done
	run_phase dax "$rep"
	for x in A B C; do
		umount "${fsdir[$x]}"
	done
done
recs_after=$(cat "/sys/block/${C##*/}/bgpmem/records")

# per-repetition "A/B/C" MiB/s of one workload, reps $2..$3
per_rep() {
	local name=$1 rep line=

	for ((rep = $2; rep <= $3; rep++)); do
		line+=" $(python3 -c "import sys; print('/'.join(f'{float(v)/2**20:.0f}' for v in sys.argv[1:]))" \
			"${bw[A,$name,$rep]}" "${bw[B,$name,$rep]}" "${bw[C,$name,$rep]}")"
	done
	echo "$line"
}

{
	echo "# bgpmem vs nd_pmem, backend $BACKEND, $(uname -r)"
	echo
	echo "Three ${size}-byte fsdax namespaces of one QEMU NFIT region: A on"
	echo "nd_pmem, B and C on bgpmem. fio psync, O_DIRECT on the block device"
	echo "over $IO_SIZE at $IO_AT, and 4 KiB randrw on a 16 MiB file of a"
	echo "$FS_SIZE ext4 -o dax at the start of the device; ${RUNTIME}s per run;"
	echo "every repetition runs each workload on A, B and C back to back in one"
	echo "fio process (order rotated per repetition); I/O areas prefilled once."
	echo "$REPS repetitions clean, then $recs_after poison records on C (4 KiB every"
	echo "8 KiB from $POISON_AT, outside the I/O) and $REPS more. Namespaces in"
	echo "NVDIMM order ${perm[*]} are A, B, C; NVDIMM backing file ${KMEMLAB_NVDIMM_FILE:-unknown}."
	echo "QEMU: ${KMEMLAB_ACCEL:-unknown}; only the ratios mean anything."
	echo
	echo "Medians of per-repetition ratios (A, B and C of one repetition run"
	echo "seconds apart, so a ratio cancels most of the host's load drift)."
	echo "\"C/B clean\" is the position effect alone; the records' cost is"
	echo "\"poisoned/clean\" = (C/B poisoned) / (C/B clean)."
	echo
	echo "| workload | A nd_pmem MiB/s | B bgpmem MiB/s | C clean MiB/s | C poisoned MiB/s | B/A (goal >= 0.97) | C/B clean | C/B poisoned | poisoned/clean (goal >= 0.95) |"
	echo "|---|---|---|---|---|---|---|---|---|"
	for job in "${JOBS[@]}"; do
		name=${job%%|*}
		args=()
		for x in A B C; do
			vals=()
			for ((rep = 1; rep <= 2 * REPS; rep++)); do
				vals+=("${bw[$x,$name,$rep]:-0}")
			done
			args+=("${vals[*]}")
		done
		python3 - "$name" "$REPS" "${args[@]}" <<'EOF'
import statistics, sys
name, reps = sys.argv[1], int(sys.argv[2])
pa, pb, pc = ([float(v) for v in s.split()] for s in sys.argv[3:6])
med = lambda v: statistics.median(v) if v else 0
mib = lambda v: med(v) / 2**20
ratio = lambda x, y: med([b / a for a, b in zip(x, y) if a])
ba = ratio(pa, pb)
cb_clean = ratio(pb[:reps], pc[:reps])
cb_poison = ratio(pb[reps:], pc[reps:])
effect = cb_poison / cb_clean if cb_clean else 0
ok = lambda r, t: f"{r:.3f} {'ok' if r >= t else 'BELOW'}"
print(f"| {name} | {mib(pa):.1f} | {mib(pb):.1f} | {mib(pc[:reps]):.1f} | "
      f"{mib(pc[reps:]):.1f} | {ok(ba, 0.97)} | {cb_clean:.3f} | "
      f"{cb_poison:.3f} | {ok(effect, 0.95)} |")
EOF
	done
	echo
	echo "Per-repetition MiB/s (A/B/C), clean | C poisoned:"
	echo
	for job in "${JOBS[@]}"; do
		name=${job%%|*}
		echo "- $name:$(per_rep "$name" 1 "$REPS") |$(per_rep "$name" $((REPS + 1)) $((2 * REPS)))"
	done
} >"$OUT"

# leave the lab as found: bgpmem unloaded, namespaces back to one raw
for n in "${ns[@]}"; do
	"$CTL" unbind "$n" >/dev/null 2>&1
done
rmmod bgpmem 2>/dev/null
ndctl destroy-namespace -f all >/dev/null 2>&1
ndctl create-namespace -r region0 -m raw >/dev/null 2>&1
rm -rf "$WORK"
cat "$OUT"
echo "bgpmem-bench: results in $OUT" >&2
