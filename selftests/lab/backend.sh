#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The lab's NVDIMM backend came up as promised: the right nd bus, region and
# namespace, a /dev/pmem block device, DAX where the platform has it.

. "$(dirname "$0")/../lib/kmemlab.sh"
km_require_root

B=${KMEMLAB_BACKEND:-}
ND=/sys/bus/nd/devices

providers() {
	cat $ND/ndbus*/provider 2>/dev/null | sort | tr '\n' ' '
}

# every backend: the guest's hold on tracing's comm recorder under TCG
# (tools/vm/guest-init.sh), whose boot says kmemlab.accel=tcg (the
# kselftest tarball runs this test with a clean environment). The kernel's
# own record of what a test's event toggle patched is the oracle: every
# text_poke_bp()/text_poke_queue() address, caught by a kprobe event in an
# instance of this test's own, resolved through /proc/kallsyms. The toggle
# must patch its own event's sites (the probe works) and nothing of the
# scheduler (the hold works).
COMM=/sys/kernel/tracing/instances/kmemlab-comm
TR=/sys/kernel/tracing
POKES=$TR/instances/kmemlab-pokes
SCHED_SYMS='^(__schedule|try_to_wake_up|ttwu_[a-z_]*|wake_up_new_task|trace_sched_[a-z_]*|__SCT__tp_func_sched_[a-z_]*)$'

pokes_cleanup() {
	[[ -d $POKES ]] && echo 0 >$POKES/events/kprobes/enable 2>/dev/null
	[[ -d $POKES ]] && rmdir $POKES
	grep -q '^p:kprobes/kmemlab_poke' $TR/kprobe_events 2>/dev/null &&
		echo -e '-:kmemlab_poke_bp\n-:kmemlab_poke_queue' >>$TR/kprobe_events
	return 0
}

# the functions holding each patched address, one per line
poked_functions() {
	{
		grep -o 'addr=0x[0-9a-f]*' $POKES/trace | sed 's/addr=0x\(.*\)/\1 ~POKE/'
		grep ' [tT] ' /proc/kallsyms | cut -d' ' -f1,3
	} | LC_ALL=C sort | awk '$2 == "~POKE" { print last; next } { last = $2 }'
}

comm_held() {
	local ev=$TR/events/kmem/mm_page_alloc_extfrag/enable funcs rc=0

	grep -qw kmemlab.accel=tcg /proc/cmdline || { test ! -e $COMM; return; }
	[[ $(cat $COMM/events/oom/mark_victim/enable 2>/dev/null) == 1 ]] || return 1
	mkdir $POKES || return 1
	echo 'p:kmemlab_poke_bp text_poke_bp addr=%di:x64' >>$TR/kprobe_events &&
		echo 'p:kmemlab_poke_queue text_poke_queue addr=%di:x64' >>$TR/kprobe_events &&
		echo 1 >$POKES/events/kprobes/enable &&
		echo 1 >$ev && echo 0 >$ev && echo 0 >$POKES/events/kprobes/enable || rc=1
	funcs=$(poked_functions | sort | uniq -c)
	pokes_cleanup
	((rc == 0)) || return 1
	echo "$funcs" | sed 's/^ */patched: /'
	grep -q . <<<"$funcs" || { echo "no patch seen: the kprobe oracle saw nothing"; return 1; }
	! awk '{ print $2 }' <<<"$funcs" | grep -qE "$SCHED_SYMS" &&
		[[ $(cat $COMM/events/oom/mark_victim/enable) == 1 ]]
}

ktap_print_header
case $B in
none)
	ktap_set_plan 3
	km_check "none: no nd bus" test -z "$(providers)"
	km_check "none: no pmem block device" \
		bash -c '! compgen -G "/dev/pmem*"'
	;;
nfit)
	ktap_set_plan 6
	km_check "nfit: bus provider is ACPI.NFIT" \
		test "$(providers)" = "ACPI.NFIT "
	km_check "nfit: one pmem region of 512 MiB" \
		test "$(cat $ND/region0/size 2>/dev/null)" = $((512 << 20))
	km_check "nfit: namespace0.0 with /dev/pmem0" \
		test -b /dev/pmem0 -a -d $ND/namespace0.0
	# the label area makes the namespace reconfigurable (fsdax needs it)
	km_check "nfit: DIMM has a label area" \
		ndctl read-labels -o /dev/null nmem0
	km_check "nfit: ndctl lists the namespace" \
		bash -c "ndctl list -N | grep -q namespace0.0"
	;;
e820)
	ktap_set_plan 5
	km_check "e820: bus provider is e820" test "$(providers)" = "e820 "
	km_check "e820: one pmem region of 512 MiB" \
		test "$(cat $ND/region0/size 2>/dev/null)" = $((512 << 20))
	# a label-less io namespace; its pages are mapped, so ndctl calls it
	# fsdax (sysfs mode "memory") although there is no pfn device
	km_check "e820: label-less namespace0.0 (mode memory) with /dev/pmem0" \
		test -b /dev/pmem0 -a "$(cat $ND/namespace0.0/mode 2>/dev/null)" = memory \
		-a ! -e $ND/nmem0
	km_check "e820: /dev/pmem0 is DAX capable" \
		test "$(cat /sys/block/pmem0/queue/dax 2>/dev/null)" = 1
	;;
nfit_test)
	ktap_set_plan 6
	km_check "nfit_test: buses nfit_test.0 and nfit_test.1" \
		test "$(providers)" = "nfit_test.0 nfit_test.1 "
	km_check "nfit_test: replacement modules loaded from updates/" \
		bash -c "modinfo -n libnvdimm | grep -q /updates/"
	km_check "nfit_test: pmem namespaces with block devices" \
		bash -c 'compgen -G "/dev/pmem*"'
	# what makes nfit_test worth having: ARS, clear-error, injection
	km_check "nfit_test: a bus with ars_cap, ars_start, clear_error" \
		bash -c "grep -h 'ars_cap.*ars_start.*clear_error' $ND/ndbus*/commands"
	inject_status() {
		local ns

		for ns in $(ndctl list -N | sed -n 's/.*"dev":"\(namespace[0-9.]*\)".*/\1/p'); do
			ndctl inject-error --status "$ns" >/dev/null 2>&1 && { echo "$ns"; return 0; }
		done
		return 1
	}
	km_check "nfit_test: error injection available (inject-error --status)" inject_status
	;;
cxl)
	ktap_set_plan 7
	km_check "cxl: bus provider is CXL (cxl_pmem's nvdimm bridge)" \
		test "$(providers)" = "CXL "
	km_check "cxl: memory device mem0 with 512 MiB of persistent capacity" \
		bash -c "cxl list -m mem0 | grep -q '\"pmem_size\":$((512 << 20))'"
	km_check "cxl: region0 committed in the root decoder's window" \
		bash -c "cxl list -r region0 | grep -q '\"decode_state\":\"commit\"'"
	km_check "cxl: one pmem region of 512 MiB" \
		test "$(cat $ND/region0/size 2>/dev/null)" = $((512 << 20))
	km_check "cxl: namespace0.0 with /dev/pmem0" \
		test -b /dev/pmem0 -a -d $ND/namespace0.0
	# the label storage area holds the namespace (fsdax needs it)
	km_check "cxl: the memory device has a label area" \
		ndctl read-labels -o /dev/null nmem0
	;;
*)
	km_skip_all "not in the lab (KMEMLAB_BACKEND='$B')"
	;;
esac
km_cleanup pokes_cleanup
km_check "$B: under TCG, one event kept on in instances/kmemlab-comm holds the comm recorder: a test's event toggle patches its own sites, not the scheduler's" comm_held
km_finish
