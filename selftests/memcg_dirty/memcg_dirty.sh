#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# memcg_dirty selftest: per-cgroup dirty limits on ext4 (or xfs) on a
# virtio-blk disk (settings: disks=) or, without one, a loop device on a
# tmpfs file. Writeback is made slow with io.max; the global limits are set
# explicitly (vm.dirty_bytes) so that global throttling cannot mask the
# memcg effect. Every measurement is also run without the module and both
# are printed. TAP 13; exit 0 pass, 1 fail, 4 skip.
#
# Environment: MDT_FS=ext4|xfs (default ext4), MDT_RATE (io.max wbps,
# default 8M), KMEMLAB_DIR, KMEMLAB_BIN, KMEMLAB_RESULTS.

set -u

KMEMLAB_DIR=${KMEMLAB_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
KMEMLAB_BIN=${KMEMLAB_BIN:-$KMEMLAB_DIR/build/bin}
CTL=$KMEMLAB_BIN/memcg-dirtyctl
FS=${MDT_FS:-ext4}
MiB=$((1 << 20))
RATE=$((8 * MiB))
CGROOT=/sys/fs/cgroup
TOP=$CGROOT/mdt
CFG=/sys/kernel/config/memcg_dirty
MNT=/mnt/mdt
WORK=/tmp/mdt.$$
NTESTS=12

mkdir -p "$WORK"
num=0
failed=0
saved_dirty_bytes=
saved_bg_bytes=
saved_dirty_ratio=
saved_bg_ratio=
loopdev=
dev=

log() { echo "# $*"; }

ok() {
	num=$((num + 1))
	echo "ok $num $1"
}

not_ok() {
	num=$((num + 1))
	failed=1
	echo "not ok $num $1"
}

skip_all() {
	echo "1..0 # SKIP $1"
	cleanup
	exit 4
}

check() {	# check NAME CONDITION-STATUS
	if [[ $2 == 0 ]]; then ok "$1"; else not_ok "$1"; fi
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# file_dirty + file_writeback of a cgroup, bytes (memory.stat: fresh)
cg_dirty() {
	awk '$1 == "file_dirty" || $1 == "file_writeback" { s += $2 }
	     END { print s + 0 }' "$1/memory.stat"
}

mod_loaded() { [[ -d /sys/module/memcg_dirty ]]; }

mod_load() {
	modprobe memcg_dirty "$@" 2>/dev/null ||
		insmod "$KMEMLAB_DIR/mm/dirty/memcg_dirty.ko" "$@"
}

mod_unload() {
	mod_loaded || return 0
	[[ -d $CFG ]] && "$CTL" clear --all >/dev/null 2>&1
	rmmod memcg_dirty
}

cleanup() {
	local p

	for p in $(jobs -p); do
		kill "$p" 2>/dev/null
	done
	wait 2>/dev/null
	mod_unload 2>/dev/null
	if mountpoint -q "$MNT" 2>/dev/null; then
		umount "$MNT"
	fi
	[[ -n $loopdev ]] && losetup -d "$loopdev"
	for p in $TOP/*/*/ $TOP/*/; do
		[[ -d $p ]] && rmdir "$p" 2>/dev/null
	done
	[[ -d $TOP ]] && rmdir "$TOP" 2>/dev/null
	[[ -n $saved_dirty_bytes ]] && {
		# the ratio/bytes pairs: writing one clears the other
		if [[ $saved_dirty_bytes != 0 ]]; then
			echo "$saved_dirty_bytes" > /proc/sys/vm/dirty_bytes
		else
			echo "$saved_dirty_ratio" > /proc/sys/vm/dirty_ratio
		fi
		if [[ $saved_bg_bytes != 0 ]]; then
			echo "$saved_bg_bytes" > /proc/sys/vm/dirty_background_bytes
		else
			echo "$saved_bg_ratio" > /proc/sys/vm/dirty_background_ratio
		fi
	}
	rm -rf "$WORK"
}
trap cleanup EXIT

# ---- environment ---------------------------------------------------------

echo "TAP version 13"
[[ $(id -u) == 0 ]] || skip_all "needs root"
[[ -x $CTL ]] || skip_all "$CTL not built (make tools)"
[[ $(stat -f -c %T $CGROOT) == cgroup2fs ]] || skip_all "no cgroup v2 at $CGROOT"
grep -qw memory $CGROOT/cgroup.controllers && grep -qw io $CGROOT/cgroup.controllers ||
	skip_all "memory and io controllers needed for cgroup writeback"
mountpoint -q /sys/kernel/config || mount -t configfs none /sys/kernel/config ||
	skip_all "configfs not available"
mod_loaded && skip_all "memcg_dirty already loaded; unload it first"

for d in /dev/vd[a-z]; do
	[[ -b $d ]] || continue
	grep -q "^$d " /proc/mounts && continue
	dev=$d
	break
done
if [[ -z $dev ]]; then
	truncate -s 1G "$WORK/disk.img" || skip_all "cannot create a loop image"
	loopdev=$(losetup -f --show "$WORK/disk.img") || skip_all "no loop device"
	dev=$loopdev
fi
case $FS in
ext4) mkfs.ext4 -q -F "$dev" ;;
xfs) mkfs.xfs -q -f "$dev" ;;
*) skip_all "MDT_FS=$FS: use ext4 or xfs" ;;
esac || skip_all "mkfs.$FS failed on $dev"
mkdir -p "$MNT"
mount "$dev" "$MNT" || skip_all "cannot mount $dev"
majmin=$(lsblk -dno MAJ:MIN "$dev" | tr -d ' ')
log "device $dev ($majmin), $FS, io.max wbps=$RATE"

saved_dirty_bytes=$(cat /proc/sys/vm/dirty_bytes)
saved_bg_bytes=$(cat /proc/sys/vm/dirty_background_bytes)
saved_dirty_ratio=$(cat /proc/sys/vm/dirty_ratio)
saved_bg_ratio=$(cat /proc/sys/vm/dirty_background_ratio)
# global limits well above the per-cgroup ones; B stays below free-run
echo $((400 * MiB)) > /proc/sys/vm/dirty_bytes
echo $((200 * MiB)) > /proc/sys/vm/dirty_background_bytes

echo "+memory +io" > $CGROOT/cgroup.subtree_control
mkdir -p "$TOP"
echo "+memory +io" > "$TOP/cgroup.subtree_control"

# new_cg NAME [throttled]: a fresh leaf cgroup (fresh id, no stale knob)
new_cg() {
	local cg=$TOP/$1

	[[ -d $cg ]] && { rmdir "$cg"/*/ 2>/dev/null; rmdir "$cg"; }
	mkdir "$cg"
	[[ ${2:-} == throttled ]] && echo "$majmin wbps=$RATE" > "$cg/io.max"
	echo "$cg"
}

# writer CG FILE MIB: dd in CG in the background; its pid in WPID
writer() {
	(echo $BASHPID > "$1/cgroup.procs" &&
	 exec dd if=/dev/zero of="$2" bs=1M count="$3" status=none) >/dev/null &
	WPID=$!
}

# sampler CG OUT: "ms bytes" every 0.5 s until killed; its pid in SPID
sampler() {
	local t0

	t0=$(now_ms)
	while :; do
		echo "$(($(now_ms) - t0)) $(cg_dirty "$1")"
		sleep 0.5
	done > "$2" &
	SPID=$!
}

wchar() {	# bytes written by pid so far (builtins only: fast under TCG)
	local k v

	while read -r k v; do
		[[ $k == wchar: ]] && { echo "$v"; return; }
	done < "/proc/$1/io"
	echo 0
}

wait_or_kill() {	# pid seconds
	local i

	for ((i = 0; i < $2 * 10; i++)); do
		kill -0 "$1" 2>/dev/null || { wait "$1"; return $?; }
		sleep 0.1
	done
	kill "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	return 124
}

drop() {	# remove a file and make sure nothing of it stays dirty
	rm -f "$@"
	sync -f "$MNT"
}

# ---- measurements (run with and without the module) ----------------------

L=$((16 * MiB))
# bound: the peak in the first 3 s, the max of 0.5 s samples after 1 s,
# the dirtying throughput and the device's write bandwidth over the same
# time (only A writes). Echoes "peak3 max_after1 mibps bw_mibps"
wsectors() { awk '{ print $7 }' "/sys/block/$(basename "$dev")/stat"; }

measure_bound() {
	local cg=$1 knob=$2 pid spid t0 t1 s0 s1 out=$WORK/bound.$RANDOM

	[[ $knob == yes ]] && "$CTL" set "$cg" --dirty-bytes $L --background-bytes $((L / 2)) >/dev/null
	s0=$(wsectors)
	t0=$(now_ms)
	writer "$cg" "$MNT/a" 96
	pid=$WPID
	sampler "$cg" "$out"
	spid=$SPID
	wait_or_kill "$pid" 120
	t1=$(now_ms)
	s1=$(wsectors)
	kill "$spid"; wait "$spid" 2>/dev/null
	awk -v ms=$((t1 - t0)) -v wb=$(((s1 - s0) * 512)) '
		$1 <= 3000 && $2 > p3 { p3 = $2 }
		$1 >= 1000 && $2 > m1 { m1 = $2 }
		END { printf "%d %d %.2f %.2f\n", p3, m1, 96 * 1000 / ms,
		      wb / 1048576 * 1000 / ms }' "$out"
	[[ $knob == yes ]] && "$CTL" clear "$cg"
	drop "$MNT/a"
}

bound_ok() {	# peak3 max1 -> status
	local slack1=$((2 * MiB)) slack3=$((4 * MiB))

	((L / 10 > slack1)) && slack1=$((L / 10))
	((L / 4 > slack3)) && slack3=$((L / 4))
	(($2 <= L + slack1 && $1 <= L + slack3))
}

mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

# isolation: B alone, then B while A writes; echoes "alone_ms shared_ms"
measure_isolation() {
	local a=$1 b=$2 knob=$3 apid pid t0 alone shared

	t0=$(now_ms)
	writer "$b" "$MNT/b" 96
	pid=$WPID
	wait_or_kill "$pid" 120
	alone=$(($(now_ms) - t0))
	drop "$MNT/b"
	[[ $knob == yes ]] && "$CTL" set "$a" --dirty-bytes $L --background-bytes $((L / 2)) >/dev/null
	writer "$a" "$MNT/a" 400
	apid=$WPID
	sleep 4
	t0=$(now_ms)
	writer "$b" "$MNT/b" 96
	pid=$WPID
	wait_or_kill "$pid" 120
	shared=$(($(now_ms) - t0))
	kill "$apid" 2>/dev/null; wait "$apid" 2>/dev/null
	[[ $knob == yes ]] && "$CTL" clear "$a"
	drop "$MNT/a" "$MNT/b"
	echo "$alone $shared"
}

run_all_measurements() {	# yes|no: with or without the knobs
	local knob=$1 cg res

	cg=$(new_cg A throttled)
	res=$(measure_bound "$cg" "$knob")
	echo "bound $res"
	res=$(measure_isolation "$(new_cg A throttled)" "$(new_cg B)" "$knob")
	echo "isolation $res"
}

# ---- the tests -----------------------------------------------------------

echo "1..$NTESTS"

# 1: refusal on a layout mismatch (test-only fault), with a message
dmesg -C 2>/dev/null
if mod_load fault=layout 2>/dev/null; then
	rmmod memcg_dirty
	not_ok "refuses to load on a layout mismatch"
else
	dmesg | grep -q "private layout changed, refusing to load"
	check "refuses to load on a layout mismatch, naming the cause" $?
fi

# 2: refusal while another IPMODIFY user holds domain_dirty_limits()
busy=$KMEMLAB_DIR/selftests/memcg_dirty/busy/memcg_dirty_busy.ko
if modprobe memcg_dirty_busy 2>/dev/null || { [[ -f $busy ]] && insmod "$busy"; }; then
	dmesg -C 2>/dev/null
	if mod_load 2>/dev/null; then
		rmmod memcg_dirty
		not_ok "refuses to load while the hook point is taken (-EBUSY)"
	else
		dmesg | grep -q "already redirected by another IPMODIFY"
		check "refuses to load while the hook point is taken (-EBUSY), naming the cause" $?
	fi
	rmmod memcg_dirty_busy
else
	ok "refuses to load while the hook point is taken # SKIP memcg_dirty_busy.ko not built"
fi

# upstream numbers first (module not loaded)
log "without the module (upstream rules):"
base=$(run_all_measurements no)
while read -r what a b c d; do
	case $what in
	bound) log "  A (no knob): peak 0-3 s $(mib "$a") MiB, max after 1 s $(mib "$b") MiB, dirtied $c MiB/s, written back $d MiB/s" ;;
	isolation) log "  B alone $a ms, B while A writes $b ms" ;;
	esac
done <<< "$base"

mod_load || { not_ok "module loads"; exit 1; }
dmesg | grep -qE 'WARNING|BUG' && log "kernel warnings before the test!"

# 2: bound and 3: no collapse
A=$(new_cg A throttled)
read -r p3 m1 rate bw <<< "$(measure_bound "$A" yes)"
log "with the module: A limit 16M: peak 0-3 s $(mib "$p3") MiB, max after 1 s $(mib "$m1") MiB, dirtied $rate MiB/s, written back $bw MiB/s"
bound_ok "$p3" "$m1"
check "bound: A's dirty+writeback within L+max(2M,10%) after 1 s, peak within L+max(4M,25%)" $?
awk -v r="$rate" -v bw="$bw" 'BEGIN { exit !(r >= 0.8 * bw) }'
check "no collapse: A's throughput $rate MiB/s >= 80% of its writeback bandwidth $bw MiB/s" $?

# 4: isolation
read -r alone shared <<< "$(measure_isolation "$(new_cg A throttled)" "$(new_cg B)" yes)"
log "with the module: B alone $alone ms, B while A writes $shared ms"
((shared * 100 <= alone * 125))
check "isolation: B without a knob finishes within 1.25x of B alone" $?

# 5: reaction to a lowered limit
A=$(new_cg A throttled)
"$CTL" set "$A" --dirty-bytes 64M --background-bytes 32M >/dev/null
writer "$A" "$MNT/a" 400
pid=$WPID
sleep 5
before=$(cg_dirty "$A")
w0=$(awk '/^wchar/ { print $2 }' /proc/$pid/io 2>/dev/null)
"$CTL" set "$A" --dirty-bytes 8M --background-bytes 4M >/dev/null
tl=$(now_ms)
sleep 1
t1=$(now_ms)
w1=$(wchar "$pid")
sleep 1
t2=$(now_ms)
w2=$(wchar "$pid")
excess=$((before > 8 * MiB ? before - 8 * MiB : 0))
deadline=$((excess * 1000 / RATE + 2000))
while (($(now_ms) - tl < deadline)); do sleep 0.2; done
after=$(cg_dirty "$A")
kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
"$CTL" clear "$A"
drop "$MNT/a"
log "reaction: $(mib "$before") MiB at 64M -> 8M; dirtied $(mib $((w2 - w1))) MiB from $((t1 - tl)) to $((t2 - tl)) ms after; $(mib "$after") MiB after $deadline ms"
# "stopped": under 2 MiB per second of window (a few ratelimit batches)
(( (w2 - w1) * 1000 <= 2 * MiB * (t2 - t1) && after <= 8 * MiB + 2 * MiB ))
check "reaction: dirtying stops within 1 s of lowering L and A is within bound after excess/bandwidth + 2 s" $?

# 6: background writeback drains to L/2 without sync: the writer is
# stopped (SIGSTOP) while A is above L/2
A=$(new_cg A throttled)
"$CTL" set "$A" --dirty-bytes 16M --background-bytes 8M >/dev/null
writer "$A" "$MNT/a" 400
pid=$WPID
t0=$(now_ms)
v=0
while (($(now_ms) - t0 < 20000)); do
	v=$(cg_dirty "$A")
	((v > 10 * MiB)) && break
	sleep 0.2
done
kill -STOP "$pid"
peak=$(cg_dirty "$A")
t0=$(now_ms)
deadline=$(((peak > 8 * MiB ? peak - 8 * MiB : 0) * 1000 / RATE + 5000))
while (($(now_ms) - t0 < deadline)); do
	v=$(cg_dirty "$A")
	((v <= 8 * MiB)) && break
	sleep 0.2
done
kill -KILL "$pid"; wait "$pid" 2>/dev/null
"$CTL" clear "$A"
log "background: $(mib "$peak") MiB when the writer was stopped, $(mib "$v") MiB after $(($(now_ms) - t0)) ms (deadline $deadline ms)"
if ((peak <= 8 * MiB)); then
	ok "background # SKIP A never got above L/2 before the writer was stopped (host too slow)"
else
	((v <= 8 * MiB))
	check "background: with the writer stopped above L/2, A drains to <= L/2 without sync" $?
fi
drop "$MNT/a"

# 7: hierarchy: a limit on the parent bounds a writer in a child
P=$(new_cg P throttled)
echo "+memory +io" > "$P/cgroup.subtree_control"
mkdir "$P/C"
"$CTL" set "$P" --dirty-bytes 16M --background-bytes 8M >/dev/null
out=$WORK/hier
writer "$P/C" "$MNT/c" 64
pid=$WPID
sampler "$P" "$out"
spid=$SPID
wait_or_kill "$pid" 120
kill "$spid"; wait "$spid" 2>/dev/null
"$CTL" clear "$P"
read -r p3 m1 <<< "$(awk '$1 <= 3000 && $2 > p { p = $2 } $1 >= 1000 && $2 > m { m = $2 }
			  END { print p + 0, m + 0 }' "$out")"
log "hierarchy: P (16M) with the writer in P/C: peak 0-3 s $(mib "$p3") MiB, max after 1 s $(mib "$m1") MiB"
bound_ok "$p3" "$m1"
check "hierarchy: a limit on a parent bounds a writer in a child" $?
drop "$MNT/c"
rmdir "$P/C"

# 8: bad input changes nothing
A=$(new_cg A)
"$CTL" set "$A" --dirty-bytes 16M --background-bytes 8M >/dev/null
id=$(stat -c %i "$A")
bad=0
for v in -1 abc 1 99999999999999999999999 ""; do
	echo "$v" > "$CFG/$id/dirty_bytes" 2>/dev/null && bad=1
done
for v in 101 -5 x 4294967296; do
	echo "$v" > "$CFG/$id/dirty_ratio" 2>/dev/null && bad=1
done
echo $((32 * MiB)) > "$CFG/$id/background_bytes" 2>/dev/null && bad=1	# >= dirty
echo 0 > "$CFG/$id/dirty_bytes" 2>/dev/null && bad=1	# bg without dirty
mkdir "$CFG/0123" 2>/dev/null && bad=1
mkdir "$CFG/999999999" 2>/dev/null && bad=1
mkdir "$CFG/1" 2>/dev/null && bad=1	# the root cgroup
"$CTL" set "$A" --dirty-bytes 4M 2>/dev/null && bad=1	# below background
"$CTL" set "$A" --dirty-ratio 150 2>/dev/null && bad=1
"$CTL" set "$A" --dirty-bytes 16M --dirty-ratio 5 2>/dev/null && bad=1
"$CTL" set "$TOP/nonexistent" --dirty-bytes 16M 2>/dev/null && bad=1
[[ $(cat "$CFG/$id/dirty_bytes") == $((16 * MiB)) &&
   $(cat "$CFG/$id/background_bytes") == $((8 * MiB)) &&
   $(cat "$CFG/$id/dirty_ratio") == 0 ]] || bad=1
# a removed cgroup: its entry turns "removed" and refuses changes
"$CTL" clear "$A"
A=$(new_cg A)
"$CTL" set "$A" --dirty-bytes 16M >/dev/null
id=$(stat -c %i "$A")
rmdir "$A"
[[ $(cat "$CFG/$id/state") == removed ]] || bad=1
echo $((8 * MiB)) > "$CFG/$id/dirty_bytes" 2>/dev/null && bad=1
"$CTL" clear --removed
[[ -d $CFG/$id ]] && bad=1
dmesg | grep -qE 'WARNING|BUG:' && bad=1
check "bad input: clear errors, nothing changed, removed cgroups handled" $bad

# 9: unload while a writer is throttled
A=$(new_cg A throttled)
"$CTL" set "$A" --dirty-bytes 8M --background-bytes 4M >/dev/null
writer "$A" "$MNT/a" 400
pid=$WPID
sleep 3
"$CTL" clear --all
timeout 30 rmmod memcg_dirty
rc=$?
w0=$(awk '/^wchar/ { print $2 }' /proc/$pid/io 2>/dev/null)
sleep 2
w1=$(awk '/^wchar/ { print $2 }' /proc/$pid/io 2>/dev/null)
kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
drop "$MNT/a"
log "unload: rmmod rc=$rc, writer wrote $(mib $((${w1:-0} - ${w0:-0}))) MiB in 2 s afterwards"
((rc == 0 && ${w1:-0} > ${w0:-0})) && ! dmesg | grep -qE 'WARNING|BUG:'
check "unload while a writer is throttled: no hang, no WARN, the writer continues" $?

# 10: the numbers without the module, for comparison (module unloaded)
log "summary without the module: $(echo $base | tr '\n' ' ')"
ok "upstream measurements printed"

# 11: negative check: with the redirect disabled (fault=passthrough) the
# bound test must fail
mod_load fault=passthrough
A=$(new_cg A throttled)
read -r p3 m1 rate bw <<< "$(measure_bound "$A" yes)"
rmmod memcg_dirty
log "fault=passthrough: peak $(mib "$p3") MiB, max after 1 s $(mib "$m1") MiB"
! bound_ok "$p3" "$m1"
check "negative: the bound check fails when the redirect is disabled" $?

exit $failed
