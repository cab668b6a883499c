#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs in the lab guest (see run.sh): fio on the vub and the
# qemu-storage-daemon vhost-user-blk disks, found by their serial. Per
# workload one fio invocation (fio's start-up under TCG takes seconds) with
# 2 * REPS runs, one at a time (stonewall), interleaved in ABBA order: vub
# qsd qsd vub vub qsd ..., so neither back-end always inherits the other's
# page cache and writeback state or a quieter moment of the host, then one
# unmeasured run (pad). JSON results go to
# $KMEMLAB_RESULTS/vhost-user-bench/[BOOT/]<rw>-<bs>.json, one job per run,
# named <n>-<backend>.
#   guest-fio.sh RUNTIME REPS [vub-first|qsd-first]
set -u
RUNTIME=${1:-4}
REPS=${2:-8}
OUT=${KMEMLAB_RESULTS:?not in the lab guest}/vhost-user-bench/${3:-.}
mkdir -p "$OUT"

dev_vub='' dev_qsd=''
for s in /sys/block/vd*/serial; do
	d=/dev/$(basename "$(dirname "$s")")
	case $(cat "$s" 2>/dev/null) in
	vub*) dev_vub=$d ;;
	*) dev_qsd=${dev_qsd:-$d} ;;
	esac
done
if [[ -z $dev_vub || -z $dev_qsd ]]; then
	echo "guest-fio: need two vhost-user disks (vub: '$dev_vub', qsd: '$dev_qsd')" >&2
	exit 1
fi
echo "guest-fio: vub=$dev_vub qsd=$dev_qsd runtime=${RUNTIME}s reps=$REPS"
# the virtio device of each disk, for its interrupt counts
for who in vub qsd; do
	dev=dev_$who
	basename "$(readlink -f "/sys/block/${!dev#/dev/}/device")" >"$OUT/$who.virtio"
done

# ABBA from the back-end whose disk is first (boot qsd-first: qsd vub vub
# qsd ...), so that over the two boots each back-end opens and closes the
# sequence equally often
a=vub b=qsd
[[ ${3:-} == qsd-first ]] && a=qsd b=vub
order=()
for ((i = 0; i < REPS; i++)); do
	if ((i % 2)); then order+=("$b" "$a"); else order+=("$a" "$b"); fi
done
for j in "randread 4k" "randwrite 4k" "read 128k" "write 128k"; do
	# shellcheck disable=SC2086 # split "rw bs"
	set -- $j
	rw=$1 bs=$2
	jobfile=/tmp/vu-$rw-$bs.fio
	{
		printf '[global]\nrw=%s\nbs=%s\ndirect=1\nioengine=libaio\n' "$rw" "$bs"
		printf 'iodepth=16\nnumjobs=1\ntime_based=1\nruntime=%s\n' "$RUNTIME"
		printf 'ramp_time=1\nsize=192M\nstonewall=1\n'
		n=0
		for who in "${order[@]}"; do
			n=$((n + 1))
			dev=dev_$who
			printf '[%d-%s]\nfilename=%s\n' "$n" "$who" "${!dev}"
		done
		# an unmeasured last run: the last run of an invocation was
		# 0.5-0.9x of the same back-end's others in 28 of 32 cases
		# (cause unknown), and with ABBA it was always the same
		# back-end's
		printf '[pad]\nfilename=%s\n' "$dev_vub"
	} >"$jobfile"
	# interrupts per device (virtioN-*), to compare per request
	grep virtio /proc/interrupts >"$OUT/$rw-$bs.irq0"
	fio --output-format=json --eta=never --output="$OUT/$rw-$bs.json" \
	    "$jobfile" || exit 1
	grep virtio /proc/interrupts >"$OUT/$rw-$bs.irq1"
	echo "guest-fio: $rw $bs: ${#order[@]} runs done"
done
sync
