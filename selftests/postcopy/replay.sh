#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# replay.sh - a keyed migration cannot be replayed, and weak keys are
# refused. A relay records every source-to-destination byte of a keyed
# 2 MiB migration (which must complete: the control). The recording is
# then sent again, with its timing, to a fresh `pcmig dest` with the same
# key file: the
# destination contributes a fresh nonce to the link keys, so the recorded
# frames fail their tags. It must not complete, must count the rejected
# frame, and must still be in phase "new" (no session or epoch adopted).
# Key files: a passphrase and a group-readable file are refused (exit 2).
source "$(dirname "$(readlink -f "$0")")/pcmig_lib.sh"
need_env

d=$WORK/replay
mkdir -p "$d/rec"
tap_header 5
head -c 32 /dev/urandom >"$d/key"
chmod 600 "$d/key"

start_bg dst "$PCMIG" dest --size 2M --listen "unix:$d/dst.sock" \
	--key-file "$d/key" --workload none --linger 0 --run-after 0.1 \
	--json --quiet >"$d/dst.json" 2>"$d/dst.err"
start_bg relay "$PCMIG_RELAY" relay --listen "unix:$d/relay.sock" \
	--connect "unix:$d/dst.sock" --record "$d/rec" 2>/dev/null
wait_sock "$d/dst.sock" 10
wait_sock "$d/relay.sock" 10
timeout 60 "$PCMIG" source --size 2M --connect "unix:$d/relay.sock" \
	--key-file "$d/key" --threads 1 --rounds 1 --json --quiet \
	>"$d/src.json" 2>"$d/src.err"
rc_src=$?
for i in $(seq 1 50); do kill -0 "$dst" 2>/dev/null || break; sleep 0.1; done
wait "$dst"; rc_dst=$?
kill -9 "$relay" 2>/dev/null
wait "$relay" 2>/dev/null
diag "recorded: $(stat -c %s "$d"/rec/conn-* 2>/dev/null | tr '\n' ' ')bytes; source rc $rc_src, dest rc $rc_dst"
check "control: the recorded keyed migration completed (2 connections)" \
	[ $rc_src = 0 -a $rc_dst = 0 -a -s "$d/rec/conn-0" -a -s "$d/rec/conn-1" ]

# replay it to a fresh destination with the same key, with the recorded
# timing (everything after each connection's HELLO 0.3 s later). No
# workload on either destination: no page requests, so the recorded
# stream is all a destination needs (on aa22eda this replay completes).
start_bg dst2 "$PCMIG" dest --size 2M --listen "unix:$d/dst2.sock" \
	--key-file "$d/key" --workload none --linger 0 --run-after 0.1 \
	--ctl "$d/dst2.ctl" --json --quiet >"$d/dst2.json" 2>"$d/dst2.err"
wait_sock "$d/dst2.ctl" 10
wait_sock "$d/dst2.sock" 10	# listening (the ctl socket comes first)
start_bg rp "$PCMIG_RELAY" relay --replay "$d/rec" \
	--connect "unix:$d/dst2.sock" 2>"$d/replay.err"
# a replay that worked finishes as fast as the original (well under 5 s)
sleep 5
phase=$(ctl_field "$d/dst2.ctl" phase)
rej=$(ctl_field "$d/dst2.ctl" rejected_frames)
err=$(ctl_field "$d/dst2.ctl" last_error)
kill -0 "$dst2" 2>/dev/null && running=1 || running=0
kill -9 "$rp" 2>/dev/null
wait "$rp" 2>/dev/null
kill -9 "$dst2" 2>/dev/null
wait "$dst2" 2>/dev/null; rc2=$?
[ $running = 1 ] && rc2=running
diag "replayed to a fresh destination: $rc2, phase $phase, rejected $rej: $err"
check "replay to a fresh destination with the same key: not completed" \
	[ "$rc2" != 0 -a "$(json "$d/dst2.json" state)" != completed ]
case $err in *authentication*) tag=1;; *) tag=0;; esac
rej=${rej//[!0-9]/}
check "replay: rejected by the link key's tag, nothing adopted (phase new)" \
	[ "${rej:-0}" -ge 1 -a "$phase" = new -a $tag = 1 ]

# key files
echo "correct horse battery staple" >"$d/weak"
chmod 600 "$d/weak"
timeout 10 "$PCMIG" dest --size 1M --listen "unix:$d/w.sock" \
	--key-file "$d/weak" --quiet >/dev/null 2>"$d/weak.err"
rc=$?
sed 's/^/# /' "$d/weak.err"
grep -q "too weak" "$d/weak.err"
check "a passphrase key file is refused (exit 2, says why)" [ $rc = 2 -a $? = 0 ]
chmod 644 "$d/key"
timeout 10 "$PCMIG" dest --size 1M --listen "unix:$d/w.sock" \
	--key-file "$d/key" --quiet >/dev/null 2>"$d/perm.err"
rc=$?
sed 's/^/# /' "$d/perm.err"
grep -q "readable by group or others" "$d/perm.err"
check "a group/world-readable key file is refused (exit 2)" [ $rc = 2 -a $? = 0 ]
tap_exit
