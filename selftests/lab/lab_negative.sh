#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The lab catches what it must: a failing test, a hanging test, a kernel
# WARNING and a kernel oops are each reported with the right cause and a
# non-zero exit; a VM that does not finish is killed by the host timeout;
# bad input gets one clear message and no VM. Runs on the host: each case
# boots its own VM through tools/vm/lab (fixtures in fixtures/).

. "$(dirname "$0")/../lib/kmemlab.sh"
km_require_root
[[ ${KMEMLAB_BACKEND:-} == host ]] || km_skip_all "runs on the host (host_tests in settings)"

LAB=$KMEMLAB_DIR/tools/vm/lab
FIX=$KMEMLAB_DIR/selftests/lab/fixtures
OUT=$(mktemp -d)
km_cleanup "rm -rf $OUT"

# The cases boot their VMs concurrently (each is a separate QEMU); they are
# judged in order once all have finished.
#   launch ID CMD...              start CMD in the background
#   judge ID NAME RC-WANTED PATTERN...
#       CMD exited with RC-WANTED ("nz" = any non-zero) and its output
#       matches every PATTERN
launch() {
	local id=$1

	shift
	("$@" >"$OUT/$id.log" 2>&1; echo $? >"$OUT/$id.rc") &
}

judge() {
	local id=$1 name=$2 want=$3 rc p f=$OUT/$1.log

	shift 3
	rc=$(cat "$OUT/$id.rc" 2>/dev/null || echo none)
	sed 's/^/# /' "$f"
	if [[ $want == nz && ($rc == 0 || $rc == none) ]] ||
	   [[ $want != nz && $rc != "$want" ]]; then
		ktap_test_fail "$name (exit $rc, want $want)"
		return
	fi
	for p in "$@"; do
		if ! grep -qE -- "$p" "$f"; then
			ktap_test_fail "$name (output lacks /$p/)"
			return
		fi
	done
	ktap_test_pass "$name"
}

ktap_print_header
ktap_set_plan 10

launch fail "$LAB" check --area-dir "$FIX/fixture_fail"
launch warn "$LAB" check --area-dir "$FIX/fixture_warn"
launch oops "$LAB" check --area-dir "$FIX/fixture_oops"
# the host timeout does not care how far the guest got: 5 s is in the
# middle of the kernel's boot, which saves the other VMs CPU time
launch hang "$LAB" run -p none -m 512M -t 5 -c 'sleep 600'
launch status "$LAB" run -p none -m 512M -c 'exit 7'
launch badpmem "$LAB" run -p bogus -c true
launch badarea "$LAB" check -a nosuch
launch nokernel env KVER=9.9.9 "$LAB" kver
launch badclock env LAB_CLOCK=fast "$LAB" kver
# an area whose settings name an unknown clock: refused while planning
mkdir "$OUT/fixture_badclock"
printf 'backends=none\nclock=fast\n' >"$OUT/fixture_badclock/settings"
echo passes.sh >"$OUT/fixture_badclock/tests.list"
launch badareaclock "$LAB" check --area-dir "$OUT/fixture_badclock"
wait

judge fail "failing and hanging tests are reported" nz \
	'FAIL +fixture_fail: fails.sh' \
	'FAIL +fixture_fail: hangs.sh .*TIMEOUT 3 seconds' \
	'PASS +fixture_fail: passes.sh' 'SKIP +fixture_fail: skips.sh' \
	'^1 passed, 2 failed, 1 skipped$'
judge warn "a kernel WARNING fails the running test" nz \
	'FAIL +fixture_warn: trigger.sh .*kernel WARNING' \
	'fixture_warn: after.sh .*not run' 'WARNING: .*kmemlab_labtest' \
	'^0 passed, 2 failed, 0 skipped$'
judge oops "a kernel oops fails the running test" nz \
	'FAIL +fixture_oops: trigger.sh .*kernel (Oops|BUG)' \
	'fixture_oops: after.sh .*not run' 'BUG: kernel NULL pointer dereference' \
	'^0 passed, 2 failed, 0 skipped$'
judge hang "a VM that does not finish is killed by the host timeout" 125 \
	'did not finish within 5s'
judge status "a command's exit status comes back" 7
judge badpmem "unknown backend: clear error, no VM" 2 \
	"unknown NVDIMM backend 'bogus'" 'hint: PMEM= one of'
judge badarea "unknown area: clear error, no VM" 2 \
	"unknown selftest area 'nosuch'" 'hint: areas:'
judge nokernel "missing kernel: clear error" 2 \
	'KVER=9.9.9: /boot/vmlinuz-9.9.9 not found' 'hint: install linux-image'
judge badclock "unknown LAB_CLOCK: clear error" 2 \
	'LAB_CLOCK=fast: unknown clock' 'hint: use real \(default\) or icount'
judge badareaclock "unknown clock= in an area's settings: clear error, no VM" 2 \
	"area 'fixture_badclock': unknown clock 'fast'" 'hint: use real or icount'

km_finish
