#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Fuzzing vub's message parsing and ring handling (tools/vhost-user/
# vu_fuzz.c: vu-fuzz-msg, vu-fuzz-ring; libFuzzer, ASan + UBSan with no
# recovery) for a bounded time from the committed seed corpus (fuzz/msg,
# fuzz/ring; fuzz/gen_seeds.py writes it). Per target: every seed runs
# clean and reaches what it was written for; VU_FUZZ_SECONDS (default 30,
# at most 60) of fuzzing end with no crash, no sanitizer report, no leak and
# a non-trivial number of runs; and, as the negative control, an input the
# harness turns into a heap overflow (VU_FUZZ_CANARY=1) fails the run with
# an AddressSanitizer report. The corpus the run grows stays in its temp
# dir; a crashing input is printed (hex) and kept in KMEMLAB_RESULTS.
# shellcheck source=vu_lib.sh
. "$(dirname "$0")/vu_lib.sh"
vu_setup
bin=$(dirname "$VUB")
[[ -x $bin/vu-fuzz-msg && -x $bin/vu-fuzz-ring ]] ||
	vu_skip_all "vu-fuzz-msg/vu-fuzz-ring not built: they need clang and libclang-rt-14-dev (make deps; make)"
secs=${VU_FUZZ_SECONDS:-30}
((secs >= 1 && secs <= 60)) || secs=30
vu_plan 6

# what each seed must reach (VU_FUZZ_VERBOSE=1 prints it per input)
declare -A reach=(
	[msg/init]="7 messages, 0 requests, no error"
	[msg/start-mem-table]="22 messages, 0 requests, no error"
	[msg/start-add-mem-reg]="16 messages, 0 requests, no error"
	[msg/migrate]="21 messages, 0 requests, no error"
	[msg/config-reset]="12 messages, 0 requests, SET_VRING_KICK without an fd"
	[msg/inflight]="17 messages, 0 requests, no error"
	[ring/inflight]="0 messages, 2 requests, no error"
	[ring/inflight-resume]="0 messages, 2 requests, no error"
	[ring/get-id]="0 messages, 2 requests, no error"
	[ring/read-write]="0 messages, 6 requests, no error"
	[ring/indirect-event-idx]="0 messages, 2 requests, no error"
	[ring/log-all]="0 messages, 4 requests, no error"
	[ring/truncated]="0 messages, 1 requests, guest memory access at"
)

for t in msg ring; do
	fz=$bin/vu-fuzz-$t
	seeds=$VU_DIR/fuzz/$t
	log=$VU_TMP/$t.log

	bad=
	for f in "$seeds"/*; do
		name=$t/$(basename "$f")
		out=$(VU_FUZZ_VERBOSE=1 timeout 60 "$fz" "$f" 2>&1)
		rc=$?
		got=$(grep '^vu-fuzz:' <<<"$out")
		if ((rc != 0)) || [[ -z ${reach[$name]:-} || $got != "vu-fuzz: ${reach[$name]}"* ]]; then
			bad+=" $name"
			echo "# $name: exit $rc, $got (want: ${reach[$name]:-listed in vu_fuzz.sh})"
		fi
	done
	nseeds=$(find "$seeds" -type f | wc -l)
	vu_result "vu-fuzz-$t: each of the $nseeds seeds runs clean and reaches what it was written for${bad:+ (not:$bad)}" \
		$((${#bad} != 0 || nseeds < 5))

	mkdir -p "$VU_TMP/corpus-$t"
	nice -n 5 timeout $((secs * 3 + 60)) "$fz" -max_total_time="$secs" -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$VU_TMP/$t-" "$VU_TMP/corpus-$t" "$seeds" >"$log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -1)
	reports=$(grep -Ec 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|SUMMARY: ' "$log")
	if ((rc == 0 && reports == 0 && ${runs:-0} >= 1000)); then
		vu_ok "vu-fuzz-$t: ${secs} s, ${runs} runs, ${cov:-cov ?}: no crash, no sanitizer report"
	else
		vu_notok "vu-fuzz-$t: ${secs} s: exit $rc, ${runs:-?} runs, $reports reports"
		grep -E -A12 'ERROR|runtime error|deadly signal' "$log" | head -60 | vu_diag
		for a in "$VU_TMP/$t-"*; do
			[[ -f $a ]] || continue
			echo "# crashing input $(basename "$a"): $(head -c 512 "$a" | od -An -tx1 | tr -d '\n' | head -c 1600)"
			[[ -n ${KMEMLAB_RESULTS:-} && -d ${KMEMLAB_RESULTS:-} ]] &&
				cp "$a" "$KMEMLAB_RESULTS/vu-fuzz-$(basename "$a")"
		done
	fi

	# the negative control: a sanitizer report must fail the run
	printf 'CANARY' >"$VU_TMP/canary"
	VU_FUZZ_CANARY=1 timeout 60 "$fz" "$VU_TMP/canary" >"$VU_TMP/canary-$t.log" 2>&1
	rc=$?
	if ((rc != 0)) && grep -q 'ERROR: AddressSanitizer: heap-buffer-overflow' "$VU_TMP/canary-$t.log"; then
		vu_ok "vu-fuzz-$t: a planted heap overflow is reported and fails the run (exit $rc)"
	else
		vu_notok "vu-fuzz-$t: a planted heap overflow is reported and fails the run (exit $rc)"
		tail -20 "$VU_TMP/canary-$t.log" | vu_diag
	fi
done
vu_finish
