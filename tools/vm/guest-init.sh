#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Stage 2 of the kmemlab guest, PID 1 after switch_root into the host root
# (read-only 9p, tmpfs on /tmp /run /mnt /root /var/tmp /var/log). Reads the
# job file the host wrote, sets up the NVDIMM backend, then runs an
# interactive shell, one command, or the selftests, and powers off with a
# verdict on the isa-debug-exit port.

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=${TERM:-linux} LANG=C.UTF-8

for arg in $(</proc/cmdline); do
	case $arg in
	kmemlab.*=*)
		key=${arg%%=*}
		key=${key#kmemlab.}
		printf -v "KM_$key" '%s' "${arg#*=}"
		;;
	esac
done

# verdicts written to isa-debug-exit; QEMU exits with (v << 1) | 1
VERDICT_DONE=16		# 33: ran to completion (tests may have failed)
VERDICT_LABFAIL=18	# 37: the lab itself could not set up

verdict() {
	sync
	umount "$KM_results" "$KM_run" 2>/dev/null
	printf "\\$(printf '%03o' "$1")" | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
	echo o >/proc/sysrq-trigger
	sleep 10
}

log() {
	echo "kmemlab: $*" >/dev/kmsg
	[[ -n $CONSOLE ]] && echo "kmemlab: $*" >"$CONSOLE"
}

labfail() {
	log "FATAL: $*"
	[[ -n $CTL ]] && echo "labfail $*" >"$CTL"
	verdict $VERDICT_LABFAIL
}

# A virtio-serial port by name; devtmpfs names it /dev/vportNpM.
vport() {
	local p

	for p in /sys/class/virtio-ports/*; do
		[[ $(<"$p/name") == "$1" ]] && { echo "/dev/${p##*/}"; return 0; }
	done
	return 1
}

# shellcheck source=/dev/null
source "$KM_run/job" || labfail "cannot read job file $KM_run/job"

CTL=$(vport kmemlab.ctl) || CTL=
[[ $MODE == shell ]] && CONSOLE=/dev/ttyS0 || CONSOLE=
[[ $MODE == cmd ]] && CONSOLE=/dev/hvc0

echo "kmemlab: stage2 start $(</proc/uptime)" >/dev/kmsg
hostname kmemlab
ip link set lo up 2>/dev/null

mount -t debugfs debugfs /sys/kernel/debug
mount -t tracefs tracefs /sys/kernel/tracing
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
modprobe -q configfs && mount -t configfs configfs /sys/kernel/config
mount -t bpf bpf /sys/fs/bpf 2>/dev/null

echo "kmemlab: mounts done $(</proc/uptime)" >/dev/kmsg
# Coldplug, the small part of what udev would do: virtio drivers for the
# devices present (virtio_blk for scratch disks...) and pvpanic, so a guest
# panic ends QEMU at once. The NVDIMM drivers are loaded per backend below;
# anything else is loaded on demand through the kernel's modprobe helper.
{
	echo pvpanic-mmio
	cat /sys/bus/virtio/devices/*/modalias 2>/dev/null
} | sort -u | xargs -r modprobe -q -a -b 2>/dev/null
echo "kmemlab: coldplug done $(</proc/uptime)" >/dev/kmsg
# The NVDIMM backend: load what coldplug cannot know about and wait for the
# namespaces to appear (nd probing is asynchronous).
setup_backend() {
	local i

	case $BACKEND in
	none)
		return 0
		;;
	nfit)
		modprobe -a nfit nd_pmem || return 1
		;;
	e820)
		modprobe -a nd_e820 nd_pmem || return 1
		;;
	nfit_test)
		# the replacement modules in updates/ win over the stock ones
		modprobe nfit_test || return 1
		modprobe -a nd_pmem nd_btt || return 1
		;;
	*)
		return 1
		;;
	esac
	for ((i = 0; i < 100; i++)); do
		compgen -G '/sys/bus/nd/devices/namespace*' >/dev/null && break
		sleep 0.1
	done
	udevadm settle 2>/dev/null
	compgen -G '/sys/bus/nd/devices/namespace*' >/dev/null
}

setup_backend || labfail "NVDIMM backend '$BACKEND' did not come up (no namespace in /sys/bus/nd/devices)"

export KMEMLAB_DIR KMEMLAB_BUILD KMEMLAB_BIN KMEMLAB_RESULTS KMEMLAB_BACKEND=$BACKEND
export KMEMLAB_KVER=$KM_kver PATH=$KMEMLAB_BIN:$PATH
log "ready: backend=$BACKEND mode=$MODE uptime=$(cut -d' ' -f1 /proc/uptime)s"

case $MODE in
shell)
	[[ -n $TTY_SIZE ]] && stty -F /dev/ttyS0 rows "${TTY_SIZE% *}" cols "${TTY_SIZE#* }"
	cat >"$CONSOLE" <<-EOF

	kmemlab test VM: kernel $(uname -r), NVDIMM backend '$BACKEND'
	host root read-only at /; results in $KMEMLAB_RESULTS (shared with the host)
	our modules: modprobe <name> (see $KMEMLAB_DIR); 'exit' or Ctrl-D powers off

	EOF
	(cd "$KMEMLAB_DIR" && exec setsid -c bash -l <"$CONSOLE" >"$CONSOLE" 2>&1)
	;;
cmd)
	(cd "$KMEMLAB_DIR" && exec setsid -c bash -c "$CMD" <"$CONSOLE" >"$CONSOLE" 2>&1)
	rc=$?
	[[ -n $CTL ]] && echo "status $rc" >"$CTL"
	;;
check)
	TAP=$(vport kmemlab.tap) || labfail "no kmemlab.tap port"
	bash "$KMEMLAB_DIR/tools/vm/guest-tests.sh" "$KM_run/tests" >"$TAP" 2>&1
	rc=$?
	[[ -n $CTL ]] && echo "status $rc" >"$CTL"
	;;
*)
	labfail "unknown mode '$MODE'"
	;;
esac

dmesg >"$KM_run/dmesg.txt" 2>/dev/null
verdict $VERDICT_DONE
