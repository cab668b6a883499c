#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A module built by the project is installed in the guest: modprobe loads it,
# modprobe -r unloads it, and a module that refuses to load reports why.

. "$(dirname "$0")/../lib/kmemlab.sh"
km_require_root
[[ -n ${KMEMLAB_BACKEND:-} && $KMEMLAB_BACKEND != host ]] ||
	km_skip_all "runs in the lab VM (make check T=lab)"

M=kmemlab_labtest
ktap_print_header
ktap_set_plan 5

km_check "modinfo finds $M in updates/" bash -c "modinfo -n $M | grep -q /updates/"
km_check "modprobe $M" modprobe $M
km_check "$M is live with its debugfs trigger" \
	test "$(cat /sys/module/$M/initstate 2>/dev/null)" = live \
	-a -e /sys/kernel/debug/$M/trigger
km_check "modprobe -r $M" modprobe -r $M

refused() {
	local out

	out=$(modprobe $M fail_init=1 2>&1) && { echo "loaded: $out"; rmmod $M; return 1; }
	echo "$out"
	[[ $out == *"No such device"* ]] && [[ ! -d /sys/module/$M ]] &&
		dmesg | grep -q "$M: refusing to load: fail_init=1"
}
km_check "a failing init is refused with -ENODEV and a message" refused
km_finish
