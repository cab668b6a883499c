#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# bgpmemctl: every command on a real bgpmem device, and bad input refused
# with a message naming the problem and nothing changed.

BIN=${KMEMLAB_BIN:-$(dirname "$0")/../../build/bin}
CTL=$BIN/bgpmemctl
KDIR=${KMEMLAB_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
n=0
fails=0

ok() {
	n=$((n + 1))
	if [[ $1 == 0 ]]; then
		echo "ok $n $2"
	else
		echo "not ok $n $2"
		fails=$((fails + 1))
	fi
}

skip_all() {
	echo "1..0 # SKIP $1"
	exit 4
}

# expect failure with a message matching $2: expect_err NAME REGEX CMD...
expect_err() {
	local name=$1 re=$2 out rc

	shift 2
	out=$("$@" 2>&1)
	rc=$?
	if [[ $rc -ne 0 && $out =~ $re ]]; then
		ok 0 "$name"
	else
		echo "# $name: rc=$rc output: $out"
		ok 1 "$name"
	fi
}

[[ -x $CTL ]] || skip_all "bgpmemctl not built (make tools)"
[[ $(id -u) == 0 ]] || skip_all "needs root"
case ${KMEMLAB_BACKEND:-} in
e820 | nfit | nfit_test | cxl) ;;
*) skip_all "needs an NVDIMM backend: e820, nfit, nfit_test or cxl (KMEMLAB_BACKEND=${KMEMLAB_BACKEND:-unset})" ;;
esac

modprobe nd_pmem 2>/dev/null
ns=
for d in /sys/bus/nd/devices/namespace*.*; do
	if [[ -e $d/size && $(cat "$d/size") -gt 0 ]]; then
		ns=${d##*/}
		break
	fi
done
[[ -n $ns ]] || skip_all "no pmem namespace"
loaded=0
if [[ ! -d /sys/module/bgpmem ]]; then
	ko=$KDIR/drivers/pmem/bgpmem.ko
	[[ $KMEMLAB_BACKEND == nfit_test ]] && ko=$KDIR/build/nfit_test/$(uname -r)/flavors/pmem/bgpmem.ko
	{ [[ $KMEMLAB_BACKEND != nfit_test ]] && modprobe bgpmem 2>/dev/null; } ||
		insmod "$ko" || skip_all "cannot load bgpmem ($ko)"
	loaded=1
fi

echo "TAP version 13"
echo "1..21"

"$CTL" --help | grep -q "inject DEV OFFSET LEN"
ok $? "--help"
expect_err "unknown command" "unknown command" "$CTL" frobnicate
expect_err "not a bgpmem device" "not a bgpmem device" "$CTL" list /dev/null
expect_err "no such device" "No such file" "$CTL" inject bgpmem99 0 4K
expect_err "no such namespace" "no such namespace" "$CTL" bind namespace99.9

out=$("$CTL" bind "$ns")
ok $? "bind $ns: $out"
dev=
for d in /sys/block/bgpmem*; do
	[[ -e $d ]] && dev=${d##*/} && break
done
[[ -n $dev ]] || { echo "Bail out! no bgpmem device after bind"; exit 1; }
size=$(($(cat "/sys/block/$dev/size") * 512))

"$CTL" inject "$dev" 1M 1 >/dev/null
ok $? "inject 1M+1"
out=$("$CTL" --json list "$dev")
echo "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin)[0]
assert d["poison_block_size"] == 4096, d
assert {"offset": 1048576, "len": 4096} in d["ranges"], d
assert d["clear_support"] in ("supported", "unsupported", "unknown"), d
'
ok $? "list --json shows [1M, +4K)"
"$CTL" list "$dev" | grep -q "^  1M +4K$"
ok $? "list (human) shows 1M +4K"
# the bus's clear unit, as sysfs has it (nfit_test: 256; 0 where the bus
# reports none), in both outputs
unit=$(cat "/sys/block/$dev/bgpmem/clear_unit")
human=none
((unit > 0)) && human=$unit
((unit >= 1024)) && human=$((unit / 1024))K
CU=$unit python3 -c '
import json, os, sys
d = json.load(sys.stdin)[0]
assert d["clear_unit"] == int(os.environ["CU"]), d
' <<<"$out" && "$CTL" list "$dev" | grep -q ", clear unit $human$"
ok $? "list shows the clear unit ($unit: $human)"

before=$("$CTL" --json list "$dev")
expect_err "clear unaligned offset" "unaligned" "$CTL" clear "$dev" 512 4K
expect_err "clear unaligned length" "unaligned" "$CTL" clear "$dev" 0 1000
expect_err "zero length" "zero length" "$CTL" inject "$dev" 0 0
expect_err "out of range" "out of range" "$CTL" inject "$dev" "$size" 4K
expect_err "offset+len overflow" "out of range" "$CTL" inject "$dev" 16777215T 2T
expect_err "garbage size" "bad offset" "$CTL" inject "$dev" 12Q 4K
expect_err "negative size" "bad length" "$CTL" inject "$dev" 0 -4K
after=$("$CTL" --json list "$dev")
[[ $before == "$after" ]]
ok $? "bad input changed nothing"

if [[ $(cat "/sys/block/$dev/ro") == 1 ]]; then
	# a read-only region (nfit_test has one): refused, as BLKZEROOUT
	expect_err "clear: read-only device named" "read-only device" \
		"$CTL" clear "$dev" 1M 4K
elif [[ $KMEMLAB_BACKEND == nfit || $KMEMLAB_BACKEND == cxl ]]; then
	expect_err "clear: unsupported named" "clear unsupported on this platform" \
		"$CTL" clear "$dev" 1M 4K
else
	out=$("$CTL" clear "$dev" 1M 4K)
	ok $? "clear 1M+4K: $out"
fi
out=$("$CTL" scrub "$dev" 2>&1)
ok $? "scrub: $out"

# unbind loads nd_pmem when it is not loaded (as ndctl loads drivers)
note=
rmmod nd_pmem 2>/dev/null || note=" (nd_pmem in use, not unloaded first)"
out=$("$CTL" unbind "$ns" 2>&1)
ok $? "unbind $ns: $out$note"

[[ $loaded == 1 ]] && rmmod bgpmem
[[ $fails == 0 ]] && exit 0
exit 1
