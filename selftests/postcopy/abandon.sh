#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# abandon.sh - a source lost for good, under each --on-source-lost policy.
#
# Each case starts a migration with the destination's workload process
# stopped, switches to postcopy at once (the source's stream is limited to
# 64 KB/s: nearly every page is still on the source), waits for 32 pages
# to arrive, pauses the destination's link, SIGKILLs the source and lets
# the workload run: its threads fault on pages that can never arrive.
#   poison  `pcmig ctl DST abandon` makes every missing page a memory error
#           (UFFDIO_POISON): each read of one raises SIGBUS with si_code
#           BUS_MCEERR_AR (CONFIG_MEMORY_FAILURE) at that page, which the
#           demo workload counts and survives; the pages that did arrive
#           keep verifying; no read ever returns a zero page; exit 4.
#   kill    abandon SIGKILLs the workload; exit 4.
#   wait    (the default) abandon is refused and changes nothing; the
#           workload keeps waiting; --give-up-after then ends the
#           destination with exit 3 within a deadline (the workload, stuck in
#           its faults, is killed: before, the destination hung for good
#           reading its counts). abandon on the source is refused too.
source "$(dirname "$(readlink -f "$0")")/pcmig_lib.sh"
need_env

SIZE=${PCMIG_ABANDON_SIZE:-4M}
# the kernel logs every memory-error SIGBUS ("MCE: Killing ..."): a small
# region keeps that to one line per lost page
tap_header 13

# start NAME DEST_ARGS...: postcopy with the source gone and the link paused
start() {
	local name=$1 i
	shift
	d=$WORK/$name
	mkdir -p "$d"
	start_bg dst "$PCMIG" dest --size "$SIZE" --listen "unix:$d/d.sock" \
		--threads 2 --ctl "$d/dst.ctl" --pidfile "$d/wl.pid" --quiet \
		--json "$@" >"$d/dst.json" 2>"$d/dst.err"
	wait_sock "$d/d.sock" 30
	# the workload stays stopped until the source is gone, so that most
	# pages are still missing then (it would fault them all in meanwhile)
	for i in $(seq 1 100); do
		[ -s "$d/wl.pid" ] && break
		sleep 0.05
	done
	wpid=$(cat "$d/wl.pid")
	kill -STOP "$wpid"
	start_bg src "$PCMIG" source --size "$SIZE" --connect "unix:$d/d.sock" \
		--threads 1 --bandwidth 64K --manual-switch --ctl "$d/src.ctl" \
		--quiet >"$d/src.out" 2>"$d/src.err"
	wait_sock "$d/src.ctl" 30
	[ -e "$WORK/src-abandon.out" ] ||
		"$PCMIG" ctl "$d/src.ctl" abandon >"$WORK/src-abandon.out" 2>&1
	"$PCMIG" ctl "$d/src.ctl" switchover >/dev/null
	for i in $(seq 1 600); do
		"$PCMIG" ctl "$d/dst.ctl" status --json 2>/dev/null |
			grep -q '"phase":"postcopy-active"' && break
		sleep 0.05
	done
	# some pages arrive (they must keep verifying): 16 a second
	for i in $(seq 1 300); do
		[ "$(ctl_field "$d/dst.ctl" pages_done)" -ge 32 ] 2>/dev/null && break
		sleep 0.1
	done
	"$PCMIG" ctl "$d/dst.ctl" pause >/dev/null
	phase=$(ctl_field "$d/dst.ctl" phase)
	kill -9 "$src"
	wait "$src" 2>/dev/null
	missing=$(($(ctl_field "$d/dst.ctl" npages) - $(ctl_field "$d/dst.ctl" pages_done)))
	kill -CONT "$wpid"
	diag "$name: phase $phase, $missing pages missing when the source died"
}

# finish SECONDS: the destination's exit status, or 124 if still running
finish() {
	local i
	for i in $(seq 1 $(($1 * 10))); do
		kill -0 "$dst" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$dst" 2>/dev/null; then
		kill -9 "$dst"
		wait "$dst" 2>/dev/null
		rc=124
	else
		wait "$dst"
		rc=$?
	fi
	sed 's/^/# /' "$d/dst.err" | tail -3
}

f() { json "$d/dst.json" "$1"; }

# the si_code a memory-error SIGBUS carries on this kernel
config=/boot/config-$(uname -r)
if [ -r "$config" ] && grep -q '^CONFIG_MEMORY_FAILURE=y' "$config"; then
	want=mceerr
elif [ -r /proc/config.gz ] && zgrep -q '^CONFIG_MEMORY_FAILURE=y' /proc/config.gz; then
	want=mceerr
elif [ -r "$config" ] || [ -r /proc/config.gz ]; then
	want=other	# without CONFIG_MEMORY_FAILURE: BUS_ADRERR
else
	want=unknown
fi

# ---- poison
start poison --on-source-lost poison --run-after 3
set_up=$([ "$phase" = postcopy-active ] && [ "$missing" -gt 0 ] && echo 1)
"$PCMIG" ctl "$d/dst.ctl" abandon >"$d/abandon.out"
finish 60
diag "poison: $(cat "$d/abandon.out"); $(f pages_poisoned) poisoned; workload: $(f checks) checks, SIGBUS $(f sigbus_mceerr) BUS_MCEERR_AR + $(f sigbus_other) other, $(f sigbus_bad_addr) misplaced, $(f errors) errors ($(f first_error))"
accepted() {
	[ -n "$set_up" ] && [ "$rc" = 4 ] && [ "$(f state)" = failed ] &&
		[ "$(f abandoned)" = true ] && grep -q '"ok": true' "$d/abandon.out"
}
check "poison: in postcopy with pages missing, abandon accepted, exit 4, state failed, abandoned" accepted
check "poison: every missing page poisoned ($(f pages_poisoned) of $missing)" \
	[ "$(f pages_poisoned)" = "$missing" ]
sig=$(($(f sigbus_mceerr) + $(f sigbus_other)))
case $want in
mceerr) code_ok() { [ "$(f sigbus_mceerr)" -gt 0 ] && [ "$(f sigbus_other)" = 0 ]; } ;;
other) code_ok() { [ "$(f sigbus_other)" -gt 0 ] && [ "$(f sigbus_mceerr)" = 0 ]; } ;;
*) code_ok() { [ "$sig" -gt 0 ]; } ;;
esac
check "poison: reads of missing pages got SIGBUS ($want: $(f sigbus_mceerr) BUS_MCEERR_AR, $(f sigbus_other) other)" code_ok
check "poison: each SIGBUS at the page read, at most one per poisoned page ($sig <= $(f pages_poisoned))" \
	[ "$(f sigbus_bad_addr)" = 0 -a "$sig" -le "$(f pages_poisoned)" ]
check "poison: the pages that arrived still verify, no zero page ($(f checks) checks, $(f errors) errors, $(f zero_pages) zero)" \
	[ "$(f checks)" -gt "$sig" -a "$(f errors)" = 0 -a "$(f zero_pages)" = 0 ]

# ---- kill
start kill --on-source-lost kill
"$PCMIG" ctl "$d/dst.ctl" abandon >"$d/abandon.out"
finish 60
check "kill: abandon accepted, exit 4, abandoned" \
	[ "$rc" = 4 -a "$(f abandoned)" = true ]
check "kill: the workload was killed ($(f first_error))" \
	grep -q 'killed by signal 9 (--on-source-lost kill)' "$d/dst.json"
check "kill: the workload process is gone" [ ! -d "/proc/$wpid" ]

# ---- wait (the default), then --give-up-after (long enough for the checks
# before it on a loaded TCG guest, where each `pcmig ctl` takes seconds)
start wait --give-up-after 25s
set_up=$([ "$phase" = postcopy-active ] && [ "$missing" -gt 0 ] && echo 1)
"$PCMIG" ctl "$d/dst.ctl" abandon >"$d/abandon.out"
abandon_rc=$?
state=$(ctl_field "$d/dst.ctl" state)
diag "wait: $(cat "$d/abandon.out")"
refused() {
	[ -n "$set_up" ] && [ "$abandon_rc" = 1 ] &&
		grep -q '"ok": false.*--on-source-lost wait' "$d/abandon.out"
}
check "wait: abandon refused with the cause (policy wait), exit 1" refused
check "wait: nothing changed (state $state, workload alive)" \
	[ "$state" = paused -a -d "/proc/$wpid" ]
in_faults() {
	local i
	for i in $(seq 1 50); do
		grep -qs handle_userfault /proc/"$wpid"/task/*/wchan && return 0
		sleep 0.1
	done
	return 1
}
check "wait: the workload waits in its faults" in_faults
finish 120
diag "wait: exit $rc; $(f first_error)"
gave_up() {
	[ "$rc" = 3 ] && [ "$(f gave_up)" = true ] &&
		grep -q 'did not stop within' "$d/dst.json"
}
check "wait: --give-up-after ends it: exit 3, gave up, the stuck workload killed" gave_up
check "abandon on a source's control socket is refused" \
	grep -q '"ok": false.*destination' "$WORK/src-abandon.out"
tap_exit
