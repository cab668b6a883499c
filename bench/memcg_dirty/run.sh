#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# memcg_dirty benchmark, run in the lab VM (one boot, side by side):
#  1. write throughput of a writer in a cgroup WITHOUT a knob, module not
#     loaded vs loaded (with another cgroup holding a knob, so the hook is
#     armed and walks the writer's ancestors on every call) -> ratio;
#  2. cost per hooked call: a writer in a cgroup WITH a knob too large to
#     bind (1G) vs the same writer with the module unloaded; the time
#     difference divided by the number of redirected calls (the knob's
#     "evaluations" counter).
# Rounds alternate loaded/unloaded; medians are reported. The table goes to
# stdout and $KMEMLAB_RESULTS/memcg_dirty_bench.txt.
#
#   make run CMD=/work/main/bench/memcg_dirty/run.sh   (with --disk 1G)
#   BENCH_MIB=256 BENCH_ROUNDS=5

set -u

KMEMLAB_DIR=${KMEMLAB_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
KMEMLAB_BIN=${KMEMLAB_BIN:-$KMEMLAB_DIR/build/bin}
RESULTS=${KMEMLAB_RESULTS:-/tmp}
CTL=$KMEMLAB_BIN/memcg-dirtyctl
MIB=${BENCH_MIB:-256}
ROUNDS=${BENCH_ROUNDS:-5}
CG=/sys/fs/cgroup/mdb
MNT=/mnt/mdb
WORK=/tmp/mdb.$$
loopdev=
dev=

die() { echo "bench: error: $1" >&2; [[ -n ${2:-} ]] && echo "bench: hint: $2" >&2; exit 1; }

cleanup() {
	[[ -d /sys/module/memcg_dirty ]] && { "$CTL" clear --all 2>/dev/null; rmmod memcg_dirty; }
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
	modprobe memcg_dirty 2>/dev/null || insmod "$KMEMLAB_DIR/mm/dirty/memcg_dirty.ko"
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

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

declare -a plain_off plain_on knob_off knob_on evals
for ((r = 1; r <= ROUNDS; r++)); do
	echo "bench: round $r/$ROUNDS" >&2
	plain_off+=("$(run_writer "$CG/plain")")
	knob_off+=("$(run_writer "$CG/knob")")
	mod_load || die "cannot load memcg_dirty" "see dmesg"
	"$CTL" set "$CG/other" --dirty-bytes 16M >/dev/null
	"$CTL" set "$CG/knob" --dirty-bytes 1G --background-bytes 512M >/dev/null
	plain_on+=("$(run_writer "$CG/plain")")
	e0=$(awk '$1 == "evaluations" { print $2 }' /sys/kernel/config/memcg_dirty/"$(stat -c %i "$CG/knob")"/stat)
	knob_on+=("$(run_writer "$CG/knob")")
	e1=$(awk '$1 == "evaluations" { print $2 }' /sys/kernel/config/memcg_dirty/"$(stat -c %i "$CG/knob")"/stat)
	evals+=($((e1 - e0)))
	"$CTL" clear --all
	rmmod memcg_dirty
done

po=$(printf '%s\n' "${plain_off[@]}" | median)
pn=$(printf '%s\n' "${plain_on[@]}" | median)
ko=$(printf '%s\n' "${knob_off[@]}" | median)
kn=$(printf '%s\n' "${knob_on[@]}" | median)
ev=$(printf '%s\n' "${evals[@]}" | median)

out=$RESULTS/memcg_dirty_bench.txt
{
	echo "memcg_dirty benchmark: $MIB MiB dd+fsync on ext4 ($dev), $ROUNDS rounds, medians"
	printf '%-44s %12s %12s %8s\n' "case" "unloaded" "loaded" "ratio"
	awk -v m="$MIB" -v o="$po" -v n="$pn" 'BEGIN {
		printf "%-44s %9.1f MB/s %9.1f MB/s %8.3f\n",
		"writer in a cgroup without a knob (MB/s)",
		m * 1.048576e9 / o, m * 1.048576e9 / n, o / n }'
	awk -v m="$MIB" -v o="$ko" -v n="$kn" 'BEGIN {
		printf "%-44s %9.1f MB/s %9.1f MB/s %8.3f\n",
		"writer in a cgroup with a 1G knob (MB/s)",
		m * 1.048576e9 / o, m * 1.048576e9 / n, o / n }'
	awk -v o="$ko" -v n="$kn" -v e="$ev" 'BEGIN {
		printf "%-44s %12d %12s %8s\n", "redirected calls per run", e, "", "";
		if (e > 0)
			printf "%-44s %12.0f %12s %8s\n",
			"cost per hooked call (ns, (loaded-unloaded)/calls)", (n - o) / e, "", "" }'
	echo "throughput ratio = loaded/unloaded throughput (target >= 0.97 without a knob)"
} | tee "$out"
