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

# stage 1's busybox (in memory) for the lab's own plumbing
BB=/run/kmemlab/busybox

verdict() {
	$BB sync
	$BB umount "$KM_results" "$KM_run" 2>/dev/null
	printf "\\$(printf '%03o' "$1")" | $BB dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
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

# sleep without an exec: a read that times out on a pipe nobody writes
nap() {
	read -r -t "$1" <> <(:) || :
}

# A virtio-serial port by name; devtmpfs names it /dev/vportNpM. A port
# gets its name file when the host's name message arrives, a console port
# never: wait up to a second for the name.
vport() {
	local p i

	for ((i = 0; i < 20; i++)); do
		for p in /sys/class/virtio-ports/*; do
			[[ -r $p/name && $(<"$p/name") == "$1" ]] &&
				{ echo "/dev/${p##*/}"; return 0; }
		done
		nap 0.05
	done
	return 1
}

# shellcheck source=/dev/null
source "$KM_run/job" || labfail "cannot read job file $KM_run/job"

CTL=$(vport kmemlab.ctl) || CTL=
[[ $MODE == shell ]] && CONSOLE=/dev/ttyS0 || CONSOLE=
[[ $MODE == cmd ]] && CONSOLE=/dev/hvc0

echo "kmemlab: stage2 start $(</proc/uptime)" >/dev/kmsg

# Stage 1 mounted the pseudo filesystems and loaded the modules the host
# resolved (coldplug and the NVDIMM backend). A virtio device still without
# a driver (an extra --qemu-arg device) gets one here, the small part of
# what udev would do.
coldplug() {
	local d aliases=()

	for d in /sys/bus/virtio/devices/*; do
		[[ -e $d/driver || ! -f $d/modalias ]] || aliases+=("$(<"$d/modalias")")
	done
	((${#aliases[@]} == 0)) || modprobe -q -a -b "${aliases[@]}" 2>/dev/null
	return 0
}

# CXL: the memory device probes asynchronously; then a pmem region over it
# in the root decoder's window, and a raw namespace in it (what the nfit
# backend starts with; tests make it fsdax). cxl_pmem's nvdimm bridge
# gives libnvdimm the region.
setup_cxl() {
	local i region

	for ((i = 0; i < 100; i++)); do
		[[ -e /sys/bus/cxl/devices/mem0 && -e /sys/bus/cxl/devices/nvdimm-bridge0 ]] && break
		nap 0.1
	done
	cxl create-region -m -t pmem -d decoder0.0 -w 1 mem0 >/dev/null ||
		{ log "cxl create-region failed"; return 1; }
	for ((i = 0; i < 100; i++)); do
		region=$(compgen -G '/sys/bus/nd/devices/region*' | head -1)
		[[ -n $region ]] && break
		nap 0.1
	done
	[[ -n $region ]] || { log "no nd region for the CXL region"; return 1; }
	ndctl create-namespace -r "${region##*/}" -m raw >/dev/null ||
		{ log "ndctl create-namespace on ${region##*/} failed"; return 1; }
}

# nd probing is asynchronous: wait for the backend's namespaces.
setup_backend() {
	local i

	case $BACKEND in
	none) return 0 ;;
	nfit | e820 | nfit_test) ;;
	cxl) setup_cxl || return 1 ;;
	*) return 1 ;;
	esac
	for ((i = 0; i < 100; i++)); do
		compgen -G '/sys/bus/nd/devices/namespace*' >/dev/null && return 0
		nap 0.1
	done
	return 1
}

# Under TCG with one thread per vCPU (QEMU 7.2), the kernel's text patching
# (text_poke_bp()) of a site another vCPU runs all the time can leave that
# vCPU an int3 the kernel has already taken out: "Oops: int3" at
# __schedule+0x339 (sched_switch) or in try_to_wake_up() (sched_wakeup).
# Enabling or disabling any trace event patches both, since tracing
# records comms while an event is on; every event toggle of a test risked
# it (Documentation/lab.rst, "Text patching under TCG"). One rare event kept
# on in an instance of our own keeps that recorder on for the whole boot.
hold_comm_recorder() {
	local i=/sys/kernel/tracing/instances/kmemlab-comm

	[[ ${KM_accel:-} == tcg ]] || return 0
	mkdir "$i" && echo 4 >"$i/buffer_size_kb" &&
		echo 1 >"$i/events/oom/mark_victim/enable"
}

coldplug
hold_comm_recorder ||
	labfail "could not hold tracing's comm recorder (instances/kmemlab-comm): every trace event toggle would patch sched_switch under TCG"
setup_backend || labfail "NVDIMM backend '$BACKEND' did not come up (no namespace in /sys/bus/nd/devices)"

export KMEMLAB_DIR KMEMLAB_BUILD KMEMLAB_BIN KMEMLAB_RESULTS KMEMLAB_BACKEND=$BACKEND
[[ -z ${KMEMLAB_NVDIMM_FILE:-} ]] || export KMEMLAB_NVDIMM_FILE
export KMEMLAB_ACCEL KMEMLAB_KERNEL
export KMEMLAB_KVER=$KM_kver PATH=$KMEMLAB_BIN:$PATH
read -r up _ </proc/uptime
log "ready: backend=$BACKEND mode=$MODE uptime=${up}s"

case $MODE in
shell)
	[[ -n $TTY_SIZE ]] && stty -F /dev/ttyS0 rows "${TTY_SIZE% *}" cols "${TTY_SIZE#* }"
	cat >"$CONSOLE" <<-EOF

	kmemlab test VM: kernel $(uname -r), NVDIMM backend '$BACKEND'
	host root read-only at /; results in $KMEMLAB_RESULTS (shared with the host)
	our modules: modprobe <name> (see $KMEMLAB_DIR); 'exit' or Ctrl-D powers off

	EOF
	(cd "$KMEMLAB_DIR" && exec $BB setsid -c bash -l <"$CONSOLE" >"$CONSOLE" 2>&1)
	;;
cmd)
	(cd "$KMEMLAB_DIR" && exec $BB setsid -c bash -c "$CMD" <"$CONSOLE" >"$CONSOLE" 2>&1)
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

$BB dmesg >"$KM_run/dmesg.txt" 2>/dev/null
verdict $VERDICT_DONE
