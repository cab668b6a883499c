#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Run a list of kselftests and print one TAP 13 stream (the kselftest runner's
# format). Also usable on the host: the lab runs host_tests with it.
#
# usage: guest-tests.sh LIST
#   LIST: one test per line, tab-separated: AREA DIR TEST TIMEOUT
#
# Each test runs in a fresh scratch directory with a timeout (then SIGKILL).
# A test that leaves one of our modules loaded or a mount behind fails, and
# the runner puts the system back so the next test starts clean.

list=${1:?usage: guest-tests.sh LIST}
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

echo "TAP version 13"
echo "1..${#tests[@]}"
fails=0
n=0
for line in "${tests[@]}"; do
	IFS=$'\t' read -r area dir test timeout <<<"$line"
	n=$((n + 1))
	name="selftests: $area: $test"
	scratch=$("${bb[@]}" mktemp -d "/tmp/kselftest-$area.XXXXXX")
	mods_before=$(loaded_ours)
	mnt_before=$(mounts)

	echo "# timeout set to $timeout"
	echo "# $name"
	start=${EPOCHREALTIME/./}
	(cd "$scratch" && exec timeout -k 5 "$timeout" "$dir/$test") 2>&1 |
		sed -u 's/^/# /'
	rc=${PIPESTATUS[0]}
	ms=$(((${EPOCHREALTIME/./} - start) / 1000))

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

	case $rc in
	0)
		result="ok $n $name"
		;;
	4)
		result="ok $n $name # SKIP"
		;;
	124 | 137)
		result="not ok $n $name # TIMEOUT $timeout seconds"
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
exit $((fails ? 1 : 0))
