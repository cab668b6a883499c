#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# dos.sh - pre-authentication denial of service. A keyed destination has
# 100 connections open that never authenticate: 50 idle, 50 sending
# garbage (and staying open). A keyed source started then must have its
# link up within 1 s: the destination reads all pending connections
# together, drops each after a short HELLO deadline, and caps them per
# peer address (the oldest goes first).
source "$(dirname "$(readlink -f "$0")")/pcmig_lib.sh"
need_env

d=$WORK/dos
mkdir -p "$d"
tap_header 2
head -c 32 /dev/urandom >"$d/key"
chmod 600 "$d/key"
port=$((20000 + RANDOM % 20000))
start_bg dst "$PCMIG" dest --size 1M --listen "tcp:127.0.0.1:$port" \
	--key-file "$d/key" --workload none --linger 0 --run-after 0.1 \
	--ctl "$d/dst.ctl" --json --quiet >"$d/dst.json" 2>"$d/dst.err"
wait_sock "$d/dst.ctl" 10
n=0
for i in $(seq 1 100); do
	exec {fd}<>"/dev/tcp/127.0.0.1/$port" || continue
	n=$((n + 1))
	[ $((i % 2)) = 0 ] && printf 'GET / HTTP/1.0\r\n%0200d\r\n' 0 >&$fd
done
sleep 0.2
t0=$(date +%s%N)
start_bg src "$PCMIG" source --size 1M --connect "tcp:127.0.0.1:$port" \
	--key-file "$d/key" --threads 1 --manual-switch --ctl "$d/src.ctl" \
	--json --quiet >"$d/src.json" 2>"$d/src.err"
up_ms=-1
for i in $(seq 1 100); do
	if [ "$(ctl_field "$d/src.ctl" link)" = active ]; then
		up_ms=$((($(date +%s%N) - t0) / 1000000))
		break
	fi
	sleep 0.02
done
diag "$n hostile connections open; the source's link was up after $up_ms ms; dest rejected $(ctl_field "$d/dst.ctl" rejected_frames)"
check "a keyed source gets its link up within 1 s while 100 idle/garbage connections are open" \
	[ $n = 100 -a $up_ms -ge 0 -a $up_ms -le 1000 ]
"$PCMIG" ctl "$d/src.ctl" switchover >/dev/null 2>&1
for i in $(seq 1 100); do kill -0 "$src" 2>/dev/null || break; sleep 0.1; done
wait "$src"; rc=$?
check "and the migration completes (source exit 0)" [ $rc = 0 ]
tap_exit
