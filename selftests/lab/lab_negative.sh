#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The lab catches what it must. Each case runs tools/vm/lab on a fixture
# area (fixtures/) and asserts its exit status and that its output names the
# cause:
#   - failing, hanging, crashing (killed by a signal) tests, undeclared skips
#     (of a whole test and of one case), a test never planned, an empty area;
#   - every class of kernel report a fixture can provoke: WARNING, Oops,
#     sleeping in atomic context, a use-after-free (KFENCE on the stock
#     kernel, KASAN on the debug one), a WARN after the last test reported
#     ok, and on the debug kernel lockdep and kmemleak, which do not panic;
#   - a VM that does not finish is killed by the host timeout; bad input gets
#     one clear message and no VM.
# Runs on the host; at most two VMs at a time (2 host CPUs), so a case's
# timing does not depend on how many others run beside it. On the debug
# kernel (KERNEL=debug) only the cases whose report differs there.

. "$(dirname "$0")/../lib/kmemlab.sh"
km_require_root
[[ ${KMEMLAB_BACKEND:-} == host ]] || km_skip_all "runs on the host (host_tests in settings)"

LAB=$KMEMLAB_DIR/tools/vm/lab
FIX=$KMEMLAB_DIR/selftests/lab/fixtures
KERNEL=${KMEMLAB_KERNEL:-stock}
OUT=$(mktemp -d)
km_cleanup "rm -rf $OUT"

# launch ID CMD...: start CMD in the background, two at a time
launch() {
	local id=$1

	shift
	while (($(jobs -rp | wc -l) >= 2)); do
		wait -n
	done
	("$@" >"$OUT/$id.log" 2>&1; echo $? >"$OUT/$id.rc") &
}

# judge ID NAME RC-WANTED PATTERN...: CMD exited with RC-WANTED ("nz" = any
# non-zero) and its output matches every PATTERN (ERE)
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

check() {
	launch "$1" "$LAB" check --area-dir "$FIX/$1"
}

ktap_print_header
# On the debug kernel only the cases whose report differs there: what the
# runner and the host do with a report, a skip or bad input does not depend
# on the kernel, and a debug boot costs a minute under TCG.
if [[ $KERNEL == debug ]]; then
	ktap_set_plan 3
	check fixture_atomic
	check fixture_uaf
	check fixture_debug
	wait
	judge fixture_atomic "sleeping in atomic context fails the running test" nz \
		'FAIL +fixture_atomic: trigger.sh .*kernel report: sleeping function called from invalid context' \
		'BUG: sleeping function called from invalid context' \
		'^0 passed, 2 failed, 0 skipped$'
	judge fixture_uaf "a use-after-free (KASAN) fails the running test" nz \
		'FAIL +fixture_uaf: trigger.sh .*kernel report: KASAN' \
		'BUG: KASAN: slab-use-after-free in labtest_' \
		'^0 passed, 2 failed, 0 skipped$'
	judge fixture_debug "lockdep and kmemleak reports fail their tests (no panic)" nz \
		'FAIL +fixture_debug: lockdep.sh .*kernel report: lockdep: circular locking dependency' \
		'FAIL +fixture_debug: \(kmemleak scan\) .*kernel report: kmemleak' \
		'PASS +fixture_debug: leak.sh' 'PASS +fixture_debug: passes.sh' \
		'unreferenced object' \
		'^2 passed, 2 failed, 0 skipped$'
	km_finish
fi

ktap_set_plan 16
# the kernel-report cases first: they boot
check fixture_warn
check fixture_oops
check fixture_atomic
check fixture_uaf
check fixture_lastwarn
check fixture_fail
launch empty "$LAB" check --area-dir "$FIX/fixture_empty"
# the host timeout does not care how far the guest got: 5 s is in the
# middle of the kernel's boot
launch hang "$LAB" run -p none -m 512M -t 5 -c 'sleep 600'
launch status "$LAB" run -p none -m 512M -c 'exit 7'
launch badpmem "$LAB" run -p bogus -c true
launch badarea "$LAB" check -a nosuch
launch nokernel env KVER=9.9.9 KERNEL=stock KDIR= "$LAB" kver
launch badclock env LAB_CLOCK=fast "$LAB" kver
# an area whose settings name an unknown clock: refused while planning
mkdir "$OUT/fixture_badclock"
printf 'backends=none\nclock=fast\n' >"$OUT/fixture_badclock/settings"
echo passes.sh >"$OUT/fixture_badclock/tests.list"
launch badareaclock "$LAB" check --area-dir "$OUT/fixture_badclock"
# KDIR= trees the lab must refuse up front: another release, a missing option
fake_kdir() {
	mkdir -p "$1/include/config" "$1/arch/x86/boot"
	echo "$2" >"$1/include/config/kernel.release"
	: >"$1/arch/x86/boot/bzImage"
	grep -E '^CONFIG_[A-Z0-9_]+=[ym]$' "$KMEMLAB_DIR/tools/vm/kernel/lab.config" |
		grep -v "^$3=" >"$1/.config"
}
fake_kdir "$OUT/kdir-6.6" 6.6.0 none
fake_kdir "$OUT/kdir-nolibnvdimm" 6.12.0 CONFIG_LIBNVDIMM
launch kdirversion env KERNEL=stock KDIR="$OUT/kdir-6.6" "$LAB" kver
launch kdirconfig env KERNEL=stock KDIR="$OUT/kdir-nolibnvdimm" "$LAB" kver
wait

judge fixture_warn "a kernel WARNING fails the running test" nz \
	'FAIL +fixture_warn: trigger.sh .*kernel report: WARNING' \
	'fixture_warn: after.sh .*not run' 'WARNING: .*kmemlab_labtest' \
	'^0 passed, 2 failed, 0 skipped$'
judge fixture_oops "a kernel oops fails the running test" nz \
	'FAIL +fixture_oops: trigger.sh .*kernel report: BUG, Oops' \
	'fixture_oops: after.sh .*not run' 'BUG: kernel NULL pointer dereference' \
	'^0 passed, 2 failed, 0 skipped$'
judge fixture_atomic "scheduling while atomic fails the running test" nz \
	'FAIL +fixture_atomic: trigger.sh .*kernel report: scheduling while atomic' \
	'BUG: scheduling while atomic' \
	'^0 passed, 2 failed, 0 skipped$'
judge fixture_uaf "a use-after-free (KFENCE) fails the running test" nz \
	'FAIL +fixture_uaf: trigger.sh .*kernel report: KFENCE' \
	'BUG: KFENCE: use-after-free read in labtest_' \
	'^0 passed, 2 failed, 0 skipped$'
judge fixture_lastwarn "a WARN after the last test's ok fails the run" nz \
	'PASS +fixture_lastwarn: last.sh' \
	'FAIL +fixture_lastwarn: \(after last.sh\) .*kernel report: WARNING' \
	'^2 passed, 1 failed, 0 skipped$'
judge fixture_fail "failing, hanging, crashing, skipping and unplanned tests" nz \
	'PASS +fixture_fail: passes.sh' \
	'FAIL +fixture_fail: fails.sh' \
	'FAIL +fixture_fail: hangs.sh .*TIMEOUT 3 seconds' \
	'kmemlab: deadline of hangs.sh: its tasks' \
	'kmemlab: stuck sleep [0-9]+ state S wchan [a-z_]+' \
	'kmemlab: .*(do_nanosleep|hrtimer_nanosleep)' \
	'SKIP +fixture_fail: skips.sh .*fixture skips on purpose' \
	'FAIL +fixture_fail: skips_undeclared.sh .*undeclared skip: module failed to load' \
	'FAIL +fixture_fail: case_skip.sh .*undeclared skip: mount -o dax failed' \
	'FAIL +fixture_fail: crashes.sh .*killed by signal SIGSEGV' \
	'FAIL +fixture_fail: orphan.sh .*never planned' \
	'FAIL +fixture_fail: \(plan\) .*only_nfit' \
	'case_skip.sh: +1 ok, 0 not ok, 0 skip \(declared\), 1 skip \(UNDECLARED\)' \
	'^1 passed, 7 failed, 1 skipped$'
judge empty "an area that plans no tests fails" nz \
	'FAIL +fixture_empty: \(plan\) .*planned no tests' \
	'^0 passed, 1 failed, 0 skipped$'
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
judge kdirversion "KDIR of another release: clear error" 2 \
	'is 6\.6\.0; kmemlab targets 6\.12' 'hint: build a 6\.12 kernel'
judge kdirconfig "KDIR lacking an option the lab boots: the option named" 2 \
	'lacks what the lab boots: CONFIG_LIBNVDIMM=m' 'hint: enable them'

km_finish
