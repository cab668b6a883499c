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

# run_one NAME HOSTILE: a fresh keyed destination, HOSTILE connections
# (half idle, half garbage) held open, then a keyed source; sets up_ms
# (source start -> its link active, -1: never) and rc (source exit)
run_one() {
	local name=$1 hostile=$2 port i t0 fds=()
	port=$((20000 + RANDOM % 20000))
	start_bg dst "$PCMIG" dest --size 1M --listen "tcp:127.0.0.1:$port" \
		--key-file "$d/key" --workload none --linger 0 --run-after 0.1 \
		--ctl "$d/$name.dst.ctl" --json --quiet >"$d/$name.dst.json" \
		2>"$d/$name.dst.err"
	wait_sock "$d/$name.dst.ctl" 10
	for i in $(seq 1 50); do
		exec {fd}<>"/dev/tcp/127.0.0.1/$port" 2>/dev/null && break
		sleep 0.1
	done
	exec {fd}<&-
	n=0
	for i in $(seq 1 "$hostile"); do
		exec {fd}<>"/dev/tcp/127.0.0.1/$port" || continue
		fds+=("$fd")
		n=$((n + 1))
		[ $((i % 2)) = 0 ] && printf 'GET / HTTP/1.0\r\n%0200d\r\n' 0 >&$fd
	done
	sleep 0.2
	t0=$(date +%s%N)
	start_bg src "$PCMIG" source --size 1M --connect "tcp:127.0.0.1:$port" \
		--key-file "$d/key" --threads 1 --manual-switch \
		--ctl "$d/$name.src.ctl" --json --quiet >"$d/$name.src.json" \
		2>"$d/$name.src.err"
	up_ms=-1
	for i in $(seq 1 250); do
		if [ "$(ctl_field "$d/$name.src.ctl" link)" = active ]; then
			up_ms=$((($(date +%s%N) - t0) / 1000000))
			break
		fi
		sleep 0.02
	done
	"$PCMIG" ctl "$d/$name.src.ctl" switchover >/dev/null 2>&1
	for i in $(seq 1 100); do kill -0 "$src" 2>/dev/null || break; sleep 0.1; done
	wait "$src"; rc=$?
	diag "$name: $n hostile connections open; the source's link was up after $up_ms ms (source start included); dest rejected $(json "$d/$name.dst.json" rejected_frames); source rc $rc"
	for fd in "${fds[@]}"; do exec {fd}<&-; done
}

# control: the same start-up without hostile connections (process start,
# region set-up: host load shows here as well)
run_one control 0
base_ms=$up_ms
rc_base=$rc
run_one flood 100
check "a keyed source gets its link up within 1 s (of the control's $base_ms ms) while 100 idle/garbage connections are open" \
	[ $n = 100 -a $base_ms -ge 0 -a $up_ms -ge 0 -a $((up_ms - base_ms)) -le 1000 ]
check "and both migrations complete (source exit 0)" [ $rc = 0 -a $rc_base = 0 ]
tap_exit
