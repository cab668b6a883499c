#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# On the nfit backend: an fsdax namespace can be created on the emulated
# NVDIMM and ext4 and xfs mount with -o dax with DAX really active
# (STATX_ATTR_DAX and MAP_SYNC). The namespace is put back to raw afterwards.

. "$(dirname "$0")/../lib/kmemlab.sh"
km_require_root
km_require_backend nfit
km_require_cmd ndctl mkfs.ext4 mkfs.xfs

DIR=$(dirname "$0")
MNT=$(mktemp -d /mnt/fsdax.XXXXXX)
km_cleanup "rmdir $MNT"

ktap_print_header
ktap_set_plan 5

mode=$(ndctl list -n namespace0.0 | sed -n 's/.*"mode":"\([a-z]*\)".*/\1/p')
km_cleanup "ndctl create-namespace -f -e namespace0.0 -m ${mode:-raw}"
km_check "create an fsdax namespace (map=mem)" \
	ndctl create-namespace -f -e namespace0.0 -m fsdax --map=mem

dax_fs() {
	local fs=$1

	case $fs in
	ext4) mkfs.ext4 -q -F -b 4096 /dev/pmem0 || return 1 ;;
	xfs) mkfs.xfs -q -f -m reflink=0 /dev/pmem0 || return 1 ;;
	esac
	mount -o dax "/dev/pmem0" "$MNT" || return 1
	km_cleanup "umount $MNT"
	grep -q " $MNT $fs .*dax" /proc/mounts || { echo "no dax in mount options"; return 1; }
	"$DIR/daxcheck" "$MNT/file"
	local rc=$?
	umount "$MNT"
	return $rc
}

km_check "ext4 -o dax: DAX active" dax_fs ext4
km_check "xfs -o dax: DAX active" dax_fs xfs

# negative control: without -o dax (dax=never) the checker must say no
no_dax() {
	mkfs.ext4 -q -F -b 4096 /dev/pmem0 && mount -o dax=never /dev/pmem0 "$MNT" || return 1
	km_cleanup "umount $MNT"
	"$DIR/daxcheck" "$MNT/file"
	local rc=$?
	# 1 = "not DAX"; 0 or 2 (error) fail the control
	[[ $rc == 1 ]]
	rc=$?
	umount "$MNT"
	return $rc
}
km_check "ext4 -o dax=never: the checker sees no DAX" no_dax

km_check "namespace back to raw" ndctl create-namespace -f -e namespace0.0 -m raw
km_finish
