#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# In the lab guest: turn a trace event on and off as fast as possible while
# both CPUs switch tasks all the time, for DUR seconds, and print how many
# toggles ran. Each toggle makes the kernel patch the event's call sites
# (text_poke_bp()), and, unless something holds tracing's comm recorder,
# the sched_switch and sched_wakeup sites too. Under TCG with one thread per
# vCPU (QEMU 7.2) a patched site that the other vCPU runs all the time ends
# in "Oops: int3" (Documentation/lab.rst, "Text patching under TCG").
#
#   tools/vm/lab run -p none -c 'tools/vm/text-poke-repro.sh [--release] [EVENT [DUR]]'
#
# EVENT (default kmem/mm_page_alloc_extfrag, a site nothing runs) is
# system/event under events/; timer/timer_init is one a kthread runs all
# the time. --release first turns off the lab's hold (instances/kmemlab-comm),
# as the guest was before it; the guest is for this run only.
set -euo pipefail

T=/sys/kernel/tracing
if [[ ${1:-} == --release ]]; then
	echo 0 >"$T/instances/kmemlab-comm/events/oom/mark_victim/enable"
	rmdir "$T/instances/kmemlab-comm"
	shift
fi
ev=$T/events/${1:-kmem/mm_page_alloc_extfrag}/enable
dur=${2:-120}
[[ -w $ev ]] || { echo "no event $ev: name one under $T/events" >&2; exit 2; }
if [[ -d $T/instances/kmemlab-comm ]]; then
	echo "comm recorder held (instances/kmemlab-comm)"
else
	echo "comm recorder not held: each toggle patches sched_switch and sched_wakeup"
fi

# pipes between two processes per CPU: a task switch per pipe buffer
for _ in 1 2; do
	(while :; do yes | head -c 256M >/dev/null; done) &
done
trap 'kill $(jobs -p) 2>/dev/null || :' EXIT

n=0
end=$((SECONDS + dur))
while ((SECONDS < end)); do
	echo 1 >"$ev"
	echo 0 >"$ev"
	n=$((n + 1))
	((n % 500)) || echo "$n toggles, $((end - SECONDS)) s left"
done
echo "toggles=$n in $dur s, no kernel report"
