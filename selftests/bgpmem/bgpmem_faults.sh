#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The test-only fault build of bgpmem (drivers/pmem/fault_flavor.sh, module
# parameters "fault" and "fault_hits"; Documentation/bgpmem.rst, "Test-only
# fault build") against the contract's block cells (bgpmem_contract
# --fault=LIST):
#  - fault=none: every cell holds, including the injected environment
#    failures (a failed flush after a clear, no memory for a record's
#    split: issue 15, defect 3);
#  - fault=import_delay,bb_seq_storm: a sysfs import held in the gap
#    between clearing the list's mark and adding its records, keeping the
#    list's seqlock busy meanwhile, so that the read's list lookup races a
#    writer (6.12's badblocks_check() answers 0 after such a race); a read
#    there still fails;
#  - fault=clear_unit_2k (nfit_test: the bus reports a 2 KiB clear unit):
#    the device raises a smaller poison_block_size to it, and sysfs
#    refuses a smaller one;
#  - each deliberate bug (partial_clear, drop_early, mirror_drop,
#    import_unseen with import_delay, bb_retry_miss with import_delay and
#    bb_seq_storm, linear_lookup: an O(n) record lookup) is caught:
#    its run first proves the bug is loaded and in force (the module's
#    "fault" parameter reads it back) and taken (fault_hits > 0), then the
#    cells that pin it must fail.
# A bug that the backend cannot show (no platform clear on QEMU NFIT, no
# bus poison source but on nfit_test) is a declared skip (settings).

HERE=$(cd "$(dirname "$0")" && pwd)
KDIR=${KMEMLAB_DIR:-$(cd "$HERE/../.." && pwd)}
CONTRACT=$HERE/bgpmem_contract
BACKEND=${KMEMLAB_BACKEND:-}
case $BACKEND in
nfit) NOCLEAR="needs a platform that clears poison (QEMU NFIT cannot)" ;;
cxl) NOCLEAR="needs a platform that clears poison (QEMU's CXL memory device cannot)" ;;
*) NOCLEAR= ;;
esac
NOBUS="needs a bus with ARS inject (nfit_test)"
# The deliberate bugs are this test's negative controls: they prove that
# its cells can fail, which does not depend on the kernel. On a debug
# kernel (KASAN, lockdep, kmemleak: bgpmem_faults.sh took 484 s there in
# CI) only the runs that take the driver's own paths run: fault=none with
# its injected failures, the import race held open, clear_unit_2k.
NOCTL=
[[ ${KMEMLAB_KERNEL:-stock} != stock ]] &&
	NOCTL="a negative control of this test: on the stock kernel only (the ${KMEMLAB_KERNEL} kernel checks the driver, not the test)"
NOCAP="needs a bus with ARS_CAP (nfit_test)"
LOG=$(mktemp -d /tmp/bgpmem-faults.XXXXXX)
n=0
fails=0

ok() {	# STATUS DESCRIPTION
	n=$((n + 1))
	if [[ $1 == 0 ]]; then
		echo "ok $n $2"
	else
		echo "not ok $n $2"
		fails=$((fails + 1))
	fi
}

skip() {
	n=$((n + 1))
	echo "ok $n $1 # SKIP $2"
}

skip_all() {
	echo "1..0 # SKIP $1"
	exit 4
}

[[ $(id -u) == 0 ]] || skip_all "needs root"
case $BACKEND in
e820 | nfit | nfit_test | cxl) ;;
*) skip_all "no NVDIMM backend (KMEMLAB_BACKEND is not e820, nfit, nfit_test or cxl)" ;;
esac
[[ -x $CONTRACT ]] || skip_all "bgpmem_contract not built (make selftests)"
# the kselftest tarball ships the shipped modules only, not test builds
[[ -n ${KMEMLAB_KSFT:-} && -z ${KMEMLAB_BGPMEM_FAULT_KO:-} ]] &&
	skip_all "the test-only fault build is not in the kselftest tarball"

echo "TAP version 13"
echo "1..11"

# the fault build is the tree's: a copy older than a fix would test the
# wrong module
flavor=std
[[ $BACKEND == nfit_test ]] && flavor=nfit_test
ko=${KMEMLAB_BGPMEM_FAULT_KO:-$KDIR/build/fault/$(uname -r)/pmem/$flavor/bgpmem.ko}
stale=
if [[ -n ${KMEMLAB_BGPMEM_FAULT_KO:-} ]]; then
	echo "# KMEMLAB_BGPMEM_FAULT_KO=$ko: not compared with the tree"
elif [[ ! -f $ko ]]; then
	stale="no $ko (make nfit_test builds it; make check does)"
else
	for f in "$KDIR"/drivers/pmem/Kbuild "$KDIR"/drivers/pmem/*.[ch]; do
		[[ $f == *.mod.c ]] && continue
		cmp -s "$f" "$(dirname "$ko")/$(basename "$f")" ||
			stale="${stale:+$stale, }${f#"$KDIR"/} changed since it was built"
	done
fi
[[ -n $stale ]] && echo "# fault build: $stale"
ok "$([[ -z $stale ]]; echo $?)" "fault_build: $ko is built from the tree's sources"

# run FAULT [GROUPS]: the contract's block cells on the fault build with
# fault=FAULT (only the cell groups GROUPS: bgpmem_contract --cells);
# sets rc, out (its output), hits, failed (the cells that failed)
run() {
	out=$LOG/$1.tap
	echo "# bgpmem_contract --fault=$1${2:+ --cells=$2}"
	KMEMLAB_BGPMEM_FAULT_KO=$ko "$CONTRACT" --fault="$1" ${2:+--cells=$2} >"$out" 2>&1
	rc=$?
	sed 's/^/#   /' "$out"
	hits=$(sed -n "s/^# fault $1: fault_hits \([0-9-]*\)$/\1/p" "$out")
	hits_by=$(sed -n "s/^# fault $1: fault_hits_by //p" "$out")
	failed=$(sed -n 's/^not ok [0-9]* blk \([a-z_0-9]*\):.*/\1/p' "$out" | tr '\n' ' ')
	active=0
	grep -q "^ok 1 fault_build_active: fault=$1 " "$out" || active=1
}

# 2-3: no fault: every cell holds, and the injected failures are survived
run none
ok "$(((rc != 0) | active))" "fault=none: the block cells hold on the fault build (exit $rc${failed:+, failed: $failed})"
cells=$(grep -E "^(not )?ok [0-9]+ blk blk_write_(flush_fails|split_nomem)[: ]" "$out")
if [[ -n $NOCLEAR ]]; then
	skip "blk_write_flush_fails, blk_write_split_nomem: a failed flush or split allocation keeps the records (defect 3)" "$NOCLEAR"
else
	bad=$(grep -c '^not ok' <<< "$cells")
	while IFS= read -r l; do echo "# $l"; done <<< "$cells"
	ok "$(( $(wc -l <<< "$cells") != 2 || bad != 0 ))" \
		"blk_write_flush_fails, blk_write_split_nomem: a failed flush or split allocation keeps the records (defect 3)"
fi

# caught FAULT GROUP CELL...: the run with FAULT of the cell group GROUP
# must fail one of the CELLs (of that group), with the fault proven in
# force and taken
caught() {
	local f=$1 g=$2 c hit=

	shift 2
	if [[ -n $NOCTL ]]; then
		skip "fault=$f is caught" "$NOCTL"
		return
	fi
	run "$f" "$g"
	for c in "$@"; do
		[[ " $failed" == *" $c "* ]] && hit="${hit:+$hit }$c"
	done
	if ((active)); then
		ok 1 "fault=$f is caught (not in force: the module did not read it back)"
	elif [[ -z $hits || $hits -le 0 ]]; then
		ok 1 "fault=$f is caught (in force but never taken: fault_hits ${hits:-?})"
	else
		ok "$([[ $rc == 1 && -n $hit ]]; echo $?)" \
			"fault=$f (in force, taken $hits times) is caught by ${hit:-none of: $*} (failed: ${failed:-none})"
	fi
}

if [[ -n $NOCLEAR ]]; then
	skip "fault=partial_clear is caught" "$NOCLEAR"
	caught drop_early raw blk_write_whole
else
	caught partial_clear raw blk_write_partial blk_write_prefix_partial blk_zeroout_partial
	caught drop_early inject blk_write_flush_fails
fi
if [[ $BACKEND == nfit_test ]]; then
	caught mirror_drop platform platform_scrub_mirror_full
else
	skip "fault=mirror_drop is caught" "$NOBUS"
fi

# hits_of NAME: how often fault NAME was taken in the last run (0 if never)
hits_of() {
	local h

	h=$(tr ',' '\n' <<< "$hits_by" | sed -n "s/^$1=\([0-9]*\)$/\1/p")
	echo "${h:-0}"
}

# a sysfs import held 200 ms in the gap between clearing the list's mark
# and adding its records, with the list's seqlock written all the time
# meanwhile: every read lands in the gap, its lookup races a writer, and
# it must still fail (the held gap alone is the milder case of this run)...
run import_delay,bb_seq_storm
race=$(grep -E "^(not )?ok [0-9]+ blk sysfs_pending_read_race[: ]" "$out")
echo "# $race (taken: $hits_by)"
held=1
[[ $rc == 0 && $active == 0 && $(hits_of import_delay) -gt 0 && $(hits_of bb_seq_storm) -gt 0 &&
	$race == ok* ]] && held=0
ok "$held" \
	"fault=import_delay,bb_seq_storm (in force, the gap held open $(hits_of import_delay) times, storms $(hits_of bb_seq_storm)): sysfs_pending_read_race holds (exit $rc${failed:+, failed: $failed})"
# ...which a driver that does not see the import in flight does not do...
caught import_delay,import_unseen race sysfs_pending_read_race
# ...which a lookup that takes badblocks_check()'s retried answer does not.
# A lookup races the storm only while both vCPUs run at once: on a host
# busy with other VMs a run can see none, so up to 3 runs to get one
if [[ -n $NOCTL ]]; then
	skip "fault=bb_retry_miss is caught" "$NOCTL"
else
	for try in 1 2 3; do
		run import_delay,bb_seq_storm,bb_retry_miss race
		miss=$(hits_of bb_retry_miss)
		((active == 0 && miss == 0)) || break
		echo "# run $try: no lookup raced a writer (taken: $hits_by)"
	done
	echo "# taken: $hits_by"
	if ((active)); then
		ok 1 "fault=bb_retry_miss is caught (not in force: the module did not read it back)"
	elif ((miss == 0)); then
		ok 1 "fault=bb_retry_miss is caught (in force but no lookup raced a writer)"
	else
		ok "$([[ $rc == 1 && " $failed" == *" sysfs_pending_read_race "* ]]; echo $?)" \
			"fault=import_delay,bb_seq_storm,bb_retry_miss (in force, $miss retried answers taken) is caught by sysfs_pending_read_race (failed: ${failed:-none})"
	fi
fi

# an O(n) record lookup: a read next to poison with 10,000 records costs
# many times its cost with 10. With 2048 records the walk was 2.61x a
# read on e820 (not caught): 10,000 need a 512 MiB namespace, which
# nfit_test's are not; on the debug kernel and on cxl a read costs ~1 ms
if [[ ${KMEMLAB_KERNEL:-stock} != stock ]]; then
	skip "fault=linear_lookup is caught" \
		"a timing control: on the stock kernel only (the ${KMEMLAB_KERNEL} kernel's checkers dominate each read)"
elif [[ $BACKEND == nfit_test ]]; then
	skip "fault=linear_lookup is caught" \
		"a timing control: needs 10,000 records (nfit_test's namespaces are 32 MiB)"
elif [[ $BACKEND == cxl ]]; then
	# QEMU 7.2 serves every access to CXL memory through its device model
	skip "fault=linear_lookup is caught" \
		"a timing control: a read of QEMU's CXL memory costs about 1 ms"
else
	caught linear_lookup scaling lookup_scaling
fi

# a bus whose clear unit (ARS_CAP) is larger than the poison block size
# the module was loaded with: the device uses the unit, and sysfs refuses
# a smaller block (its clears would all fail)
if [[ $BACKEND == nfit_test ]]; then
	run clear_unit_2k clear_unit
	ok "$([[ $rc == 0 && $active == 0 && $(hits_of clear_unit_2k) -gt 0 ]]; echo $?)" \
		"fault=clear_unit_2k (in force, taken $(hits_of clear_unit_2k) times): poison_block_size is never below the bus's clear unit (exit $rc${failed:+, failed: $failed})"
else
	skip "fault=clear_unit_2k: poison_block_size is never below the bus's clear unit" "$NOCAP"
fi

# leave it as found
[[ -d /sys/module/bgpmem ]] && rmmod bgpmem 2>/dev/null
rm -rf "$LOG"
echo "# $fails of $n failed"
((fails == 0))
