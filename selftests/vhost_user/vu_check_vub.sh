#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# vu-check (the front-end conformance checker) against vub: read-write with
# two queues, then read-only; the test area must be restored; vub's
# command line must reject bad input with a hint; with --short-log, pages
# beyond a dirty log shorter than guest memory are skipped with a warning. vub's own choices where
# the spec allows several are pinned: a kicked request on a disabled ring
# is left untouched and resumed by SET_VRING_ENABLE 1 alone; RESET_OWNER
# disables the rings and keeps the rest.
# shellcheck source=vu_lib.sh
. "$(dirname "$0")/vu_lib.sh"
vu_setup
vu_plan 10

img=$VU_TMP/disk.img
truncate -s 64M "$img"
# known, non-zero contents in the 128K test area
dd if=/dev/urandom of="$img" bs=64K count=2 conv=notrunc status=none
before=$(head -c 131072 "$img" | md5sum)

if vu_start_vub rw --file "$img" --queues 2; then
	vu_ok "vub serves a 64M image with 2 queues"
else
	vu_notok "vub serves a 64M image with 2 queues"
	vu_diag <"$VU_TMP/rw.log"
fi

timeout 120 "$VU_CHECK" --socket "$VU_TMP/rw.sock" --short-log >"$VU_TMP/check.txt" 2>&1
rc=$?
vu_diag <"$VU_TMP/check.txt"
vu_result "vu-check passes against vub (exit $rc)" $rc

# a dirty log shorter than guest memory: vub skips the pages beyond it and
# says so once per log (vu-check short-log checked nothing else changed)
nwarn=$(grep -c 'beyond the 8192-byte log' "$VU_TMP/rw.log")
if grep -Eq '^short-log +pass' "$VU_TMP/check.txt" && ((nwarn == 1)); then
	vu_ok "a short dirty log: pages beyond it not logged, one warning"
else
	vu_notok "a short dirty log: pages beyond it not logged, one warning ($nwarn warnings)"
	vu_diag <"$VU_TMP/rw.log"
fi

timeout 120 "$VU_CHECK" --socket "$VU_TMP/rw.sock" --json >"$VU_TMP/check.json" 2>"$VU_TMP/check.err"
rc=$?
failed=$(vu_failed_checks "$VU_TMP/check.json")
n=$(grep -o '"result":"pass"' "$VU_TMP/check.json" | wc -l)
# vub offers everything these check (EVENT_IDX, INDIRECT_DESC, MQ with 2
# queues, RESET_DEVICE, ...): each must pass, none may be skipped, and
# vu-check may run no other (a new check is added here too)
must="connect features protocol-features max-mem-slots reply-ack get-config
mem-table ring-setup io event-idx event-idx-stream indirect-desc multiqueue
flush out-of-range-io log-base log-all-on dirty-log log-all-off disabled-ring
get-vring-base stopped-no-writes restart reset-owner reset-device reconnect
inflight"
notpassed=
for c in $must; do
	grep -q "\"name\":\"$c\",\"result\":\"pass\"" "$VU_TMP/check.json" ||
		notpassed+=" $c"
done
want=$(wc -w <<<"$must")
nchecks=$(grep -o '"name":"[^"]*","result"' "$VU_TMP/check.json" | wc -l)
if ((rc == 0 && n == want && nchecks == want)) && [[ -z $notpassed ]] &&
   grep -q '"ok":true' "$VU_TMP/check.json" && [[ -z $failed ]]; then
	vu_ok "vu-check --json: ok, all $want checks passed (none skipped)"
else
	vu_notok "vu-check --json: rc $rc, failed: ${failed:-none}, not passed:${notpassed:- none}, $n of $nchecks passed, want all $want"
	vu_diag <"$VU_TMP/check.err"
	grep -o '"name":"[^"]*","result":"[^"]*"' "$VU_TMP/check.json" | vu_diag
fi

# vub keeps a request kicked on a disabled ring pending, untouched, and
# resumes it on SET_VRING_ENABLE 1 without a kick; RESET_OWNER disables the
# rings (as libvhost-user) and keeps the rest. vu-check accepts other
# behaviours the spec allows, so pin vub's own here.
pinned=1
for want in '"name":"disabled-ring","result":"pass","detail":"kicked request untouched for 0.5 s (no write, no call); resumed by SET_VRING_ENABLE 1 alone"' \
	    '"name":"reset-owner","result":"pass","detail":"disabled; pending request resumed by SET_VRING_ENABLE 1 alone'; do
	grep -qF "$want" "$VU_TMP/check.json" || pinned=0
done
if ((pinned)); then
	vu_ok "disabled rings keep a kicked request untouched until SET_VRING_ENABLE 1; RESET_OWNER only disables"
else
	vu_notok "disabled rings keep a kicked request untouched until SET_VRING_ENABLE 1; RESET_OWNER only disables"
	grep -Eo '"name":"(disabled-ring|reset-owner)"[^}]*' "$VU_TMP/check.json" | vu_diag
fi

after=$(head -c 131072 "$img" | md5sum)
if [[ $before == "$after" ]]; then
	vu_ok "vu-check restored the test area it wrote"
else
	vu_notok "vu-check restored the test area it wrote"
fi

if vu_start_vub ro --file "$img" --read-only &&
   timeout 120 "$VU_CHECK" --socket "$VU_TMP/ro.sock" >"$VU_TMP/ro.txt" 2>&1 &&
   grep -Eq '^read-only +pass' "$VU_TMP/ro.txt"; then
	vu_ok "vu-check passes against vub --read-only (writes get IOERR)"
else
	vu_notok "vu-check passes against vub --read-only (writes get IOERR)"
	vu_diag <"$VU_TMP/ro.txt"
fi
ro_after=$(head -c 131072 "$img" | md5sum)

bad=0
for args in "--socket $VU_TMP/x.sock" \
	    "--socket $VU_TMP/x.sock --file $VU_TMP/missing" \
	    "--socket $VU_TMP/x.sock --file $img --queues 0" \
	    "--socket $VU_TMP/x.sock --file $img --queues 99" \
	    "--socket $VU_TMP/x.sock --file $img --bug=nonsense" \
	    "--socket $VU_TMP/rw.sock --file $img"; do
	# shellcheck disable=SC2086
	out=$(timeout 5 "$VUB" $args 2>&1)
	rc=$?
	if ((rc == 0 || rc == 124)) || ! grep -q 'hint:' <<<"$out"; then
		echo "# vub $args: rc $rc, output: $out"
		bad=1
	fi
done
vu_result "vub rejects bad arguments with an error and a hint" $bad

# the last of those, a second vub on rw.sock, connected to see whether the
# socket is in use: the running vub logs it as a probe, not an error (when
# its poll() sees the close, which can come after the second vub's exit)
for _ in $(seq 50); do
	grep -q 'closed before its first message' "$VU_TMP/rw.log" && break
	sleep 0.1
done
if grep -q 'closed before its first message: a probe' "$VU_TMP/rw.log" &&
   ! grep -q 'error:' "$VU_TMP/rw.log"; then
	vu_ok "a second vub's probe of the live socket is logged as a probe, not an error"
else
	vu_notok "a second vub's probe of the live socket is logged as a probe, not an error"
	vu_diag <"$VU_TMP/rw.log"
fi

if kill -0 "${VU_PIDS[0]}" 2>/dev/null && kill -0 "${VU_PIDS[1]}" 2>/dev/null &&
   [[ $ro_after == "$after" ]]; then
	vu_ok "both vub instances still running; read-only run left the image unchanged"
else
	vu_notok "both vub instances still running; read-only run left the image unchanged"
fi
vu_finish
