#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# spf_bench_oracle - the kernel as the oracle of spf-bench's observer
# columns (guest test): for every workload, writer and observer mode
# (fast, exact), repetition by repetition, the faults the observer
# accounts must equal the getrusage(RUSAGE_SELF) min+maj delta of the
# same interval (kernel_faults_reps == observer_faults_reps in --json).
set -u
BIN=${KMEMLAB_BIN:-$(cd "$(dirname "$0")/../.." && pwd)/bin}
B=$BIN/spf-bench
loaded=0

echo "TAP version 13"
if [[ ! -x $B ]]; then
	echo "1..0 # SKIP $B not built (make -C tools/spf)"
	exit 4
fi
if [[ ! -e /dev/spf_harness ]]; then
	if ! modprobe spf_harness 2>/dev/null &&
	   ! insmod "${KMEMLAB_DIR:-.}/mm/spf/spf_harness.ko" 2>/dev/null; then
		echo "1..0 # SKIP spf_harness cannot be loaded (make modules)"
		exit 4
	fi
	loaded=1
fi
echo "1..1"
json=$("$B" -q --json -w anon,private-tmpfs,shared-tmpfs,dev,dev-mp \
	-W none,mprotect,munmap -t 2 -s 2M -d 0.3 -r 2 -o fast,exact 2>&1)
rc=$?
[[ $loaded -eq 1 ]] && rmmod spf_harness
if [[ $rc -eq 0 ]] && python3 -c '
import json, sys
d = json.loads(sys.argv[1])
bad = 0
for r in d["results"]:
    k, o = r["kernel_faults_reps"], r["observer_faults_reps"]
    tag = "%s/%s/%s" % (r["workload"], r["writer"], r["observer"])
    print("# %-32s kernel %s observer %s" % (tag, k, o))
    if k != o or min(k) <= 0:
        print("# MISMATCH " + tag)
        bad += 1
sys.exit(1 if bad or not d["results"] else 0)
' "$json"; then
	echo "ok 1 observer_faults_equal_getrusage"
	exit 0
fi
echo "# exit $rc"
echo "not ok 1 observer_faults_equal_getrusage"
exit 1
