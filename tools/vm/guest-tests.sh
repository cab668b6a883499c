#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Run a list of kselftests and print one TAP 13 stream (the kselftest runner's
# format). Also usable on the host: the lab runs host_tests with it.
#
# usage: guest-tests.sh LIST
#   LIST: one test per line, tab-separated: AREA DIR TEST TIMEOUT [SETTLE]
#
# Each test runs in a fresh scratch directory with a timeout (then SIGKILL).
# A test that leaves one of our modules loaded or a mount behind fails, and
# the runner puts the system back so the next test starts clean.
#
# In the VM, every test's start and end are marked in the kernel log, so the
# host can name the test a kernel report appeared in (tools/vm/lab), and
# after each area the runner waits the area's settle= seconds for late
# reports and, on a kernel with kmemleak, scans for leaks.

list=${1:?usage: guest-tests.sh LIST}
rundir=$(cd "$(dirname "$list")" && pwd)
mapfile -t tests <"$list"

# Few execs: under TCG each costs 0.3-0.5 s in the guest (read over 9p), so
# the bookkeeping below uses bash builtins.

# in the guest, stage 1's busybox (in memory) for scratch directories
bb=()
[[ -x /run/kmemlab/busybox ]] && bb=(/run/kmemlab/busybox)

# our modules (what the lab staged in updates/kmemlab): their loaded state
# before and after each test is compared
ours=()
for f in "/lib/modules/$(</proc/sys/kernel/osrelease)/updates/kmemlab/"*.ko; do
	[[ -e $f ]] || continue
	f=${f##*/}
	ours+=("${f%.ko}")
done

loaded_ours() {
	local m

	for m in "${ours[@]}"; do
		[[ -d /sys/module/${m//-/_} ]] && echo "$m"
	done
}

# Mounts are compared in the VM only: on the host other activity mounts
# and unmounts things. Newest last, as in /proc/mounts.
mounts() {
	local mp

	[[ ${KMEMLAB_BACKEND:-host} == host ]] && return 0
	while read -r _ mp _; do
		echo "$mp"
	done </proc/mounts
}

# added BEFORE AFTER: the lines of AFTER that are not in BEFORE, in order
added() {
	local -A had=()
	local l

	while IFS= read -r l; do
		[[ -n $l ]] && had["$l"]=1
	done <<<"$1"
	while IFS= read -r l; do
		[[ -n $l && -z ${had["$l"]:-} ]] && echo "$l"
	done <<<"$2"
}

# Markers in the kernel log (the VM only: the host's log is not ours).
in_vm=0
[[ ${KMEMLAB_BACKEND:-host} != host && -w /dev/kmsg ]] && in_vm=1
mark() {
	((in_vm)) && echo "kmemlab: $*" >/dev/kmsg
	return 0
}

# sleep without an exec
nap() {
	read -r -t "$1" <> <(:) || :
}

# process $1 and every process below it
descendants() {
	local -A kids=()
	local f pid rest ppid q=("$1") p

	for f in /proc/[0-9]*/stat; do
		read -r pid rest 2>/dev/null <"$f" || continue
		rest=${rest##*) }	# after "(comm) ": state ppid ...
		rest=${rest#* }
		ppid=${rest%% *}
		kids[$ppid]+=" $pid"
	done
	while ((${#q[@]})); do
		p=${q[0]}
		q=("${q[@]:1}")
		echo "$p"
		q+=(${kids[$p]:-})
	done
}

# A test at its deadline: where is it? Into the kernel log (the serial log
# keeps it), before timeout(1) kills it: each thread of the test's processes
# (those below its timeout(1)) with its state, wait channel and kernel
# stack, then what every CPU runs (sysrq l).
dump_stuck() {
	local p t state root=

	for p in $(descendants $$); do
		[[ $(<"/proc/$p/comm") == timeout ]] 2>/dev/null && root=$p && break
	done
	[[ -n $root ]] || return 0
	echo "kmemlab: deadline of $1: its tasks" >/dev/kmsg
	for p in $(descendants "$root"); do
		[[ $p == "$root" ]] && continue
		for t in /proc/$p/task/*; do
			[[ -r $t/stat ]] || continue
			state=$(<"$t/stat") && state=${state##*) } && state=${state%% *}
			echo "kmemlab: stuck $(<"$t/comm") ${t##*/} state $state wchan $(<"$t/wchan")" >/dev/kmsg
			while IFS= read -r l; do
				echo "kmemlab:   $l" >/dev/kmsg
			done <"$t/stack"
		done 2>/dev/null
	done
	[[ -w /proc/sysrq-trigger ]] && echo l >/proc/sysrq-trigger
}

# kmemleak: a scan reports objects unreferenced for 5 s (its minimum age);
# a second scan drops transient false positives. What is found is written to
# the kernel log as a report of its own (kmemleak prints only its count, at
# KERN_INFO), with the objects in RUN/kmemleak-AREA.txt, then cleared.
KMEMLEAK=/sys/kernel/debug/kmemleak
kmemleak_scan() {
	local area=$1 out n=0 l

	((in_vm)) && [[ -w $KMEMLEAK ]] || return 0
	mark "test start $area: (kmemleak scan)"
	nap 5
	echo scan >"$KMEMLEAK"
	echo scan >"$KMEMLEAK"
	out=$rundir/kmemleak-$area.txt
	: >"$out"
	while IFS= read -r l; do
		echo "$l" >>"$out"
		[[ $l == "unreferenced object"* ]] && n=$((n + 1))
	done <"$KMEMLEAK"
	if ((n)); then
		# the first object's report, for the host's log scan
		{
			echo "<3>kmemlab: kmemleak: $n unreferenced object(s) after area $area (${out##*/})"
			while IFS= read -r l; do
				echo "<3>kmemleak: $l"
			done < <(head -20 "$out")
		} >/dev/kmsg
	fi
	echo clear >"$KMEMLEAK"
	mark "test end $area: (kmemleak scan)"
}

# The area's end: late reports (settle= seconds), then leaks.
area_end() {
	local area=$1 settle=$2

	((settle > 0)) && nap "$settle"
	kmemleak_scan "$area"
}

# objects allocated before the tests (boot) are not ours
((in_vm)) && [[ -w $KMEMLEAK ]] && echo clear >"$KMEMLEAK"

echo "TAP version 13"
echo "1..${#tests[@]}"
fails=0
n=0
prev_area=
prev_settle=0
for line in "${tests[@]}"; do
	IFS=$'\t' read -r area dir test timeout settle <<<"$line"
	settle=${settle:-0}
	[[ -n $prev_area && $area != "$prev_area" ]] && area_end "$prev_area" "$prev_settle"
	prev_area=$area
	prev_settle=$settle
	n=$((n + 1))
	name="selftests: $area: $test"
	scratch=$("${bb[@]}" mktemp -d "/tmp/kselftest-$area.XXXXXX")
	mods_before=$(loaded_ours)
	mnt_before=$(mounts)

	echo "# timeout set to $timeout"
	echo "# $name"
	mark "test start $area: $test"
	start=${EPOCHREALTIME/./}
	out=$scratch.out
	watcher=
	if ((in_vm && timeout >= 2)); then
		(nap $((timeout > 10 ? timeout - 3 : timeout - 1)) &&
			dump_stuck "$test") &
		watcher=$!
	fi
	(cd "$scratch" && exec timeout -k 5 "$timeout" "$dir/$test") 2>&1 |
		"${bb[@]}" tee "$out" | sed -u 's/^/# /'
	rc=${PIPESTATUS[0]}
	[[ -n $watcher ]] && { kill "$watcher" 2>/dev/null; wait "$watcher" 2>/dev/null; }
	ms=$(((${EPOCHREALTIME/./} - start) / 1000))
	mark "test end $area: $test (exit $rc)"
	# a skip's reason: the last '# SKIP' of the test's own TAP
	skip_reason=
	while IFS= read -r l; do
		[[ $l == *"# SKIP"* ]] && skip_reason=${l#*"# SKIP"} && skip_reason=${skip_reason# }
	done <"$out"
	rm -f "$out"

	# what the test left behind (mounts newest first)
	left=()
	for m in $(added "$mods_before" "$(loaded_ours)"); do
		left+=("module $m")
		rmmod "$m" 2>/dev/null
	done
	mapfile -t new_mounts < <(added "$mnt_before" "$(mounts)")
	for ((i = ${#new_mounts[@]} - 1; i >= 0; i--)); do
		left+=("mount ${new_mounts[i]}")
		umount -l "${new_mounts[i]}" 2>/dev/null
	done
	"${bb[@]}" rm -rf "$scratch"

	# timeout(1) exits 124 after its TERM, 137 after its KILL; 128+N
	# is a test killed by signal N (a SIGKILL before the deadline is not
	# the timeout's)
	case $rc in
	0)
		result="ok $n $name"
		;;
	4)
		result="ok $n $name # SKIP ${skip_reason:-(no reason given)}"
		;;
	124)
		result="not ok $n $name # TIMEOUT $timeout seconds"
		;;
	137)
		if ((ms >= timeout * 1000)); then
			result="not ok $n $name # TIMEOUT $timeout seconds"
		else
			result="not ok $n $name # killed by signal SIGKILL"
		fi
		;;
	129 | 1[3-5][0-9])
		result="not ok $n $name # killed by signal SIG$(kill -l $((rc - 128)))"
		;;
	*)
		result="not ok $n $name # exit=$rc"
		;;
	esac
	if ((${#left[@]})) && [[ $result == ok* ]]; then
		result="not ok $n $name # left the system changed: ${left[*]}"
	elif ((${#left[@]})); then
		echo "# left the system changed: ${left[*]}"
	fi
	[[ $result == not* ]] && fails=$((fails + 1))
	echo "# time: ${ms} ms"
	echo "$result"
done
[[ -n $prev_area ]] && area_end "$prev_area" "$prev_settle"
mark "tests done"
exit $((fails ? 1 : 0))
