#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# memcg_dirty: cost of one evaluation (one redirected domain_dirty_limits()
# call) against the size of the limited subtree. Every evaluation walks the
# subtree of each limited cgroup on the dirtier's path
# (css_for_each_descendant_pre, dying memcgs included, one cgwb radix tree
# lookup per memcg), with preemption off under the ftrace recursion lock.
#
# P holds a non-binding 1G knob; a writer in P/w dirties SUB_MIB MiB with
# the module's timing=1 (local_clock() around its ftrace handler). Measured
# with P/w alone, then with LIVE live memcgs under P (each has written a
# page to the disk: a cgwb on it) and DYING dying ones (each wrote a page,
# then was removed: its page cache keeps it dying).
#
#   tools/vm/lab run -p none --disk 1G -c bench/memcg_dirty/subtree_cost.sh
#   LIVE=1000 DYING=5000 SUB_MIB=64
# Output: stdout and $KMEMLAB_RESULTS/memcg_dirty_subtree_cost.txt.

set -u

KMEMLAB_DIR=${KMEMLAB_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
KMEMLAB_BIN=${KMEMLAB_BIN:-$KMEMLAB_DIR/build/bin}
RESULTS=${KMEMLAB_RESULTS:-/tmp}
CTL=$KMEMLAB_BIN/memcg-dirtyctl
CFG=/sys/kernel/config/memcg_dirty
LIVE=${LIVE:-1000}
DYING=${DYING:-5000}
SUB_MIB=${SUB_MIB:-64}
P=/sys/fs/cgroup/mdc
MNT=/mnt/mdc
dev=

die() { echo "subtree_cost: error: $1" >&2; [[ -n ${2:-} ]] && echo "subtree_cost: hint: $2" >&2; exit 1; }

cleanup() {
	[[ -d /sys/module/memcg_dirty ]] && { "$CTL" clear --all >/dev/null 2>&1; rmmod memcg_dirty; }
	find "$P" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null
	rmdir "$P" 2>/dev/null
	mountpoint -q "$MNT" && umount "$MNT"
}
trap cleanup EXIT

[[ $(id -u) == 0 ]] || die "needs root"
[[ -d /sys/module/memcg_dirty ]] && die "memcg_dirty is loaded" "rmmod memcg_dirty first"
command -v python3 >/dev/null || die "python3 not found" "run it in the lab VM (the host's root is the guest's)"
for d in /dev/vd[a-z]; do
	[[ -b $d ]] && ! grep -q "^$d " /proc/mounts && { dev=$d; break; }
done
[[ -n $dev ]] || die "no scratch disk" "boot with --disk 1G"
mkdir -p "$MNT"
mkfs.ext4 -q -F "$dev" && mount "$dev" "$MNT" || die "cannot make ext4 on $dev"
echo "+memory +io" > /sys/fs/cgroup/cgroup.subtree_control
mkdir -p "$P/w"
echo "+memory +io" > "$P/cgroup.subtree_control"
modprobe memcg_dirty timing=1 2>/dev/null || insmod "$KMEMLAB_DIR/mm/dirty/memcg_dirty.ko" timing=1 ||
	die "cannot load memcg_dirty timing=1"
grep -q "enabled 1" "$CFG/timing" || die "timing not enabled"
"$CTL" set "$P" --dirty-bytes 1G --background-bytes 512M >/dev/null || die "cannot set P's knob"

# one run: "redirected ns/redirected calls"
measure() {
	local c r ns

	rm -f "$MNT/f"
	sync -f "$MNT"
	echo 0 > "$CFG/timing"
	(echo $BASHPID > "$P/w/cgroup.procs" &&
	 exec dd if=/dev/zero of="$MNT/f" bs=1M count="$SUB_MIB" conv=fsync status=none)
	read -r c r ns <<< "$(awk '{ v[$1] = $2 } END { print v["calls"], v["redirected"], v["ns"] }' "$CFG/timing")"
	echo "$r $ns $c"
}

# populate N PREFIX dying|live: N memcgs under P, each having written one
# page to the disk (python: thousands of mkdir/rmdir without forks)
populate() {
	python3 - "$P" "$MNT" "$1" "$2" "$3" <<'EOF'
import os, sys
p, mnt, n, prefix, kind = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
me = str(os.getpid())
for i in range(n):
    cg = f"{p}/{prefix}{i}"
    os.mkdir(cg)
    with open(f"{cg}/cgroup.procs", "w") as f:
        f.write(me)
    with open(f"{mnt}/{prefix}{i}", "wb") as f:
        f.write(b"x" * 4096)
    with open(f"{p}/w/cgroup.procs", "w") as f:
        f.write(me)
    if kind == "dying":
        os.rmdir(cg)
EOF
}

dying() { awk '$1 == "memory" { print $3 }' /proc/cgroups; }

base=$(measure)
m0=$(dying)
t0=$(date +%s)
populate "$LIVE" l live || die "creating $LIVE live memcgs failed"
populate "$DYING" d dying || die "creating $DYING dying memcgs failed"
sync -f "$MNT"
t1=$(date +%s)
m1=$(dying)
full=$(measure)
# what css_for_each_descendant_pre walks: P's descendants, dying included
nr_desc=$(awk '/^nr_descendants/ { a = $2 } /^nr_dying_descendants/ { d = $2 } END { print a, d }' "$P/cgroup.stat")

out=$RESULTS/memcg_dirty_subtree_cost.txt
{
	echo "memcg_dirty: cost per evaluation against the limited subtree; kernel $(uname -r), $(nproc) vCPUs, $SUB_MIB MiB dd conv=fsync on ext4 ($dev)"
	echo "P: 1G knob (never binds), writer in P/w; module timing=1 (handler time incl. one local_clock() read)"
	echo "memcgs in the system (/proc/cgroups): $m0 before, $m1 after; P's cgroup.stat nr_descendants/nr_dying_descendants: $nr_desc (populated in $((t1 - t0)) s)"
	printf '%-44s %10s %12s %12s\n' subtree "redirected" "ns/eval" "total ms"
	for c in "P/w only|$base" "P/w + $LIVE live + $DYING dying memcgs|$full"; do
		IFS='|' read -r name v <<< "$c"
		read -r r ns _ <<< "$v"
		awk -v n="$name" -v r="$r" -v t="$ns" 'BEGIN {
			printf "%-44s %10d %12.0f %12.1f\n", n, r, r ? t / r : 0, t / 1e6 }'
	done
} | tee "$out"
