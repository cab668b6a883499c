#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The guest half of dkms.sh: in a lab booted with LAB_MODULES (the
# DKMS-built modules staged instead of the build tree's), each shipped module
# is the DKMS build (same file contents), loads, answers one real request
# (sysfs, configfs or an ioctl), and unloads. Prints "GUEST ok|not ok - NAME"
# lines for dkms.sh.
#
# usage: dkms_guest.sh BIN NAME=SHA1...   (BIN: the directory of bgpmemctl)

BIN=${1:?usage: dkms_guest.sh BIN NAME=SHA1...}
shift

res() {
	local rc=$1

	shift
	if ((rc == 0)); then
		echo "GUEST ok - $*"
	else
		echo "GUEST not ok - $*"
	fi
}

# check NAME CMD...: run CMD, show its output, report
check() {
	local name=$1 out rc

	shift
	out=$("$@" 2>&1)
	rc=$?
	[[ -n $out ]] && printf '%s\n' "$out" | sed 's/^/#   /'
	res "$rc" "$name"
}

for kv in "$@"; do
	m=${kv%%=*}
	want=${kv#*=}
	f=$(modinfo -n "$m" 2>/dev/null)
	have=$(sha1sum "$f" 2>/dev/null | cut -d' ' -f1)
	[[ $f == */updates/* && $have == "$want" ]]
	res $? "$m: modprobe resolves to the DKMS build ($f, sha1 ${have:-none}, want $want)"
done

# bgpmem: bind the NVDIMM's namespace, list its poison records (ioctl)
bgpmem_check() {
	local ns d dev

	modprobe nd_pmem || return 1
	for d in /sys/bus/nd/devices/namespace*.*; do
		[[ -e $d/size && $(cat "$d/size") -gt 0 ]] && ns=${d##*/} && break
	done
	[[ -n $ns ]] || { echo "no pmem namespace"; return 1; }
	modprobe bgpmem || return 1
	"$BIN/bgpmemctl" bind "$ns" || return 1
	for d in /sys/block/bgpmem*; do
		[[ -e $d ]] && dev=${d##*/} && break
	done
	[[ -n $dev ]] || { echo "no /sys/block/bgpmem* after bind"; return 1; }
	"$BIN/bgpmemctl" inject "$dev" 1M 1 || return 1
	"$BIN/bgpmemctl" list "$dev" | grep -q '^  1M +4K$' || { echo "inject not listed"; return 1; }
	"$BIN/bgpmemctl" unbind "$ns" || return 1
	modprobe -r bgpmem
}
check "bgpmem: loads, binds $([[ -e /sys/bus/nd ]] && echo the namespace), inject + list (ioctl), unloads" bgpmem_check

# spf_harness: SPF_IOC_RESET (_IO(0xB9, 0x05)) on /dev/spf_harness
spf_check() {
	modprobe spf_harness || return 1
	python3 -c 'import fcntl, os
fd = os.open("/dev/spf_harness", os.O_RDWR)
assert fcntl.ioctl(fd, 0xB905) == 0
try:
    fcntl.ioctl(fd, 0xB9FF)
    raise SystemExit("an unknown ioctl was accepted")
except OSError as e:
    assert e.errno == 25, e
os.close(fd)' || return 1
	modprobe -r spf_harness
}
check "spf_harness: loads, SPF_IOC_RESET ok and an unknown ioctl -ENOTTY, unloads" spf_check

# memcg_dirty: its configfs interface, version 1
memcg_check() {
	mountpoint -q /sys/kernel/config || mount -t configfs none /sys/kernel/config || return 1
	modprobe memcg_dirty || return 1
	[[ $(cat /sys/kernel/config/memcg_dirty/version) == 1 ]] || { echo "version is not 1"; return 1; }
	grep -qw dirty_bytes /sys/kernel/config/memcg_dirty/features || return 1
	modprobe -r memcg_dirty
}
check "memcg_dirty: loads, configfs version 1 with dirty_bytes, unloads" memcg_check
