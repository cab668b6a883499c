#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs in the lab guest (see run.sh): fio on the vub and the
# qemu-storage-daemon vhost-user-blk disks, found by their serial, one job
# at a time, in ABBA order. JSON results go to
# $KMEMLAB_RESULTS/vhost-user-bench/.
set -u
RUNTIME=${1:-10}
OUT=${KMEMLAB_RESULTS:?not in the lab guest}/vhost-user-bench
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
echo "guest-fio: vub=$dev_vub qsd=$dev_qsd runtime=${RUNTIME}s"

# each job runs in the order vub qsd qsd vub (ABBA), so neither back-end
# always inherits the other's page cache and writeback state
jobs=("randread 4k" "randwrite 4k" "read 128k" "write 128k")
for j in "${jobs[@]}"; do
	# shellcheck disable=SC2086 # split "rw bs"
	set -- $j
	rw=$1 bs=$2
	n=0
	for who in vub qsd qsd vub; do
		dev=dev_$who
		n=$((n + 1))
		fio --name="$rw-$bs" --filename="${!dev}" --rw="$rw" --bs="$bs" \
		    --direct=1 --ioengine=libaio --iodepth=16 --numjobs=1 \
		    --time_based --runtime="$RUNTIME" --ramp_time=1 \
		    --size=192M --output-format=json --eta=never \
		    --output="$OUT/$who-$rw-$bs-$n.json" || exit 1
		echo "guest-fio: $who $rw $bs done"
	done
done
sync
