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

# expect NAME RC-WANTED PATTERN... -- CMD...: CMD exits with RC-WANTED
# ("nz" = any non-zero) and its output matches every PATTERN.
expect() {
	local name=$1 want=$2 pats=() rc f=$OUT/$1.log

	shift 2
	while [[ $1 != -- ]]; do
		pats+=("$1")
		shift
	done
	shift
	"$@" >"$f" 2>&1
	rc=$?
	sed 's/^/# /' "$f"
	if [[ $want == nz && $rc == 0 ]] || [[ $want != nz && $rc != "$want" ]]; then
		ktap_test_fail "$name (exit $rc, want $want)"
		return
	fi
	for p in "${pats[@]}"; do
		if ! grep -qE -- "$p" "$f"; then
			ktap_test_fail "$name (output lacks /$p/)"
			return
		fi
	done
	ktap_test_pass "$name"
}

ktap_print_header
ktap_set_plan 8

expect "failing and hanging tests are reported" nz \
	'FAIL +fixture_fail: fails.sh' \
	'FAIL +fixture_fail: hangs.sh .*TIMEOUT 3 seconds' \
	'PASS +fixture_fail: passes.sh' 'SKIP +fixture_fail: skips.sh' \
	'^1 passed, 2 failed, 1 skipped$' \
	-- "$LAB" check --area-dir "$FIX/fixture_fail"

expect "a kernel WARNING fails the running test" nz \
	'FAIL +fixture_warn: trigger.sh .*kernel WARNING' \
	'fixture_warn: after.sh .*not run' 'WARNING: .*kmemlab_labtest' \
	'^0 passed, 2 failed, 0 skipped$' \
	-- "$LAB" check --area-dir "$FIX/fixture_warn"

expect "a kernel oops fails the running test" nz \
	'FAIL +fixture_oops: trigger.sh .*kernel (Oops|BUG)' \
	'fixture_oops: after.sh .*not run' 'BUG: kernel NULL pointer dereference' \
	'^0 passed, 2 failed, 0 skipped$' \
	-- "$LAB" check --area-dir "$FIX/fixture_oops"

expect "a VM that does not finish is killed by the host timeout" 125 \
	'did not finish within 25s' \
	-- "$LAB" run -p none -t 25 -c 'sleep 600'

expect "a command's exit status comes back" 7 \
	-- "$LAB" run -p none -c 'exit 7'

expect "unknown backend: clear error, no VM" 2 \
	"unknown NVDIMM backend 'bogus'" 'hint: PMEM= one of' \
	-- "$LAB" run -p bogus -c true

expect "unknown area: clear error, no VM" 2 \
	"unknown selftest area 'nosuch'" 'hint: areas:' \
	-- "$LAB" check -a nosuch

expect "missing kernel: clear error" 2 \
	'KVER=9.9.9: /boot/vmlinuz-9.9.9 not found' 'hint: install linux-image' \
	-- env KVER=9.9.9 "$LAB" kver

km_finish
