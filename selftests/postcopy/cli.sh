#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# cli.sh - the pcmig command line: usage and setup errors name the cause
# and a fix and exit 2 before any workload starts (bad or busy listen
# address, bad sizes); K/M/G sizes are accepted; --json reports of a small
# complete migration (256K, 64 pages) say so.
source "$(dirname "$(readlink -f "$0")")/pcmig_lib.sh"
need_env

# err_case NAME WANT_TEXT cmd...: exit 2, "error: ...WANT_TEXT", a hint
err_case() {
	local name=$1 want=$2 rc
	shift 2
	timeout 20 "$@" >"$WORK/out" 2>"$WORK/err"
	rc=$?
	sed 's/^/# /' "$WORK/err"
	good=0
	[ $rc = 2 ] && grep -q "error: .*$want" "$WORK/err" &&
		grep -q "hint: ." "$WORK/err" && good=1
	check "$name" [ $good = 1 ]
}

tap_header 6
err_case "dest: unparsable listen address: exit 2, cause and fix" \
	"is not tcp:HOST:PORT" "$PCMIG" dest --size 1M --listen nohost --quiet

# a port that is already taken
exec {busy}< <(exec python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
print(s.getsockname()[1], flush=True); time.sleep(30)')
read -r -u $busy port
err_case "dest: listen address in use: exit 2, cause and fix" \
	"Address already in use" "$PCMIG" dest --size 1M \
	--listen "tcp:127.0.0.1:$port" --quiet
exec {busy}<&-

err_case "bad size suffix: exit 2, cause and fix" "bad --size" \
	"$PCMIG" dest --size 12Q --listen "unix:$WORK/x.sock"
err_case "size not a multiple of 4K: exit 2, cause and fix" "bad --size" \
	"$PCMIG" source --size 4097 --connect "unix:$WORK/x.sock"

# K suffix, --json on both sides, a complete migration
start_bg dst "$PCMIG" dest --size 256K --listen "unix:$WORK/d.sock" \
	--threads 1 --linger 0 --run-after 0.1 --json --quiet \
	>"$WORK/dst.json" 2>"$WORK/dst.err"
wait_sock "$WORK/d.sock" 10
timeout 60 "$PCMIG" source --size 256K --connect "unix:$WORK/d.sock" \
	--threads 1 --rounds 1 --json --quiet >"$WORK/src.json" \
	2>"$WORK/src.err"
rc=$?
for i in $(seq 1 50); do kill -0 "$dst" 2>/dev/null || break; sleep 0.2; done
wait "$dst" 2>/dev/null; rc_dst=$?
diag "source: $(head -c 300 "$WORK/src.json")"
check "256K migration: both exit 0" [ $rc = 0 -a $rc_dst = 0 ]
check "--json: state completed, 64 pages, digests equal" \
	[ "$(json "$WORK/src.json" state)" = completed -a \
	  "$(json "$WORK/dst.json" state)" = completed -a \
	  "$(json "$WORK/dst.json" npages)" = 64 -a \
	  "$(json "$WORK/dst.json" pages_done)" = 64 -a \
	  "$(json "$WORK/src.json" digest_source)" = \
	  "$(json "$WORK/dst.json" digest_destination)" ]
tap_exit
