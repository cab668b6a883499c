#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# spf_bench_oracle - the kernel as the oracle of spf-bench's observer
# columns (guest test): for every workload, writer and observer mode
# (fast, exact), repetition by repetition, the faults the observer
# accounts must equal the getrusage(RUSAGE_SELF) min+maj delta of the
# same interval (kernel_faults_reps == observer_faults_reps in --json).
# With --latency (the observer's histograms by outcome, a concurrent
# mprotect writer) the histograms must hold every completed user pass
# once (histogram_faults == completed_user_passes, none lost), the
# workloads' outcomes must show (anon: vma; dev without ->map_pages:
# retry) with p50 <= p99 <= max, and --plot must write a PNG.
set -u
BIN=${KMEMLAB_BIN:-$(cd "$(dirname "$0")/../.." && pwd)/bin}
B=$BIN/spf-bench
loaded=0 fail=0

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
echo "1..2"
tmp=$(mktemp -d)
json=$("$B" -q --json -w anon,private-tmpfs,shared-tmpfs,dev,dev-mp \
	-W none,mprotect,munmap -t 2 -s 2M -d 0.3 -r 2 -o fast,exact 2>&1)
rc=$?
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
else
	echo "# exit $rc"
	echo "not ok 1 observer_faults_equal_getrusage"
	fail=1
fi

json=$("$B" -q --json -w anon,dev -W mprotect -s 2M -d 0.3 -r 2 \
	-o fast,exact --latency --plot "$tmp/lat.png" 2>&1)
rc=$?
if [[ $rc -eq 0 ]] && [[ $(head -c 8 "$tmp/lat.png" | od -An -tx1 | tr -d ' \n') == 89504e470d0a1a0a ]] &&
   python3 -c '
import json, sys
d = json.loads(sys.argv[1])
bad = 0
want = {"anon": "vma", "dev": "retry"}
for r in d["results"]:
    l = r["latency"]
    tag = "%s/%s/%s" % (r["workload"], r["writer"], r["observer"])
    print("# %-24s histograms %d lost %d completed %d; %s" % (tag,
          l["histogram_faults"], l["lost"], l["completed_user_passes"],
          ", ".join("%s %d p50 %.1f p99 %.1f max %.1f us" % (k, v["faults"],
                    v["p50_us"], v["p99_us"], v["max_us"])
                    for k, v in l.items() if isinstance(v, dict) and v["faults"])))
    if l["histogram_faults"] != l["completed_user_passes"] or l["lost"]:
        print("# MISMATCH " + tag); bad += 1
    w = l[want[r["workload"]]]
    if w["faults"] <= 0 or not (0 < w["p50_us"] <= w["p99_us"] <= 2 * w["max_us"]):
        print("# BAD %s %s" % (tag, w)); bad += 1
sys.exit(1 if bad or len(d["results"]) != 4 else 0)
' "$json"; then
	echo "ok 2 latency_histograms_equal_completed_faults"
else
	echo "# exit $rc; png: $(head -c 8 "$tmp/lat.png" 2>/dev/null | od -An -tx1)"
	echo "not ok 2 latency_histograms_equal_completed_faults"
	fail=1
fi
rm -rf "$tmp"
[[ $loaded -eq 1 ]] && rmmod spf_harness
exit $fail
