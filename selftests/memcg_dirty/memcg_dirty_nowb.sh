#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# memcg_dirty refuses to load without cgroup writeback and says why. Runs on
# the host: it boots its own guest with cgroup_disable=memory (the kernel
# command line cannot change inside a running guest).

. "$(dirname "$0")/../lib/kmemlab.sh"
km_require_root
[[ ${KMEMLAB_BACKEND:-} == host ]] || km_skip_all "boots its own VM (host_tests in settings)"

ktap_print_header
ktap_set_plan 3

# exit 3: memcg was not disabled after all; 4: the module loaded
out=$(LAB_APPEND=cgroup_disable=memory "$KMEMLAB_DIR/tools/vm/lab" run -p none -m 1G -c '
	grep -qw cgroup_disable=memory /proc/cmdline &&
		! grep -qw memory /sys/fs/cgroup/cgroup.controllers || exit 3
	if modprobe memcg_dirty; then
		rmmod memcg_dirty
		exit 4
	fi
	test ! -d /sys/module/memcg_dirty || exit 4
	dmesg | grep "memcg_dirty.*refusing to load"' 2>&1)
rc=$?
echo "$out" | sed 's/^/# /'

if ((rc == 3)); then
	ktap_test_fail "guest booted with the memory controller disabled"
else
	ktap_test_pass "guest booted with the memory controller disabled"
fi
if ((rc == 4)); then
	ktap_test_fail "memcg_dirty refuses to load without cgroup writeback"
elif ((rc == 3)); then
	ktap_test_skip "memcg_dirty refuses to load without cgroup writeback (no such guest)"
else
	ktap_test_pass "memcg_dirty refuses to load without cgroup writeback"
fi
if ((rc == 0)) && grep -q "no cgroup writeback" <<<"$out"; then
	ktap_test_pass "the refusal names the cause (no cgroup writeback), no kernel failure"
else
	ktap_test_fail "the refusal names the cause (no cgroup writeback), no kernel failure (exit $rc)"
fi
km_finish
