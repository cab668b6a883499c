#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# memcg_dirty benchmark, run in the lab VM (one boot, side by side):
#  1. write throughput of a writer in a cgroup WITHOUT a knob, module not
#     loaded vs loaded (with another cgroup holding a knob, so the hook is
#     armed and walks the writer's ancestors on every call) -> ratio,
#     target >= 0.97. Rounds are interleaved in ABBA order (odd rounds
#     unloaded first, even rounds loaded first); the ratio is the median of
#     the per-round ratios (paired), the ratio of the medians is printed too.
#  2. cost per hooked call: the module loaded with timing=1 times its own
#     ftrace handler (local_clock() at entry and exit, so the figure
#     includes one clock read) on every call of domain_dirty_limits():
#     (a) no knob anywhere (static key off: the disarmed hook),
#     (b) a knob on another cgroup, writer without one (armed, no redirect),
#     (c) the writer under a 1G knob that never binds (redirected: limits
#         and fresh subtree counts computed).
#     Reported as ns per call and as the share of the writer's run time.
# The table goes to stdout and $KMEMLAB_RESULTS/memcg_dirty_bench.txt.
#
#   make bench B=memcg_dirty          (lab options: BENCH_VM_memcg_dirty)
#   BENCH_MIB=256 BENCH_ROUNDS=6

set -u

KMEMLAB_DIR=${KMEMLAB_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
KMEMLAB_BIN=${KMEMLAB_BIN:-$KMEMLAB_DIR/build/bin}
RESULTS=${KMEMLAB_RESULTS:-/tmp}
CTL=$KMEMLAB_BIN/memcg-dirtyctl
CFG=/sys/kernel/config/memcg_dirty
MIB=${BENCH_MIB:-256}
ROUNDS=${BENCH_ROUNDS:-6}
CG=/sys/fs/cgroup/mdb
MNT=/mnt/mdb
WORK=/tmp/mdb.$$
loopdev=
dev=

die() { echo "bench: error: $1" >&2; [[ -n ${2:-} ]] && echo "bench: hint: $2" >&2; exit 1; }

cleanup() {
	[[ -d /sys/module/memcg_dirty ]] && { "$CTL" clear --all >/dev/null 2>&1; rmmod memcg_dirty; }
	mountpoint -q "$MNT" && umount "$MNT"
	[[ -n $loopdev ]] && losetup -d "$loopdev"
	rmdir "$CG"/*/ "$CG" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT

[[ $(id -u) == 0 ]] || die "needs root"
[[ -d /sys/module/memcg_dirty ]] && die "memcg_dirty is loaded" "rmmod memcg_dirty first"
mkdir -p "$WORK" "$MNT"
for d in /dev/vd[a-z]; do
	[[ -b $d ]] && ! grep -q "^$d " /proc/mounts && { dev=$d; break; }
done
if [[ -z $dev ]]; then
	truncate -s 1G "$WORK/disk.img"
	loopdev=$(losetup -f --show "$WORK/disk.img") || die "no disk and no loop device" "boot with --disk 1G"
	dev=$loopdev
fi
mkfs.ext4 -q -F "$dev" && mount "$dev" "$MNT" || die "cannot make ext4 on $dev"
echo "+memory +io" > /sys/fs/cgroup/cgroup.subtree_control
mkdir -p "$CG"
echo "+memory +io" > "$CG/cgroup.subtree_control"
mkdir -p "$CG/plain" "$CG/other" "$CG/knob"

mod_load() {
	modprobe memcg_dirty "$@" 2>/dev/null || insmod "$KMEMLAB_DIR/mm/dirty/memcg_dirty.ko" "$@"
}

mod_unload() {
	"$CTL" clear --all >/dev/null 2>&1
	rmmod memcg_dirty
}

# run_writer CG -> elapsed ns for MIB MiB dirtied and written back (fsync)
run_writer() {
	local t0 t1

	rm -f "$MNT/f"
	sync -f "$MNT"
	t0=$(date +%s%N)
	(echo $BASHPID > "$1/cgroup.procs" &&
	 exec dd if=/dev/zero of="$MNT/f" bs=1M count="$MIB" conv=fsync status=none)
	t1=$(date +%s%N)
	echo $((t1 - t0))
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# one loaded run: the hook armed by a knob on another cgroup
loaded_run() {
	mod_load || die "cannot load memcg_dirty" "see dmesg"
	"$CTL" set "$CG/other" --dirty-bytes 16M >/dev/null
	run_writer "$CG/plain"
	mod_unload
}

declare -a off on ratio
run_writer "$CG/plain" >/dev/null	# warm-up: page cache, fs metadata
for ((r = 1; r <= ROUNDS; r++)); do
	echo "bench: round $r/$ROUNDS" >&2
	if ((r % 2)); then
		o=$(run_writer "$CG/plain")
		n=$(loaded_run)
	else
		n=$(loaded_run)
		o=$(run_writer "$CG/plain")
	fi
	off+=("$o")
	on+=("$n")
	ratio+=("$(awk -v o="$o" -v n="$n" 'BEGIN { printf "%.4f", o / n }')")
done

# cost per hooked call, one writer run per case
timing_case() {	# CG -> "calls redirected ns run_ns"
	local t

	echo 0 > "$CFG/timing"
	t=$(run_writer "$1")
	echo "$(awk '{ v[$1] = $2 } END { print v["calls"], v["redirected"], v["ns"] }' "$CFG/timing") $t"
}
mod_load timing=1 || die "cannot load memcg_dirty timing=1"
grep -q "enabled 1" "$CFG/timing" || die "timing not enabled"
cost_off=$(timing_case "$CG/plain")
"$CTL" set "$CG/other" --dirty-bytes 16M >/dev/null
cost_armed=$(timing_case "$CG/plain")
"$CTL" set "$CG/knob" --dirty-bytes 1G --background-bytes 512M >/dev/null
cost_redir=$(timing_case "$CG/knob")
mod_unload

po=$(printf '%s\n' "${off[@]}" | median)
pn=$(printf '%s\n' "${on[@]}" | median)
pr=$(printf '%s\n' "${ratio[@]}" | median)

out=$RESULTS/memcg_dirty_bench.txt
{
	echo "memcg_dirty benchmark: kernel $(uname -r), $(nproc) vCPUs, $MIB MiB dd bs=1M conv=fsync on ext4 ($dev), $ROUNDS rounds ABBA, medians"
	echo "guest loadavg: $(cat /proc/loadavg)"
	echo
	echo "1. writer in a cgroup without a knob, module unloaded vs loaded (knob on another cgroup)"
	printf '%-6s %14s %14s %8s\n' round "unloaded MB/s" "loaded MB/s" ratio
	for ((r = 0; r < ROUNDS; r++)); do
		awk -v r=$((r + 1)) -v m="$MIB" -v o="${off[r]}" -v n="${on[r]}" -v q="${ratio[r]}" 'BEGIN {
			printf "%-6s %14.1f %14.1f %8.3f\n", r, m * 1.048576e9 / o, m * 1.048576e9 / n, q }'
	done
	awk -v m="$MIB" -v o="$po" -v n="$pn" -v q="$pr" 'BEGIN {
		printf "%-6s %14.1f %14.1f %8.3f  (median of per-round ratios)\n", "median", m * 1.048576e9 / o, m * 1.048576e9 / n, q
		printf "ratio of the medians: %.3f; target >= 0.97: %s\n", o / n, q >= 0.97 ? "met" : "NOT met" }'
	echo
	echo "2. cost per hooked call (module timing=1: handler time incl. one local_clock() read)"
	printf '%-52s %8s %8s %8s %10s\n' case calls redir "ns/call" "% of run"
	for c in "no knob anywhere (hook disarmed)|$cost_off" \
		 "knob on another cgroup (armed, no redirect)|$cost_armed" \
		 "writer under a non-binding 1G knob (redirected)|$cost_redir"; do
		IFS='|' read -r name v <<< "$c"
		read -r calls redir ns run <<< "$v"
		awk -v n="$name" -v c="$calls" -v r="$redir" -v t="$ns" -v run="$run" 'BEGIN {
			printf "%-52s %8d %8d %8.0f %9.4f%%\n", n, c, r, c ? t / c : 0, run ? 100 * t / run : 0 }'
	done
} | tee "$out"
