#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The load column of the build matrix (tools/ship/matrix.sh), in the guest:
# modprobe each module by name, print LOAD<TAB>MODULE<TAB>ok|refused|fail
# <TAB>message (the module's own refusal from dmesg, else modprobe's
# error), and unload it again.
#
# usage: matrix-load.sh MODULE...
for m in "$@"; do
	mark="kmemlab-matrix-load $m"
	echo "$mark" >/dev/kmsg
	if err=$(modprobe "$m" 2>&1); then
		printf 'LOAD\t%s\tok\t\n' "$m"
		rmmod "$m" 2>/dev/null
		continue
	fi
	msg=$(dmesg | sed -n "/$mark\$/,\$p" | grep -m1 -i "$m.*\(refus\|needs\|not supported\|cannot\)" |
		sed 's/^\[[ 0-9.]*\] //')
	if [[ -n $msg ]]; then
		printf 'LOAD\t%s\trefused\t%s\n' "$m" "$msg"
	else
		printf 'LOAD\t%s\tfail\t%s\n' "$m" "$(echo "$err" | tail -1)"
	fi
done
