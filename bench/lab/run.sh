#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The lab's own speed: `lab run CMD=true` wall time and guest boot-to-ready
# (kernel uptime when stage 2 is ready) for each backend, N repetitions,
# medians; then one `lab check -a lab` (boot to first test per boot, total).
# Targets (quiet 2-core host): boot to first test < 15 s, `make run
# CMD=true` < 20 s once built, the lab area < 2 min. Writes
# build/results/bench-lab.md.
set -uo pipefail

TOP=$(cd "$(dirname "$0")/../.." && pwd)
LAB=$TOP/tools/vm/lab
N=${N:-3}
OUT=$TOP/build/results/bench-lab.md
mkdir -p "$(dirname "$OUT")"

median() {
	sort -n | awk '{v[NR] = $1} END {if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}

{
	echo "# lab speed ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg))"
	echo
	echo "| backend | run CMD=true wall (s, median of $N) | guest boot to ready (s) | target |"
	echo "|---|---|---|---|"
} >"$OUT"

for b in none nfit e820 nfit_test; do
	walls=() readys=()
	for ((i = 0; i < N; i++)); do
		t0=$(date +%s.%N)
		out=$("$LAB" run -p "$b" -c 'cut -d" " -f1 /proc/uptime' 2>&1) || {
			echo "bench/lab: $b: boot failed" >&2
			echo "$out" >&2
			exit 1
		}
		walls+=("$(echo "$(date +%s.%N) - $t0" | bc)")
		readys+=("$(echo "$out" | tail -1)")
		printf '\r%s %d/%d' "$b" $((i + 1)) "$N" >&2
	done
	echo >&2
	w=$(printf '%s\n' "${walls[@]}" | median)
	r=$(printf '%s\n' "${readys[@]}" | median)
	printf '| %s | %.1f | %.1f | < 20 s wall, < 15 s boot |\n' "$b" "$w" "$r" >>"$OUT"
done

# the lab area as make check T=lab runs it (modules and tools already built)
out=$("$LAB" check -a lab 2>&1) || {
	echo "bench/lab: lab check failed" >&2
	echo "$out" | tail -20 >&2
	exit 1
}
{
	echo
	echo "lab check -a lab: $(echo "$out" | grep -E '^[0-9]+ passed')"
	echo "$out" | grep -E '^  boot to first test: .*total time' | sed 's/^  //'
	echo "targets: boot to first test < 15 s, total < 120 s"
} >>"$OUT"
cat "$OUT"
