#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# stall.sh - every channel is watched and every protocol wait has a
# deadline. A relay black-holes the bulk channel's source-to-destination
# bytes from COMPLETE on (a per-flow black hole: ECMP path loss, conntrack
# dropping one flow) while the main channel keeps flowing. Both sides must
# notice within about the link timeout (bulk heartbeats, the destination's
# bulk read deadline, the source's COMPLETE_ACK deadline), pause, and
# complete over a working relay. Then --give-up-after: a source that never
# reaches its destination and a destination no source reaches stop with
# state "failed", "gave_up":true and exit status 3.
source "$(dirname "$(readlink -f "$0")")/pcmig_lib.sh"
need_env

SIZE=${PCMIG_SIZE_STALL:-16M}
TMO=1000
in_vm && TMO=3000
d=$WORK/stall
mkdir -p "$d"
tap_header 5

start_bg dst "$PCMIG" dest --size "$SIZE" --listen "unix:$d/dst.sock" \
	--workload ro --threads 1 --timeout $TMO --linger 5000 \
	--run-after 0.2 --ctl "$d/dst.ctl" --json --quiet \
	>"$d/dst.json" 2>"$d/dst.err"
start_bg relay "$PCMIG_RELAY" relay --listen "unix:$d/relay.sock" \
	--connect "unix:$d/dst.sock" --blackhole-from COMPLETE \
	2>"$d/relay.err"
wait_sock "$d/dst.ctl" 10
wait_sock "$d/relay.sock" 10
start_bg src "$PCMIG" source --size "$SIZE" --connect "unix:$d/relay.sock" \
	--threads 1 --timeout $TMO --rounds 2 --ctl "$d/src.ctl" --json \
	--quiet >"$d/src.json" 2>"$d/src.err"
wait_sock "$d/src.ctl" 10

# when did the black hole open (the relay's wall-clock stamp)?
t_black=
for i in $(seq 1 300); do
	t_black=$(sed -n 's/.*black hole from COMPLETE at //p' "$d/relay.err" | head -1)
	[ -n "$t_black" ] && break
	sleep 0.1
done
# both sides must count a failure (paused) within the limit
limit_ms=$((TMO * 2 + 1500))
t_both=
for i in $(seq 1 $(((limit_ms + 10000) / 100))); do
	fs=$(ctl_field "$d/src.ctl" failures)
	fd=$(ctl_field "$d/dst.ctl" failures)
	if [ "$fs" != "?" ] && [ "$fd" != "?" ] && [ "$fs" -ge 1 ] && [ "$fd" -ge 1 ]; then
		t_both=$(date +%s.%N)
		break
	fi
	sleep 0.1
done
el_ms=-1
[ -n "$t_black" ] && [ -n "$t_both" ] &&
	el_ms=$(awk -v a="$t_black" -v b="$t_both" 'BEGIN {printf "%d", (b - a) * 1000}')
diag "black hole opened at ${t_black:-never}; both sides paused ${el_ms} ms later (limit $limit_ms ms, link timeout $TMO ms)"
diag "dest: $(ctl_field "$d/dst.ctl" last_error); source: $(ctl_field "$d/src.ctl" last_error)"
check "bulk stall at COMPLETE: both sides pause within 2x the link timeout" \
	[ -n "$t_black" -a "$el_ms" -ge 0 -a "$el_ms" -le "$limit_ms" ]

# recover over a relay that forwards everything
kill -9 "$relay" 2>/dev/null
wait "$relay" 2>/dev/null
start_bg relay "$PCMIG_RELAY" relay --listen "unix:$d/relay.sock" \
	--connect "unix:$d/dst.sock" 2>/dev/null
for i in $(seq 1 300); do kill -0 "$src" 2>/dev/null || break; sleep 0.1; done
kill -9 "$src" 2>/dev/null
wait "$src"; rc_src=$?
for i in $(seq 1 100); do kill -0 "$dst" 2>/dev/null || break; sleep 0.1; done
kill -9 "$dst" 2>/dev/null
wait "$dst"; rc_dst=$?
diag "after recovery: source rc $rc_src, dest rc $rc_dst, recoveries $(json "$d/dst.json" recoveries)"
check "stall recovered: completed, digests equal, live memory identical" \
	[ "$rc_src" = 0 -a "$rc_dst" = 0 -a \
	  "$(json "$d/dst.json" recoveries)" -ge 1 -a \
	  "$(json "$d/src.json" digest_source)" = "$(json "$d/dst.json" digest_destination)" -a \
	  "$(json "$d/dst.json" memory_identical)" = true ]

# --give-up-after: nobody listens at the source's address
t0=$SECONDS
timeout 30 "$PCMIG" source --size 1M --connect "unix:$d/nobody.sock" \
	--threads 1 --timeout $TMO --give-up-after 2s --json --quiet \
	>"$d/gsrc.json" 2>"$d/gsrc.err"
rc=$?
diag "source --give-up-after 2s: rc $rc after $((SECONDS - t0)) s: $(json "$d/gsrc.json" last_error)"
check "source --give-up-after: exit 3, state failed, gave_up, within 2-10 s" \
	[ $rc = 3 -a "$(json "$d/gsrc.json" state)" = failed -a \
	  "$(json "$d/gsrc.json" gave_up)" = true -a $((SECONDS - t0)) -le 10 ]
# a destination no source reaches (held paused by the operator, too)
t0=$SECONDS
timeout 30 "$PCMIG" dest --size 1M --listen "unix:$d/lonely.sock" \
	--threads 1 --timeout $TMO --give-up-after 2s --json --quiet \
	>"$d/gdst.json" 2>"$d/gdst.err"
rc=$?
diag "dest --give-up-after 2s: rc $rc after $((SECONDS - t0)) s: $(json "$d/gdst.json" last_error)"
check "dest --give-up-after: exit 3, state failed, gave_up, within 2-10 s" \
	[ $rc = 3 -a "$(json "$d/gdst.json" state)" = failed -a \
	  "$(json "$d/gdst.json" gave_up)" = true -a $((SECONDS - t0)) -le 10 ]
# a bad duration is a usage error
"$PCMIG" dest --size 1M --listen "unix:$d/x.sock" --give-up-after soon \
	>/dev/null 2>"$d/bad.err"
rc=$?
grep -q "give-up-after" "$d/bad.err"
check "--give-up-after soon: exit 2 naming the option" [ $rc = 2 -a $? = 0 ]
tap_exit
