#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Malformed messages and rings against vub: bad sizes, wrong fd counts,
# regions past their fd / overflowing / overlapping, descriptor loops,
# out-of-table addresses... each must get an error and a closed
# connection, never a crash, while another connection keeps being served.
# shellcheck source=vu_lib.sh
. "$(dirname "$0")/vu_lib.sh"
vu_setup
vu_plan 4

img=$VU_TMP/disk.img
truncate -s 16M "$img"
vu_start_vub mal --file "$img" --queues 2
pid=$VU_LAST_PID

timeout 180 "$VU_CHECK" --socket "$VU_TMP/mal.sock" --malformed \
	>"$VU_TMP/mal.txt" 2>&1
rc=$?
vu_diag <"$VU_TMP/mal.txt"
# every case vu-check --malformed has (Documentation/vhost-user.rst names
# them in its contract table and its list): each must be there and pass,
# and no other may appear (a new case is added here too)
cases="bad-size-huge bad-size-short bad-size-truncated bad-version
bad-request-unknown bad-fds-on-set-features bad-fds-kick-two bad-fds-kick-none
bad-fds-too-many bad-fds-mem-table bad-size-mem-table bad-region-past-fd
bad-region-overflow bad-region-zero bad-region-overlap bad-log-past-fd
bad-features-unoffered bad-config-range bad-vring-index bad-vring-num
bad-vring-num-running bad-vring-base-running bad-vring-addr-outside
bad-vring-addr-running bad-enable-no-protocol bad-desc-loop
bad-desc-outside-table bad-desc-straddles-region bad-desc-next-range
bad-desc-head-range bad-avail-idx-jump bad-indirect-outside
bad-indirect-nested bad-indirect-len"
missing=
for c in $cases bystander fresh-connection; do
	grep -Eq "^$c +pass " "$VU_TMP/mal.txt" || missing+=" $c"
done
want=$(wc -w <<<"$cases")
ncases=$(grep -c '^bad-' "$VU_TMP/mal.txt")
extra=$(grep -o '^bad-[a-z0-9-]*' "$VU_TMP/mal.txt" |
	grep -vxF -f <(tr -s ' \n' '\n' <<<"$cases") | tr '\n' ' ')
vu_result "all $want named malformed cases pass: error + closed connection, bystander served ($ncases run, exit $rc${missing:+, not passed:$missing}${extra:+, unknown: $extra})" \
	$((rc != 0 || ncases != want || ${#missing} || ${#extra}))

nerr=$(grep -c 'closing the connection' "$VU_TMP/mal.log")
if ((nerr >= ncases)) && grep -q 'hint:' "$VU_TMP/mal.log"; then
	vu_ok "vub named the cause of each rejection ($nerr errors logged)"
else
	vu_notok "vub named the cause of each rejection ($nerr errors for $ncases cases)"
	vu_diag <"$VU_TMP/mal.log"
fi

if kill -0 "$pid" 2>/dev/null &&
   timeout 60 "$VU_CHECK" --socket "$VU_TMP/mal.sock" >"$VU_TMP/after.txt" 2>&1; then
	vu_ok "vub alive and fully conformant after the malformed run"
else
	vu_notok "vub alive and fully conformant after the malformed run"
	vu_diag <"$VU_TMP/after.txt"
fi

vu_stop "$pid"
rc=$?
if ((rc == 0)) && grep -q 'exiting:' "$VU_TMP/mal.log" && [[ ! -e $VU_TMP/mal.sock ]]; then
	vu_ok "vub exits cleanly on SIGTERM and removes its socket"
else
	vu_notok "vub exits cleanly on SIGTERM and removes its socket (rc $rc)"
fi
vu_finish
