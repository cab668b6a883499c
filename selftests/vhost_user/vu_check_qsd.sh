#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# vu-check against the real peer: qemu-storage-daemon's vhost-user-blk
# export (libvhost-user). Shows the checker accepts a correct back-end it
# was not written with.
# shellcheck source=vu_lib.sh
. "$(dirname "$0")/vu_lib.sh"
command -v qemu-storage-daemon >/dev/null ||
	vu_skip_all "qemu-storage-daemon not installed (apt-get install qemu-system-common)"
vu_setup
vu_plan 3

img=$VU_TMP/disk.img
truncate -s 64M "$img"
qemu-storage-daemon \
	--blockdev driver=file,node-name=f,filename="$img" \
	--export type=vhost-user-blk,id=e,node-name=f,addr.type=unix,addr.path="$VU_TMP/qsd.sock",writable=on,num-queues=2 \
	>"$VU_TMP/qsd.log" 2>&1 &
qsd=$!
VU_PIDS+=("$qsd")
if vu_wait_socket "$VU_TMP/qsd.sock" "$qsd"; then
	vu_ok "qemu-storage-daemon exports a vhost-user-blk socket"
else
	vu_notok "qemu-storage-daemon exports a vhost-user-blk socket"
	vu_diag <"$VU_TMP/qsd.log"
fi

timeout 120 "$VU_CHECK" --socket "$VU_TMP/qsd.sock" >"$VU_TMP/check.txt" 2>&1
rc=$?
vu_diag <"$VU_TMP/check.txt"
vu_result "vu-check passes against qemu-storage-daemon (exit $rc)" $rc

timeout 120 "$VU_CHECK" --socket "$VU_TMP/qsd.sock" --json >"$VU_TMP/check.json" 2>&1
rc=$?
failed=$(vu_failed_checks "$VU_TMP/check.json")
if ((rc == 0)) && grep -q '"ok":true' "$VU_TMP/check.json" && [[ -z $failed ]]; then
	vu_ok "vu-check --json against qemu-storage-daemon: ok"
else
	vu_notok "vu-check --json against qemu-storage-daemon: rc $rc, failed: ${failed:-none}"
fi
vu_finish
