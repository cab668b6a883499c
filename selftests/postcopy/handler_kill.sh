#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# handler_kill.sh - negative control for the destination's fault handler.
#
# In postcopy the destination workload (a separate process) faults on pages
# that have not arrived. If the handler (pcmig dest) is killed, those pages
# can never arrive: the workload must die, not run on zero pages. pcmig's
# workload keeps its own reference to the userfaultfd (so the kernel keeps
# the range registered and faulting threads keep waiting) and has
# PR_SET_PDEATHSIG=SIGKILL, so it is killed.
#
# The same scenario with --unsafe-drop-uffd (what CRIU's lazy-pages restore
# does: the restored task hands its userfaultfd to the daemon and closes its
# own copy) must show the hazard: the workload survives its handler and
# reads zero pages, which its checks report. That case proves the check
# would catch a handler that let the workload see zeros.
source "$(dirname "$(readlink -f "$0")")/pcmig_lib.sh"
need_env

SIZE=${PCMIG_KILL_SIZE:-512M}
tap_header 5

# run NAME EXTRA_DEST_ARGS: postcopy, link paused, handler SIGKILLed
run() {
	local name=$1 extra=$2 d=$WORK/$1 src dst i
	mkdir -p "$d"
	start_bg dst "$PCMIG" dest --size "$SIZE" --listen "unix:$d/d.sock" \
		--threads 1 --ctl "$d/dst.ctl" --pidfile "$d/wl.pid" --quiet \
		$extra >"$d/dst.out" 2>"$d/dst.err"
	wait_sock "$d/d.sock" 10
	start_bg src "$PCMIG" source --size "$SIZE" --connect "unix:$d/d.sock" \
		--threads 1 --bandwidth 1M --manual-switch --ctl "$d/src.ctl" \
		--quiet >"$d/src.out" 2>"$d/src.err"
	wait_sock "$d/src.ctl" 10
	sleep 0.5
	"$PCMIG" ctl "$d/src.ctl" switchover >/dev/null
	# pause the link right after RUN so the workload is certainly
	# waiting on missing pages when its handler dies
	for i in $(seq 1 500); do
		"$PCMIG" ctl "$d/dst.ctl" status --json 2>/dev/null |
			grep -q '"phase":"postcopy-active"' && break
	done
	"$PCMIG" ctl "$d/dst.ctl" pause >/dev/null 2>&1
	phase=$(ctl_field "$d/dst.ctl" phase)
	sleep 0.5
	missing=$(( $(ctl_field "$d/dst.ctl" npages) - $(ctl_field "$d/dst.ctl" pages_done) ))
	wpid=$(cat "$d/wl.pid")
	kill -0 "$wpid" 2>/dev/null; wl_alive_before=$?
	kill -9 "$dst"
	wait "$dst" 2>/dev/null
	sleep 1.5
	if kill -0 "$wpid" 2>/dev/null &&
	   ! grep -q '^State:.*zombie' "/proc/$wpid/status" 2>/dev/null; then
		wl_alive_after=1
	else
		wl_alive_after=0
	fi
	# the unsafe workload reports what it saw, then exits
	for i in $(seq 1 30); do
		kill -0 "$wpid" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$src" "$wpid" 2>/dev/null
	wait "$src" 2>/dev/null
	diag "$name: phase at kill $phase, $missing pages missing, workload alive after: $wl_alive_after"
	sed 's/^/# /' "$d/dst.err" | grep -v '^# $' | tail -3
}

run safe ""
check "safe: the kill happened in postcopy with pages missing" \
	[ "$phase" = postcopy-active -a "$missing" -gt 0 -a "$wl_alive_before" = 0 ]
check "safe: workload killed with its handler" [ "$wl_alive_after" = 0 ]
no_zero_report() { ! grep -q "zero pages" "$WORK/safe/dst.err"; }
check "safe: workload never reported a zero page" no_zero_report

run unsafe --unsafe-drop-uffd
outlived() {
	[ "$wl_alive_after" = 1 ] || grep -q "handler gone" "$WORK/unsafe/dst.err"
}
check "unsafe (CRIU-like) control: workload outlived its handler" outlived
zeros=$(sed -n 's/.* \([0-9][0-9]*\) zero pages.*/\1/p' "$WORK/unsafe/dst.err")
check "unsafe (CRIU-like) control: workload read zero pages (${zeros:-0}), the check sees them" \
	[ "${zeros:-0}" -gt 0 ]
tap_exit
